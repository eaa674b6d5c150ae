"""Who may do what (docs/rules.md P7 roles): one pure table of project roles, used by the stores and APIs.

Two layers decide: Flask-AppBuilder roles (Admin, User, Viewer) guard each endpoint by resource
(`can_read`/`can_write` on Pipelines, Runs, Templates, Schedules); project roles (owner, member,
viewer in `project_members`) decide per project. An admin may do everything; an anonymous user
nothing. `can()` and the table are pure; myapp/web/authz.py reads the roles once per request.
Must not import the engine, the executors or the stores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from myapp.core.errors import MyappError

ADMIN_ROLE = "Admin"


class Forbidden(MyappError):
    """The signed-in user may not do this (answered 403 with the reason)."""


class ProjectRole(StrEnum):
    OWNER = "owner"
    MEMBER = "member"
    VIEWER = "viewer"


class Action(StrEnum):
    READ = "read"  # see the project's pipelines, runs, templates
    WRITE = "write"  # create or edit pipelines and templates in the project
    RUN = "run"  # start, stop, retry, copy, mark runs
    REVIEW = "review"  # approve or reject the project's templates
    MANAGE = "manage"  # add, change and remove members


PROJECT_ACTIONS: Mapping[ProjectRole, frozenset[Action]] = {
    ProjectRole.OWNER: frozenset(Action),
    ProjectRole.MEMBER: frozenset({Action.READ, Action.WRITE, Action.RUN}),
    ProjectRole.VIEWER: frozenset({Action.READ}),
}


@dataclass(frozen=True)
class Actor:
    """The user behind a request: id, FAB roles and project roles (project id -> role)."""

    user_id: int | None
    username: str = ""
    fab_roles: frozenset[str] = frozenset()
    projects: Mapping[int, ProjectRole] = field(default_factory=dict)

    @property
    def is_anonymous(self) -> bool:
        """Return True when nobody is signed in."""
        return self.user_id is None

    @property
    def is_admin(self) -> bool:
        """Return True for the FAB Admin role."""
        return ADMIN_ROLE in self.fab_roles

    def role_in(self, project_id: int | None) -> ProjectRole | None:
        """Return the actor's role in the project, or None."""
        return None if project_id is None else self.projects.get(project_id)


ANONYMOUS = Actor(user_id=None)


def can(actor: Actor, action: Action, project_id: int | None) -> bool:
    """Return whether `actor` may do `action` in the project (None: outside any project: admins only)."""
    if actor.is_anonymous:
        return False
    if actor.is_admin:
        return True
    role = actor.role_in(project_id)
    return role is not None and action in PROJECT_ACTIONS[role]


def require(actor: Actor, action: Action, project_id: int | None, what: str) -> None:
    """Raise Forbidden (naming `what`) unless `can(actor, action, project_id)`."""
    if not can(actor, action, project_id):
        raise Forbidden(f"you may not {action.value} {what}")


def readable_projects(actor: Actor) -> frozenset[int] | None:
    """Return the projects whose content the actor may read; None means all (admin)."""
    if actor.is_admin:
        return None
    return frozenset(p for p, role in actor.projects.items() if Action.READ in PROJECT_ACTIONS[role])
