"""The scheduler use-case (`make_timerun_config`, `myapp schedule tick`): one pass at an instant `now`.

A pass claims due pipelines in batches (by id, `FOR UPDATE SKIP LOCKED` on PostgreSQL, the writer
lock on SQLite) and performs each batch (myapp.scheduling.batch.Batch) in one transaction; two
batches are in flight at once on PostgreSQL. Queued tasks are dispatched only after COMMIT. One
broken pipeline never stops a pass: a batch whose transaction fails is redone one pipeline at a
time, and a pipeline's error goes to pipelines.schedule_error while the others go on.

`preview_pipeline` explains the coming fire times for `myapp schedule preview` and the REST API.
Must not import Celery, Flask or kubernetes.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from myapp.core.errors import Conflict, NotFound
from myapp.core.schedule import preview
from myapp.db.schedule_store import (
    PipelineTick,
    Snapshot,
    claim_due,
    load_snapshots,
    local_text,
    schedule_of,
    update_pipelines,
)
from myapp.db.session import is_transient
from myapp.db.tables import Pipeline
from myapp.scheduling.batch import ERROR_RETRY, Batch, PassReport

__all__ = ["BATCH_SIZE", "LANES", "PassReport", "preview_pipeline", "run_pass", "run_pass_for"]

log = logging.getLogger(__name__)
BATCH_SIZE = 500
LANES = 2  # batches in flight at once on a server database: one is planned while the other waits for it


def run_pass(services: Any, now: datetime, *, batch_size: int = BATCH_SIZE) -> PassReport:
    """Run one scheduler pass at `now` over every due pipeline; return what it did."""
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now.isoformat()}")
    with _collector_paused():
        return _run_pass(services, now.astimezone(UTC), batch_size)


def run_pass_for(services: Any, now: datetime, pipeline_ids: Sequence[int]) -> PassReport:
    """Run a pass at `now` over those of `pipeline_ids` that are due (a cron run of theirs just ended).

    The same claim (SKIP LOCKED: a beat pass at the same moment takes each pipeline once), plan and
    writes as a whole pass, for a few pipelines: a depends_on_past backfill launches its next run
    as soon as the previous one ends instead of at the next beat.
    """
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now.isoformat()}")
    now = now.astimezone(UTC)
    report, queued = PassReport(now), []
    for start in range(0, len(pipeline_ids), BATCH_SIZE):
        try:
            done, more = _run_batch(
                services, now, _Claim(), ids=pipeline_ids[start : start + BATCH_SIZE], one_by_one=False
            )
        except Exception as exc:
            if is_transient(exc):
                raise
            log.exception("scheduler: pass for pipelines %s failed; isolating them", pipeline_ids)
            done, more = _isolate(services, now, pipeline_ids[start : start + BATCH_SIZE])
        report.add(done)
        queued += more
    _dispatch(services, queued)
    return report


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector during a pass.

    A pass over thousands of pipelines allocates many short-lived containers (rows, dicts), freed by
    reference counting anyway; they would trigger collections that scan the whole heap (SQLAlchemy,
    Flask-AppBuilder, kubernetes models): a third of the pass's CPU when measured (1,000 launches:
    74 collections, 174 ms). The collector runs again as usual once the pass is over.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _run_pass(services: Any, now: datetime, batch_size: int) -> PassReport:
    """Run the batches, LANES at a time on a server database, and dispatch each one's tasks after its COMMIT.

    Batches are disjoint (each claims the next due pipelines by id, SKIP LOCKED), so while one
    waits for the database the next one is planned: the client's and the server's work overlap.
    SQLite has one writer at a time, so its batches run one after the other.
    """
    lanes = 1 if services.db.is_sqlite else LANES
    report, after = PassReport(now), 0
    running: deque[Future[tuple[PassReport, list[int]]]] = deque()
    with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="scheduler") as pool:
        while True:
            claim = _Claim()
            future = pool.submit(_claimed_batch, services, now, claim, after, batch_size)
            claim.done.wait()  # the next batch claims after this one's last id
            if not claim.ids:
                while running:
                    _collect(services, report, running.popleft())
                future.result()  # raises if the claim itself failed
                return report
            after = claim.ids[-1]
            running.append(future)
            if len(running) >= lanes:
                _collect(services, report, running.popleft())


class _Claim:
    """The ids a batch claimed, announced as soon as its claim is made."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.done = threading.Event()


def _claimed_batch(services: Any, now: datetime, claim: _Claim, after: int, limit: int) -> tuple[PassReport, list[int]]:
    """Run one batch; if its transaction fails as a whole, redo its pipelines one by one."""
    try:
        return _run_batch(services, now, claim, after_id=after, limit=limit)
    except Exception as exc:
        if not claim.ids or is_transient(exc):
            raise  # the claim failed or the database went away: not one pipeline's fault; next pass redoes it
        log.exception("scheduler batch failed; retrying its %d pipelines one by one", len(claim.ids))
        return _isolate(services, now, claim.ids)
    finally:
        claim.done.set()


def _collect(services: Any, report: PassReport, batch: Future[tuple[PassReport, list[int]]]) -> None:
    done, queued = batch.result()
    report.add(done)
    _dispatch(services, queued)


def _run_batch(
    services: Any,
    now: datetime,
    claim: _Claim,
    *,
    after_id: int = 0,
    limit: int = BATCH_SIZE,
    ids: Sequence[int] | None = None,
    one_by_one: bool | None = None,
) -> tuple[PassReport, list[int]]:
    """Claim a batch of due pipelines and perform their plans in one transaction.

    A batch claimed by `ids` (the isolation of a failed batch) launches its runs one by one, each
    in a savepoint, so a run that the database refuses leaves the record waiting with the reason.
    """
    if one_by_one is None:
        one_by_one = ids is not None
    with services.db.write() as s:
        pipelines = claim_due(s, services.db, now, after_id=after_id, limit=limit, ids=ids)
        claim.ids += [p.id for p in pipelines]
        claim.done.set()
        if not pipelines:
            return PassReport(now), []
        return Batch(s, services, now, one_by_one=one_by_one).run(pipelines)


def _isolate(services: Any, now: datetime, ids: Sequence[int]) -> tuple[PassReport, list[int]]:
    """Process each pipeline of a failed batch alone, so one broken pipeline cannot stop the others."""
    report, queued = PassReport(now), []
    for pid in ids:
        try:
            one, more = _run_batch(services, now, _Claim(), ids=[pid])
        except Exception as exc:
            if is_transient(exc):
                raise  # a dropped connection is no pipeline's error: the next pass picks them up
            log.exception("scheduler: pipeline %s failed", pid)
            one, more = PassReport(now, errors=[{"pipeline_id": pid, "error": str(exc)}]), []
            _record_error(services, pid, now, f"scheduler error: {exc}")
        report.add(one)
        queued += more
    return report, queued


def _record_error(services: Any, pipeline_id: int, now: datetime, message: str) -> None:
    with services.db.write() as s:
        update_pipelines(s, [PipelineTick(pipeline_id, now + ERROR_RETRY, now, message[:2000])])


def _dispatch(services: Any, queued: list[int]) -> None:
    """Hand queued task instances to the workers; a lost send is repaired by the reconciler."""
    if not queued:
        return
    try:
        services.runs.dispatch(queued)
    except Exception:
        log.exception("scheduler: dispatch of %d task instances failed; the reconciler will resend", len(queued))


def preview_pipeline(services: Any, pipeline_id: int, now: datetime, n: int = 10) -> dict[str, Any]:
    """Describe a pipeline's schedule and what the passes at its next `n` fire times would do."""
    with services.db.read() as s:
        pipeline = s.get(Pipeline, pipeline_id)
        if pipeline is None:
            raise NotFound(f"pipeline {pipeline_id} not found")
        if pipeline.schedule_type != "crontab" or pipeline.cron is None:
            raise Conflict(
                f"pipeline {pipeline.name!r} has no cron schedule (schedule type "
                f"{pipeline.schedule_type!r}): it runs only when started by hand"
            )
        try:
            schedule = schedule_of(pipeline)
        except ValueError as exc:
            raise Conflict(f"pipeline {pipeline.name!r}: {exc}") from None
        snap = load_snapshots(s, [pipeline.id])[pipeline.id]
    lines = preview(schedule, list(snap.records.values()), snap.active, now.astimezone(UTC), n)
    tz = schedule.timezone
    return {
        "pipeline_id": pipeline.id,
        "pipeline": pipeline.name,
        "now": now.isoformat(),
        "summary": _summary(pipeline, snap),
        "schedule_error": pipeline.schedule_error,
        "fire_times": [
            {
                "execution_date": line.execution_date,
                "local": local_text(line.instant, tz),
                "instant": line.instant.isoformat(),
                "action": line.action,
                "reason": line.reason,
            }
            for line in lines
        ],
    }


def _summary(p: Pipeline, snap: Snapshot) -> str:
    dop = ", depends_on_past" if p.depends_on_past else ""
    keep = "keep all" if p.expired_limit == 0 else f"keeps the newest {p.expired_limit}"
    state = "enabled" if p.schedule_enabled else "DISABLED: nothing is created or run"
    return (
        f'{p.name}: cron "{p.cron}" in {p.timezone}, {state}; max_active_runs {p.max_active_runs}, '
        f"expired_limit {p.expired_limit} ({keep}){dop}; now {snap.active} cron run"
        f"{'s' * (snap.active != 1)} active and {len(snap.waiting)} record{'s' * (len(snap.waiting) != 1)} waiting"
    )
