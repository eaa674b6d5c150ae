"""One batch of a scheduler pass: plan every claimed pipeline, then write the batch's decisions.

`Batch.run` works inside the caller's transaction: it reads the pipelines' snapshots, plans each
one with the pure core (myapp.core.schedule.plan_pass), creates the launched runs all at once
(from their versions' launch templates, myapp.db.launch_templates, in the statement that also
inserts their new records; the others through RunStore.draft_many_in / create_drafts_in), inserts
the other new records "on conflict do nothing", then expires, stores wait reasons, skipped spans
and each pipeline's next_fire_at / last_tick_at / schedule_error. `PassReport` sums what the
batches did. Must not import Celery, Flask or kubernetes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from myapp.core.cron import format_execution_date
from myapp.core.schedule import PassPlan, plan_pass
from myapp.core.states import RECORD, RecordStatus, Trigger
from myapp.core.values import NewRun
from myapp.db.launch_templates import Launch, create_from_templates, fill_from_drafts, supported
from myapp.db.run_drafts import PipelineRow, RunDraft
from myapp.db.run_drafts import format_execution_date as run_date_text
from myapp.db.schedule_store import (
    DuePipeline,
    NewRecord,
    PipelineTick,
    Snapshot,
    expire_records,
    insert_records,
    insert_skips,
    load_snapshots,
    mark_launched,
    schedule_of,
    set_wait_reasons,
    update_pipelines,
)
from myapp.db.session import Session

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
        return {
            "now": self.now.isoformat(),
            "pipelines": self.pipelines,
            "created": self.created,
            "expired": self.expired,
            "skipped": self.skipped,
            "launched": len(self.launched),
            "run_ids": self.launched,
            "errors": self.errors,
        }


class LostRace(Exception):
    """Another scheduler created or launched a record this batch launched: redo the batch one by one."""


_Plans = list[tuple[DuePipeline, Snapshot, PassPlan]]


class Batch:
    """Plans and writes one batch of claimed pipelines inside the caller's transaction."""

    def __init__(self, s: Session, services: Any, now: datetime, *, one_by_one: bool = False) -> None:
        self.s, self.services, self.now, self.one_by_one = s, services, now, one_by_one
        self.report = PassReport(now)
        self.queued: list[int] = []
        self.errors: dict[int, str] = {}
        self.next_fire: dict[int, datetime | None] = {}
        self.failed_launches: list[tuple[int, datetime, str]] = []

    def run(self, pipelines: Sequence[DuePipeline]) -> tuple[PassReport, list[int]]:
        """Plan every pipeline, then write: runs and records, expiry, wait reasons, skips, ticks."""
        snaps = load_snapshots(self.s, [p.id for p in pipelines])
        plans = [(p, snaps[p.id], plan) for p in pipelines if (plan := self._plan(p, snaps[p.id])) is not None]
        if self.one_by_one:
            self._launch_one_by_one(plans)
        else:
            self._launch(plans)
        self._expire(plans)
        self._wait_reasons(plans)
        skips = [(p.id, plan.skipped) for p, _, plan in plans if plan.skipped]
        insert_skips(self.s, [(pid, span.count, span.first, span.last) for pid, span in skips], self.now)
        self.report.skipped += sum(span.count for _, span in skips)
        update_pipelines(
            self.s, [PipelineTick(p.id, self.next_fire.get(p.id), self.now, self.errors.get(p.id)) for p in pipelines]
        )
        self.report.pipelines = len(pipelines)
        return self.report, self.queued

    def _plan(self, pipeline: DuePipeline, snap: Snapshot) -> PassPlan | None:
        try:
            plan = plan_pass(
                schedule_of(pipeline),
                list(snap.records.values()),
                snap.active,
                self.now,
                backfill_chunk=self.services.settings.backfill_chunk,
                last_pass_at=pipeline.last_tick_at,
            )
        except Exception as exc:  # a broken schedule must not stop the pass (docs/rules.md P3)
            self._fail(pipeline, f"schedule error: {exc}")
            self.next_fire[pipeline.id] = self.now + ERROR_RETRY
            return None
        self.next_fire[pipeline.id] = plan.next_fire_at
        return plan

    def _fail(self, pipeline: DuePipeline, message: str) -> None:
        self.errors[pipeline.id] = message[:2000]
        self.report.errors.append({"pipeline_id": pipeline.id, "pipeline": pipeline.name, "error": message})

    def _insert(
        self, plans: _Plans, runs: Mapping[tuple[int, datetime], int], done: Set[tuple[int, datetime]] = frozenset()
    ) -> set[tuple[int, datetime]]:
        """Insert the new records but those in `done` (inserted with their run), the launched ones
        with their run (`runs`); return those inserted."""
        rows = []
        failed = {(pid, at): message for pid, at, message in self.failed_launches}
        for p, _, plan in plans:
            expire, waits = set(plan.expire), {w.instant: w.reason for w in plan.waits}
            for instant in plan.create:
                if (p.id, instant) in done:
                    continue
                status = RecordStatus.EXPIRED if instant in expire else RECORD.initial
                message = _expired_words(p) if status is RecordStatus.EXPIRED else waits.get(instant, "")
                run_id = runs.get((p.id, instant))
                if run_id is not None:
                    status, message = RecordStatus.LAUNCHED, ""
                text = format_execution_date(instant, p.timezone)
                rows.append(NewRecord(p.id, instant, text, status, failed.get((p.id, instant), message), run_id))
        inserted = insert_records(self.s, rows, self.now)
        self.report.created += len(inserted)
        self.report.expired += sum(
            1 for r in rows if r.status == RecordStatus.EXPIRED and (r.pipeline_id, r.instant) in inserted
        )
        return inserted

    def _expire(self, plans: _Plans) -> None:
        rows = [(p.id, i, _expired_words(p)) for p, snap, plan in plans for i in plan.expire if i in snap.waiting]
        expire_records(self.s, rows, self.now)
        self.report.expired += len(rows)

    def _launch(self, plans: _Plans) -> None:
        """Create the batch's cron runs all at once, then insert the new records, launched ones with their run.

        A launch the run store refuses (e.g. a required parameter without default) leaves the
        record waiting with the reason, and the pipeline's younger launches in this pass are not
        made. A launched record that another scheduler got first (not inserted, or no longer
        waiting) fails the batch: its transaction rolls back and the pipelines are redone one by one.
        """
        launches = [(p, instant) for p, _, plan in plans for instant in plan.launch]
        waiting = {p.id: snap.waiting for p, snap, _ in plans}
        templated = create_from_templates(
            self.s,
            [Launch(p.id, at, run_date_text(at, p.timezone), at not in waiting[p.id]) for p, at in launches],
            RUNNER,
            self.now,
        )  # the versions with a launch template: one statement (runs, task instances, new records), no parsing
        drafted = [(p, at) for p, at in launches if (p.id, at) not in templated]
        rows = {p.id: PipelineRow(p.id, p.name, p.project_id, p.current_version_id, p.timezone) for p, _ in drafted}
        drafts = self.services.runs.draft_many_in(
            self.s, [self._new_run(p, at) for p, at in drafted], self.now, pipelines=rows
        )  # the claim read (and locked) the pipeline rows: no second read
        accepted: list[tuple[DuePipeline, datetime, RunDraft]] = []
        refused: set[int] = set()
        for (p, instant), draft in zip(drafted, drafts, strict=True):
            if p.id in refused:
                continue
            if isinstance(draft, Exception):
                refused.add(p.id)
                self._launch_failed(p, instant, draft)
            else:
                accepted.append((p, instant, draft))
        created = self.services.runs.create_drafts_in(self.s, [draft for _, _, draft in accepted], self.now)
        if accepted and supported(self.s):
            fill_from_drafts(self.s, [draft for _, _, draft in accepted])  # older or larger versions: next time
        made = {key: (done.run_id, done.queued) for key, done in templated.items()}
        made.update({(p.id, instant): done for (p, instant, _), done in zip(accepted, created, strict=True)})
        created = [made[key] for p, at in launches if (key := (p.id, at)) in made]  # in the launches' order
        runs = {(p.id, at): made[(p.id, at)][0] for p, at in launches if (p.id, at) in made}
        recorded = {key for key, done in templated.items() if done.recorded}
        self.report.created += len(recorded)
        inserted = self._insert(plans, runs, done=templated.keys()) | recorded
        relaunched = [(pid, at, run_id) for (pid, at), run_id in runs.items() if at in waiting[pid]]
        new = [key for key in runs if key[1] not in waiting[key[0]]]
        if mark_launched(self.s, relaunched, self.now) != len(relaunched) or not inserted.issuperset(new):
            raise LostRace("a record launched by this batch was created or launched by another scheduler")
        for _, queued in created:
            self.queued += queued
        self.report.launched += list(runs.values())

    def _launch_one_by_one(self, plans: _Plans) -> None:
        """Insert the new records, then create each cron run in a savepoint; a pipeline stops at its first failure."""
        inserted = self._insert(plans, {})
        launches = [
            (p, instant)
            for p, snap, plan in plans
            for instant in plan.launch
            if instant in snap.waiting or (p.id, instant) in inserted
        ]  # else the unique key gave it away
        rows: list[tuple[int, datetime, int]] = []
        refused: set[int] = set()
        for p, instant in launches:
            if p.id in refused:
                continue
            try:
                with self.s.begin_nested():
                    run_id, queued = self.services.runs.create_in(self.s, self._new_run(p, instant), self.now)
            except Exception as exc:  # e.g. the database refuses the run: the record waits
                refused.add(p.id)
                self._launch_failed(p, instant, exc)
                continue
            rows.append((p.id, instant, run_id))
            self.queued += queued
            self.report.launched.append(run_id)
        mark_launched(self.s, rows, self.now)

    def _new_run(self, p: DuePipeline, instant: datetime) -> NewRun:
        return NewRun(
            pipeline_id=p.id,
            trigger=Trigger.CRON,
            execution_date=instant,
            params={},
            user_id=p.created_by,
            runner=RUNNER,
        )

    def _launch_failed(self, p: DuePipeline, instant: datetime, exc: Exception) -> None:
        message = f"launch of {format_execution_date(instant, p.timezone)} failed: {exc}"
        self._fail(p, message)
        self.failed_launches.append((p.id, instant, message))

    def _wait_reasons(self, plans: _Plans) -> None:
        rows = [
            (p.id, w.instant, w.reason)
            for p, snap, plan in plans
            for w in plan.waits
            if w.instant in snap.waiting and snap.waiting[w.instant] != w.reason
        ]
        waiting = {p.id: snap.waiting for p, snap, _ in plans}
        failed = [row for row in self.failed_launches if self.one_by_one or row[1] in waiting[row[0]]]
        set_wait_reasons(self.s, rows + failed, self.now)


def _expired_words(pipeline: DuePipeline) -> str:
    n = pipeline.expired_limit
    return f"expired: expired_limit {n} keeps only the newest {n} waiting record{'s' * (n != 1)}"
