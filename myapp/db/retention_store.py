"""Retention in the database (`myapp db clean`): find what is old and finished, delete it in batches.

Each batch is its own short transaction: its rows are selected under lock (`FOR UPDATE SKIP
LOCKED` on a server database, the writer lock on SQLite) and checked again there, so a run retried
or a record launched meanwhile is left alone. What a schedule still needs is kept whatever its age
(`schedule_needs`). Holds no business rule beyond that mirror of the scheduler's snapshot.
Must not import Celery, Flask or kubernetes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from myapp.core.states import ALERT, RECORD, RUN, RecordStatus
from myapp.core.values import LogKey
from myapp.db.bulk import is_in
from myapp.db.guards import in_states
from myapp.db.schedule_tables import AlertOutbox
from myapp.db.session import Database
from myapp.db.tables import Pipeline, Run, ScheduleRecord, ScheduleSkip, TaskAttempt, TaskInstance


@dataclass
class Needed:
    """What the scheduler still reads, kept whatever its age: schedule records by id, and their runs."""

    records: set[int] = field(default_factory=set)
    runs: set[int] = field(default_factory=set)


def schedule_needs(s: Session) -> Needed:
    """Return the records (and their runs) a scheduler pass may still read.

    A pass reads a pipeline's waiting records (unfinished: never candidates), its newest record
    and its newest launched one with its run's state, in the current epoch
    (myapp/db/schedule_store.load_snapshots). The newest launched record is the depends_on_past
    predecessor of the oldest waiting instant. Kept too, over all time: the newest record and the
    newest launched one whatever the epoch, so `myapp schedule records` still shows where each
    pipeline stands. Four grouped statements, whatever the number of pipelines.
    """
    launched = ScheduleRecord.status == RecordStatus.LAUNCHED.value
    in_epoch = ScheduleRecord.execution_date >= Pipeline.start_time
    heads: set[tuple[int, datetime]] = set()
    for condition in (None, launched, in_epoch, launched & in_epoch):
        q: Any = (
            select(ScheduleRecord.pipeline_id, func.max(ScheduleRecord.execution_date))
            .join(Pipeline, Pipeline.id == ScheduleRecord.pipeline_id)
            .group_by(ScheduleRecord.pipeline_id)
        )
        if condition is not None:
            q = q.where(condition)
        heads.update((pid, at) for pid, at in s.execute(q) if at is not None)
    needed = Needed()
    pipelines = sorted({pid for pid, _ in heads})
    for start in range(0, len(pipelines), 1000):
        chunk = set(pipelines[start : start + 1000])
        q = select(
            ScheduleRecord.id, ScheduleRecord.pipeline_id, ScheduleRecord.execution_date, ScheduleRecord.run_id
        ).where(is_in(ScheduleRecord.pipeline_id, sorted(chunk), _dialect(s)))
        q = q.where(ScheduleRecord.execution_date.in_(sorted({at for pid, at in heads if pid in chunk})))
        for rid, pid, at, run_id in s.execute(q):
            if (pid, at) in heads:
                needed.records.add(rid)
                if run_id is not None:
                    needed.runs.add(run_id)
    return needed


def copied_sources(s: Session, cutoff: datetime) -> set[int]:
    """Return the runs that a run staying (unfinished or recent) was copied from: a retry from
    failure reuses the outputs of its source run, so the source stays while its copy does."""
    staying = ~in_states(Run.state, RUN.terminal) | (Run.created_at >= cutoff) | (Run.ended_at >= cutoff)
    return set(s.scalars(select(Run.copied_from_id).where(Run.copied_from_id.is_not(None), staying).distinct()))


@dataclass
class RunBatch:
    """One batch of finished runs older than the cutoff, with what goes with them."""

    run_ids: list[int]
    last_id: int  # where the next batch starts (kept runs skipped too)
    kept: int  # old finished runs of the batch kept for a schedule or a copy
    counts: dict[str, int]
    log_keys: list[LogKey]


def old_runs(
    s: Session, db: Database, cutoff: datetime, needed: Needed, *, after_id: int, limit: int, lock: bool
) -> RunBatch | None:
    """Select (and with `lock`, lock) the next `limit` finished runs created and ended before `cutoff`.

    None when there are no more. Runs a needed record points to are passed over.
    """
    q = (
        select(Run.id)
        .where(
            Run.id > after_id,
            in_states(Run.state, RUN.terminal),
            Run.created_at < cutoff,
            (Run.ended_at.is_(None)) | (Run.ended_at < cutoff),
        )
        .order_by(Run.id)
        .limit(limit)
    )
    if lock:
        q = q.with_for_update(**db.lock_options(skip_locked=True))
    ids = list(s.scalars(q))
    if not ids:
        return None
    run_ids = [i for i in ids if i not in needed.runs]
    dialect = _dialect(s)
    counts = dict.fromkeys(("runs", "task_instances", "attempts", "outbox"), 0)
    keys: list[LogKey] = []
    if run_ids:
        counts["runs"] = len(run_ids)
        counts["task_instances"] = int(
            s.scalar(select(func.count()).select_from(TaskInstance).where(is_in(TaskInstance.run_id, run_ids, dialect)))
            or 0
        )
        keys = [
            LogKey(run_id, name, try_number)
            for run_id, name, try_number in s.execute(
                select(TaskInstance.run_id, TaskInstance.task_name, TaskAttempt.try_number)
                .join(TaskAttempt, TaskAttempt.task_instance_id == TaskInstance.id)
                .where(is_in(TaskInstance.run_id, run_ids, dialect))
            )
        ]
        counts["attempts"] = len(keys)
        counts["outbox"] = int(
            s.scalar(select(func.count()).select_from(AlertOutbox).where(is_in(AlertOutbox.run_id, run_ids, dialect)))
            or 0
        )
    return RunBatch(run_ids, ids[-1], len(ids) - len(run_ids), counts, keys)


def delete_runs(s: Session, run_ids: Sequence[int]) -> int:
    """Delete runs (still finished: checked again under the batch's lock) with their task instances,
    attempts and outbox rows; return how many runs went. Records pointing to them keep no run
    (`ON DELETE SET NULL`)."""
    if not run_ids:
        return 0
    dialect = _dialect(s)
    tis = select(TaskInstance.id).where(is_in(TaskInstance.run_id, run_ids, dialect)).scalar_subquery()
    s.execute(
        delete(TaskAttempt).where(TaskAttempt.task_instance_id.in_(tis)).execution_options(synchronize_session=False)
    )
    s.execute(
        delete(AlertOutbox)
        .where(is_in(AlertOutbox.run_id, run_ids, dialect))
        .execution_options(synchronize_session=False)
    )
    s.execute(
        delete(TaskInstance)
        .where(is_in(TaskInstance.run_id, run_ids, dialect))
        .execution_options(synchronize_session=False)
    )
    result = s.execute(
        delete(Run)
        .where(is_in(Run.id, run_ids, dialect), in_states(Run.state, RUN.terminal))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def old_rows(
    s: Session,
    db: Database,
    kind: str,
    cutoff: datetime,
    needed: Needed,
    *,
    after_id: int,
    limit: int,
    lock: bool,
    gone_runs: set[int] | frozenset[int] = frozenset(),
) -> tuple[list[int], int, int] | None:
    """Select the next `limit` ids of old finished `records`, `skips` or `outbox` rows.

    Return (ids to delete, last id looked at, how many were kept), or None when there are no more. Records: not
    waiting, unchanged since before `cutoff`, not needed by a schedule. Skips: created before it.
    Outbox rows: sent or given up, created before it, not of `gone_runs` (a dry run's runs to
    delete, counted with them already).
    """
    table: Any
    table, changed, condition = {
        "records": (ScheduleRecord, ScheduleRecord.updated_at, ~in_states(ScheduleRecord.status, RECORD.unfinished)),
        "skips": (ScheduleSkip, ScheduleSkip.created_at, None),
        "outbox": (AlertOutbox, AlertOutbox.created_at, in_states(AlertOutbox.status, ALERT.terminal)),
    }[kind]
    owner = AlertOutbox.run_id if kind == "outbox" else table.id
    q = select(table.id, owner).where(table.id > after_id, changed < cutoff).order_by(table.id).limit(limit)
    if condition is not None:
        q = q.where(condition)
    if lock:
        q = q.with_for_update(**db.lock_options(skip_locked=True))
    rows = s.execute(q).all()
    if not rows:
        return None
    keep = needed.records if kind == "records" else set()
    doomed = [i for i, run_id in rows if i not in keep and not (kind == "outbox" and run_id in gone_runs)]
    kept = sum(1 for i, _ in rows if i in keep)
    return doomed, rows[-1][0], kept


def delete_rows(s: Session, kind: str, ids: Sequence[int]) -> int:
    """Delete rows of `kind` by id (those still finished); return how many went."""
    if not ids:
        return 0
    table: Any = {"records": ScheduleRecord, "skips": ScheduleSkip, "outbox": AlertOutbox}[kind]
    q: Any = delete(table).where(is_in(table.id, ids, _dialect(s)))
    if kind == "records":
        q = q.where(~in_states(ScheduleRecord.status, RECORD.unfinished))
    elif kind == "outbox":
        q = q.where(in_states(AlertOutbox.status, ALERT.terminal))
    return int(s.execute(q.execution_options(synchronize_session=False)).rowcount or 0)  # type: ignore[attr-defined]


def attempt_ends(s: Session, run_ids: Sequence[int]) -> dict[tuple[int, str, int], tuple[str, datetime | None]]:
    """Return (run id, task name, try number) -> (attempt state, ended_at) for every attempt of
    `run_ids` (the private /tmp sweep, myapp/executor/private_tmp.py); a run deleted has none."""
    if not run_ids:
        return {}
    rows = s.execute(
        select(
            TaskInstance.run_id, TaskInstance.task_name, TaskAttempt.try_number, TaskAttempt.state, TaskAttempt.ended_at
        )
        .join(TaskAttempt, TaskAttempt.task_instance_id == TaskInstance.id)
        .where(is_in(TaskInstance.run_id, list(run_ids), _dialect(s)))
    ).all()
    return {(r.run_id, r.task_name, r.try_number): (r.state, r.ended_at) for r in rows}


def existing_runs(s: Session, run_ids: Sequence[int]) -> set[int]:
    """Return those of `run_ids` that are runs in the database (the sweep of deleted runs' directories)."""
    if not run_ids:
        return set()
    return {int(i) for i in s.scalars(select(Run.id).where(is_in(Run.id, list(run_ids), _dialect(s))))}


def _dialect(s: Session) -> str:
    return s.get_bind().dialect.name
