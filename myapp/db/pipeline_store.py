"""Pipelines and their versions in the database.

`save` is the one write path for import, the REST API and the canvas: validate with the one
checker (R12), pin template versions, and create a new version only when the definition
changed. A change of cron, schedule type or timezone starts a new schedule epoch (R7).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from myapp.core.cron import wall_time_to_instant
from myapp.core.dag import with_implied_edges
from myapp.core.errors import NotFound, SpecError
from myapp.core.model import PipelineSpec, ScheduleSpec, TaskSpec, TemplateSpec
from myapp.core.output_paths import DEFAULT_ROOTS
from myapp.core.pipeline_spec import canonical_hash, parse_pipeline, pipeline_to_dict, stored_schedule
from myapp.core.ports import TemplateCatalog
from myapp.core.secrets import map_pipeline_secrets
from myapp.core.states import RECORD, RecordStatus
from myapp.core.validate import TaskCheck, UrlCheck, validate_pipeline
from myapp.db.bulk import insert_rows
from myapp.db.guards import moving_to
from myapp.db.launch_templates import save_template
from myapp.db.schedule_store import Wake, no_wake, wake_after_commit
from myapp.db.sealed import open_tree, seal
from myapp.db.session import Database
from myapp.db.tables import Pipeline, PipelineTask, PipelineVersion, Project, ScheduleRecord

CronCheck = Callable[[str, str], None]


class SpecErrors(SpecError):
    """Several rule violations at once; `errors` lists them all, the message shows the first."""

    def __init__(self, errors: Sequence[SpecError]) -> None:
        super().__init__(errors[0].field, errors[0].message)
        self.errors = list(errors)


@dataclass(frozen=True)
class SaveResult:
    pipeline_id: int
    version: int
    created_version: bool
    epoch_reset: bool


class PipelineStore:
    """Save, find and list pipelines and versions."""

    def __init__(
        self,
        db: Database,
        catalog: TemplateCatalog,
        cron_check: CronCheck | None = None,
        output_roots: Sequence[str] = DEFAULT_ROOTS,
        task_check: TaskCheck | None = None,
        webhook_check: UrlCheck | None = None,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.cron_check = cron_check
        self.output_roots = tuple(output_roots)
        self.task_check = task_check
        self.webhook_check = webhook_check
        self.wake: Wake = no_wake  # ask for a scheduler pass (queue.celery_app.use_celery)

    def check(self, spec: PipelineSpec) -> PipelineSpec:
        """Validate `spec` and return it with template versions pinned; raise SpecErrors."""
        # A project's pipelines see only the templates published to it (or to all); 10,000 tasks of
        # one template make one lookup, not 20,000.
        scoped = getattr(self.catalog, "for_project", None)
        catalog = MemoCatalog(scoped(spec.project) if callable(scoped) else self.catalog)
        errors = validate_pipeline(
            spec,
            catalog,
            cron_check=self.cron_check,
            output_roots=self.output_roots,
            task_check=self.task_check,
            webhook_check=self.webhook_check,
        )
        if errors:
            raise SpecErrors(errors)
        # Stored = explicit + binding-implied upstreams (rules P2): export, the editor and the run
        # graph read one `depends_on`, and re-importing an export hashes the same (no new version).
        return with_implied_edges(dataclasses.replace(spec, tasks=tuple(_pin(t, catalog) for t in spec.tasks)))

    def save(
        self, spec: PipelineSpec, now: datetime, *, user_id: int | None = None, message: str = "", checked: bool = False
    ) -> SaveResult:
        """Validate and store `spec`; a changed definition becomes a new version.

        `checked`: `spec` is what `check` returned (the REST API checks first for the backfill
        guard; checking 10,000 tasks twice cost half a second).
        """
        pinned = spec if checked else self.check(spec)
        data = pipeline_to_dict(pinned)
        digest = canonical_hash(data)  # = spec_hash(pinned), without building the dict twice
        with self.db.write() as s:
            project = self._project(s, pinned.project, now)
            pipeline = s.scalar(
                select(Pipeline)
                .where(Pipeline.project_id == project.id, Pipeline.name == pinned.name)
                .with_for_update(**self.db.lock_options())
            )
            if pipeline is None:
                pipeline = Pipeline(
                    project_id=project.id,
                    name=pinned.name,
                    created_by=user_id,
                    created_at=now,
                    updated_at=now,
                    alerts={},
                    schedule_type="once",
                    cron=None,
                    timezone="UTC",
                    schedule_enabled=False,
                )
                s.add(pipeline)
                s.flush()
            current = s.get(PipelineVersion, pipeline.current_version_id) if pipeline.current_version_id else None
            if current is not None and (current.spec_hash == digest or _implied_hash(current.spec) == digest):
                return SaveResult(pipeline.id, current.number, False, False)
            number = (
                s.scalar(select(func.max(PipelineVersion.number)).where(PipelineVersion.pipeline_id == pipeline.id))
                or 0
            ) + 1
            stored = map_pipeline_secrets(data, self.catalog.get, seal)  # secrets sealed at rest (B6)
            version = PipelineVersion(
                pipeline_id=pipeline.id,
                number=number,
                spec=stored,
                spec_hash=digest,
                message=message,
                created_by=user_id,
                created_at=now,
            )
            s.add(version)
            s.flush()
            insert_rows(
                s.connection(),
                PipelineTask.__table__,
                [  # one statement, however many tasks
                    {
                        "version_id": version.id,
                        "name": task.name,
                        "template": task.template,
                        "image": task.image,
                        "upstream": list(task.depends_on),
                    }
                    for task in pinned.tasks
                ],
            )
            # what a cron run of the version starts with: the scheduler creates runs from it (launch_templates.py)
            save_template(s, version.id, pinned)
            pipeline.current_version_id = version.id
            pipeline.description = pinned.description
            pipeline.updated_at = now
            previous = stored_schedule(current.spec) if current is not None else None  # not its tasks
            reset = apply_schedule(s, pipeline, pinned, now, previous)
            if is_scheduled(pipeline):
                # The save made it due (next_fire_at cleared): a pass over it right after COMMIT
                # starts a backfill at once instead of at the next beat (up to schedule_interval).
                wake_after_commit(s, pipeline.id, self.wake)
            return SaveResult(pipeline.id, number, True, reset)

    def _project(self, s: Session, name: str, now: datetime) -> Project:
        project = s.scalar(select(Project).where(Project.name == name))
        if project is None:
            project = Project(name=name, description="", created_at=now)
            s.add(project)
            s.flush()
        return project

    # ----- reads -------------------------------------------------------------------------
    def find(self, name_or_id: str | int, project: str | None = None) -> Pipeline:
        """Return the pipeline by id or name (optionally within a project); NotFound otherwise."""
        with self.db.read() as s:
            return self.find_in(s, name_or_id, project)

    def find_in(self, s: Session, name_or_id: str | int, project: str | None = None) -> Pipeline:
        """Like `find`, inside the caller's session."""
        q = select(Pipeline)
        if isinstance(name_or_id, int) or str(name_or_id).isdigit():
            q = q.where(Pipeline.id == int(name_or_id))
        else:
            q = q.where(Pipeline.name == name_or_id)
            if project:
                q = q.join(Project, Project.id == Pipeline.project_id).where(Project.name == project)
        rows = s.scalars(q).all()
        if not rows:
            raise NotFound(f"pipeline {name_or_id!r} not found")
        if len(rows) > 1:
            raise NotFound(f"pipeline name {name_or_id!r} exists in several projects; give --project")
        return rows[0]

    def spec(self, pipeline_id: int, version: int | None = None) -> tuple[PipelineSpec, int]:
        """Return (spec, version number) of the current or a given version."""
        with self.db.read() as s:
            q = select(PipelineVersion).where(PipelineVersion.pipeline_id == pipeline_id)
            if version is None:
                q = q.join(Pipeline, Pipeline.current_version_id == PipelineVersion.id)
            else:
                q = q.where(PipelineVersion.number == version)
            row = s.scalar(q)
            if row is None:
                raise NotFound(f"version {version or 'current'} of pipeline {pipeline_id} not found")
            return parse_pipeline(row.spec), row.number

    def export(self, pipeline_id: int, version: int | None = None) -> dict[str, Any]:
        """Return the canonical YAML-ready dict of a version, implied edges in `depends_on`."""
        spec, _ = self.spec(pipeline_id, version)
        return pipeline_to_dict(with_implied_edges(spec))  # versions saved before rules P2 listed them too

    def summaries(self) -> list[dict[str, Any]]:
        """Return a summary row per pipeline."""
        with self.db.read() as s:
            rows = s.execute(
                select(Pipeline, Project.name, PipelineVersion.number)
                .join(Project, Project.id == Pipeline.project_id)
                .join(PipelineVersion, PipelineVersion.id == Pipeline.current_version_id, isouter=True)
                .order_by(Project.name, Pipeline.name)
            ).all()
        return [pipeline_summary(p, project, number) for p, project, number in rows]

    def versions(self, pipeline_id: int) -> list[dict[str, Any]]:
        """Return the versions of a pipeline, newest first."""
        with self.db.read() as s:
            rows = s.scalars(
                select(PipelineVersion)
                .where(PipelineVersion.pipeline_id == pipeline_id)
                .order_by(PipelineVersion.number.desc())
            ).all()
            return [
                {
                    "id": v.id,
                    "number": v.number,
                    "message": v.message,
                    "created_at": v.created_at.isoformat(),
                    "tasks": len(v.spec.get("tasks", [])),
                }
                for v in rows
            ]


class MemoCatalog:
    """Remembers lookups for the duration of one check, so "newest version" stays consistent."""

    def __init__(self, inner: TemplateCatalog) -> None:
        self.inner = inner
        self._seen: dict[str, TemplateSpec | None] = {}

    def get(self, ref: str) -> TemplateSpec | None:
        """Return the template for `ref`, asking the inner catalog once per ref."""
        if ref not in self._seen:
            self._seen[ref] = self.inner.get(ref)
        return self._seen[ref]


def _implied_hash(stored: dict[str, Any]) -> str | None:
    """Return the hash a version saved before rules P2 wrote implied edges would have today, or None.

    Such a version (a binding whose producer is missing from `depends_on`) hashed its bare form, so
    saving the same pipeline again would otherwise make a version that changes nothing.
    """

    def lacks(task: Any) -> bool:
        deps = set(task.get("depends_on") or ())
        refs = [b.get("from") for b in (task.get("inputs") or {}).values() if isinstance(b, dict)]
        return any(isinstance(r, str) and not r.startswith("params.") and r.split(".")[0] not in deps for r in refs)

    if not any(lacks(t) for t in stored.get("tasks") or () if isinstance(t, dict)):
        return None
    return canonical_hash(pipeline_to_dict(with_implied_edges(parse_pipeline(open_tree(stored)))))


def _pin(task: TaskSpec, catalog: TemplateCatalog) -> TaskSpec:
    if task.template is None or "@" in task.template:
        return task
    template = catalog.get(task.template)
    return dataclasses.replace(task, template=template.ref) if template else task


def pipeline_summary(p: Pipeline, project: str, version: int | None) -> dict[str, Any]:
    """Return the JSON row of a pipeline used by listings."""
    return {
        "id": p.id,
        "name": p.name,
        "project": project,
        "description": p.description,
        "version": version,
        "schedule": {
            "type": p.schedule_type,
            "cron": p.cron,
            "timezone": p.timezone,
            "enabled": p.schedule_enabled,
            "start_time": p.start_time.isoformat() if p.start_time else None,
            "next_fire_at": p.next_fire_at.isoformat() if p.next_fire_at else None,
        },
        "schedule_error": p.schedule_error,
        "updated_at": p.updated_at.isoformat(),
    }


def apply_schedule(
    s: Session, pipeline: Pipeline, spec: PipelineSpec, now: datetime, previous: ScheduleSpec | None = None
) -> bool:
    """Copy the version's schedule onto the pipeline; start a new epoch on a cron/type/zone change (R7).

    `previous` is the schedule of the version this save replaces. Return True when the epoch was
    reset (start_time moved, waiting records expired).
    """
    sch = spec.schedule
    explicit = _to_utc(sch.start_time, sch.timezone) if sch.start_time else None
    changed = (pipeline.schedule_type, pipeline.cron, pipeline.timezone) != (sch.type, sch.cron, sch.timezone)
    first = pipeline.start_time is None and pipeline.schedule_type == "once" and pipeline.cron is None
    pipeline.schedule_type, pipeline.cron, pipeline.timezone = sch.type, sch.cron, sch.timezone
    pipeline.depends_on_past, pipeline.expired_limit = sch.depends_on_past, sch.expired_limit
    pipeline.max_active_runs, pipeline.schedule_enabled = sch.max_active_runs, sch.enabled and sch.type == "crontab"
    pipeline.alerts = {"webhooks": list(spec.alerts.webhooks), "on": list(spec.alerts.on)}
    reset = changed and not first
    # D7: an explicit start_time in the same save wins. The save sets it when the YAML's start_time
    # differs from the previous version's (comparing with the stored epoch start would take an
    # unchanged YAML start_time for a new one after any earlier reset, and move the epoch back).
    sets_start = explicit is not None and (first or previous is None or previous.start_time != sch.start_time)
    if sets_start:
        pipeline.start_time = explicit
    elif changed:
        pipeline.start_time = now
    if reset:
        s.execute(
            update(ScheduleRecord)
            .where(
                ScheduleRecord.pipeline_id == pipeline.id,
                moving_to(ScheduleRecord.status, RECORD, RecordStatus.EXPIRED),
            )
            .values(status=RecordStatus.EXPIRED.value, message="schedule changed", updated_at=now)
            .execution_options(synchronize_session=False)
        )
    pipeline.next_fire_at = None  # re-evaluated by the next scheduler pass
    pipeline.schedule_error = None
    return reset


def is_scheduled(pipeline: Pipeline) -> bool:
    """Return True when the scheduler's passes look at this pipeline (an enabled crontab schedule)."""
    return pipeline.schedule_enabled and pipeline.schedule_type == "crontab"


def _to_utc(wall: datetime, timezone: str) -> datetime:
    """Return the instant of a start_time wall time in `timezone` (gap: first instant after it; fold: first)."""
    if wall.tzinfo is not None:
        return wall.astimezone(UTC)
    return wall_time_to_instant(wall, timezone)


def pipeline_and_spec(s: Session, project: str, name: str) -> tuple[Pipeline | None, dict[str, Any] | None]:
    """Return the pipeline `project/name` and its current version's stored spec (None, None if there is none)."""
    found = s.execute(
        select(Pipeline, PipelineVersion.spec)
        .join(Project, Project.id == Pipeline.project_id)
        .outerjoin(PipelineVersion, PipelineVersion.id == Pipeline.current_version_id)
        .where(Project.name == project, Pipeline.name == name)
    ).first()
    return (found[0], found[1]) if found is not None else (None, None)
