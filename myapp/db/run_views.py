"""Read models of runs shared by the CLI and the REST API (JSON-ready dicts, no business rule)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from myapp.core.errors import NotFound
from myapp.db.sealed import mask_sealed
from myapp.db.tables import Pipeline, PipelineVersion, Run, TaskAttempt, TaskInstance


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def run_row(run: Any, pipeline: str, version: int | None) -> dict[str, Any]:
    """Return the summary of one run (`run`: a Run, or a row of LIST_COLUMNS)."""
    return {
        "id": run.id,
        "pipeline": pipeline,
        "pipeline_id": run.pipeline_id,
        "version": version,
        "trigger": run.trigger,
        "state": run.state,
        "execution_date": run.execution_date_text,
        "execution_instant": _iso(run.execution_date),
        "params": mask_sealed(run.params),
        "message": run.message,
        "debug_task": run.debug_task,
        "copied_from": run.copied_from_id,
        "runner": run.runner,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "ended_at": _iso(run.ended_at),
    }


# The columns of a list row: plain rows, not ORM objects (no identity map or unit of work for a page).
LIST_COLUMNS = (
    Run.id,
    Run.pipeline_id,
    Run.trigger,
    Run.state,
    Run.execution_date_text,
    Run.execution_date,
    Run.params,
    Run.message,
    Run.debug_task,
    Run.copied_from_id,
    Run.runner,
    Run.created_at,
    Run.started_at,
    Run.ended_at,
)


@dataclass(frozen=True)
class RunFilter:
    """Which runs a listing shows; `since`/`until` bound the execution date (UTC instants, inclusive/exclusive)."""

    pipeline_id: int | None = None
    state: str | None = None
    trigger: str | None = None
    project_ids: list[int] | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, q: Select[Any]) -> Select[Any]:
        """Return `q` with these conditions on `runs`."""
        if self.pipeline_id is not None:
            q = q.where(Run.pipeline_id == self.pipeline_id)
        if self.state:
            q = q.where(Run.state == self.state)
        if self.trigger:
            q = q.where(Run.trigger == self.trigger)
        if self.project_ids is not None:  # one project: an equality, so PostgreSQL walks (project_id, id) in order
            q = q.where(
                Run.project_id == self.project_ids[0]
                if len(self.project_ids) == 1
                else Run.project_id.in_(self.project_ids)
            )
        if self.since is not None:
            q = q.where(Run.execution_date >= self.since)
        if self.until is not None:
            q = q.where(Run.execution_date < self.until)
        return q


def run_rows(
    s: Session,
    *,
    pipeline_id: int | None = None,
    state: str | None = None,
    trigger: str | None = None,
    limit: int = 50,
    offset: int = 0,
    project_ids: list[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Return runs newest first, filtered; one statement, whatever the page."""
    where = RunFilter(pipeline_id, state, trigger, project_ids, since, until)
    q = run_rows_query(where=where, limit=limit, offset=offset)
    return [run_row(row, row.pipeline_name, row.version_number) for row in s.execute(q)]


def run_count(s: Session, where: RunFilter) -> int:
    """Return how many runs match (the "N of M" of a listing)."""
    return int(s.scalar(where.apply(select(func.count(Run.id)))) or 0)


def run_rows_query(
    *,
    pipeline_id: int | None = None,
    state: str | None = None,
    trigger: str | None = None,
    limit: int = 50,
    offset: int = 0,
    project_ids: list[int] | None = None,
    where: RunFilter | None = None,
) -> Select[Any]:
    """Return the query of `run_rows`: LIST_COLUMNS, pipeline_name, version_number; newest first.

    The page is chosen on `runs` alone (ids only: an index-only scan of the pipeline/state/project
    index, so a deep page skips index entries, not joined rows), then those ids are joined.
    """
    where = where or RunFilter(pipeline_id, state, trigger, project_ids)
    page = where.apply(select(Run.id).order_by(Run.id.desc()).limit(limit).offset(offset))
    ids = page.subquery("page")
    return (
        select(*LIST_COLUMNS, Pipeline.name.label("pipeline_name"), PipelineVersion.number.label("version_number"))
        .join(ids, ids.c.id == Run.id)
        .join(Pipeline, Pipeline.id == Run.pipeline_id)
        .join(PipelineVersion, PipelineVersion.id == Run.version_id)
        .order_by(Run.id.desc())
    )


def run_detail(s: Session, run_id: int) -> dict[str, Any]:
    """Return one run with its task instances and their attempts."""
    found = s.execute(
        select(Run, Pipeline.name, PipelineVersion.number)
        .join(Pipeline, Pipeline.id == Run.pipeline_id)
        .join(PipelineVersion, PipelineVersion.id == Run.version_id)
        .where(Run.id == run_id)
    ).first()
    if found is None:
        raise NotFound(f"run {run_id} not found")
    run, name, number = found
    data = run_row(run, name, number)
    tis = s.scalars(select(TaskInstance).where(TaskInstance.run_id == run_id).order_by(TaskInstance.id)).all()
    attempts = s.scalars(
        select(TaskAttempt)
        .where(TaskAttempt.task_instance_id.in_([t.id for t in tis]))
        .order_by(TaskAttempt.try_number)
    ).all()
    by_ti: dict[int, list[dict[str, Any]]] = {}
    for a in attempts:
        by_ti.setdefault(a.task_instance_id, []).append(
            {
                "try_number": a.try_number,
                "state": a.state,
                "worker": a.worker,
                "pid": a.pid,
                "pods": a.pod_names,
                "exit_code": a.exit_code,
                "message": a.message,
                "started_at": _iso(a.started_at),
                "ended_at": _iso(a.ended_at),
                "container": a.container,
                "events": a.events,
            }
        )
    data["tasks"] = [
        {
            "name": t.task_name,
            "state": t.state,
            "try_number": t.try_number,
            "max_tries": t.max_tries,
            "inputs": t.inputs,
            "outputs": t.outputs,
            "message": t.message,
            "queued_at": _iso(t.queued_at),
            "started_at": _iso(t.started_at),
            "ended_at": _iso(t.ended_at),
            "attempts": by_ti.get(t.id, []),
        }
        for t in tis
    ]
    return data
