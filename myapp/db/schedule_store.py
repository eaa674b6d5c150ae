"""Schedule records in the database: claim due pipelines, load their snapshot, write a pass's plan.

Every function works on the caller's session and issues a fixed number of statements for a whole
batch of pipelines (multi-row INSERT, executemany UPDATE, IN lists), so a pass costs O(batches)
statements, not O(pipelines). Holds no business rule: the plan comes from myapp.core.schedule.
Must not import Celery, Flask or kubernetes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from myapp.core.schedule import Record, RecordStatus, Schedule
from myapp.core.states import RunState, Trigger
from myapp.db.session import Database
from myapp.db.tables import Pipeline, Run, ScheduleRecord, ScheduleSkip

ACTIVE_STATES = (RunState.QUEUED.value, RunState.RUNNING.value)
_RECORDS = ScheduleRecord.__table__
_PIPELINES = Pipeline.__table__


@dataclass
class Snapshot:
    """What the planner needs of one pipeline: bounded, whatever the length of its history."""

    records: dict[datetime, Record] = field(default_factory=dict)
    waiting: dict[datetime, str] = field(default_factory=dict)  # instant -> the record's message
    active: int = 0


@dataclass(frozen=True)
class NewRecord:
    """A record to insert: status `waiting` or `expired` (expired by the same pass)."""

    pipeline_id: int
    instant: datetime
    text: str
    status: RecordStatus
    message: str


@dataclass(frozen=True)
class PipelineTick:
    """The scheduler state written back to one pipeline after its pass."""

    pipeline_id: int
    next_fire_at: datetime | None
    last_tick_at: datetime
    schedule_error: str | None


def schedule_of(pipeline: Pipeline) -> Schedule:
    """Return the core's view of a pipeline's schedule; ValueError if it cannot be scheduled."""
    if pipeline.cron is None or pipeline.start_time is None:
        raise ValueError("the schedule has no cron expression or start_time; save the pipeline again")
    return Schedule(
        pipeline_id=pipeline.id, cron=pipeline.cron, timezone=pipeline.timezone,
        start_time=pipeline.start_time, depends_on_past=pipeline.depends_on_past,
        expired_limit=pipeline.expired_limit, max_active_runs=pipeline.max_active_runs,
        enabled=pipeline.schedule_enabled and pipeline.schedule_type == "crontab")


def claim_due(s: Session, db: Database, now: datetime, *, after_id: int = 0, limit: int = 500,
              ids: Sequence[int] | None = None) -> list[Pipeline]:
    """Lock and return up to `limit` due pipelines with id > after_id, by id (SKIP LOCKED).

    Due: enabled crontab, next_fire_at unset or <= now, and not already ticked at a later
    instant (a clock that steps back changes nothing, R6).
    """
    q = (select(Pipeline)
         .where(Pipeline.schedule_enabled.is_(True), Pipeline.schedule_type == "crontab",
                (Pipeline.next_fire_at.is_(None)) | (Pipeline.next_fire_at <= now),
                (Pipeline.last_tick_at.is_(None)) | (Pipeline.last_tick_at <= now),
                Pipeline.id > after_id)
         .order_by(Pipeline.id).limit(limit)
         .with_for_update(**db.lock_options(skip_locked=True)))
    if ids is not None:
        q = q.where(Pipeline.id.in_(list(ids)))
    return list(s.scalars(q))


def load_snapshots(s: Session, pipeline_ids: Sequence[int]) -> dict[int, Snapshot]:
    """Return each pipeline's waiting records, newest record, latest launched record and active runs."""
    snaps = {pid: Snapshot() for pid in pipeline_ids}
    if not snaps:
        return snaps
    ids = list(snaps)
    waiting = s.execute(select(ScheduleRecord.pipeline_id, ScheduleRecord.execution_date, ScheduleRecord.message)
                        .where(ScheduleRecord.pipeline_id.in_(ids), ScheduleRecord.status == "waiting"))
    for pid, instant, message in waiting:
        snaps[pid].records[instant] = Record(instant, "waiting")
        snaps[pid].waiting[instant] = message
    for pid, instant, rec_status, run_state in _newest_records(s, ids):
        state = RunState(run_state) if run_state is not None else None
        snaps[pid].records.setdefault(instant, Record(instant, rec_status, state))
    active = s.execute(select(Run.pipeline_id, func.count())
                       .where(Run.pipeline_id.in_(ids), Run.trigger == Trigger.CRON.value,
                              Run.state.in_(ACTIVE_STATES))
                       .group_by(Run.pipeline_id))
    for pid, count in active:
        snaps[pid].active = int(count)
    return snaps


def _newest_records(s: Session, ids: list[int]) -> list[tuple[int, datetime, RecordStatus, str | None]]:
    """Return, per pipeline, its newest record of the current epoch and its latest launched one.

    Two statements: the instants come from correlated max() subqueries in the select list (one
    index probe on (pipeline_id, execution_date) per pipeline, however long its history), then the
    records themselves by their unique key.
    """
    def newest(status: str | None) -> Any:
        inner = aliased(ScheduleRecord)
        query = (select(func.max(inner.execution_date))
                 .where(inner.pipeline_id == Pipeline.id, inner.execution_date >= Pipeline.start_time))
        if status is not None:
            query = query.where(inner.status == status)
        return query.correlate(Pipeline).scalar_subquery()

    keys = {(pid, at) for pid, *instants in s.execute(select(Pipeline.id, newest(None), newest("launched"))
                                                      .where(Pipeline.id.in_(ids)))
            for at in instants if at is not None}
    if not keys:
        return []
    rows = s.execute(select(ScheduleRecord.pipeline_id, ScheduleRecord.execution_date, ScheduleRecord.status,
                            Run.state)
                     .outerjoin(Run, Run.id == ScheduleRecord.run_id)
                     .where(tuple_(ScheduleRecord.pipeline_id, ScheduleRecord.execution_date).in_(list(keys))))
    return [(pid, at, cast(RecordStatus, status), state) for pid, at, status, state in rows]


def insert_records(s: Session, rows: Sequence[NewRecord], now: datetime) -> set[tuple[int, datetime]]:
    """Insert records, ignoring any that exist (the unique key is the arbiter); return those inserted."""
    if not rows:
        return set()
    values = [{"pipeline_id": r.pipeline_id, "execution_date": r.instant, "execution_date_text": r.text,
               "status": r.status, "message": r.message, "created_at": now, "updated_at": now} for r in rows]
    dialect = s.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = (dialect_insert(_RECORDS).on_conflict_do_nothing(index_elements=["pipeline_id", "execution_date"])
                .returning(_RECORDS.c.pipeline_id, _RECORDS.c.execution_date))
        return {(pid, instant) for pid, instant in s.connection().execute(stmt, values)}
    s.connection().execute(insert(_RECORDS).prefix_with("IGNORE"), values)  # MySQL: no RETURNING
    return {(r.pipeline_id, r.instant) for r in rows}


def expire_records(s: Session, rows: Sequence[tuple[int, datetime, str]], now: datetime) -> None:
    """Mark waiting records (pipeline_id, instant, message) expired."""
    _update_waiting(s, rows, now, status="expired")


def set_wait_reasons(s: Session, rows: Sequence[tuple[int, datetime, str]], now: datetime) -> None:
    """Store why waiting records (pipeline_id, instant, reason) still wait."""
    _update_waiting(s, rows, now, status="waiting")


def mark_launched(s: Session, rows: Sequence[tuple[int, datetime, int]], now: datetime) -> None:
    """Mark waiting records (pipeline_id, instant, run_id) launched with their run."""
    if rows:
        stmt = (update(_RECORDS).where(*_waiting_key())
                .values(status="launched", run_id=bindparam("b_run"), message="", updated_at=now))
        s.connection().execute(stmt, [{"b_pid": pid, "b_at": at, "b_run": run_id} for pid, at, run_id in rows])


def _update_waiting(s: Session, rows: Sequence[tuple[int, datetime, str]], now: datetime, *, status: str) -> None:
    if rows:
        stmt = (update(_RECORDS).where(*_waiting_key())
                .values(status=status, message=bindparam("b_message"), updated_at=now))
        s.connection().execute(stmt, [{"b_pid": pid, "b_at": at, "b_message": msg} for pid, at, msg in rows])


def _waiting_key() -> tuple[Any, ...]:
    return (_RECORDS.c.pipeline_id == bindparam("b_pid"), _RECORDS.c.execution_date == bindparam("b_at"),
            _RECORDS.c.status == "waiting")


def insert_skips(s: Session, rows: Sequence[tuple[int, int, datetime, datetime]], now: datetime) -> None:
    """Record skipped spans (pipeline_id, count, first, last) (D12)."""
    if rows:
        s.connection().execute(insert(ScheduleSkip.__table__), [
            {"pipeline_id": pid, "count": count, "first_instant": first, "last_instant": last, "created_at": now}
            for pid, count, first, last in rows])


def update_pipelines(s: Session, ticks: Iterable[PipelineTick]) -> None:
    """Write next_fire_at, last_tick_at and schedule_error back to the pipelines."""
    params = [{"b_id": t.pipeline_id, "b_next": t.next_fire_at, "b_tick": t.last_tick_at,
               "b_error": t.schedule_error} for t in ticks]
    if params:
        stmt = (update(_PIPELINES).where(_PIPELINES.c.id == bindparam("b_id"))
                .values(next_fire_at=bindparam("b_next"), last_tick_at=bindparam("b_tick"),
                        schedule_error=bindparam("b_error")))
        s.connection().execute(stmt, params)


def wake_in(s: Session, run: Run) -> None:
    """Make the scheduler look at a pipeline whose cron run just ended (a slot or a predecessor freed)."""
    if run.trigger == Trigger.CRON.value:
        s.execute(update(Pipeline).where(Pipeline.id == run.pipeline_id, Pipeline.schedule_enabled.is_(True))
                  .values(next_fire_at=None).execution_options(synchronize_session=False))


# ----- read models for `myapp schedule records` and GET /api/v1/schedules/records ------------------
def local_text(instant: datetime, timezone: str) -> str:
    """Render an instant as `%Y-%m-%d %H:%M:%S +hh:mm` in `timezone` (the offset tells repeated hours apart)."""
    local = instant.astimezone(ZoneInfo(timezone))
    return f"{local.strftime('%Y-%m-%d %H:%M:%S')} {local.isoformat()[19:]}"


def record_rows(s: Session, *, pipeline_id: int | None = None, status: str | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
    """Return schedule records newest first, with their run's state, as JSON-ready dicts."""
    q = (select(ScheduleRecord, Pipeline.name, Pipeline.timezone, Run.state)
         .join(Pipeline, Pipeline.id == ScheduleRecord.pipeline_id)
         .outerjoin(Run, Run.id == ScheduleRecord.run_id)
         .order_by(ScheduleRecord.execution_date.desc(), ScheduleRecord.id.desc()).limit(limit))
    if pipeline_id is not None:
        q = q.where(ScheduleRecord.pipeline_id == pipeline_id)
    if status:
        q = q.where(ScheduleRecord.status == status)
    return [{
        "id": r.id, "pipeline_id": r.pipeline_id, "pipeline": name, "timezone": tz,
        "execution_date": r.execution_date_text, "execution_local": local_text(r.execution_date, tz),
        "execution_instant": r.execution_date.astimezone(ZoneInfo(tz)).isoformat(),
        "execution_utc": r.execution_date.isoformat(), "status": r.status, "run_id": r.run_id,
        "run_state": run_state, "message": r.message, "created_at": r.created_at.isoformat(),
    } for r, name, tz, run_state in s.execute(q)]


def skip_rows(s: Session, *, pipeline_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Return the skipped spans (D12) newest first: how many fire times, from when to when."""
    q = (select(ScheduleSkip, Pipeline.name, Pipeline.timezone, Pipeline.expired_limit)
         .join(Pipeline, Pipeline.id == ScheduleSkip.pipeline_id)
         .order_by(ScheduleSkip.id.desc()).limit(limit))
    if pipeline_id is not None:
        q = q.where(ScheduleSkip.pipeline_id == pipeline_id)
    rows = []
    for skip, name, tz, keep in s.execute(q):
        first, last = local_text(skip.first_instant, tz), local_text(skip.last_instant, tz)
        rows.append({
            "pipeline_id": skip.pipeline_id, "pipeline": name, "count": skip.count,
            "first": first, "last": last, "first_instant": skip.first_instant.isoformat(),
            "last_instant": skip.last_instant.isoformat(), "created_at": skip.created_at.isoformat(),
            "text": f"{skip.count:,} fire times from {first} to {last} were skipped "
                    f"(expired_limit {keep} keeps only the newest)"})
    return rows
