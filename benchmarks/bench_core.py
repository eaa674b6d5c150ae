"""Speed of the pure core's large cases whose unit tests bound the work, not the time.

The unit tests (tests/unit/core/test_validate.py, test_schedule.py, test_cron.py, test_sandbox.py)
count calls, so a slow machine cannot fail them; this prints the wall time of the same cases:

    python3 benchmarks/bench_core.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from myapp.core.cron import count_fire_times, newest_fire_times  # noqa: E402
from myapp.core.sandbox import weight  # noqa: E402
from myapp.core.schedule import Record, plan_pass  # noqa: E402
from myapp.core.states import RunState  # noqa: E402
from myapp.core.validate import validate_pipeline  # noqa: E402
from tests.factories import (  # noqa: E402
    from_task,
    make_catalog,
    make_output,
    make_pipeline,
    make_schedule,
    make_task,
    make_template,
)


def chain(n: int) -> object:
    tasks = [make_task("t0", outputs=(make_output(),))]
    tasks += [
        make_task(
            f"t{i}", depends_on=(f"t{i - 1}",), inputs=(from_task("x", f"t{i - 1}.out"),), outputs=(make_output(),)
        )
        for i in range(1, n)
    ]
    return make_pipeline(tasks=tasks)


def cases() -> dict[str, Callable[[], object]]:
    catalog, spec = make_catalog(make_template()), chain(10_000)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    schedule = make_schedule(cron="* * * * *", expired_limit=5, timezone="Europe/Berlin", start_time=start)
    old = [Record(start, "launched", RunState.SUCCEEDED), Record(start + timedelta(minutes=1), "waiting")]
    outage_end = datetime(2029, 1, 1, 0, 0, 30, tzinfo=UTC)
    after, until = datetime(2023, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)
    big = [["x" * 1000] * 1000] * 1000
    return {
        "validate a 10,000-task chain": lambda: validate_pipeline(spec, catalog),  # type: ignore[arg-type]
        "plan a pass after a 3-year outage of * * * * *": lambda: plan_pass(schedule, old, 0, outage_end),
        "newest 5 fire times over 3 years": lambda: newest_fire_times("* * * * *", "Europe/Berlin", after, until, 5),
        "count 3 years of every-minute fire times": lambda: count_fire_times(
            "* * * * *", "Europe/Berlin", after, until
        ),
        "weight of a million 1000-char strings (stops at the limit)": lambda: weight(big),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for name, case in cases().items():
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            case()
            times.append(time.perf_counter() - started)
        print(
            f"{name}: median {statistics.median(times) * 1000:.1f} ms (min {min(times) * 1000:.1f}, "
            f"max {max(times) * 1000:.1f}; {args.repeat} runs)"
        )


if __name__ == "__main__":
    main()
