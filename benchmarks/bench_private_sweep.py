"""What one sweep of leftover private /tmp directories (and of deleted runs' directories) costs on a workflow space of many runs.

Builds WORKFLOW_SPACE/RUN/TASK/TRY for `--runs` runs of `--tasks` tasks (one try each), with a
leftover `.1-private` in one task directory of every `--leftover-every` runs, then times
myapp.executor.private_tmp.sweep twice: a dry sweep with every attempt running (the listing alone:
what the hourly reconciler pays when nothing is left over) and a real one with every attempt
unknown (listing, locks, renames, deletes). The database is replaced by a function: its part is
one indexed query per 500 runs that have a leftover. Then times sweep_orphans: with every run in
the database (the top-level listing alone, plus one query per 500 run directories not counted
here), and with every `--leftover-every`-th run deleted (their directories locked, moved, deleted).

    python -m benchmarks.bench_private_sweep --runs 10000 --tasks 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.machine_speed import describe
from myapp.executor.private_tmp import sweep, sweep_orphans

Ends = Mapping[tuple[int, str, int], tuple[str, datetime | None]]


def build(space: Path, runs: int, tasks: int, leftover_every: int) -> int:
    leftovers = 0
    for run in range(1, runs + 1):
        for t in range(tasks):
            (space / str(run) / f"task{t}" / "1").mkdir(parents=True)
        if run % leftover_every == 0:
            (space / str(run) / "task0" / ".1-private" / "0").mkdir(parents=True)
            leftovers += 1
    return leftovers


def timed(space: Path, ends: Ends, dry_run: bool) -> tuple[float, float, int]:
    def attempt_ends(run_ids: Sequence[int]) -> Ends:
        return ends

    wall, cpu = time.perf_counter(), time.process_time()
    report = sweep(space, attempt_ends, datetime.now(UTC), dry_run=dry_run)
    return time.perf_counter() - wall, time.process_time() - cpu, report.removed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--leftover-every", type=int, default=100)
    args = parser.parse_args()
    print(describe())
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        space = Path(tmp)
        leftovers = build(space, args.runs, args.tasks, args.leftover_every)
        running: Ends = {
            (run, "task0", 1): ("running", None) for run in range(1, args.runs + 1) if run % args.leftover_every == 0
        }
        dirs = args.runs * (1 + 2 * args.tasks)
        wall, cpu, _ = timed(space, running, dry_run=True)
        print(f"{args.runs:,} runs x {args.tasks} tasks ({dirs:,} directories), {leftovers} leftovers")
        print(f"listing (all attempts running, nothing removed): {wall:.2f} s wall, {cpu:.2f} s CPU")
        wall, cpu, removed = timed(space, {}, dry_run=False)
        print(f"sweep removing {removed} leftovers: {wall:.2f} s wall, {cpu:.2f} s CPU")
        everyone = set(range(1, args.runs + 1))
        for label, existing in (
            ("orphans, every run in the database (nothing removed)", everyone),
            (f"orphans, every {args.leftover_every}th run deleted", {r for r in everyone if r % args.leftover_every}),
        ):
            wall, cpu = time.perf_counter(), time.process_time()
            report = sweep_orphans(space, lambda run_ids, known=existing: set(run_ids) & known)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(f"{label}: {report.removed} removed, {wall:.3f} s wall, {cpu:.3f} s CPU")


if __name__ == "__main__":
    main()
