"""The scheduler use-case (`make_timerun_config`, `myapp schedule tick`): one pass at an instant `now`.

A pass claims due pipelines in batches (by id, `FOR UPDATE SKIP LOCKED` on PostgreSQL, the writer
lock on SQLite), plans each one with the pure core (myapp.core.schedule.plan_pass), and writes the
whole batch's decisions in one transaction: records inserted "on conflict do nothing", expired,
launched as cron runs, skipped spans, and each pipeline's next_fire_at / last_tick_at /
schedule_error. Queued tasks are dispatched only after COMMIT. One broken pipeline never stops a
pass: its error goes to pipelines.schedule_error and the others go on.

`preview_pipeline` explains the coming fire times for `myapp schedule preview` and the REST API.
Must not import Celery, Flask or kubernetes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from myapp.core.cron import format_execution_date
from myapp.core.errors import Conflict, NotFound
from myapp.core.schedule import PassPlan, RecordStatus, plan_pass, preview
from myapp.core.states import Trigger
from myapp.db.run_store import NewRun
from myapp.db.schedule_store import (
    NewRecord,
    PipelineTick,
    Snapshot,
    claim_due,
    expire_records,
    insert_records,
    insert_skips,
    load_snapshots,
    local_text,
    mark_launched,
    schedule_of,
    set_wait_reasons,
    update_pipelines,
)
from myapp.db.tables import Pipeline

log = logging.getLogger(__name__)
BATCH_SIZE = 500
ERROR_RETRY = timedelta(minutes=10)  # a pipeline whose planning failed is looked at again after this
RUNNER = "scheduler"


@dataclass
class PassReport:
    """What one pass did, summed over its batches (only committed work is counted)."""

    now: datetime
    pipelines: int = 0
    created: int = 0
    expired: int = 0
    skipped: int = 0
    launched: list[int] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: PassReport) -> None:
        """Add a committed batch's counts to this report."""
        self.pipelines += other.pipelines
        self.created += other.created
        self.expired += other.expired
        self.skipped += other.skipped
        self.launched += other.launched
        self.errors += other.errors

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form printed by `myapp schedule tick --json`."""
        return {"now": self.now.isoformat(), "pipelines": self.pipelines, "created": self.created,
                "expired": self.expired, "skipped": self.skipped, "launched": len(self.launched),
                "run_ids": self.launched, "errors": self.errors}


def run_pass(services: Any, now: datetime, *, batch_size: int = BATCH_SIZE) -> PassReport:
    """Run one scheduler pass at `now` over every due pipeline; return what it did."""
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now.isoformat()}")
    now = now.astimezone(UTC)
    report, after = PassReport(now), 0
    while True:
        claimed: list[int] = []
        try:
            batch, queued = _run_batch(services, now, claimed, after_id=after, limit=batch_size)
        except Exception:
            if not claimed:
                raise  # the claim itself failed: the database is unusable, not one pipeline
            log.exception("scheduler batch failed; retrying its %d pipelines one by one", len(claimed))
            batch, queued = _isolate(services, now, claimed)
        if not claimed:
            return report
        after = claimed[-1]
        report.add(batch)
        _dispatch(services, queued)


def _run_batch(services: Any, now: datetime, claimed: list[int], *, after_id: int = 0, limit: int = BATCH_SIZE,
               ids: Sequence[int] | None = None) -> tuple[PassReport, list[int]]:
    """Claim a batch of due pipelines and perform their plans in one transaction."""
    with services.db.write() as s:
        pipelines = claim_due(s, services.db, now, after_id=after_id, limit=limit, ids=ids)
        claimed += [p.id for p in pipelines]
        if not pipelines:
            return PassReport(now), []
        return _Batch(s, services, now).run(pipelines)


def _isolate(services: Any, now: datetime, ids: Sequence[int]) -> tuple[PassReport, list[int]]:
    """Process each pipeline of a failed batch alone, so one broken pipeline cannot stop the others."""
    report, queued = PassReport(now), []
    for pid in ids:
        try:
            one, more = _run_batch(services, now, [], ids=[pid])
        except Exception as exc:
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


class _Batch:
    """Plans and writes one batch of claimed pipelines inside the caller's transaction."""

    def __init__(self, s: Session, services: Any, now: datetime) -> None:
        self.s, self.services, self.now = s, services, now
        self.report = PassReport(now)
        self.queued: list[int] = []
        self.errors: dict[int, str] = {}
        self.next_fire: dict[int, datetime | None] = {}
        self.failed_launches: list[tuple[int, datetime, str]] = []

    def run(self, pipelines: Sequence[Pipeline]) -> tuple[PassReport, list[int]]:
        """Plan every pipeline, then write: insert, expire, launch, wait reasons, skips, ticks."""
        snaps = load_snapshots(self.s, [p.id for p in pipelines])
        plans = [(p, snaps[p.id], plan) for p in pipelines if (plan := self._plan(p, snaps[p.id])) is not None]
        inserted = self._insert(plans)
        self._expire(plans)
        launched = [row for p, snap, plan in plans for row in self._launch(p, snap, plan, inserted)]
        mark_launched(self.s, launched, self.now)
        self._wait_reasons(plans)
        skips = [(p.id, plan.skipped) for p, _, plan in plans if plan.skipped]
        insert_skips(self.s, [(pid, span.count, span.first, span.last) for pid, span in skips], self.now)
        self.report.skipped += sum(span.count for _, span in skips)
        update_pipelines(self.s, [PipelineTick(p.id, self.next_fire.get(p.id), self.now, self.errors.get(p.id))
                                  for p in pipelines])
        self.report.pipelines = len(pipelines)
        return self.report, self.queued

    def _plan(self, pipeline: Pipeline, snap: Snapshot) -> PassPlan | None:
        try:
            plan = plan_pass(schedule_of(pipeline), list(snap.records.values()), snap.active, self.now,
                             backfill_chunk=self.services.settings.backfill_chunk,
                             last_pass_at=pipeline.last_tick_at)
        except Exception as exc:  # a broken schedule must not stop the pass (PRODUCT.md §3)
            self._fail(pipeline, f"schedule error: {exc}")
            self.next_fire[pipeline.id] = self.now + ERROR_RETRY
            return None
        self.next_fire[pipeline.id] = plan.next_fire_at
        return plan

    def _fail(self, pipeline: Pipeline, message: str) -> None:
        self.errors[pipeline.id] = message[:2000]
        self.report.errors.append({"pipeline_id": pipeline.id, "pipeline": pipeline.name, "error": message})

    def _insert(self, plans: list[tuple[Pipeline, Snapshot, PassPlan]]) -> set[tuple[int, datetime]]:
        rows = []
        for p, _, plan in plans:
            expire, waits = set(plan.expire), {w.instant: w.reason for w in plan.waits}
            for instant in plan.create:
                status: RecordStatus = "expired" if instant in expire else "waiting"
                message = _expired_words(p) if status == "expired" else waits.get(instant, "")
                rows.append(NewRecord(p.id, instant, format_execution_date(instant, p.timezone), status, message))
        inserted = insert_records(self.s, rows, self.now)
        self.report.created += len(inserted)
        self.report.expired += sum(1 for r in rows if r.status == "expired" and (r.pipeline_id, r.instant) in inserted)
        return inserted

    def _expire(self, plans: list[tuple[Pipeline, Snapshot, PassPlan]]) -> None:
        rows = [(p.id, i, _expired_words(p)) for p, snap, plan in plans for i in plan.expire if i in snap.waiting]
        expire_records(self.s, rows, self.now)
        self.report.expired += len(rows)

    def _launch(self, p: Pipeline, snap: Snapshot, plan: PassPlan,
                inserted: set[tuple[int, datetime]]) -> list[tuple[int, datetime, int]]:
        """Create a cron run per launched record, each in a savepoint; stop at the first failure."""
        rows: list[tuple[int, datetime, int]] = []
        for instant in plan.launch:
            if instant not in snap.waiting and (p.id, instant) not in inserted:
                continue  # not a waiting record of ours: the unique key gave it to another pass
            new = NewRun(pipeline_id=p.id, trigger=Trigger.CRON, execution_date=instant, params={},
                         user_id=p.created_by, runner=RUNNER)
            try:
                with self.s.begin_nested():
                    run_id, queued = self.services.runs.create_in(self.s, new, self.now)
            except Exception as exc:  # e.g. a required parameter without default: the record waits
                message = f"launch of {format_execution_date(instant, p.timezone)} failed: {exc}"
                self._fail(p, message)
                self.failed_launches.append((p.id, instant, message))
                break
            rows.append((p.id, instant, run_id))
            self.queued += queued
            self.report.launched.append(run_id)
        return rows

    def _wait_reasons(self, plans: list[tuple[Pipeline, Snapshot, PassPlan]]) -> None:
        rows = [(p.id, w.instant, w.reason) for p, snap, plan in plans for w in plan.waits
                if w.instant in snap.waiting and snap.waiting[w.instant] != w.reason]
        set_wait_reasons(self.s, rows + self.failed_launches, self.now)


def _expired_words(pipeline: Pipeline) -> str:
    n = pipeline.expired_limit
    return f"expired: expired_limit {n} keeps only the newest {n} waiting record{'s' * (n != 1)}"


def preview_pipeline(services: Any, pipeline_id: int, now: datetime, n: int = 10) -> dict[str, Any]:
    """Describe a pipeline's schedule and what the passes at its next `n` fire times would do."""
    with services.db.read() as s:
        pipeline = s.get(Pipeline, pipeline_id)
        if pipeline is None:
            raise NotFound(f"pipeline {pipeline_id} not found")
        if pipeline.schedule_type != "crontab" or pipeline.cron is None:
            raise Conflict(f"pipeline {pipeline.name!r} has no cron schedule (schedule type "
                           f"{pipeline.schedule_type!r}): it runs only when started by hand")
        try:
            schedule = schedule_of(pipeline)
        except ValueError as exc:
            raise Conflict(f"pipeline {pipeline.name!r}: {exc}") from None
        snap = load_snapshots(s, [pipeline.id])[pipeline.id]
    lines = preview(schedule, list(snap.records.values()), snap.active, now.astimezone(UTC), n)
    tz = schedule.timezone
    return {
        "pipeline_id": pipeline.id, "pipeline": pipeline.name, "now": now.isoformat(),
        "summary": _summary(pipeline, snap), "schedule_error": pipeline.schedule_error,
        "fire_times": [{"execution_date": line.execution_date, "local": local_text(line.instant, tz),
                        "instant": line.instant.isoformat(), "action": line.action, "reason": line.reason}
                       for line in lines],
    }


def _summary(p: Pipeline, snap: Snapshot) -> str:
    dop = ", depends_on_past" if p.depends_on_past else ""
    keep = "keep all" if p.expired_limit == 0 else f"keeps the newest {p.expired_limit}"
    state = "enabled" if p.schedule_enabled else "DISABLED: nothing is created or run"
    return (f'{p.name}: cron "{p.cron}" in {p.timezone}, {state}; max_active_runs {p.max_active_runs}, '
            f"expired_limit {p.expired_limit} ({keep}){dop}; now {snap.active} cron run"
            f"{'s' * (snap.active != 1)} active and {len(snap.waiting)} record{'s' * (len(snap.waiting) != 1)} waiting")
