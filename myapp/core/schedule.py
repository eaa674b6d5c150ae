"""The scheduler pass for one pipeline as data: materialize, expire, launch (R3-R6, R8).

Owns the decisions of `make_timerun_config`: `plan_pass` takes a snapshot of one pipeline's
schedule, its schedule records and its active cron runs, plus `now`, and returns a `PassPlan`;
the adapter performs it (insert records "on conflict do nothing", mark, launch) in one
transaction. `preview` explains the coming fire times in words. Pure: no clock, no I/O; must not
import SQLAlchemy, Celery, Flask or kubernetes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal

from myapp.core.cron import (
    count_fire_times,
    fire_times,
    fire_times_and_next,
    format_execution_date,
    newest_fire_times,
    next_fire_time,
)
from myapp.core.states import RECORD, RecordStatus, RunState

PreviewAction = Literal["launch", "wait", "expire", "disabled"]
_JUST_BEFORE = timedelta(microseconds=1)  # start_time is inclusive (R1)
_RUN_STATE_WORDS = {
    RunState.FAILED: "failed",
    RunState.STOPPED: "was stopped",
    RunState.CREATING: "is still being created",
    RunState.QUEUED: "is still queued",
    RunState.RUNNING: "is still running",
}


@dataclass(frozen=True)
class Schedule:
    """A pipeline's schedule in its current epoch; `start_time` (S) is a UTC-aware instant."""

    pipeline_id: int
    cron: str
    timezone: str
    start_time: datetime
    depends_on_past: bool = False
    expired_limit: int = 1
    max_active_runs: int = 1
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.start_time.tzinfo is None:
            raise ValueError("Schedule.start_time must be a timezone-aware instant")
        if self.expired_limit < 0 or self.max_active_runs < 0:
            raise ValueError("expired_limit and max_active_runs must be >= 0")


@dataclass(frozen=True)
class Record:
    """An existing schedule record; `run_state` is its cron run's state (None without a run)."""

    instant: datetime
    status: RecordStatus
    run_state: RunState | None = None


@dataclass(frozen=True)
class SkippedSpan:
    """Fire instants never materialized because they would have expired at once (D12)."""

    count: int
    first: datetime
    last: datetime


@dataclass(frozen=True)
class Wait:
    """A record left waiting by this pass, and why, in a user's words."""

    instant: datetime
    reason: str


@dataclass(frozen=True)
class PassPlan:
    """What one pass does for one pipeline; instants are UTC and oldest first.

    `expire` may name records created by this same plan: insert those, then mark them expired.
    `next_fire_at` is the first fire instant after the newest record once the plan is applied
    (None: disabled, or no fire within 30 years). Store it in the pipeline's index column: the
    pipeline needs a pass when next_fire_at <= now or when it has waiting records and one of
    its cron runs ends. After a chunked backfill (expired_limit 0) next_fire_at <= now: the pass
    at `now` is not finished, so plan again at the same `now` (or let the next tick continue).
    """

    create: tuple[datetime, ...] = ()
    expire: tuple[datetime, ...] = ()
    launch: tuple[datetime, ...] = ()
    skipped: SkippedSpan | None = None
    waits: tuple[Wait, ...] = ()
    next_fire_at: datetime | None = None

    @property
    def changes_nothing(self) -> bool:
        """Return whether applying the plan leaves every record and run as it was."""
        return not (self.create or self.expire or self.launch)

    def is_finished(self, now: datetime) -> bool:
        """Return whether no fire instant <= `now` is left to materialize after this plan."""
        return self.next_fire_at is None or self.next_fire_at > now


@dataclass(frozen=True)
class PreviewLine:
    """One coming fire time and what the pass at that time would do with it."""

    instant: datetime
    execution_date: str
    action: PreviewAction
    reason: str


def plan_pass(
    schedule: Schedule,
    records: Sequence[Record],
    active_cron_runs: int,
    now: datetime,
    *,
    backfill_chunk: int = 1000,
    last_pass_at: datetime | None = None,
) -> PassPlan:
    """Return what one pass at `now` does for this pipeline; perform none of it."""
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now.isoformat()}")
    if not schedule.enabled:
        return PassPlan()
    now = now.astimezone(UTC)
    epoch = _epoch_records(schedule, records)
    newest = epoch[-1].instant if epoch else None
    if (newest is not None and now < newest) or (last_pass_at is not None and now < last_pass_at):
        return PassPlan(next_fire_at=_next_fire_at(schedule, newest))  # R6: an earlier pass won
    after = newest if newest is not None else schedule.start_time - _JUST_BEFORE
    create, skipped, next_fire_at = _materialize(
        schedule.cron, schedule.timezone, after, now, schedule.expired_limit, backfill_chunk
    )
    waiting = [r.instant for r in epoch if r.status == RecordStatus.WAITING] + list(create)
    keep = schedule.expired_limit
    expire, waiting = (waiting[:-keep], waiting[-keep:]) if 0 < keep < len(waiting) else ([], waiting)
    launch, waits = _launch(schedule, epoch, waiting, active_cron_runs)
    return PassPlan(
        create=create, expire=tuple(expire), launch=launch, skipped=skipped, waits=waits, next_fire_at=next_fire_at
    )


def _epoch_records(schedule: Schedule, records: Sequence[Record]) -> list[Record]:
    """Return the records of the current epoch (instants >= S, R7), oldest first."""
    return sorted((r for r in records if r.instant >= schedule.start_time), key=lambda r: r.instant)


@lru_cache(maxsize=2048)
def _materialize(
    cron: str, tz: str, after: datetime, now: datetime, keep: int, chunk: int
) -> tuple[tuple[datetime, ...], SkippedSpan | None, datetime | None]:
    """Return the instants to create after `after` (R3), the span skipped instead of expired at once
    (D12), and the first fire instant after the last one created (or after `after`): next_fire_at.

    One forward walk finds both the instants and next_fire_at; only an outage longer than
    max(chunk, keep) counts and walks back. Memoized: pipelines that share a cron, a zone and their
    newest record (all due at the same instant, typically) plan the same instants.
    """
    if keep == 0:  # keep all: backfill oldest first, `chunk` per pass
        create, following = fire_times_and_next(cron, tz, after, now, chunk)
        return tuple(create), None, following
    create, following = fire_times_and_next(cron, tz, after, now, max(chunk, keep))
    if following is None or following > now:  # a short outage: create it all, R4 expires the overflow
        return tuple(create), None, following
    total = count_fire_times(cron, tz, after, now)
    last_skipped, *kept = newest_fire_times(cron, tz, after, now, keep + 1)  # O(keep), not O(outage)
    return tuple(kept), SkippedSpan(total - keep, create[0], last_skipped), _next_after(cron, tz, kept[-1])


def _launch(
    schedule: Schedule, epoch: list[Record], waiting: list[datetime], active: int
) -> tuple[tuple[datetime, ...], tuple[Wait, ...]]:
    """Return the instants to launch, oldest first, and why the others wait (R5)."""
    if schedule.depends_on_past:
        return _launch_after_success(schedule, epoch, waiting, active)
    launch: list[datetime] = []
    waits: list[Wait] = []
    for instant in waiting:
        if active + len(launch) < schedule.max_active_runs:
            launch.append(instant)
        else:
            waits.append(Wait(instant, _slots_full(schedule, active + len(launch))))
    return tuple(launch), tuple(waits)


def _launch_after_success(
    schedule: Schedule, epoch: list[Record], waiting: list[datetime], active: int
) -> tuple[tuple[datetime, ...], tuple[Wait, ...]]:
    """Launch only the oldest waiting record, once its launched predecessor succeeded."""
    if not waiting:
        return (), ()
    candidate, younger = waiting[0], waiting[1:]
    behind = f"depends_on_past: waits for {_local(schedule, candidate)} to run and succeed first"
    waits = tuple(Wait(instant, behind) for instant in younger)
    previous = [r for r in epoch if r.status == RecordStatus.LAUNCHED and r.instant < candidate]
    if previous and previous[-1].run_state != RunState.SUCCEEDED:
        state = previous[-1].run_state
        words = "has no run" if state is None else _RUN_STATE_WORDS.get(state, f"is {state}")
        reason = f"depends_on_past: previous run {_local(schedule, previous[-1].instant)} {words}"
        return (), (Wait(candidate, reason), *waits)
    if active >= schedule.max_active_runs:
        return (), (Wait(candidate, _slots_full(schedule, active)), *waits)
    return (candidate,), waits


def _slots_full(schedule: Schedule, active: int) -> str:
    return f"max_active_runs {schedule.max_active_runs} reached ({active} active)"


def _local(schedule: Schedule, instant: datetime) -> str:
    return format_execution_date(instant, schedule.timezone)


def _next_fire_at(schedule: Schedule, newest: datetime | None) -> datetime | None:
    after = newest if newest is not None else schedule.start_time - _JUST_BEFORE
    return _next_after(schedule.cron, schedule.timezone, after)


@lru_cache(maxsize=2048)
def _next_after(cron: str, tz: str, after: datetime) -> datetime | None:
    return next_fire_time(cron, tz, after)


def apply_plan(records: Sequence[Record], active_cron_runs: int, plan: PassPlan) -> tuple[tuple[Record, ...], int]:
    """Return the records and active cron run count after performing `plan` (in memory)."""
    by_instant = {r.instant: r for r in records}
    for instant in plan.create:
        by_instant.setdefault(instant, Record(instant, RECORD.initial))
    for instant in plan.expire:
        by_instant[instant] = replace(by_instant[instant], status=RecordStatus.EXPIRED)
    for instant in plan.launch:
        by_instant[instant] = replace(by_instant[instant], status=RecordStatus.LAUNCHED, run_state=RunState.QUEUED)
    ordered = tuple(sorted(by_instant.values(), key=lambda r: r.instant))
    return ordered, active_cron_runs + len(plan.launch)


def preview(
    schedule: Schedule, records: Sequence[Record], active_cron_runs: int, now: datetime, n: int
) -> list[PreviewLine]:
    """Describe the next `n` fire times after `now` and what their passes would do."""
    epoch = _epoch_records(schedule, records)
    after = max(now, epoch[-1].instant if epoch else schedule.start_time - _JUST_BEFORE)
    coming = fire_times(schedule.cron, schedule.timezone, after, after + timedelta(days=366 * 30), limit=n)
    state, active = tuple(epoch), active_cron_runs
    lines: list[PreviewLine] = []
    for instant in coming:
        plan = plan_pass(schedule, state, active, instant)
        lines.append(_describe(schedule, instant, plan, active))
        state, active = apply_plan(state, active, plan)
    return lines


def _describe(schedule: Schedule, instant: datetime, plan: PassPlan, active: int) -> PreviewLine:
    """Say in words what the pass at `instant` does with the record for `instant`."""
    text = _local(schedule, instant)
    if not schedule.enabled:
        return PreviewLine(instant, text, "disabled", "schedule disabled: nothing is created or run")
    wait = next((w for w in plan.waits if w.instant == instant), None)
    action: PreviewAction
    if instant in plan.launch:
        action, reason = (
            "launch",
            (
                f"starts a cron run ({active + len(plan.launch)} of "
                f"max_active_runs {schedule.max_active_runs} busy after it)"
            ),
        )
    elif wait is not None:
        action, reason = "wait", f"waits: {wait.reason}"
    else:
        action, reason = "expire", f"expires: expired_limit {schedule.expired_limit} keeps newer ones"
    older = len([i for i in plan.expire if i != instant])
    if older:
        reason += f"; expires {older} older waiting record{'s' * (older != 1)}"
    return PreviewLine(instant, text, action, reason + " (assuming no run ends before then)")
