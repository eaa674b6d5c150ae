"""croniter against myapp's own cron code: DST correctness (docs/rules.md R1) and speed.

The measurement behind docs/decisions/0006-croniter.md. croniter is not a dependency of myapp;
install it to rerun (`pip install 'croniter>=7,<8'`):

    python3 benchmarks/bench_croniter.py

For each case (cron, zone, a window around a DST change or a plain year) it compares the fire
instants croniter gives (aware datetimes, croniter's own DST handling) with core/cron.py's, and
times both computing the same fire times: the next fire after a point, and a whole window.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from croniter import croniter  # noqa: E402

from myapp.core.cron import fire_times, next_fire_time  # noqa: E402

BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"
SPRING = (datetime(2026, 3, 28, 22, tzinfo=UTC), datetime(2026, 3, 29, 6, tzinfo=UTC))  # Berlin gap 02:00-03:00
AUTUMN = (datetime(2026, 10, 24, 22, tzinfo=UTC), datetime(2026, 10, 25, 6, tzinfo=UTC))  # Berlin repeats 02:00-03:00
NY_SPRING = (datetime(2026, 3, 8, 4, tzinfo=UTC), datetime(2026, 3, 8, 12, tzinfo=UTC))
NY_AUTUMN = (datetime(2026, 11, 1, 3, tzinfo=UTC), datetime(2026, 11, 1, 10, tzinfo=UTC))
CASES = [
    ("30 2 * * *", BERLIN, SPRING),
    ("30 2 * * *", BERLIN, AUTUMN),
    ("0 * * * *", BERLIN, SPRING),
    ("0 * * * *", BERLIN, AUTUMN),
    ("*/15 * * * *", BERLIN, SPRING),
    ("*/15 * * * *", BERLIN, AUTUMN),
    ("0 */2 * * *", BERLIN, AUTUMN),
    ("30 1 * * *", NEW_YORK, NY_AUTUMN),
    ("30 2 * * *", NEW_YORK, NY_SPRING),
    ("0 2 * * *", "Asia/Shanghai", (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))),
    ("*/5 * * * *", "UTC", (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 8, tzinfo=UTC))),
]


def by_croniter(expr: str, tz: str, after: datetime, until: datetime) -> list[datetime]:
    it = croniter(expr, after.astimezone(ZoneInfo(tz)))
    out: list[datetime] = []
    while True:
        instant = it.get_next(datetime).astimezone(UTC)
        if instant > until:
            return out
        out.append(instant)


def timed(fn: object, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        fn()  # type: ignore[operator]
    return (time.perf_counter() - started) / repeat


def main() -> None:
    disagree = 0
    for expr, tz, (after, until) in CASES:
        ours, theirs = fire_times(expr, tz, after, until, limit=10**6), by_croniter(expr, tz, after, until)
        missing, extra = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
        same = ours == theirs
        disagree += not same
        note = (
            "same"
            if same
            else (
                f"croniter lacks {[m.isoformat() for m in missing][:3]} "
                f"adds {[e.isoformat() for e in extra][:3]}" + ("" if missing or extra else " (duplicates)")
            )
        )
        print(f"{expr:<14} {tz:<17} {after:%Y-%m-%d}: ours {len(ours):>6}, croniter {len(theirs):>6}  {note}")
    print(f"{disagree} of {len(CASES)} cases differ")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for expr, tz in (("0 2 * * *", "Asia/Shanghai"), ("*/5 * * * *", BERLIN), ("30 2 * * 1-5", BERLIN)):
        ours = timed(lambda e=expr, z=tz: next_fire_time(e, z, start), 2000)
        theirs = timed(lambda e=expr, z=tz: croniter(e, start.astimezone(ZoneInfo(z))).get_next(datetime), 2000)
        year = (start, start + timedelta(days=365))
        ours_year = timed(lambda e=expr, z=tz, y=year: fire_times(e, z, *y, limit=10**6), 3)
        theirs_year = timed(lambda e=expr, z=tz, y=year: by_croniter(e, z, *y), 3)
        print(
            f"{expr:<14} {tz:<14} next fire: ours {ours * 1e6:7.1f} us, croniter {theirs * 1e6:7.1f} us | "
            f"a year of fires: ours {ours_year * 1e3:8.1f} ms, croniter {theirs_year * 1e3:8.1f} ms"
        )


if __name__ == "__main__":
    main()
