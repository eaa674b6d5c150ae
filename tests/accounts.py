"""Test accounts: projects, Flask-AppBuilder users and project memberships, created idempotently."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from myapp.db.tables import Project, ProjectMember


def ensure_project(services: Any, name: str) -> int:
    """Return the id of project `name`, creating it if needed."""
    with services.db.write() as s:
        project_id = s.scalar(select(Project.id).where(Project.name == name))
        if project_id is None:
            project = Project(name=name, description="", created_at=services.clock.now())
            s.add(project)
            s.flush()
            project_id = project.id
        return int(project_id)


def ensure_user(app: Any, name: str, fab_role: str, password: str | None = None) -> Any:
    """Return the FAB user `name` with `fab_role` (password `<name>-pass` unless given); call in an app context."""
    sm = app.appbuilder.sm
    return sm.find_user(username=name) or sm.add_user(
        name, name, "T", f"{name}@example.com", sm.find_role(fab_role), password or f"{name}-pass"
    )


def ensure_member(services: Any, user_id: int, project: str, role: str) -> None:
    """Make the user a member of `project` with `role` (owner, member, viewer) unless already one."""
    project_id = ensure_project(services, project)
    with services.db.write() as s:
        exists = s.scalar(
            select(ProjectMember.id).where(ProjectMember.project_id == project_id, ProjectMember.user_id == user_id)
        )
        if exists is None:
            s.add(ProjectMember(project_id=project_id, user_id=user_id, role=role))
