"""Schedule records in the database: claim due pipelines, load their snapshot, write a pass's plan.

Every function works on the caller's session and issues a fixed number of statements for a whole
batch of pipelines (multi-row INSERT, executemany UPDATE, IN lists), so a pass costs O(batches)
statements, not O(pipelines). Holds no business rule: the plan comes from myapp.core.schedule.
Must not import Celery, Flask or kubernetes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, literal_column, or_, select, true, update
from sqlalchemy.orm import Session, aliased

from myapp.core.schedule import Record, Schedule
from myapp.core.states import RECORD, RecordStatus, RunState, Trigger
from myapp.db.bulk import in_param, insert_rows, is_in, update_rows
from myapp.db.guards import only_source, unfinished
from myapp.db.session import Database
from myapp.db.tables import Pipeline, Run, ScheduleRecord, ScheduleSkip

log = logging.getLogger(__name__)
ACTIVE_STATES = (RunState.CREATING.value, RunState.QUEUED.value, RunState.RUNNING.value)
_RECORDS = ScheduleRecord.__table__
# Launching and expiring both leave `waiting` (R4, R5): the bulk UPDATEs' guard, from the table.
_ONLY_FROM = only_source(RECORD, RecordStatus.LAUNCHED, RecordStatus.EXPIRED)
_PIPELINES = Pipeline.__table__


@dataclass
class Snapshot:
    """What the planner needs of one pipeline: bounded, whatever the length of its history."""

    records: dict[datetime, Record] = field(default_factory=dict)
    waiting: dict[datetime, str] = field(default_factory=dict)  # instant -> the record's message
    active: int = 0


# The values a pass makes one of per pipeline (thousands a pass) are named tuples: a frozen
# dataclass of a dozen fields takes about five times as long to build.
class NewRecord(NamedTuple):
    """A record to insert: `waiting`, `expired` (by the same pass) or `launched` (with its run, created first)."""

    pipeline_id: int
    instant: datetime
    text: str
    status: RecordStatus
    message: str
    run_id: int | None = None


class PipelineTick(NamedTuple):
    """The scheduler state written back to one pipeline after its pass."""

    pipeline_id: int
    next_fire_at: datetime | None
    last_tick_at: datetime
    schedule_error: str | None


class DuePipeline(NamedTuple):
    """The columns of a claimed pipeline that a pass reads (plain values, not an ORM object)."""

    id: int
    name: str
    cron: str | None
    timezone: str
    start_time: datetime | None
    depends_on_past: bool
    expired_limit: int
    max_active_runs: int
    schedule_enabled: bool
    schedule_type: str
    last_tick_at: datetime | None
    created_by: int | None
    project_id: int  # with current_version_id: what a launch copies (RunStore.draft_many_in's `pipelines`)
    current_version_id: int | None


_DUE_COLUMNS = tuple(getattr(Pipeline, name) for name in DuePipeline._fields)


def schedule_of(pipeline: Pipeline | DuePipeline) -> Schedule:
    """Return the core's view of a pipeline's schedule; ValueError if it cannot be scheduled."""
    if pipeline.cron is None or pipeline.start_time is None:
        raise ValueError("the schedule has no cron expression or start_time; save the pipeline again")
    return Schedule(
        pipeline_id=pipeline.id,
        cron=pipeline.cron,
        timezone=pipeline.timezone,
        start_time=pipeline.start_time,
        depends_on_past=pipeline.depends_on_past,
        expired_limit=pipeline.expired_limit,
        max_active_runs=pipeline.max_active_runs,
        enabled=pipeline.schedule_enabled and pipeline.schedule_type == "crontab",
    )


def claim_due(
    s: Session, db: Database, now: datetime, *, after_id: int = 0, limit: int = 500, ids: Sequence[int] | None = None
) -> list[DuePipeline]:
    """Lock and return up to `limit` due pipelines with id > after_id, by id (SKIP LOCKED).

    Due: enabled crontab, next_fire_at unset or <= now, and not already ticked at a later
    instant (a clock that steps back changes nothing, R6). Plain rows, read on the connection: loading
    ORM objects (or going through the ORM's execution of a select) would cost more than planning them.
    """
    q = (
        select(*_DUE_COLUMNS)
        .where(
            Pipeline.schedule_enabled.is_(True),
            Pipeline.schedule_type == "crontab",
            (Pipeline.next_fire_at.is_(None)) | (Pipeline.next_fire_at <= now),
            (Pipeline.last_tick_at.is_(None)) | (Pipeline.last_tick_at <= now),
            Pipeline.id > after_id,
        )
        .order_by(Pipeline.id)
        .limit(limit)
        .with_for_update(**db.lock_options(skip_locked=True))
    )
    if ids is not None:
        q = q.where(is_in(Pipeline.id, ids, db.engine.dialect.name))
    return [DuePipeline(*row) for row in s.connection().execute(q).all()]  # one fetch, not one per row


def load_snapshots(s: Session, pipeline_ids: Sequence[int]) -> dict[int, Snapshot]:
    """Return each pipeline's waiting records, newest record, latest launched record and active runs.

    Two statements for the whole batch. The newest record, the latest launched one (with their
    runs' states) and the active count come from correlated subqueries in the select list: a few
    index probes per pipeline, however long its history, and a plan that does not depend on
    table statistics (joins over a batch's 500 keys chose sequential scans of the records and runs
    tables when a burst of launches had made the statistics stale).
    """
    snaps = {pid: Snapshot() for pid in pipeline_ids}
    if not snaps:
        return snaps
    heads, waiting = _snapshot_statements(s.get_bind().dialect.name)
    ids, conn = {"ids": list(snaps)}, s.connection()  # Core rows: no ORM execution context per statement
    for pid, active, newest_at, status, newest_run, launched_at, launched_run in conn.execute(heads, ids).all():
        snap = snaps[pid]
        snap.active = int(active)
        if launched_at is not None:
            snap.records[launched_at] = Record(launched_at, RecordStatus.LAUNCHED, _run_state(launched_run))
        if newest_at is not None:
            snap.records[newest_at] = Record(newest_at, RecordStatus(status), _run_state(newest_run))
    for pid, instant, message in conn.execute(waiting, ids).all():
        snaps[pid].records[instant] = Record(instant, RecordStatus.WAITING)
        snaps[pid].waiting[instant] = message
    return snaps


@cache
def _snapshot_statements(dialect: str) -> tuple[Any, Any]:
    """Build the two snapshot statements once per dialect (SQLAlchemy memoizes a statement's cache
    key per object: a batch does not rebuild and re-key a dozen subqueries)."""
    if dialect == "postgresql":
        heads = _lateral_heads(dialect)
    else:
        newest, newest_status, newest_state = _newest(None)
        launched, _, launched_state = _newest(RecordStatus.LAUNCHED)
        heads = select(
            Pipeline.id, _active_cron_runs(), newest, newest_status, newest_state, launched, launched_state
        ).where(in_param(Pipeline.id, "ids", dialect))
    waiting = select(ScheduleRecord.pipeline_id, ScheduleRecord.execution_date, ScheduleRecord.message).where(
        in_param(ScheduleRecord.pipeline_id, "ids", dialect), unfinished(ScheduleRecord.status, RECORD)
    )
    return heads, waiting


def _lateral_heads(dialect: str) -> Any:
    """The heads statement as two LATERAL joins (PostgreSQL): one index probe per record found, where
    a correlated subquery per column probes the same index once per column (5 probes -> 2)."""

    def newest(status: str | None) -> Any:
        inner = aliased(ScheduleRecord)
        query = (
            select(inner.execution_date, inner.status, Run.state)
            .select_from(inner)
            .outerjoin(Run, Run.id == inner.run_id)
            .where(inner.pipeline_id == Pipeline.id, inner.execution_date >= Pipeline.start_time)
        )
        if status is not None:
            query = query.where(inner.status == status)
        # LIMIT 1 written as such: a generic plan knows it (a bound limit is costed as a tenth of the rows)
        return query.order_by(inner.execution_date.desc()).limit(literal_column("1")).lateral()

    head, launched = newest(None), newest(RecordStatus.LAUNCHED)
    return (
        select(
            Pipeline.id,
            _active_cron_runs(),
            head.c.execution_date,
            head.c.status,
            head.c.state,
            launched.c.execution_date,
            launched.c.state,
        )
        .select_from(Pipeline)
        .outerjoin(head, true())
        .outerjoin(launched, true())
        .where(in_param(Pipeline.id, "ids", dialect))
    )


def _newest(status: str | None) -> tuple[Any, Any, Any]:
    """Instant, status and run state of a pipeline's newest record of the current epoch (with `status`)."""
    inner = aliased(ScheduleRecord)

    def newest(column: Any, *, with_run: bool = False) -> Any:
        query = select(column).where(inner.pipeline_id == Pipeline.id, inner.execution_date >= Pipeline.start_time)
        if with_run:
            query = query.select_from(inner).outerjoin(Run, Run.id == inner.run_id)
        if status is not None:
            query = query.where(inner.status == status)
        return query.order_by(inner.execution_date.desc()).limit(1).correlate(Pipeline).scalar_subquery()

    return newest(inner.execution_date), newest(inner.status), newest(Run.state, with_run=True)


def _active_cron_runs() -> Any:
    """How many of a pipeline's cron runs are queued or running (R5), correlated."""
    return (
        select(func.count())
        .select_from(Run)
        .where(
            Run.pipeline_id == Pipeline.id,
            Run.trigger == Trigger.CRON.value,
            or_(*(Run.state == state for state in ACTIVE_STATES)),
        )  # no expanding IN to render each time
        .correlate(Pipeline)
        .scalar_subquery()
    )


def _run_state(value: str | None) -> RunState | None:
    return None if value is None else RunState(value)


def insert_records(s: Session, rows: Sequence[NewRecord], now: datetime) -> set[tuple[int, datetime]]:
    """Insert records, ignoring any that exist (the unique key is the arbiter); return those inserted."""
    if not rows:
        return set()
    values = [
        {
            "pipeline_id": r.pipeline_id,
            "execution_date": r.instant,
            "execution_date_text": r.text,
            "status": RecordStatus(r.status).value,
            "message": r.message,
            "run_id": r.run_id,
            "created_at": now,
            "updated_at": now,
        }
        for r in rows
    ]
    if s.get_bind().dialect.name in ("postgresql", "sqlite"):
        inserted = insert_rows(
            s.connection(),
            _RECORDS,
            values,
            returning=("pipeline_id", "execution_date"),
            conflict_keys=("pipeline_id", "execution_date"),
        )
        return {(pid, instant) for pid, instant in inserted}
    s.connection().execute(insert(_RECORDS).prefix_with("IGNORE"), values)  # MySQL: no RETURNING
    return {(r.pipeline_id, r.instant) for r in rows}


def expire_records(s: Session, rows: Sequence[tuple[int, datetime, str]], now: datetime) -> None:
    """Mark waiting records (pipeline_id, instant, message) expired."""
    _update_waiting(
        s,
        [{"pipeline_id": pid, "execution_date": at, "message": message} for pid, at, message in rows],
        {"status": RecordStatus.EXPIRED.value, "updated_at": now},
    )


def set_wait_reasons(s: Session, rows: Sequence[tuple[int, datetime, str]], now: datetime) -> None:
    """Store why waiting records (pipeline_id, instant, reason) still wait."""
    _update_waiting(
        s,
        [{"pipeline_id": pid, "execution_date": at, "message": reason} for pid, at, reason in rows],
        {"updated_at": now},
    )


def mark_launched(s: Session, rows: Sequence[tuple[int, datetime, int]], now: datetime) -> int:
    """Mark waiting records (pipeline_id, instant, run_id) launched with their run; return how many were waiting."""
    return _update_waiting(
        s,
        [{"pipeline_id": pid, "execution_date": at, "run_id": run_id} for pid, at, run_id in rows],
        {"status": RecordStatus.LAUNCHED.value, "message": "", "updated_at": now},
    )


def _update_waiting(s: Session, rows: Sequence[dict[str, Any]], constants: dict[str, Any]) -> int:
    return update_rows(
        s.connection(),
        _RECORDS,
        rows,
        keys=("pipeline_id", "execution_date"),
        constants=constants,
        only_if={"status": _ONLY_FROM},
    )


def insert_skips(s: Session, rows: Sequence[tuple[int, int, datetime, datetime]], now: datetime) -> None:
    """Record skipped spans (pipeline_id, count, first, last) (D12)."""
    if rows:
        s.connection().execute(
            insert(ScheduleSkip.__table__),
            [
                {"pipeline_id": pid, "count": count, "first_instant": first, "last_instant": last, "created_at": now}
                for pid, count, first, last in rows
            ],
        )


def update_pipelines(s: Session, ticks: Iterable[PipelineTick]) -> None:
    """Write next_fire_at, last_tick_at and schedule_error back to the pipelines."""
    update_rows(
        s.connection(),
        _PIPELINES,
        [
            {
                "id": t.pipeline_id,
                "next_fire_at": t.next_fire_at,
                "last_tick_at": t.last_tick_at,
                "schedule_error": t.schedule_error,
            }
            for t in ticks
        ],
        keys=("id",),
    )


Wake = Callable[[Sequence[int]], None]


def wake_after_commit(s: Session, pipeline_id: int, wake: Wake) -> None:
    """Ask for a scheduler pass over `pipeline_id` once this transaction has committed.

    One call of `wake` per transaction, with every pipeline woken in it; never after a rollback
    (`Database.write` runs `session.info["after_commit"]`). A failed ask is only logged: the next
    beat pass finds the pipeline due anyway.
    """
    woken: set[int] | None = s.info.get("woken_pipelines")
    if woken is None:
        woken = s.info["woken_pipelines"] = set()
        s.info.setdefault("after_commit", []).append(lambda: _send_wake(wake, sorted(woken)))
    woken.add(pipeline_id)


def _send_wake(wake: Wake, pipeline_ids: Sequence[int]) -> None:
    try:
        wake(pipeline_ids)
    except Exception:  # noqa: BLE001  the next beat pass sees them due anyway
        log.warning(
            "asking for a scheduler pass for pipelines %s failed; the next beat does it", pipeline_ids, exc_info=True
        )


def no_wake(pipeline_ids: Sequence[int]) -> None:
    """Without a broker the next beat pass (or `myapp schedule tick`) looks at woken pipelines."""


def wake_in(s: Session, run: Run) -> None:
    """Make the scheduler look at a pipeline whose cron run just ended (a slot or a predecessor freed)."""
    if run.trigger == Trigger.CRON.value:
        s.execute(
            update(Pipeline)
            .where(Pipeline.id == run.pipeline_id, Pipeline.schedule_enabled.is_(True))
            .values(next_fire_at=None)
            .execution_options(synchronize_session=False)
        )


# ----- read models for `myapp schedule records` and GET /api/v1/schedules/records ------------------
def local_text(instant: datetime, timezone: str) -> str:
    """Render an instant as `%Y-%m-%d %H:%M:%S +hh:mm` in `timezone` (the offset tells repeated hours apart)."""
    local = instant.astimezone(ZoneInfo(timezone))
    return f"{local.strftime('%Y-%m-%d %H:%M:%S')} {local.isoformat()[19:]}"


def _record_filter(
    q: Any, pipeline_id: int | None, status: str | None, since: datetime | None, until: datetime | None
) -> Any:
    if pipeline_id is not None:
        q = q.where(ScheduleRecord.pipeline_id == pipeline_id)
    if status:
        q = q.where(ScheduleRecord.status == status)
    if since is not None:
        q = q.where(ScheduleRecord.execution_date >= since)
    if until is not None:
        q = q.where(ScheduleRecord.execution_date < until)
    return q


def record_count(
    s: Session,
    *,
    pipeline_id: int | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Return how many schedule records match (the "N of M" of a listing)."""
    return int(s.scalar(_record_filter(select(func.count(ScheduleRecord.id)), pipeline_id, status, since, until)) or 0)


def record_rows(
    s: Session,
    *,
    pipeline_id: int | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Return schedule records newest first, with their run's state, as JSON-ready dicts."""
    q = (
        select(ScheduleRecord, Pipeline.name, Pipeline.timezone, Run.state)
        .join(Pipeline, Pipeline.id == ScheduleRecord.pipeline_id)
        .outerjoin(Run, Run.id == ScheduleRecord.run_id)
        .order_by(ScheduleRecord.execution_date.desc(), ScheduleRecord.id.desc())
        .limit(limit)
        .offset(offset)
    )
    q = _record_filter(q, pipeline_id, status, since, until)
    return [
        {
            "id": r.id,
            "pipeline_id": r.pipeline_id,
            "pipeline": name,
            "timezone": tz,
            "execution_date": r.execution_date_text,
            "execution_local": local_text(r.execution_date, tz),
            "execution_instant": r.execution_date.astimezone(ZoneInfo(tz)).isoformat(),
            "execution_utc": r.execution_date.isoformat(),
            "status": r.status,
            "run_id": r.run_id,
            "run_state": run_state,
            "message": r.message,
            "created_at": r.created_at.isoformat(),
        }
        for r, name, tz, run_state in s.execute(q)
    ]


def skip_rows(s: Session, *, pipeline_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Return the skipped spans (D12) newest first: how many fire times, from when to when."""
    q = (
        select(ScheduleSkip, Pipeline.name, Pipeline.timezone, Pipeline.expired_limit)
        .join(Pipeline, Pipeline.id == ScheduleSkip.pipeline_id)
        .order_by(ScheduleSkip.id.desc())
        .limit(limit)
    )
    if pipeline_id is not None:
        q = q.where(ScheduleSkip.pipeline_id == pipeline_id)
    rows = []
    for skip, name, tz, keep in s.execute(q):
        first, last = local_text(skip.first_instant, tz), local_text(skip.last_instant, tz)
        rows.append(
            {
                "pipeline_id": skip.pipeline_id,
                "pipeline": name,
                "count": skip.count,
                "first": first,
                "last": last,
                "first_instant": skip.first_instant.isoformat(),
                "last_instant": skip.last_instant.isoformat(),
                "created_at": skip.created_at.isoformat(),
                "text": f"{skip.count:,} fire times from {first} to {last} were skipped "
                f"(expired_limit {keep} keeps only the newest)",
            }
        )
    return rows
