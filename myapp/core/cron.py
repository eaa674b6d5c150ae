"""The cron dialect (D14) and fire-time math (R1): which instants a cron expression fires at.

Owns parsing and validating Vixie cron, resolving wall-clock times through DST, and listing,
walking back over and counting fire instants. Pure: every instant comes in as an argument and
goes out as a UTC-aware datetime. Must not import I/O libraries (SQLAlchemy, Celery, Flask,
kubernetes) nor read the clock.

How DST is resolved: UTC time is cut into spans of one UTC offset (`_Span`). Inside a span a
wall time maps to exactly one instant, so naive wall times are walked there (day by day: does the
day match, then the day's sorted minutes; croniter is not needed) and each one becomes
`wall - offset`. At a span's start (a transition) two rules apply: wall times that fell
into a spring gap fire once at the transition, and a fixed-time schedule skips wall times it
already had before a fall-back (first occurrence wins, D1). Iterating span by span keeps the
instants in order, so the oldest or newest `n` cost O(n), never O(length of the range).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import chain, islice, pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from myapp.core.errors import MyappError

PRESETS: Mapping[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

MINUTE = timedelta(minutes=1)
# The years schedule math accepts (a start time, a `--now`/`?now=`): the preview looks 30 years
# ahead, and Python dates end at 9999, so year 9999 used to be a 500 (issue 13, B14).
FIRST_YEAR, LAST_YEAR = 1970, 2999


def year_problem(value: datetime) -> str | None:
    """Return why an instant or wall time is outside the years schedules support, or None."""
    if FIRST_YEAR <= value.year <= LAST_YEAR:
        return None
    return f"{value.isoformat()} is out of range: schedules use years {FIRST_YEAR} to {LAST_YEAR}"


_DAY_MINUTES = 1440
_LEAP_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# tzdata never changes a zone's offset twice within 95 hours (checked for every zone, 1938-2040),
# so a 12-hour scan step meets at most one transition; 2 days covers the widest fold or gap.
_SCAN_STEP = timedelta(hours=12)
_LOOKBACK = timedelta(days=2)
_SPAN_CAP = timedelta(days=8)
_HORIZONS = (timedelta(days=2), timedelta(days=400), timedelta(days=366 * 30))
_ITEM = re.compile(r"(\*|([0-9a-z]+)(?:-([0-9a-z]+))?)(?:/([0-9]+))?", re.ASCII | re.IGNORECASE)
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


class CronError(MyappError, ValueError):
    """A cron expression or timezone the scheduler refuses; the message quotes it."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: Mapping[str, int]
    allowed: str


_SYNTAX = "*, a-b, */n, a-b/n and lists; croniter's L W # ? H are not supported"
_FIELDS = (
    _Field("minute", 0, 59, {}, f"0-59, {_SYNTAX}"),
    _Field("hour", 0, 23, {}, f"0-23, {_SYNTAX}"),
    _Field("day-of-month", 1, 31, {}, f"1-31, {_SYNTAX}"),
    _Field("month", 1, 12, {name: i + 1 for i, name in enumerate(_MONTH_NAMES)}, f"1-12, jan-dec, {_SYNTAX}"),
    _Field(
        "day-of-week",
        0,
        7,
        {name: i for i, name in enumerate(_DAY_NAMES)},
        f"0-7 (0 and 7 are Sunday), sun-sat, {_SYNTAX}",
    ),
)


@dataclass(frozen=True)
class CronExpression:
    """A parsed Vixie cron expression: the allowed values of each field."""

    text: str  # canonical 5-field form
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday (7 folded into 0)
    days_or_weekdays: bool  # Vixie: OR the day fields when neither starts with '*'
    fixed_time: bool  # R1: minute and hour fields both start with a digit
    minutes_of_day: tuple[int, ...]  # sorted hour * 60 + minute

    def matches_day(self, day: date) -> bool:
        """Return whether `day` is a day this expression fires on."""
        if day.month not in self.months:
            return False
        on_day = day.day in self.days
        on_weekday = (day.weekday() + 1) % 7 in self.weekdays
        return on_day or on_weekday if self.days_or_weekdays else on_day and on_weekday

    def matches(self, wall: datetime) -> bool:
        """Return whether the naive wall time `wall` (a whole minute) matches."""
        return (
            wall.second == 0
            and wall.microsecond == 0
            and self.matches_day(wall.date())
            and (wall.hour in self.hours and wall.minute in self.minutes)
        )


@lru_cache(maxsize=4096)
def parse_cron(expr: str) -> CronExpression:
    """Parse a 5-field Vixie cron expression or preset, or raise CronError."""
    fields = expr.split()
    if len(fields) == 1 and fields[0].startswith("@"):
        if fields[0].lower() not in PRESETS:
            raise CronError(f'cron "{expr}": {fields[0]} is not supported; use one of {", ".join(PRESETS)}')
        fields = PRESETS[fields[0].lower()].split()
    if len(fields) != len(_FIELDS):
        raise CronError(
            f'cron "{expr}" has {len(fields)} fields; use 5 (minute hour day-of-month '
            "month day-of-week) or a preset such as @daily"
        )
    values = [_parse_field(expr, part, spec) for part, spec in zip(fields, _FIELDS, strict=True)]
    minutes, hours, days, months, weekdays = values
    return CronExpression(
        text=" ".join(fields).lower(),
        minutes=minutes,
        hours=hours,
        days=days,
        months=months,
        weekdays=frozenset(day % 7 for day in weekdays),
        days_or_weekdays=not fields[2].startswith("*") and not fields[4].startswith("*"),
        fixed_time=fields[0][0].isdigit() and fields[1][0].isdigit(),
        minutes_of_day=tuple(sorted(h * 60 + m for h in hours for m in minutes)),
    )


def _parse_field(expr: str, part: str, field: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in part.split(","):
        values.update(_parse_item(expr, item, field))
    return frozenset(values)


def _parse_item(expr: str, item: str, field: _Field) -> range:
    match = _ITEM.fullmatch(item)
    if match is None:
        raise _not_vixie(expr, item, field)
    if match[4] is not None and match[1] != "*" and match[3] is None:
        raise CronError(
            f'cron "{expr}": {field.name} "{item}" has a step without a range; write {match[2]}-{field.high}/{match[4]}'
        )
    low, high = (
        (field.low, field.high)
        if match[1] == "*"
        else (_parse_value(expr, match[2], field), _parse_value(expr, match[3] or match[2], field))
    )
    step = int(match[4] or 1)
    if step == 0:
        raise CronError(f'cron "{expr}": {field.name} "{item}" has a step of 0')
    if low > high:
        raise CronError(
            f'cron "{expr}": {field.name} "{item}" runs backwards; Vixie cron ranges '
            "do not wrap around, write two items instead (e.g. 5-6,0)"
        )
    return range(low, high + 1, step)


def _parse_value(expr: str, token: str, field: _Field) -> int:
    if token.lower() in field.names:
        return field.names[token.lower()]
    if not token.isdigit():
        raise _not_vixie(expr, token, field)
    if not field.low <= int(token) <= field.high:
        raise CronError(f'cron "{expr}": {field.name} "{token}" is out of range {field.low}-{field.high}')
    return int(token)


def _not_vixie(expr: str, item: str, field: _Field) -> CronError:
    return CronError(f'cron "{expr}": {field.name} "{item}" is not Vixie cron (allowed: {field.allowed})')


def validate_cron(expr: str, min_interval: timedelta = MINUTE) -> str:
    """Return the canonical 5-field form or raise CronError."""
    cron = parse_cron(expr)
    if not _has_a_day(cron):
        raise CronError(f'cron "{expr}" never fires')
    gap = _shortest_gap(cron, min_interval)
    if gap < min_interval:
        raise CronError(
            f'cron "{expr}" fires {_duration(gap)} apart at its closest, more often '
            f"than the minimum interval of {_duration(min_interval)}"
        )
    return cron.text


def _has_a_day(cron: CronExpression) -> bool:
    # Each valid (month, day) falls on every weekday in some year (Feb 29 within 28 years).
    return cron.days_or_weekdays or any(
        day <= _LEAP_MONTH_DAYS[month - 1] for month in cron.months for day in cron.days
    )


def _shortest_gap(cron: CronExpression, enough: timedelta) -> timedelta:
    """Return the smallest wall-clock gap between consecutive fire times, or one >= `enough`."""
    times = cron.minutes_of_day
    within_day = min((b - a for a, b in pairwise(times)), default=10**9)  # one time a day: none
    overnight = _DAY_MINUTES - times[-1] + times[0]  # if the next day fires too
    if timedelta(minutes=overnight) < enough and overnight < within_day:
        overnight += _DAY_MINUTES * (_shortest_day_gap(cron) - 1)
    return timedelta(minutes=min(within_day, overnight))


def _shortest_day_gap(cron: CronExpression) -> int:
    """Return the fewest days between two firing days over a 28-year weekday cycle."""
    cycle = (date(2000, 1, 1) + timedelta(days=n) for n in range(366 * 29))
    days = [day for day in cycle if cron.matches_day(day)]
    return min(((b - a).days for a, b in pairwise(days)), default=366 * 29)


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 60:
        return f"{seconds} seconds"
    if seconds % 3600:
        return f"{seconds // 60} minute{'s' * (seconds != 60)}"
    return f"{seconds // 3600} hour{'s' * (seconds != 3600)}"


def validate_timezone(name: str) -> ZoneInfo:
    """Return the IANA zone called `name` or raise CronError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(f'timezone "{name}" is not a known IANA timezone (e.g. Europe/Berlin)') from None


def is_fixed_time(expr: str) -> bool:
    """Return whether minute and hour fields both start with a digit (R1)."""
    return parse_cron(expr).fixed_time


@lru_cache(maxsize=4096)  # a pass renders the same few instants for thousands of pipelines
def format_execution_date(instant: datetime, tz: str) -> str:
    """Render `instant` as `%Y-%m-%d %H:%M:%S` wall time in `tz` (R2)."""
    return _aware(instant, "instant").astimezone(validate_timezone(tz)).strftime("%Y-%m-%d %H:%M:%S")


def wall_time_to_instant(wall: datetime, tz: str) -> datetime:
    """Return the UTC instant of naive `wall` in `tz`: gap -> first instant after it, fold -> first."""
    zone = validate_timezone(tz)
    early = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if early.astimezone(zone).replace(tzinfo=None) == wall:
        return early
    return _offset_change(zone, wall.replace(tzinfo=zone, fold=1).astimezone(UTC), early)


def fire_times(expr: str, tz: str, after: datetime, until: datetime, *, limit: int | None = None) -> list[datetime]:
    """Return the fire instants t with after < t <= until, oldest first (at most `limit`)."""
    window = _Window.of(after, until)
    return list(islice(_instants(parse_cron(expr), validate_timezone(tz), window, False), limit))


def newest_fire_times(expr: str, tz: str, after: datetime, until: datetime, n: int) -> list[datetime]:
    """Return the newest `n` fire instants in (after, until], oldest first, walking back."""
    window = _Window.of(after, until)
    newest = islice(_instants(parse_cron(expr), validate_timezone(tz), window, True), n)
    return list(newest)[::-1]


def next_fire_time(expr: str, tz: str, after: datetime) -> datetime | None:
    """Return the first fire instant after `after`, or None if there is none within 30 years."""
    cron, zone = parse_cron(expr), validate_timezone(tz)
    start = _aware(after, "after")
    for horizon in _HORIZONS:  # widen the window so a sparse cron doesn't scan decades up front
        found = next(_instants(cron, zone, _Window.of(start, start + horizon), False), None)
        if found is not None:
            return found
    return None


def fire_times_and_next(
    expr: str, tz: str, after: datetime, until: datetime, limit: int
) -> tuple[list[datetime], datetime | None]:
    """Return up to `limit` fire instants in (after, until], oldest first, and the fire instant after them.

    One forward walk instead of `fire_times` plus `next_fire_time`: the second value is the first
    fire instant after the last one returned (after `after` when none is), which is <= `until`
    when `limit` cut the list short; None if there is none within 30 years.
    """
    cron, zone = parse_cron(expr), validate_timezone(tz)
    start, end = _aware(after, "after"), _aware(until, "until")
    found: list[datetime] = []
    for instant in _instants(cron, zone, _Window.of(start, max(start, end) + _HORIZONS[0]), False):
        if instant > end or len(found) >= limit:
            return found, instant
        found.append(instant)
    return found, next_fire_time(expr, tz, found[-1] if found else start)


def count_fire_times(expr: str, tz: str, after: datetime, until: datetime) -> int:
    """Return how many fire instants lie in (after, until], exactly, in O(days) not O(fires)."""
    cron, zone, window = parse_cron(expr), validate_timezone(tz), _Window.of(after, until)
    total = 0
    for span in _spans_forward(zone, window):
        first, last = _span_walls(cron, span, window)
        total += _count_walls(cron, first, last)
        start_wall = _wall(span.start, span.offset)
        counted = first <= start_wall <= last and cron.matches(start_wall)
        if _gap_fires(cron, span, window) and not counted:
            total += 1  # the gap's wall times fire once, at the change
    return total


@dataclass(frozen=True)
class _Window:
    """The instants t with after < t <= until, in UTC."""

    after: datetime
    until: datetime

    @classmethod
    def of(cls, after: datetime, until: datetime) -> _Window:
        return cls(_aware(after, "after").astimezone(UTC), _aware(until, "until").astimezone(UTC))

    def __contains__(self, instant: datetime) -> bool:
        return self.after < instant <= self.until


@dataclass(frozen=True)
class _Span:
    """UTC time [start, end) at one `offset`; `previous` is the offset before a transition at start."""

    start: datetime
    end: datetime | None
    offset: timedelta
    previous: timedelta | None


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")
    return value


def _wall(instant: datetime, offset: timedelta) -> datetime:
    return (instant + offset).replace(tzinfo=None)


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always knows its offset
    return offset


def _offset_change(zone: ZoneInfo, low: datetime, high: datetime) -> datetime:
    """Return the first whole second in (low, high] whose offset differs from low's."""
    before = _offset(zone, low)
    low_s, high_s = int(low.timestamp() // 1), -int(-high.timestamp() // 1)
    while high_s - low_s > 1:
        middle = (low_s + high_s) // 2
        if _offset(zone, datetime.fromtimestamp(middle, UTC)) == before:
            low_s = middle
        else:
            high_s = middle
    return datetime.fromtimestamp(high_s, UTC)


def _spans_forward(zone: ZoneInfo, window: _Window) -> Iterator[_Span]:
    start = cursor = window.after - _LOOKBACK
    offset, previous = _offset(zone, start), None
    while cursor < window.until:
        step_end = min(cursor + _SCAN_STEP, window.until)
        if _offset(zone, step_end) != offset:
            change = _offset_change(zone, cursor, step_end)
            yield _Span(start, change, offset, previous)
            start, previous, offset = change, offset, _offset(zone, change)
        elif step_end - start >= _SPAN_CAP:  # hand out long spans in pieces, lazily
            yield _Span(start, step_end, offset, previous)
            start, previous = step_end, None
        cursor = step_end
    yield _Span(start, None, offset, previous)


def _spans_backward(zone: ZoneInfo, window: _Window) -> Iterator[_Span]:
    floor, end, cursor = window.after - _LOOKBACK, None, window.until
    offset = _offset(zone, cursor)
    while cursor > floor:
        step_start = max(cursor - _SCAN_STEP, floor)
        before = _offset(zone, step_start)
        if before != offset:
            change = _offset_change(zone, step_start, cursor)
            yield _Span(change, end, offset, before)
            end, offset = change, before
        elif (end is None or end - step_start >= _SPAN_CAP) and (
            _offset(zone, step_start - _LOOKBACK) == offset
        ):  # not just after a transition
            yield _Span(step_start, end, offset, None)
            end = step_start
        cursor = step_start
    yield _Span(floor, end, offset, None)


def _instants(cron: CronExpression, zone: ZoneInfo, window: _Window, newest_first: bool) -> Iterator[datetime]:
    """Yield the fire instants in `window` in order, each once."""
    if window.until <= window.after:
        return
    spans = _spans_backward(zone, window) if newest_first else _spans_forward(zone, window)
    last: datetime | None = None
    for span in spans:
        for instant in _span_instants(cron, span, window, newest_first):
            if instant != last:
                yield instant
                last = instant


def _span_instants(cron: CronExpression, span: _Span, window: _Window, newest_first: bool) -> Iterator[datetime]:
    first, last = _span_walls(cron, span, window)
    direct: Iterator[datetime] = iter(())
    if _count_walls(cron, first, last):
        walls = _walls_backward(cron, first, last) if newest_first else _walls_forward(cron, first, last)
        direct = ((wall - span.offset).replace(tzinfo=UTC) for wall in walls)
    gap = [span.start] if _gap_fires(cron, span, window) else []
    return chain(direct, gap) if newest_first else chain(gap, direct)


def _span_walls(cron: CronExpression, span: _Span, window: _Window) -> tuple[datetime, datetime]:
    """Return the first and last wall minute of `span` inside `window` that may fire."""
    first = max(
        _ceil_minute(_wall(window.after, span.offset), strict=True),
        _ceil_minute(_wall(span.start, span.offset), strict=False),
    )
    if cron.fixed_time and span.previous is not None and span.previous > span.offset:
        # Fall-back: wall times repeated from the previous span fired there already (D1).
        first = max(first, _ceil_minute(_wall(span.start, span.previous), strict=False))
    last = _wall(window.until, span.offset).replace(second=0, microsecond=0)
    if span.end is not None:
        last = min(last, _ceil_minute(_wall(span.end, span.offset), strict=False) - MINUTE)
    return first, last


def _gap_fires(cron: CronExpression, span: _Span, window: _Window) -> bool:
    """Return whether wall times skipped by a spring-forward at span.start fire there (R1)."""
    if span.previous is None or span.previous >= span.offset or span.start not in window:
        return False
    first = _ceil_minute(_wall(span.start, span.previous), strict=False)
    last = _ceil_minute(_wall(span.start, span.offset), strict=False) - MINUTE
    return _count_walls(cron, first, last) > 0


def _ceil_minute(wall: datetime, *, strict: bool) -> datetime:
    minute = wall.replace(second=0, microsecond=0)
    return minute + MINUTE if minute < wall or (strict and minute == wall) else minute


def _walls_forward(cron: CronExpression, first: datetime, last: datetime) -> Iterator[datetime]:
    """Yield the matching wall minutes in [first, last] (whole minutes), oldest first, day by day."""
    times, day, low = cron.minutes_of_day, first.date(), first.hour * 60 + first.minute
    while day <= last.date():
        if cron.matches_day(day):
            midnight = datetime(day.year, day.month, day.day)
            for minute in times[bisect.bisect_left(times, low) :]:
                wall = midnight + timedelta(minutes=minute)
                if wall > last:
                    return
                yield wall
        day, low = day + timedelta(days=1), 0


def _walls_backward(cron: CronExpression, first: datetime, last: datetime) -> Iterator[datetime]:
    """Yield the matching wall minutes in [first, last] (whole minutes), newest first, day by day."""
    times, day, high = cron.minutes_of_day, last.date(), last.hour * 60 + last.minute
    while day >= first.date():
        if cron.matches_day(day):
            midnight = datetime(day.year, day.month, day.day)
            for minute in reversed(times[: bisect.bisect_right(times, high)]):
                wall = midnight + timedelta(minutes=minute)
                if wall < first:
                    return
                yield wall
        day, high = day - timedelta(days=1), _DAY_MINUTES - 1


def _count_walls(cron: CronExpression, first: datetime, last: datetime) -> int:
    """Return how many wall minutes in [first, last] match, counting day by day."""
    if first > last:
        return 0
    first_day, last_day = first.date(), last.date()
    start_minute, end_minute = first.hour * 60 + first.minute, last.hour * 60 + last.minute
    if first_day == last_day:
        return _count_in_day(cron, first_day, start_minute, end_minute)
    total = _count_in_day(cron, first_day, start_minute, _DAY_MINUTES - 1)
    total += _count_in_day(cron, last_day, 0, end_minute)
    day = first_day + timedelta(days=1)
    while day < last_day:
        total += len(cron.minutes_of_day) if cron.matches_day(day) else 0
        day += timedelta(days=1)
    return total


def _count_in_day(cron: CronExpression, day: date, low: int, high: int) -> int:
    if not cron.matches_day(day):
        return 0
    times = cron.minutes_of_day
    return bisect.bisect_right(times, high) - bisect.bisect_left(times, low)
