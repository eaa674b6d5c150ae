"""Task templates in the database: sync plugins in, and a catalog that reads them back.

Template versions are immutable, so `name@version` lookups are cached for the process. A user
template published with scope `project` is usable and listed only in its own project
(myapp/db/template_review.py): `for_project(name)` is the catalog a pipeline of that project sees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select

from myapp.core.model import TemplateSpec
from myapp.core.states import TemplateStatus
from myapp.core.templates import parse_template, template_to_dict, version_key
from myapp.db.session import Database
from myapp.db.tables import Project, TaskTemplate


def template_from_dict(data: Mapping[str, Any]) -> TemplateSpec:
    """Rebuild a template from its stored template.yaml-shaped dict."""
    return parse_template(data, "database")


class TemplateStore:
    """Registered templates (built-in plugins, packages and, later, user templates)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._exact: dict[str, TemplateSpec] = {}

    def sync(self, templates: Sequence[TemplateSpec], source: str, now: datetime) -> list[str]:
        """Insert or update plugin templates as published; return the refs written.

        A user template with the same name@version is never overwritten.
        """
        written = []
        with self.db.write() as s:
            for t in templates:
                row = s.scalar(
                    select(TaskTemplate).where(TaskTemplate.name == t.name, TaskTemplate.version == t.version)
                )
                if row is not None and row.source == "user":
                    continue  # a user's template keeps its name@version; the plugin is skipped
                data = template_to_dict(t)
                if row is None:
                    row = TaskTemplate(
                        name=t.name,
                        version=t.version,
                        created_at=now,
                        source=source,
                        status=TemplateStatus.PUBLISHED.value,
                    )
                    s.add(row)
                row.kind, row.category, row.description = t.kind, t.category, t.description
                row.spec, row.readme, row.updated_at = data, t.readme, now
                written.append(t.ref)
        self._exact.clear()
        return written

    def for_project(self, project: str) -> ProjectCatalog:
        """Return the catalog a pipeline of `project` may use (project-scoped templates of others hidden)."""
        return ProjectCatalog(self, project)

    def get(self, ref: str, project: str | None = None) -> TemplateSpec | None:
        """Return the published template for "name" (newest version) or "name@version".

        With `project`, only the templates a pipeline of that project may use.
        """
        key = ref if project is None else f"{project}\x00{ref}"
        if key in self._exact:
            return self._exact[key]
        name, _, version = ref.partition("@")
        q = select(TaskTemplate).where(TaskTemplate.name == name, TaskTemplate.status == TemplateStatus.PUBLISHED.value)
        if project is not None:
            q = q.where(_usable_in(select(Project.id).where(Project.name == project).scalar_subquery()))
        if version:
            q = q.where(TaskTemplate.version == version)

        def read() -> list[TaskTemplate]:
            with self.db.read() as s:
                return list(s.scalars(q).all())

        # An attempt's first lookup in a worker process reads here before its task starts: a database
        # restarting just then must delay the attempt, not fail it as "internal error" (issue 14 item 5).
        rows = self.db.retry_on_disconnect(read)
        if not rows:
            return None
        best = max(rows, key=lambda r: version_key(r.version))
        spec = template_from_dict(best.spec)
        if version:
            self._exact[key] = spec
        return spec

    def list(self, projects: Sequence[int] | None = None) -> list[TemplateSpec]:
        """Return every published template, newest version of each name first.

        With `projects`, only those usable in one of them (the projects a user belongs to).
        """
        q = select(TaskTemplate).where(TaskTemplate.status == TemplateStatus.PUBLISHED.value)
        if projects is not None:
            q = q.where(
                or_(
                    TaskTemplate.publish_scope.is_(None),
                    TaskTemplate.publish_scope != "project",
                    TaskTemplate.project_id.in_(list(projects)),
                )
            )
        with self.db.read() as s:
            rows = s.scalars(q.order_by(TaskTemplate.category, TaskTemplate.name)).all()
        return [template_from_dict(r.spec) for r in rows]


def _usable_in(project_id: Any) -> ColumnElement[bool]:
    """Return the condition "a pipeline of project `project_id` may use this published template"."""
    return or_(
        TaskTemplate.publish_scope.is_(None),
        TaskTemplate.publish_scope != "project",
        TaskTemplate.project_id == project_id,
    )


class ProjectCatalog:
    """The TemplateCatalog of one project's pipelines."""

    def __init__(self, store: TemplateStore, project: str) -> None:
        self.store = store
        self.project = project

    def get(self, ref: str) -> TemplateSpec | None:
        """Return the template for `ref` if this project may use it."""
        return self.store.get(ref, self.project)
