"""Project scoping for the REST API: who is asking, which project an object lives in, may they act on it.

The rules are the pure table in myapp/core/authz.py; this module only reads the facts they need
(the actor, the project of a pipeline or a run) and applies them the same way everywhere:

- an object the actor may not read answers 404 with the same text as a missing one (no leak of
  existence); one they may read but not change answers 403 with the reason;
- listings are filtered to `readable_projects(actor)`;
- a run-scoped token (`Authorization: Bearer run-<id>.<hmac>`, handed to tasks as MYAPP_TOKEN)
  stands in for a user on the GET endpoints of that one run while it is unfinished
  (`run_token_or_protect`); anywhere else FAB's JWT check refuses it (401).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, request
from flask_appbuilder.api import BaseApi
from flask_appbuilder.security.decorators import protect

from myapp.core.authz import Action, Actor, Forbidden, can, readable_projects
from myapp.core.errors import NotFound
from myapp.core.params import MASK
from myapp.core.secrets import map_pipeline_secrets
from myapp.db.projects import pipeline_ids_in, pipeline_project, project_id_named, run_project
from myapp.services import Services
from myapp.web.authz import current_actor

F = TypeVar("F", bound=Callable[..., Any])
RUN_TOKEN_PREFIX = "run-"


def _services() -> Services:
    from flask import current_app

    svc: Services = current_app.extensions["myapp"]
    return svc


def request_actor() -> Actor:
    """Return the signed-in user with their project roles (read once per request)."""
    cached = getattr(g, "myapp_actor", None)
    if isinstance(cached, Actor):
        return cached
    with _services().db.read() as s:
        found = current_actor(s)
    g.myapp_actor = found
    return found


def authorize(actor: Actor, action: Action, project_id: int | None, what: str) -> None:
    """Raise NotFound("<what> not found") unless the actor may read the project, Forbidden unless `action`."""
    if not can(actor, Action.READ, project_id):
        raise NotFound(f"{what} not found")
    if not can(actor, action, project_id):
        raise Forbidden(f"you may not {action.value} {what}")


def check_pipeline(pipeline_id: int, action: Action) -> None:
    """Authorize `action` on a pipeline: 404 when missing or invisible, 403 when only readable."""
    with _services().db.read() as s:
        project = pipeline_project(s, pipeline_id)
    what = f"pipeline {pipeline_id}"
    if project is None:
        raise NotFound(f"{what} not found")
    authorize(request_actor(), action, project, what)


def shown_definition(pipeline_id: int, definition: dict[str, Any]) -> dict[str, Any]:
    """Return a pipeline definition as the actor may see it: secrets masked unless they may edit it (B6)."""
    with _services().db.read() as s:
        project = pipeline_project(s, pipeline_id)
    if can(request_actor(), Action.WRITE, project):
        return definition
    return map_pipeline_secrets(definition, _services().templates.get, lambda _value: MASK)


def check_run(run_id: int, action: Action) -> None:
    """Authorize `action` on a run (a valid run token of this run may read it)."""
    what = f"run {run_id}"
    if action is Action.READ and getattr(g, "myapp_token_run", None) == run_id:
        return
    with _services().db.read() as s:
        project = run_project(s, run_id)
    if project is None:
        raise NotFound(f"{what} not found")
    authorize(request_actor(), action, project, what)


def check_project_write(project_name: str) -> None:
    """Refuse saving into a project the actor may not write; only admins may create projects by saving.

    A missing project and one the actor cannot write get the same answer (no leak of its existence).
    """
    actor = request_actor()
    if actor.is_admin:
        return
    with _services().db.read() as s:
        project = project_id_named(s, project_name)
    if project is None or not can(actor, Action.WRITE, project):
        raise Forbidden(f"you may not write pipelines in project {project_name!r}")


def visible_projects() -> list[int] | None:
    """Return the ids of the projects the actor may read (None: all, for an admin)."""
    readable = readable_projects(request_actor())
    return None if readable is None else sorted(readable)


def visible_pipeline_ids() -> set[int] | None:
    """Return the ids of the pipelines the actor may read (None: all)."""
    projects = visible_projects()
    if projects is None:
        return None
    with _services().db.read() as s:
        return pipeline_ids_in(s, projects)


def bearer_token() -> str:
    """Return the bearer token of the request ('' when there is none)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def run_token_or_protect(fn: F) -> F:
    """Like FAB's `@protect()`, but a valid run token of the run `pk` may also call this endpoint.

    Use only on read endpoints of one run. A run token of another run, of a finished run or with a
    bad signature answers 401; without a run token FAB's usual JWT/role checks apply.
    """
    protected = protect()(fn)

    @functools.wraps(fn)
    def wrapper(self: BaseApi, pk: int, **kwargs: Any) -> Any:
        token = bearer_token()
        if not token.startswith(RUN_TOKEN_PREFIX):
            return protected(self, pk, **kwargs)
        if _services().runs.check_token(token) != pk:
            return self.response_401()
        g.myapp_token_run = pk
        return fn(self, pk, **kwargs)

    wrapper._permission_name = protected._permission_name  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def refuse_bad_tokens_with_401(appbuilder: Any) -> None:
    """Answer a malformed or foreign bearer token (e.g. a run token on another endpoint) 401, not 422."""
    from flask import jsonify

    def invalid(reason: str) -> Any:
        return jsonify(message="Not authorized", reason=reason), 401

    manager = getattr(appbuilder.sm, "jwt_manager", None)
    if manager is not None:
        manager.invalid_token_loader(invalid)


MAX_ID = 2**31 - 1  # the widest integer every backend's id columns hold (PostgreSQL INTEGER)


def guard_integer_arguments(app: Any) -> None:
    """Answer integers no column can hold with a clean 4xx before any query runs (never a driver error).

    An id in the path beyond MAX_ID cannot exist: 404. An integer query argument beyond it: 400.
    """
    from flask import jsonify

    @app.before_request
    def _guard() -> Any:
        if not request.path.startswith("/api/"):
            return None
        for name, value in (request.view_args or {}).items():
            if isinstance(value, int) and abs(value) > MAX_ID:
                return jsonify(message=f"{name} {value} not found"), 404
        for name, text in request.args.items():
            stripped = text.strip().lstrip("+-")
            if stripped.isdigit() and len(stripped) > 9 and abs(int(stripped)) > MAX_ID:
                return jsonify(message=f"{name} must be at most {MAX_ID}"), 400
        return None
