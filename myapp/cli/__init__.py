"""The `myapp` command line (docs/rules.md P7): the entry module that loads settings and wires services.

Errors are printed as one line on stderr: exit 2 for invalid input (a pipeline rule, a bad
setting), 1 for anything else the user asked that cannot be done (not found, wrong state).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from myapp.core.errors import MyappError, SpecError
from myapp.db.session import DatabaseUnavailable, shown_url
from myapp.settings import SettingsError

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> None:
    """Print `myapp: error: message` on one line and exit with `code`."""
    one_line = "; ".join(part.strip() for part in str(message).splitlines() if part.strip())
    click.echo(f"myapp: error: {one_line}", err=True)
    sys.exit(code)


def handle_errors(fn: F) -> F:
    """Turn domain errors into one clear line and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (SpecError, SettingsError) as exc:
            fail(str(exc), 2)
        except MyappError as exc:
            fail(str(exc), 1)
        except DatabaseUnavailable as exc:
            # The database is down or unreachable: say which one, without a traceback or password.
            fail(f"cannot use the database {_database_shown()}: {_first_line(exc.orig or exc)}", 1)

    return wrapper  # type: ignore[return-value]


def _database_shown() -> str:
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(dict) if ctx is not None else None
    services = obj.get("services") if obj is not None else None
    if services is None:
        return "(MYAPP_DATABASE_URL)"
    return shown_url(services.settings.effective_database_url)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def echo_json(data: Any) -> None:
    """Print `data` as indented JSON."""
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def get_services(ctx: click.Context) -> Any:
    """Return this invocation's Services, built on first use."""
    from myapp.services import build_services
    from myapp.settings import load_settings

    obj = ctx.ensure_object(dict)
    if "services" not in obj:
        try:
            obj["services"] = build_services(load_settings())
        except SettingsError as exc:
            fail(str(exc), 2)
    return obj["services"]


@click.group()
@click.version_option(package_name="myapp")
def main() -> None:
    """myapp: pipelines of tasks, run on demand, on a cron schedule, or one task at a time."""


def _register() -> None:
    """Add the commands of every module in this package that defines `register(main)`."""
    import importlib
    import pkgutil

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(main)


_register()
