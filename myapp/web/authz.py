"""The request side of authorization: who is asking (FAB's `g.user` plus project memberships).

The rules themselves are pure and live in myapp/core/authz.py; they are re-exported here.
"""

from __future__ import annotations

from typing import Any

from myapp.core.authz import (
    ADMIN_ROLE,
    ANONYMOUS,
    Action,
    Actor,
    Forbidden,
    ProjectRole,
    can,
    readable_projects,
    require,
)

__all__ = [
    "ADMIN_ROLE",
    "ANONYMOUS",
    "Action",
    "Actor",
    "Forbidden",
    "ProjectRole",
    "actor_for",
    "can",
    "current_actor",
    "readable_projects",
    "require",
]


def actor_for(session: Any, user: Any) -> Actor:
    """Return the Actor of a FAB user row (None or unauthenticated: ANONYMOUS), reading its project roles."""
    from sqlalchemy import select

    from myapp.db.tables import ProjectMember

    if user is None or not getattr(user, "is_authenticated", False) or getattr(user, "id", None) is None:
        return ANONYMOUS
    rows = session.execute(
        select(ProjectMember.project_id, ProjectMember.role).where(ProjectMember.user_id == user.id)
    ).all()
    projects = {pid: ProjectRole(role) for pid, role in rows if role in ProjectRole.__members__.values()}
    return Actor(
        user_id=int(user.id),
        username=str(user.username or ""),
        fab_roles=frozenset(str(r.name) for r in getattr(user, "roles", []) or []),
        projects=projects,
    )


def current_actor(session: Any) -> Actor:
    """Return the Actor of the current request (flask `g.user`, set by FAB for sessions and JWT)."""
    from flask import g

    return actor_for(session, getattr(g, "user", None))
