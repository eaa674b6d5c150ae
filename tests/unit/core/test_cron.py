"""Tests for myapp/core/cron.py: the Vixie dialect (D14), DST resolution (R1) and fire-time math."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from myapp.core.cron import (
    PRESETS,
    CronError,
    count_fire_times,
    fire_times,
    fire_times_and_next,
    format_execution_date,
    is_fixed_time,
    newest_fire_times,
    next_fire_time,
    parse_cron,
    validate_cron,
    validate_timezone,
    wall_time_to_instant,
)
from tests.work import calls_made

MINUTE = timedelta(minutes=1)
BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"


def day_fire_times(expr: str, tz: str, day: str) -> list[str]:
    """Return the fire times on local calendar day `day` as 'HH:MM+hh:mm' local strings."""
    zone = ZoneInfo(tz)
    midnight = datetime.fromisoformat(day).replace(tzinfo=zone)
    next_midnight = midnight + timedelta(days=1)  # aware + timedelta is wall-clock arithmetic
    instants = fire_times(expr, tz, midnight - MINUTE, next_midnight - MINUTE)
    return [t.astimezone(zone).isoformat(timespec="minutes")[11:] for t in instants]


def half_hours(start: str, end: str, offset: str) -> list[str]:
    """Return 'HH:MM+offset' every 30 minutes from `start` to `end` inclusive (same offset)."""
    first, last = (datetime.strptime(x, "%H:%M") for x in (start, end))
    count = int((last - first) / timedelta(minutes=30)) + 1
    return [(first + i * timedelta(minutes=30)).strftime("%H:%M") + offset for i in range(count)]


# The DST tables of docs/scheduling.md: 2026 change days.
DST_TABLE = [
    (BERLIN, "2026-03-29", "30 2 * * *", ["03:00+02:00"]),
    (BERLIN, "2026-10-25", "30 2 * * *", ["02:30+02:00"]),
    (NEW_YORK, "2026-03-08", "30 2 * * *", ["03:00-04:00"]),
    (NEW_YORK, "2026-11-01", "30 2 * * *", ["02:30-05:00"]),
    (NEW_YORK, "2026-11-01", "30 1 * * *", ["01:30-04:00"]),
    (
        BERLIN,
        "2026-03-29",
        "*/30 * * * *",
        half_hours("00:00", "01:30", "+01:00") + half_hours("03:00", "23:30", "+02:00"),
    ),
    (
        BERLIN,
        "2026-10-25",
        "*/30 * * * *",
        half_hours("00:00", "02:30", "+02:00") + half_hours("02:00", "23:30", "+01:00"),
    ),
    (
        NEW_YORK,
        "2026-03-08",
        "*/30 * * * *",
        half_hours("00:00", "01:30", "-05:00") + half_hours("03:00", "23:30", "-04:00"),
    ),
    (
        NEW_YORK,
        "2026-11-01",
        "*/30 * * * *",
        half_hours("00:00", "01:30", "-04:00") + half_hours("01:00", "23:30", "-05:00"),
    ),
]


@pytest.mark.parametrize(("tz", "day", "expr", "expected"), DST_TABLE)
def test_dst_change_days_resolve_as_vixie_cron(tz: str, day: str, expr: str, expected: list[str]) -> None:
    assert day_fire_times(expr, tz, day) == expected


def test_spring_gap_times_merge_with_the_real_three_oclock() -> None:
    times = day_fire_times("*/30 * * * *", BERLIN, "2026-03-29")
    assert len(times) == 46 and times.count("03:00+02:00") == 1
    assert "02:00+01:00" not in times and "02:30+01:00" not in times


def test_hourly_fires_on_both_passes_of_the_repeated_hour() -> None:
    berlin = day_fire_times("@hourly", BERLIN, "2026-10-25")
    assert berlin[:5] == ["00:00+02:00", "01:00+02:00", "02:00+02:00", "02:00+01:00", "03:00+01:00"]
    assert len(berlin) == 25
    new_york = day_fire_times("@hourly", NEW_YORK, "2026-11-01")
    assert new_york[:4] == ["00:00-04:00", "01:00-04:00", "01:00-05:00", "02:00-05:00"]
    assert len(day_fire_times("@hourly", NEW_YORK, "2026-03-08")) == 23


def test_daily_fires_at_local_midnight_across_the_change() -> None:
    after = datetime(2026, 3, 27, 12, tzinfo=UTC)
    instants = fire_times("@daily", BERLIN, after, after + timedelta(days=3))
    assert [t.isoformat() for t in instants] == [
        "2026-03-27T23:00:00+00:00",
        "2026-03-28T23:00:00+00:00",
        "2026-03-29T22:00:00+00:00",
    ]


def test_day_31_fires_only_in_31_day_months() -> None:
    instants = fire_times("0 0 31 * *", "UTC", datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert [t.month for t in instants] == [1, 3, 5, 7, 8, 10, 12]


def test_february_29_fires_only_in_leap_years() -> None:
    instants = fire_times("0 0 29 2 *", "UTC", datetime(2026, 1, 1, tzinfo=UTC), datetime(2034, 1, 1, tzinfo=UTC))
    assert [t.date().isoformat() for t in instants] == ["2028-02-29", "2032-02-29"]


def test_restricted_day_fields_are_ored() -> None:
    instants = fire_times("0 0 13 * 5", "UTC", datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    days = [t.day for t in instants]
    assert days == [6, 13, 20, 27]  # Fridays plus the 13th (a Friday in March 2026)
    april = fire_times("0 0 13 * 5", "UTC", datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 4, 30, 23, tzinfo=UTC))
    assert [t.day for t in april] == [3, 10, 13, 17, 24]


def test_a_day_field_starting_with_star_is_anded_like_vixie() -> None:
    # Vixie sets DOM_STAR for "*/2": day-of-month AND day-of-week (odd Mondays only).
    instants = fire_times("0 0 */2 * 1", "UTC", datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    assert [t.day for t in instants] == [9, 23]


@pytest.mark.parametrize("sunday", ["0", "7", "sun", "SUN", "6-7"])
def test_zero_and_seven_are_sunday(sunday: str) -> None:
    assert 0 in parse_cron(f"0 0 * * {sunday}").weekdays
    instants = fire_times(
        f"0 0 * * {sunday}", "UTC", datetime(2026, 2, 28, 23, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC)
    )
    assert all(t.weekday() in (5, 6) for t in instants) and instants[0].day == 1


@pytest.mark.parametrize(
    ("expr", "canonical"),
    [
        ("0 9 * JAN-mar Mon-Fri", "0 9 * jan-mar mon-fri"),
        ("  */15   0-23/2 1,15 * *", "*/15 0-23/2 1,15 * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("0 0 29 2 *", "0 0 29 2 *"),
    ],
)
def test_validate_returns_the_canonical_form(expr: str, canonical: str) -> None:
    assert validate_cron(expr) == canonical


def test_every_preset_validates() -> None:
    assert all(validate_cron(preset) for preset in PRESETS)


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("* * * * * *", "6 fields"),
        ("0 0 1 1 * 2026 x", "7 fields"),
        ("", "0 fields"),
        ("@reboot", "@reboot is not supported"),
        ("0 0 L * *", '"L" is not Vixie cron'),
        ("0 0 ? * *", '"?" is not Vixie cron'),
        ("H * * * *", '"H" is not Vixie cron'),
        ("0 0 1W * *", '"1W" is not Vixie cron'),
        ("0 0 * * 1#2", '"1#2" is not Vixie cron'),
        ("0 0 * * 5L", '"5L" is not Vixie cron'),
        ("60 * * * *", "out of range 0-59"),
        ("0 24 * * *", "out of range"),
        ("0 0 0 * *", "out of range 1-31"),
        ("0 0 * 13 *", "out of range"),
        ("0 0 * * 8", "out of range 0-7"),
        ("*/0 * * * *", "step of 0"),
        ("5/10 * * * *", "write 5-59/10"),
        ("0 0 * * fri-sun", "runs backwards"),
        ("0 0 * * monday", '"monday" is not Vixie cron'),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
        ("1,,2 * * * *", "is not Vixie cron"),
        ("*-5 * * * *", "is not Vixie cron"),
    ],
)
def test_validate_refuses_with_a_message_quoting_the_expression(expr: str, words: str) -> None:
    with pytest.raises(CronError) as error:
        validate_cron(expr)
    assert f'cron "{expr}"' in str(error.value) and words in str(error.value)


@pytest.mark.parametrize(
    ("expr", "interval", "ok"),
    [
        ("*/5 * * * *", timedelta(minutes=10), False),
        ("*/10 * * * *", timedelta(minutes=10), True),
        ("* * * * *", timedelta(minutes=1), True),
        ("0,59 0,23 * * *", timedelta(minutes=10), False),  # 23:59 -> 00:00 is one minute
        ("0 0 * * *", timedelta(hours=24), True),
        ("0 0 */2 * *", timedelta(hours=25), False),  # the 31st, then the 1st
        ("0 0 * * 1,3", timedelta(hours=47), True),
        ("0 0 * * 1,2", timedelta(hours=47), False),
    ],
)
def test_min_interval_is_the_smallest_wall_clock_gap(expr: str, interval: timedelta, ok: bool) -> None:
    if ok:
        validate_cron(expr, interval)
    else:
        with pytest.raises(CronError, match="more often than the minimum interval"):
            validate_cron(expr, interval)


@pytest.mark.parametrize(
    ("expr", "fixed"),
    [
        ("30 2 * * *", True),
        ("0 0 * * *", True),
        ("@daily", True),
        ("0-59/5 2 * * *", True),
        ("@hourly", False),
        ("*/5 * * * *", False),
        ("0 */2 * * *", False),
        ("* 2 * * *", False),
    ],
)
def test_fixed_time_means_minute_and_hour_start_with_a_digit(expr: str, fixed: bool) -> None:
    assert is_fixed_time(expr) is fixed


def test_timezones_are_validated_by_name() -> None:
    assert validate_timezone(BERLIN) == ZoneInfo(BERLIN)
    for bad in ("Mars/Olympus", "", "../etc/passwd", "Europe"):
        with pytest.raises(CronError, match="timezone"):
            validate_timezone(bad)


def test_execution_date_is_rendered_in_the_zone() -> None:
    instant = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert format_execution_date(instant, BERLIN) == "2026-10-25 02:30:00"
    assert format_execution_date(instant, "UTC") == "2026-10-25 01:30:00"


def test_wall_time_resolution_of_start_times() -> None:
    gap = wall_time_to_instant(datetime(2026, 3, 29, 2, 30), BERLIN)
    assert gap == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST
    fold = wall_time_to_instant(datetime(2026, 10, 25, 2, 30), BERLIN)
    assert fold == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # first occurrence
    plain = wall_time_to_instant(datetime(2026, 1, 1, 2, 0), NEW_YORK)
    assert plain == datetime(2026, 1, 1, 7, 0, tzinfo=UTC)


def test_window_is_open_below_and_closed_above() -> None:
    at = datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert fire_times("0 * * * *", "UTC", at, at) == []
    assert fire_times("0 * * * *", "UTC", at - MINUTE, at) == [at]
    assert fire_times("0 * * * *", "UTC", at, at + timedelta(hours=1)) == [at + timedelta(hours=1)]
    assert fire_times("* * * * *", "UTC", at, at + timedelta(hours=1), limit=3)[-1] == at + 3 * MINUTE
    assert next_fire_time("0 * * * *", "UTC", at) == at + timedelta(hours=1)
    assert next_fire_time("0 0 30 2 *", "UTC", at) is None


def test_naive_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        fire_times("* * * * *", "UTC", datetime(2026, 1, 1), datetime(2026, 1, 2, tzinfo=UTC))


def test_three_years_of_every_minute_cost_work_by_the_day_not_by_the_fire() -> None:
    # Work counted, not timed: forward iteration would make millions of calls (one fire a minute).
    after, until = datetime(2023, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)
    newest, newest_calls = calls_made(newest_fire_times, "* * * * *", BERLIN, after, until, 5)
    count, count_calls = calls_made(count_fire_times, "* * * * *", BERLIN, after, until)
    assert newest[-1] == datetime(2026, 1, 1, tzinfo=UTC) and len(newest) == 5
    assert count == (datetime(2026, 1, 1, tzinfo=UTC) - after) // MINUTE  # every real minute
    _, one_day_calls = calls_made(newest_fire_times, "* * * * *", BERLIN, until - timedelta(days=1), until, 5)
    assert newest_calls == one_day_calls  # walking back from the end: the outage's length costs nothing
    assert count_calls < count // 60  # O(days): fewer calls than hours (17,831 today)


def test_count_of_hourly_over_a_dst_year_is_every_real_hour() -> None:
    after, until = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    assert count_fire_times("@hourly", NEW_YORK, after, until) == 365 * 24
    # A fixed-time schedule fires once a day, DST or not.
    assert count_fire_times("30 2 * * *", BERLIN, after, until) == 365


# --- properties: the span walk agrees with a minute-by-minute reading of R1 -------------------

FIELD_CHOICES = (
    ["*", "*/7", "0", "30", "0,30", "5-20/5", "*/30", "59"],
    ["*", "*/5", "2", "1,2,3", "0-3", "22-23", "1"],
    ["*", "1", "*/2", "13", "29-31", "31", "8"],
    ["*", "2", "3,10,11", "jan-mar", "*/4", "11"],
    ["*", "0", "7", "1-5", "sun,sat", "*/3", "fri"],
)
crons = st.tuples(*(st.sampled_from(choices) for choices in FIELD_CHOICES)).map(" ".join)
zones = st.sampled_from(["UTC", BERLIN, NEW_YORK, "Australia/Lord_Howe", "Asia/Kolkata"])
CHANGE_DAYS = [
    datetime(2026, m, d, tzinfo=UTC) for m, d in [(3, 8), (3, 29), (4, 5), (10, 4), (10, 25), (11, 1)]
]  # NY, EU, Lord Howe
near_changes = st.builds(
    lambda day, minutes: day + timedelta(minutes=minutes, seconds=minutes % 7),
    st.sampled_from(CHANGE_DAYS),
    st.integers(min_value=-3000, max_value=1500),
)
starts = near_changes | st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
)


def reference_fire_times(expr: str, tz: str, after: datetime, until: datetime) -> list[datetime]:
    """Resolve every matching wall minute by R1's hint: gap -> end of gap, fold by fixed/wildcard."""
    cron, zone = parse_cron(expr), ZoneInfo(tz)
    wall = after.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0) - timedelta(hours=3)
    end = until.astimezone(zone).replace(tzinfo=None) + timedelta(hours=3)
    found: set[datetime] = set()
    while wall <= end:
        if cron.matches(wall):
            found.update(t for t in resolve(wall, zone, cron.fixed_time) if after < t <= until)
        wall += MINUTE
    return sorted(found)


def resolve(wall: datetime, zone: ZoneInfo, fixed: bool) -> list[datetime]:
    first, second = (wall.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1))
    exists = [t for t in (first, second) if t.astimezone(zone).replace(tzinfo=None) == wall]
    if not exists:  # in a gap: the first instant whose wall time is past `wall`
        instant = min(first, second).replace(second=0, microsecond=0)
        while instant.astimezone(zone).replace(tzinfo=None) <= wall:
            instant += MINUTE
        return [instant]
    return [min(exists)] if fixed else sorted(set(exists))


@settings(max_examples=80, deadline=None)
@given(crons, zones, starts, st.integers(min_value=0, max_value=3 * 1440))
def test_fire_times_match_the_minute_by_minute_reference(expr: str, tz: str, after: datetime, minutes: int) -> None:
    until = after + timedelta(minutes=minutes, seconds=17)
    expected = reference_fire_times(expr, tz, after, until)
    assert fire_times(expr, tz, after, until) == expected
    assert count_fire_times(expr, tz, after, until) == len(expected)
    assert newest_fire_times(expr, tz, after, until, 3) == expected[-3:]
    assert fire_times(expr, tz, after, until, limit=2) == expected[:2]


daily_crons = st.tuples(*(st.sampled_from(c) for c in FIELD_CHOICES[:2])).map(
    lambda fields: " ".join(fields) + " * * *"
)
TRANSITIONS = [  # (zone, UTC instant of a 2026 offset change)
    (BERLIN, datetime(2026, 3, 29, 1, tzinfo=UTC)),
    (BERLIN, datetime(2026, 10, 25, 1, tzinfo=UTC)),
    (NEW_YORK, datetime(2026, 3, 8, 7, tzinfo=UTC)),
    (NEW_YORK, datetime(2026, 11, 1, 6, tzinfo=UTC)),
    ("Australia/Lord_Howe", datetime(2026, 4, 4, 15, tzinfo=UTC)),  # 30-minute fall-back
    ("Australia/Lord_Howe", datetime(2026, 10, 3, 15, 30, tzinfo=UTC)),
]


@settings(max_examples=100, deadline=None)
@given(
    daily_crons,
    st.sampled_from(TRANSITIONS),
    st.integers(min_value=0, max_value=600),
    st.integers(min_value=0, max_value=1200),
)
def test_dst_changes_match_the_minute_by_minute_reference(
    expr: str, transition: tuple[str, datetime], lead: int, minutes: int
) -> None:
    tz, change = transition
    after = change - timedelta(minutes=lead, seconds=lead % 3)
    until = after + timedelta(minutes=minutes)
    expected = reference_fire_times(expr, tz, after, until)
    assert fire_times(expr, tz, after, until) == expected
    assert count_fire_times(expr, tz, after, until) == len(expected)
    assert newest_fire_times(expr, tz, after, until, 40) == expected[-40:]


sparse_crons = st.tuples(
    st.sampled_from(["0", "30", "15,45"]),
    st.sampled_from(["2", "*/6", "1-3"]),
    *(st.sampled_from(c) for c in FIELD_CHOICES[2:]),
).map(" ".join)


@settings(max_examples=40, deadline=None)
@given(sparse_crons, zones, starts, st.integers(min_value=0, max_value=800))
def test_counting_agrees_with_listing_over_long_windows(expr: str, tz: str, after: datetime, days: int) -> None:
    until = after + timedelta(days=days)
    listed = fire_times(expr, tz, after, until)
    assert count_fire_times(expr, tz, after, until) == len(listed)
    assert newest_fire_times(expr, tz, after, until, 4) == listed[-4:]
    assert len(set(listed)) == len(listed) and listed == sorted(listed)
    assert next_fire_time(expr, tz, after) == (listed[0] if listed else next_fire_time(expr, tz, until))


@settings(max_examples=60, deadline=None)
@given(crons | sparse_crons, zones, starts, st.integers(min_value=0, max_value=3 * 1440), st.integers(0, 5))
def test_one_walk_gives_the_fire_times_and_the_next_one(
    expr: str, tz: str, after: datetime, minutes: int, limit: int
) -> None:
    until = after + timedelta(minutes=minutes)
    found, following = fire_times_and_next(expr, tz, after, until, limit)
    assert found == fire_times(expr, tz, after, until, limit=limit)
    assert following == next_fire_time(expr, tz, found[-1] if found else after)
