"""What every REST module under /api/v1 shares, on Flask-AppBuilder's BaseApi: the process's
Services, domain errors mapped to 4xx JSON (never a 500 or SQL text), the request's user and
instants; and `register_apis`, which adds every `myapp/web/*_api.py` module (one per resource:
pipelines_api, runs_api, catalog_api, ...). FAB generates the OpenAPI document.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from flask import current_app, g, request
from flask_appbuilder.api import BaseApi

from myapp.core.authz import Forbidden
from myapp.core.errors import Conflict, MyappError, NotFound, SpecError
from myapp.db.pipeline_store import SpecErrors
from myapp.services import Services
from myapp.web.access import guard_integer_arguments, refuse_bad_tokens_with_401

F = TypeVar("F", bound=Callable[..., Any])


def services() -> Services:
    """Return the process's Services."""
    svc: Services = current_app.extensions["myapp"]
    return svc


def domain_errors(fn: F) -> F:
    """Map domain errors to 400/403/404/409 JSON responses."""

    @functools.wraps(fn)
    def wrapper(self: BaseApi, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except SpecErrors as exc:
            return self.response(
                400, message=str(exc), errors=[{"field": e.field, "message": e.message} for e in exc.errors]
            )
        except SpecError as exc:
            return self.response(400, message=str(exc), errors=[{"field": exc.field, "message": exc.message}])
        except NotFound as exc:
            return self.response(404, message=str(exc))
        except Conflict as exc:  # a backfill above the threshold says how many runs (`backfill`)
            return self.response(409, message=str(exc), **getattr(exc, "details", {}))
        except Forbidden as exc:
            return self.response(403, message=str(exc))
        except MyappError as exc:
            return self.response(400, message=str(exc))
        except OverflowError:  # a date stored before schedules were limited to years 1970-2999
            return self.response(400, message="a date of this object is out of range (years 1970-2999)")
        except RecursionError:  # a definition stored before documents were limited to 64 levels
            return self.response(
                400,
                message="this definition is nested too deeply to be written out; "
                "save a version nested at most 64 levels",
            )

    return wrapper  # type: ignore[return-value]


def query_instant(name: str) -> datetime | None:
    """Parse the query argument `name` as a date (YYYY-MM-DD, UTC midnight) or an ISO instant; 400 if neither."""
    text = request.args.get(name)
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise SpecError(name, f"{text[:40]!r} is not a date (YYYY-MM-DD) or an ISO 8601 instant") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def user_id() -> int | None:
    """Return the logged-in user's id."""
    user = getattr(g, "user", None)
    return getattr(user, "id", None)


def user_name() -> str:
    """Return the logged-in user's name (for {{ runner }})."""
    user = getattr(g, "user", None)
    return str(getattr(user, "username", "") or "")


def register_apis(appbuilder: Any) -> None:
    """Add the REST APIs: every `myapp/web/*_api.py` module's `register(appbuilder)`, one per resource."""
    import importlib
    import pkgutil

    import myapp.web

    refuse_bad_tokens_with_401(appbuilder)
    guard_integer_arguments(current_app._get_current_object())  # type: ignore[attr-defined]
    for info in sorted(pkgutil.iter_modules(myapp.web.__path__), key=lambda m: m.name):
        if info.name.endswith("_api"):
            importlib.import_module(f"myapp.web.{info.name}").register(appbuilder)
