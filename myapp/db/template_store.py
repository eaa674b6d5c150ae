"""Task templates in the database: sync plugins in, and a catalog that reads them back.

Template versions are immutable, so `name@version` lookups are cached for the process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from myapp.core.model import TemplateSpec
from myapp.db.session import Database
from myapp.db.tables import TaskTemplate
from myapp.plugins import parse_template, template_to_dict, version_key


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
                row = s.scalar(select(TaskTemplate).where(TaskTemplate.name == t.name, TaskTemplate.version == t.version))
                if row is not None and row.source == "user":
                    continue  # a user's template keeps its name@version; the plugin is skipped
                data = template_to_dict(t)
                if row is None:
                    row = TaskTemplate(name=t.name, version=t.version, created_at=now, source=source, status="published")
                    s.add(row)
                row.kind, row.category, row.description = t.kind, t.category, t.description
                row.spec, row.readme, row.updated_at = data, t.readme, now
                written.append(t.ref)
        self._exact.clear()
        return written

    def get(self, ref: str) -> TemplateSpec | None:
        """Return the published template for "name" (newest version) or "name@version"."""
        if ref in self._exact:
            return self._exact[ref]
        name, _, version = ref.partition("@")
        with self.db.read() as s:
            q = select(TaskTemplate).where(TaskTemplate.name == name, TaskTemplate.status == "published")
            if version:
                q = q.where(TaskTemplate.version == version)
            rows = s.scalars(q).all()
        if not rows:
            return None
        best = max(rows, key=lambda r: version_key(r.version))
        spec = template_from_dict(best.spec)
        if version:
            self._exact[ref] = spec
        return spec

    def list(self) -> list[TemplateSpec]:
        """Return every published template, newest version of each name first."""
        with self.db.read() as s:
            rows = s.scalars(select(TaskTemplate).where(TaskTemplate.status == "published")
                             .order_by(TaskTemplate.category, TaskTemplate.name)).all()
        return [template_from_dict(r.spec) for r in rows]
