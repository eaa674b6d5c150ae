"""The backfill guard's count (core/backfill.py): how many cron runs a catch-up would start."""

from __future__ import annotations

from datetime import UTC, datetime

from myapp.core.backfill import catch_up
from myapp.core.schedule import Record, Schedule

NOW = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)


def daily(**kw: object) -> Schedule:
    values: dict[str, object] = {
        "pipeline_id": 1,
        "cron": "0 2 * * *",
        "timezone": "UTC",
        "start_time": datetime(2026, 1, 1, tzinfo=UTC),
        "expired_limit": 0,
    }
    values.update(kw)
    return Schedule(**values)  # type: ignore[arg-type]


def test_every_fire_time_since_start_runs_when_all_are_kept() -> None:
    b = catch_up(daily(), [], NOW)
    assert (b.runs, b.fire_times) == (340, 340)
    assert b.first == datetime(2026, 1, 1, 2, tzinfo=UTC) and b.last == datetime(2026, 12, 6, 2, tzinfo=UTC)
    assert b.needs_confirmation(50) and not b.needs_confirmation(340)
    assert "340 backfill runs" in b.describe()


def test_expired_limit_bounds_the_runs_and_the_span() -> None:
    b = catch_up(daily(expired_limit=3), [], NOW)
    assert (b.runs, b.fire_times) == (3, 340)
    assert b.first == datetime(2026, 12, 4, 2, tzinfo=UTC) and "of 340 fire times" in b.describe()


def test_existing_records_count_from_the_newest_and_waiting_ones_still_run() -> None:
    records = [
        Record(datetime(2026, 12, 3, 2, tzinfo=UTC), "launched"),
        Record(datetime(2026, 12, 4, 2, tzinfo=UTC), "waiting"),
    ]
    b = catch_up(daily(), records, NOW)
    assert b.runs == 3  # the waiting 4th, then the 5th and the 6th
    assert b.first == datetime(2026, 12, 4, 2, tzinfo=UTC)


def test_a_start_in_the_future_backfills_nothing() -> None:
    b = catch_up(daily(start_time=datetime(2027, 1, 1, tzinfo=UTC)), [], NOW)
    assert b.runs == 0 and not b.needs_confirmation(0) and "no backfill" in b.describe()


def test_a_three_year_outage_of_every_minute_is_counted_without_walking_it() -> None:
    b = catch_up(daily(cron="* * * * *", start_time=datetime(2023, 12, 6, tzinfo=UTC), expired_limit=5), [], NOW)
    assert b.runs == 5 and b.fire_times > 1_500_000
