"""Read models of the pipeline list and a pipeline's run grid, shared by the CLI and the REST API.

Bounded and without N+1 queries: a list page is one query for the pipelines (search, sort,
page), one for the total, one for their newest runs (a UNION ALL of one index range scan of
`(pipeline_id, id)` per pipeline on the page). A grid is one query for the newest runs and one
for their task instances.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select, union_all
from sqlalchemy.orm import Session

from myapp.core.cron import next_fire_time
from myapp.core.cron_text import describe_cron
from myapp.core.dag import Dag
from myapp.core.errors import NotFound, SpecError
from myapp.core.pipeline_spec import parse_pipeline
from myapp.db.tables import USERS, Pipeline, PipelineVersion, Project, Run, TaskInstance

SORTS = ("name", "-name", "project", "-project", "next_fire", "-next_fire", "last_run", "-last_run")
MAX_PAGE = 200
MAX_STRIP = 25
MAX_GRID = 100


@dataclass(frozen=True)
class ListQuery:
    """A page of the pipeline list: search text, project, sort key, page and strip length."""

    search: str = ""
    project_id: int | None = None
    sort: str = "name"
    limit: int | None = 50  # None: every pipeline (the CLI's --all); the REST API always bounds it
    offset: int = 0
    strip: int = 10
    project_ids: tuple[int, ...] | None = None  # the projects the user may read (None: all)

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise SpecError("sort", f"must be one of {', '.join(SORTS)}")


def _filtered(q: Select[Any], lq: ListQuery) -> Select[Any]:
    if lq.project_ids is not None:
        q = q.where(Pipeline.project_id.in_(lq.project_ids))
    if lq.project_id is not None:
        q = q.where(Pipeline.project_id == lq.project_id)
    if lq.search:
        like = f"%{lq.search.lower()}%"
        q = q.where(or_(func.lower(Pipeline.name).like(like), func.lower(Pipeline.description).like(like)))
    return q


def pipeline_list(s: Session, lq: ListQuery, now: datetime, locale: str = "en") -> tuple[list[dict[str, Any]], int]:
    """Return (a page of pipelines with their newest runs, next fire time and schedule in words, total)."""
    total = int(s.scalar(_filtered(select(func.count(Pipeline.id)), lq)) or 0)
    last_run = select(Run.pipeline_id, func.max(Run.id).label("last_id")).group_by(Run.pipeline_id).subquery("last")
    q = _filtered(
        select(Pipeline, Project.name, PipelineVersion.number, USERS.c.username, last_run.c.last_id)
        .join(Project, Project.id == Pipeline.project_id)
        .outerjoin(PipelineVersion, PipelineVersion.id == Pipeline.current_version_id)
        .outerjoin(USERS, USERS.c.id == Pipeline.created_by)
        .outerjoin(last_run, last_run.c.pipeline_id == Pipeline.id),
        lq,
    )
    key = lq.sort.lstrip("-")
    column: Any = {
        "name": Pipeline.name,
        "project": Project.name,
        "next_fire": Pipeline.next_fire_at,
        "last_run": last_run.c.last_id,
    }[key]
    ordered = column.desc() if lq.sort.startswith("-") else column.asc()
    q = q.order_by(column.is_(None), ordered, Pipeline.name, Pipeline.id)  # never-set values last, either way
    if lq.limit is not None:
        q = q.limit(min(max(lq.limit, 0), MAX_PAGE))
    rows = s.execute(q.offset(max(lq.offset, 0))).all()
    strips = recent_runs(s, [p.id for p, *_ in rows], min(max(lq.strip, 0), MAX_STRIP))
    return [
        _row(p, project, version, owner, strips.get(p.id, []), now, locale) for p, project, version, owner, _ in rows
    ], total


def _row(
    p: Pipeline,
    project: str,
    version: int | None,
    owner: str | None,
    runs: list[dict[str, Any]],
    now: datetime,
    locale: str,
) -> dict[str, Any]:
    crontab = p.schedule_type == "crontab" and p.cron is not None
    next_fire = p.next_fire_at if crontab and p.schedule_enabled else None
    if crontab and p.schedule_enabled and next_fire is None and p.cron:  # not ticked yet since the last save
        try:
            next_fire = next_fire_time(p.cron, p.timezone, max(now, p.start_time or now))
        except ValueError:
            next_fire = None
    return {
        "id": p.id,
        "name": p.name,
        "project": project,
        "project_id": p.project_id,
        "owner": owner or "",
        "description": p.description,
        "version": version,
        "updated_at": p.updated_at.isoformat(),
        "schedule": {
            "type": p.schedule_type,
            "cron": p.cron,
            "timezone": p.timezone,
            "enabled": p.schedule_enabled,
            "text": describe_cron(p.cron, locale) if crontab and p.cron else "",
            "next_fire_at": next_fire.isoformat() if next_fire else None,
        },
        "schedule_error": p.schedule_error,
        "runs": runs,
        "last_run": runs[0] if runs else None,
    }


def recent_runs(s: Session, pipeline_ids: list[int], n: int) -> dict[int, list[dict[str, Any]]]:
    """Return each pipeline's newest `n` runs (newest first) in one statement."""
    if not pipeline_ids or n <= 0:
        return {}
    cols = (Run.id, Run.pipeline_id, Run.state, Run.trigger, Run.execution_date_text, Run.started_at, Run.ended_at)
    parts = [
        select(*cols).where(Run.pipeline_id == pid).order_by(Run.id.desc()).limit(n).subquery() for pid in pipeline_ids
    ]
    stmt = union_all(*[select(*part.c) for part in parts])
    out: dict[int, list[dict[str, Any]]] = {}
    for r in sorted(s.execute(stmt).all(), key=lambda r: -r.id):
        out.setdefault(r.pipeline_id, []).append(
            {
                "id": r.id,
                "state": r.state,
                "trigger": r.trigger,
                "execution_date": r.execution_date_text,
                "started_at": r.started_at.isoformat() if r.started_at else None,
                "ended_at": r.ended_at.isoformat() if r.ended_at else None,
            }
        )
    return out


def run_grid(s: Session, pipeline_id: int, *, limit: int = 25, before: int | None = None) -> dict[str, Any]:
    """Return a pipeline's newest runs (oldest first, as columns) and each task's state in each run.

    Tasks are the current version's, in its order, then any task only older runs had.
    """
    pipeline = s.get(Pipeline, pipeline_id)
    if pipeline is None:
        raise NotFound(f"pipeline {pipeline_id} not found")
    q = select(
        Run.id, Run.state, Run.trigger, Run.execution_date_text, Run.started_at, Run.ended_at, Run.debug_task
    ).where(Run.pipeline_id == pipeline_id)
    if before is not None:
        q = q.where(Run.id < before)
    runs = list(reversed(s.execute(q.order_by(Run.id.desc()).limit(min(max(limit, 1), MAX_GRID))).all()))
    cells = (
        s.execute(
            select(
                TaskInstance.run_id,
                TaskInstance.task_name,
                TaskInstance.state,
                TaskInstance.try_number,
                TaskInstance.started_at,
                TaskInstance.ended_at,
            ).where(TaskInstance.run_id.in_([r.id for r in runs]))
        ).all()
        if runs
        else []
    )
    names = _task_order(s, pipeline)
    for c in cells:
        if c.task_name not in names:
            names.append(c.task_name)
    total = int(s.scalar(select(func.count(Run.id)).where(Run.pipeline_id == pipeline_id)) or 0)
    return {
        "pipeline": {"id": pipeline.id, "name": pipeline.name},
        "tasks": names,
        "total_runs": total,
        "runs": [
            {
                "id": r.id,
                "state": r.state,
                "trigger": r.trigger,
                "execution_date": r.execution_date_text,
                "debug_task": r.debug_task,
                "started_at": r.started_at.isoformat() if r.started_at else None,
                "ended_at": r.ended_at.isoformat() if r.ended_at else None,
            }
            for r in runs
        ],
        "cells": [
            {
                "run_id": c.run_id,
                "task": c.task_name,
                "state": c.state,
                "try_number": c.try_number,
                "started_at": c.started_at.isoformat() if c.started_at else None,
                "ended_at": c.ended_at.isoformat() if c.ended_at else None,
            }
            for c in cells
        ],
    }


def _task_order(s: Session, pipeline: Pipeline) -> list[str]:
    if pipeline.current_version_id is None:
        return []
    version = s.get(PipelineVersion, pipeline.current_version_id)
    if version is None:
        return []
    try:
        spec = parse_pipeline(version.spec, default_timezone=pipeline.timezone)
    except Exception:  # noqa: BLE001  a stored spec that no longer parses still lists its runs
        return [str(t.get("name")) for t in version.spec.get("tasks", [])]
    return list(Dag.from_spec(spec).topological_order())
