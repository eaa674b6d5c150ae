"""REST endpoints the pages need beyond the pipeline/run/template APIs.

- `GET /api/v1/me/`: who is signed in (name, roles, what they may read and write, locale). Called
  with the browser session it also hands out a short-lived JWT, so the browser bundle calls every
  other endpoint as a plain API client; called with a JWT (like any other endpoint) it hands out
  none, so a token cannot renew itself past its expiry.
- `POST /api/v1/me/logout`: end a sign-in (the bearer token's login, or the browser session):
  its session and every token it issued are refused from then on (myapp/web/security.py).
- `/api/v1/projects/`: projects and their members (owner, member, viewer): list, create, add or
  change a member, remove a member. Admins manage every project; an owner manages their own.

Reads and writes go through one session per request (`services().db`); no business rule beyond
who may change a project. Must not import the engine or the executors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from flask import Response, current_app, g, request
from flask_appbuilder.api import BaseApi, expose
from flask_appbuilder.security.decorators import protect
from flask_babel import get_locale
from flask_jwt_extended import create_access_token, get_jwt, verify_jwt_in_request
from flask_login import logout_user

from myapp.core.errors import Conflict, NotFound, SpecError
from myapp.db.projects import (
    add_member,
    create_project,
    member,
    members_by_project,
    project_id_named,
    projects_by_name,
    user_id_named,
)
from myapp.db.session import Session
from myapp.db.tables import Project
from myapp.web.api import domain_errors, services
from myapp.web.authz import Action, Forbidden, can, current_actor, readable_projects, require

RESOURCES = ("Pipelines", "Runs", "Templates", "Schedules")
PROJECT_ROLES = ("owner", "member", "viewer")
PROJECT_NAME = re.compile(r"[a-z0-9-]{1,63}")
TOKEN_LIFETIME = timedelta(minutes=30)
F = TypeVar("F", bound=Callable[..., Any])


def current_user_row() -> Any:
    """Return the signed-in FAB user (session or JWT), or None."""
    user = getattr(g, "user", None)
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def is_admin(user: Any) -> bool:
    """Return whether `user` has the FAB admin role."""
    admin = current_app.config.get("AUTH_ROLE_ADMIN", "Admin")
    return any(role.name == admin for role in getattr(user, "roles", []))


class SessionApi(BaseApi):
    resource_name = "me"
    openapi_spec_tag = "Session"
    allow_browser_login = True

    @expose("/", methods=["GET"])
    def me(self) -> Response:
        """Return the signed-in user, their permissions, the locale and (to a browser session) an API token.
        ---
        get:
          responses:
            200: {description: "The signed-in user (access_token only when called with the browser session)"}
            401: {description: Not signed in}
        """
        # The same authentication as FAB's @protect(allow_browser_login=True): the session cookie,
        # else the JWT bearer token (a missing, expired or foreign one answers 401). No resource
        # permission: every signed-in user may ask who they are.
        by_session = current_user_row() is not None
        if not by_session:
            verify_jwt_in_request()
        user = current_user_row()
        if user is None:
            return self.response_401()
        sm = current_app.appbuilder.sm  # type: ignore[attr-defined]
        perms = {
            name: {"read": sm.has_access("can_read", name), "write": sm.has_access("can_write", name)}
            for name in RESOURCES
        }
        locale = str(get_locale() or "en")
        token: dict[str, Any] = {}
        if by_session:
            token = {
                "access_token": create_access_token(identity=str(user.id), fresh=False, expires_delta=TOKEN_LIFETIME),
                "expires_in": int(TOKEN_LIFETIME.total_seconds()),
            }
        return self.response(
            200,
            id=user.id,
            username=user.username,
            name=f"{user.first_name} {user.last_name}".strip(),
            roles=[r.name for r in user.roles],
            is_admin=is_admin(user),
            can=perms,
            locale="zh" if locale.startswith("zh") else "en",
            timezone=services().settings.timezone,
            executor=services().settings.executor,  # the editor checks workspace claims on kubernetes
            **token,
        )

    @expose("/logout", methods=["POST"])
    def logout(self) -> Response:
        """End this sign-in: the bearer token's login (its access and refresh tokens), or the browser session.
        ---
        post:
          responses:
            200: {description: Signed out; the token (or session) and every token of the same login are refused}
            401: {description: Not signed in, or already signed out}
        """
        sm = current_app.appbuilder.sm  # type: ignore[attr-defined]
        if request.headers.get("Authorization"):
            verify_jwt_in_request(verify_type=False)  # an access or a refresh token; a revoked one answers 401
            claims = get_jwt()
            sm.revoke(str(claims.get("lid") or ""), int(claims["sub"]))
            return self.response(200, message="signed out: every token of this login is refused from now on")
        user = current_user_row()
        if user is None:
            return self.response_401()
        logout_user()
        sm.on_user_logout(user)
        return self.response(200, message="signed out")


def project_rows(s: Session) -> list[dict[str, Any]]:
    """Return the projects the signed-in user may read (all for an admin), each with its members."""
    actor = current_actor(s)
    readable = readable_projects(actor)
    projects = projects_by_name(s)
    by_project = members_by_project(s)
    return [
        {
            "id": p.id,
            "name": p.name,
            "description": p.description,
            "members": by_project.get(p.id, []),
            "my_role": actor.role_in(p.id),
            "can_manage": can(actor, Action.MANAGE, p.id),
            "created_at": p.created_at.isoformat(),
        }
        for p in projects
        if readable is None or p.id in readable
    ]


def _require_manager(s: Session, project_id: int) -> Project:
    """Return the project if the actor may manage it; one they are not a member of is "not found" (no leak)."""
    project, actor = s.get(Project, project_id), current_actor(s)
    if project is None or not can(actor, Action.READ, project_id):
        raise NotFound(f"project {project_id} not found")
    require(actor, Action.MANAGE, project_id, f"the members of project {project.name!r}")
    return project


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise SpecError("body", "expected a JSON object")
    return body


class ProjectApi(BaseApi):
    resource_name = "projects"
    class_permission_name = "Pipelines"
    method_permission_name = {"list": "read", "create": "write", "put_member": "write", "delete_member": "write"}
    openapi_spec_tag = "Projects"

    @expose("/", methods=["GET"])
    @protect()
    def list(self) -> Response:
        """List the projects you belong to (all for an admin), with their members.
        ---
        get:
          responses:
            200: {description: Projects}
        """
        with services().db.read() as s:
            return self.response(200, result=project_rows(s))

    @expose("/", methods=["POST"])
    @protect()
    @domain_errors
    def create(self) -> Response:
        """Create a project (admins); body {name, description}. The creator becomes its owner.
        ---
        post:
          responses:
            201: {description: Created}
            400: {description: Bad name}
            403: {description: Not an admin}
            409: {description: Exists}
        """
        body, user = _body(), current_user_row()
        name = str(body.get("name") or "")
        if not PROJECT_NAME.fullmatch(name):
            raise SpecError("name", f"{name!r} must be 1-63 characters of a-z, 0-9 and -")
        if not is_admin(user):
            raise Forbidden("only an admin can create projects")
        svc = services()
        with svc.db.write() as s:
            if project_id_named(s, name) is not None:
                raise Conflict(f"project {name!r} exists")
            project = create_project(s, name, str(body.get("description") or ""), svc.clock.now())
            add_member(s, project.id, user.id, "owner")
            return self.response(201, id=project.id)

    @expose("/<int:pk>/members", methods=["POST"])
    @protect()
    @domain_errors
    def put_member(self, pk: int) -> Response:
        """Add a member or change their role; body {username, role: owner|member|viewer}.
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: Saved}
            400: {description: Unknown user or role}
            403: {description: Not allowed}
        """
        body = _body()
        role, username = str(body.get("role") or ""), str(body.get("username") or "")
        if role not in PROJECT_ROLES:
            raise SpecError("role", f"must be one of {', '.join(PROJECT_ROLES)}")
        with services().db.write() as s:
            _require_manager(s, pk)
            user_id = user_id_named(s, username)
            if user_id is None:
                raise SpecError("username", f"no user {username!r}")
            found = member(s, pk, user_id)
            if found is None:
                add_member(s, pk, user_id, role)
            else:
                found.role = role
        return self.response(200, project_id=pk, username=username, role=role)

    @expose("/<int:pk>/members/<int:user_id>", methods=["DELETE"])
    @protect()
    @domain_errors
    def delete_member(self, pk: int, user_id: int) -> Response:
        """Remove a member from a project.
        ---
        delete:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          - {in: path, name: user_id, required: true, schema: {type: integer}}
          responses:
            200: {description: Removed}
            404: {description: Not a member}
            403: {description: Not allowed}
        """
        with services().db.write() as s:
            _require_manager(s, pk)
            found = member(s, pk, user_id)
            if found is None:
                raise NotFound(f"user {user_id} is not a member of project {pk}")
            s.delete(found)
        return self.response(200, project_id=pk, user_id=user_id)


def register(appbuilder: Any) -> None:
    """Add the session and project APIs (found by api.register_apis)."""
    appbuilder.add_api(SessionApi)
    appbuilder.add_api(ProjectApi)
