"""Tests for myapp/core/schedule.py: one scheduler pass as data (R3-R6, R8, D12)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from myapp.core.cron import count_fire_times, fire_times, newest_fire_times, next_fire_time
from myapp.core.schedule import (
    PassPlan,
    Record,
    Schedule,
    SkippedSpan,
    apply_plan,
    plan_pass,
    preview,
)
from myapp.core.states import RunState
from tests.work import calls_made

S = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
ACTIVE = (RunState.QUEUED, RunState.RUNNING)


def make_schedule(**overrides: Any) -> Schedule:
    """Return an hourly UTC schedule starting at S; keyword arguments override fields."""
    defaults: dict[str, Any] = dict(
        pipeline_id=1,
        cron="0 * * * *",
        timezone="UTC",
        start_time=S,
        depends_on_past=False,
        expired_limit=1,
        max_active_runs=1,
        enabled=True,
    )
    return Schedule(**{**defaults, **overrides})


def at(hours: float) -> datetime:
    return S + timedelta(hours=hours)


def apply(records: Sequence[Record], plan: PassPlan) -> list[Record]:
    """Perform `plan` on in-memory records the way the adapter would (reference for the tests)."""
    by_instant = {r.instant: r for r in records}
    assert not set(plan.create) & set(by_instant), "duplicate record"
    by_instant.update({i: Record(i, "waiting") for i in plan.create})
    for instant in plan.expire:
        assert by_instant[instant].status == "waiting"
        by_instant[instant] = replace(by_instant[instant], status="expired")
    for instant in plan.launch:
        assert by_instant[instant].status == "waiting"
        by_instant[instant] = Record(instant, "launched", RunState.QUEUED)
    return sorted(by_instant.values(), key=lambda r: r.instant)


def active_runs(records: Sequence[Record]) -> int:
    return sum(r.status == "launched" and r.run_state in ACTIVE for r in records)


def statuses(records: Sequence[Record]) -> dict[datetime, str]:
    return {r.instant: r.status for r in records}


def test_start_time_is_inclusive_and_the_first_fire_launches() -> None:
    plan = plan_pass(make_schedule(), [], 0, S)
    assert plan.create == (S,) and plan.launch == (S,) and plan.expire == ()
    assert plan.next_fire_at == at(1)


def test_nothing_fires_before_start_time() -> None:
    plan = plan_pass(make_schedule(start_time=at(5)), [], 0, at(4.5))
    assert plan.changes_nothing and plan.next_fire_at == at(5)


def test_keep_all_creates_every_missed_instant_and_launches_oldest_within_max_active_runs() -> None:
    plan = plan_pass(make_schedule(expired_limit=0, max_active_runs=2), [], 0, at(3.5))
    assert plan.create == (at(0), at(1), at(2), at(3))
    assert plan.launch == (at(0), at(1)) and plan.expire == ()
    assert [w.reason for w in plan.waits] == ["max_active_runs 2 reached (2 active)"] * 2


def test_small_outage_materializes_the_overflow_as_expired() -> None:
    waiting = [Record(at(0), "waiting")]
    plan = plan_pass(make_schedule(expired_limit=2, max_active_runs=0), waiting, 0, at(3))
    assert plan.create == (at(1), at(2), at(3))
    assert plan.expire == (at(0), at(1)) and plan.launch == () and plan.skipped is None


def test_three_year_outage_creates_only_the_kept_and_counts_the_rest_exactly() -> None:
    schedule = make_schedule(cron="* * * * *", expired_limit=5, timezone="Europe/Berlin")
    old = [Record(S, "launched", RunState.SUCCEEDED), Record(S + timedelta(minutes=1), "waiting")]
    now = datetime(2029, 1, 1, 0, 0, 30, tzinfo=UTC)
    plan, calls = calls_made(plan_pass, schedule, old, 0, now)
    # The pass's work grows with the records kept and the days, not the 1.58 million minutes of the
    # outage (25,836 calls today; counted, not timed, so a slow machine cannot fail it).
    assert calls < (now - S) // timedelta(minutes=10)
    newest = now.replace(second=0)
    assert plan.create == tuple(newest - timedelta(minutes=m) for m in (4, 3, 2, 1, 0))
    assert plan.expire == (S + timedelta(minutes=1),)
    total = (newest - S) // timedelta(minutes=1) - 1  # after the newest record, up to now
    assert plan.skipped == SkippedSpan(total - 5, S + timedelta(minutes=2), newest - 5 * timedelta(minutes=1))
    assert plan.launch == (newest - timedelta(minutes=4),)
    assert plan.next_fire_at == newest + timedelta(minutes=1)


def test_keep_all_backfills_in_chunks_oldest_first() -> None:
    schedule = make_schedule(expired_limit=0, max_active_runs=0)
    now, chunks = at(100 * 24), []
    records: list[Record] = []
    while True:
        plan = plan_pass(schedule, records, 0, now, backfill_chunk=1000)
        chunks.append(len(plan.create))
        records = apply(records, plan)
        if plan.is_finished(now):
            break
        assert plan.next_fire_at is not None and plan.next_fire_at <= now
    assert chunks == [1000, 1000, 401]
    assert [r.instant for r in records] == fire_times("0 * * * *", "UTC", S - HOUR, now)
    assert plan_pass(schedule, records, 0, now).changes_nothing


def test_launch_never_exceeds_max_active_runs_and_retries_take_no_slot_from_the_planner() -> None:
    waiting = [Record(at(h), "waiting") for h in range(3)]
    schedule = make_schedule(expired_limit=0, max_active_runs=3)
    assert plan_pass(schedule, waiting, 3, at(2)).launch == ()
    assert plan_pass(schedule, waiting, 4, at(2)).launch == ()  # a retry ran over the limit (D9)
    assert plan_pass(schedule, waiting, 1, at(2)).launch == (at(0), at(1))


def test_depends_on_past_blocks_on_a_failed_or_stopped_predecessor() -> None:
    schedule = make_schedule(depends_on_past=True, expired_limit=0, max_active_runs=5)
    for state, words in [
        (RunState.FAILED, "failed"),
        (RunState.STOPPED, "was stopped"),
        (RunState.RUNNING, "is still running"),
    ]:
        records = [Record(at(0), "launched", state), Record(at(1), "waiting")]
        plan = plan_pass(schedule, records, 0, at(2))
        assert plan.launch == ()
        assert plan.waits[0].reason == f"depends_on_past: previous run 2026-01-01 00:00:00 {words}"
        assert plan.waits[1].reason.startswith("depends_on_past: waits for 2026-01-01 01:00:00")


def test_depends_on_past_launches_one_after_success_or_without_predecessor() -> None:
    schedule = make_schedule(depends_on_past=True, expired_limit=0, max_active_runs=5)
    succeeded = [Record(at(0), "launched", RunState.SUCCEEDED)]
    assert plan_pass(schedule, succeeded, 0, at(3)).launch == (at(1),)
    assert plan_pass(schedule, [], 0, at(3)).launch == (at(0),)
    expired_between = [*succeeded, Record(at(1), "expired")]
    assert plan_pass(schedule, expired_between, 0, at(2)).launch == (at(2),)


def test_depends_on_past_ignores_records_of_an_earlier_epoch() -> None:
    schedule = make_schedule(depends_on_past=True, start_time=at(10))
    old_epoch = [Record(at(9), "launched", RunState.FAILED), Record(at(8), "waiting")]
    plan = plan_pass(schedule, old_epoch, 0, at(10))
    assert plan.create == (at(10),) and plan.launch == (at(10),)


def test_a_blocked_record_holds_no_slot() -> None:
    schedule = make_schedule(depends_on_past=True, expired_limit=0, max_active_runs=1)
    records = [Record(at(0), "launched", RunState.FAILED), Record(at(1), "waiting")]
    plan = plan_pass(schedule, records, 0, at(1))
    assert plan.launch == () and "max_active_runs" not in plan.waits[0].reason


def test_disabled_schedule_plans_nothing() -> None:
    records = [Record(at(0), "waiting")]
    assert plan_pass(make_schedule(enabled=False), records, 0, at(50)) == PassPlan()


def test_a_pass_earlier_than_an_earlier_pass_changes_nothing() -> None:
    records = [Record(at(5), "launched", RunState.SUCCEEDED), Record(at(6), "waiting")]
    plan = plan_pass(make_schedule(), records, 0, at(5.5))
    assert plan.changes_nothing and plan.next_fire_at == at(7)
    later = plan_pass(make_schedule(), records, 0, at(6.5), last_pass_at=at(6.9))
    assert later.changes_nothing


def test_after_applying_a_pass_the_same_now_plans_nothing() -> None:
    schedule = make_schedule(expired_limit=2, max_active_runs=1)
    plan = plan_pass(schedule, [], 0, at(5))
    records = apply([], plan)
    again = plan_pass(schedule, records, active_runs(records), at(5))
    assert again.changes_nothing and again.next_fire_at == plan.next_fire_at == at(6)


def test_fall_back_day_materializes_a_fixed_time_once() -> None:
    schedule = make_schedule(
        cron="30 2 * * *", timezone="Europe/Berlin", expired_limit=0, start_time=datetime(2026, 10, 24, tzinfo=UTC)
    )
    plan = plan_pass(schedule, [], 0, datetime(2026, 10, 26, tzinfo=UTC))
    assert plan.create == (datetime(2026, 10, 24, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 0, 30, tzinfo=UTC))


def test_apply_plan_matches_the_reference_apply() -> None:
    schedule = make_schedule(expired_limit=2, max_active_runs=1)
    records = [Record(at(0), "launched", RunState.SUCCEEDED), Record(at(1), "waiting")]
    plan = plan_pass(schedule, records, 0, at(4))
    applied, active = apply_plan(records, 0, plan)
    assert list(applied) == apply(records, plan) and active == 1


def test_preview_explains_the_coming_fire_times() -> None:
    lines = preview(make_schedule(max_active_runs=1, expired_limit=1), [], 0, at(0.5), 3)
    assert [line.execution_date for line in lines] == [
        "2026-01-01 01:00:00",
        "2026-01-01 02:00:00",
        "2026-01-01 03:00:00",
    ]
    assert [line.action for line in lines] == ["launch", "wait", "wait"]
    assert "max_active_runs 1 reached (1 active)" in lines[1].reason
    assert "expires 1 older waiting record" in lines[2].reason
    disabled = preview(make_schedule(enabled=False), [], 0, at(0.5), 2)
    assert [line.action for line in disabled] == ["disabled", "disabled"]


def test_preview_of_a_blocked_depends_on_past_schedule_names_the_predecessor() -> None:
    schedule = make_schedule(depends_on_past=True)
    lines = preview(schedule, [Record(at(0), "launched", RunState.FAILED)], 0, at(0.5), 1)
    assert lines[0].action == "wait"
    assert "previous run 2026-01-01 00:00:00 failed" in lines[0].reason


# --- properties: a simulated scheduler over many passes --------------------------------------


@dataclass(frozen=True)
class Step:
    minutes: int  # how far `now` moves before the pass
    outcomes: tuple[str, ...]  # what happens to the active runs, oldest first, before the pass


OUTCOMES = ("keep", "succeeded", "failed", "stopped", "retried")
steps = st.builds(
    Step, st.integers(min_value=0, max_value=400), st.lists(st.sampled_from(OUTCOMES), max_size=4).map(tuple)
)
schedules = st.builds(
    make_schedule,
    cron=st.sampled_from(["*/20 * * * *", "0 * * * *", "30 2 * * *", "*/30 1-3 * * *", "@daily"]),
    timezone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
    start_time=st.sampled_from([datetime(2026, 10, 24, 20, 7, tzinfo=UTC), datetime(2026, 3, 28, 23, tzinfo=UTC)]),
    depends_on_past=st.booleans(),
    expired_limit=st.integers(0, 3),
    max_active_runs=st.integers(0, 3),
)


def settle(records: list[Record], outcomes: tuple[str, ...]) -> list[Record]:
    """Finish, fail, stop or retry runs as the step says (retry: a failed run becomes queued)."""
    changed, queue = list(records), list(outcomes)
    for i, record in enumerate(changed):
        if record.status == "launched" and queue:
            outcome = queue.pop(0)
            if outcome == "retried" and record.run_state in (RunState.FAILED, RunState.STOPPED):
                changed[i] = replace(record, run_state=RunState.QUEUED)
            elif outcome in ("succeeded", "failed", "stopped") and record.run_state in ACTIVE:
                changed[i] = replace(record, run_state=RunState(outcome))
    return changed


def check_plan(schedule: Schedule, records: list[Record], plan: PassPlan, now: datetime) -> None:
    """Assert the invariants of one plan against the records it was made from."""
    existing = {r.instant for r in records}
    assert len(set(plan.create)) == len(plan.create) and not set(plan.create) & existing
    assert list(plan.create) == sorted(plan.create)
    assert all(i > max(existing, default=schedule.start_time - timedelta(1)) for i in plan.create)
    assert set(plan.create) <= set(
        fire_times(schedule.cron, schedule.timezone, schedule.start_time - timedelta(microseconds=1), now)
    )
    assert list(plan.launch) == sorted(set(plan.launch))
    waiting_before = sorted([r.instant for r in records if r.status == "waiting"] + list(plan.create))
    survivors = [i for i in waiting_before if i not in plan.expire]
    if schedule.expired_limit:
        assert survivors == waiting_before[-schedule.expired_limit :]  # exactly the newest N
    else:
        assert not plan.expire
    assert list(plan.launch) == survivors[: len(plan.launch)]  # strictly oldest first
    active = active_runs(records)
    assert active + len(plan.launch) <= max(active, schedule.max_active_runs)
    if schedule.depends_on_past and plan.launch:
        assert len(plan.launch) == 1
        earlier = [r for r in records if r.status == "launched" and r.instant < plan.launch[0]]
        assert not earlier or earlier[-1].run_state == RunState.SUCCEEDED


@settings(max_examples=60, deadline=None)
@given(schedules, st.lists(steps, min_size=1, max_size=8))
def test_simulated_passes_keep_every_invariant(schedule: Schedule, plan_steps: list[Step]) -> None:
    records: list[Record] = []
    now, created, skipped = schedule.start_time - timedelta(minutes=30), 0, 0
    for step in plan_steps:
        now += timedelta(minutes=step.minutes)
        records = settle(records, step.outcomes)
        while True:  # one pass: plan again at the same now until the backlog is done
            plan = plan_pass(schedule, records, active_runs(records), now, backfill_chunk=7)
            check_plan(schedule, records, plan, now)
            created, skipped = created + len(plan.create), skipped + (plan.skipped.count if plan.skipped else 0)
            records = apply(records, plan)
            if plan.is_finished(now):
                break
        again = plan_pass(schedule, records, active_runs(records), now, backfill_chunk=7)
        assert again.changes_nothing  # R6: a second pass at the same now changes nothing
        assert not plan_pass(
            schedule, records, active_runs(records), now - timedelta(minutes=1), last_pass_at=now
        ).launch
    start = schedule.start_time - timedelta(microseconds=1)
    assert created + skipped == count_fire_times(schedule.cron, schedule.timezone, start, now)


def three_walk_plan(
    schedule: Schedule, newest: datetime | None, now: datetime, chunk: int
) -> tuple[tuple[datetime, ...], SkippedSpan | None, datetime | None]:
    """The planner's materialization as it was before one walk replaced three: count, list, then next."""
    cron, tz, keep = schedule.cron, schedule.timezone, schedule.expired_limit
    after = newest if newest is not None else schedule.start_time - timedelta(microseconds=1)
    if keep == 0:
        create = tuple(fire_times(cron, tz, after, now, limit=chunk))
        skipped = None
    elif count_fire_times(cron, tz, after, now) <= max(chunk, keep):
        create, skipped = tuple(fire_times(cron, tz, after, now)), None
    else:
        total = count_fire_times(cron, tz, after, now)
        last_skipped, *kept = newest_fire_times(cron, tz, after, now, keep + 1)
        create = tuple(kept)
        skipped = SkippedSpan(total - keep, fire_times(cron, tz, after, now, limit=1)[0], last_skipped)
    return create, skipped, next_fire_time(cron, tz, create[-1] if create else after)


@settings(max_examples=80, deadline=None)
@given(
    schedules,
    st.integers(min_value=0, max_value=4000),
    st.integers(min_value=0, max_value=3000),
    st.integers(min_value=1, max_value=40),
)
def test_one_walk_plans_what_counting_listing_and_a_fresh_walk_planned(
    schedule: Schedule, newest_minutes: int, minutes: int, chunk: int
) -> None:
    newest = schedule.start_time + timedelta(minutes=newest_minutes) if newest_minutes % 3 else None
    records = [Record(newest, "launched", RunState.SUCCEEDED)] if newest is not None else []
    now = (newest or schedule.start_time) + timedelta(minutes=minutes)
    plan = plan_pass(schedule, records, 0, now, backfill_chunk=chunk)
    assert (plan.create, plan.skipped, plan.next_fire_at) == three_walk_plan(schedule, newest, now, chunk)
    assert plan_pass(schedule, records, 0, now, backfill_chunk=chunk) == plan  # memoized: the same plan
