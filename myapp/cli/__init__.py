"""The `myapp` command line (PRODUCT.md §7): the entry module that loads settings and wires services.

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
from myapp.settings import SettingsError

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> None:
    """Print `myapp: error: message` and exit with `code`."""
    click.echo(f"myapp: error: {message}", err=True)
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
    return wrapper  # type: ignore[return-value]


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
    from myapp.cli import pipeline, process, run, task, template

    for module in (pipeline, run, task, process, template):
        module.register(main)


_register()
