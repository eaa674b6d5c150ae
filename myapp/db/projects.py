"""Projects and their members as the web and CLI read and change them (SQL only; who may do what
is core/authz.py and web/authz.py). Usernames come through the `USERS` reference (db/base.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from myapp.db.base import USERS
from myapp.db.tables import Pipeline, Project, ProjectMember, Run


def pipeline_project(s: Session, pipeline_id: int) -> int | None:
    """Return the project of a pipeline, None when there is no such pipeline."""
    return s.scalar(select(Pipeline.project_id).where(Pipeline.id == pipeline_id))


def run_project(s: Session, run_id: int) -> int | None:
    """Return the project of a run, None when there is no such run."""
    return s.scalar(select(Run.project_id).where(Run.id == run_id))


def project_id_named(s: Session, name: str) -> int | None:
    """Return the id of the project named `name`, None when there is none."""
    return s.scalar(select(Project.id).where(Project.name == name))


def project_ids(s: Session) -> list[int]:
    """Return the ids of every project."""
    return list(s.scalars(select(Project.id)))


def pipeline_ids_in(s: Session, projects: Sequence[int]) -> set[int]:
    """Return the ids of the pipelines of these projects."""
    return set(s.scalars(select(Pipeline.id).where(Pipeline.project_id.in_(projects))).all())


def projects_by_name(s: Session) -> Sequence[Project]:
    """Return every project, by name."""
    return s.scalars(select(Project).order_by(Project.name)).all()


def members_by_project(s: Session) -> dict[int, list[dict[str, Any]]]:
    """Return each project's members (user id, username, role), by username."""
    rows = s.execute(
        select(ProjectMember, USERS.c.username)
        .join(USERS, USERS.c.id == ProjectMember.user_id)
        .order_by(USERS.c.username)
    ).all()
    by_project: dict[int, list[dict[str, Any]]] = {}
    for m, username in rows:
        by_project.setdefault(m.project_id, []).append({"user_id": m.user_id, "username": username, "role": m.role})
    return by_project


def user_id_named(s: Session, username: str) -> int | None:
    """Return the id of the user `username`, None when there is none."""
    found = s.scalar(select(USERS.c.id).where(USERS.c.username == username))
    return None if found is None else int(found)


def member(s: Session, project: int, user_id: int) -> ProjectMember | None:
    """Return the membership of a user in a project, None when they are not a member."""
    return s.scalar(select(ProjectMember).where(ProjectMember.project_id == project, ProjectMember.user_id == user_id))


def create_project(s: Session, name: str, description: str, now: datetime) -> Project:
    """Insert a project (flushed: its id is set)."""
    project = Project(name=name, description=description, created_at=now)
    s.add(project)
    s.flush()
    return project


def ensure_project(s: Session, name: str, description: str, now: datetime) -> None:
    """Create the project `name` unless it exists."""
    if project_id_named(s, name) is None:
        s.add(Project(name=name, description=description, created_at=now))


def add_member(s: Session, project: int, user_id: int, role: str) -> None:
    """Make a user a member of a project with `role` (they are not one yet)."""
    s.add(ProjectMember(project_id=project, user_id=user_id, role=role))
