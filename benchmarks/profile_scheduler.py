"""Where a scheduler pass's client CPU goes: bench_scheduler.py's four passes, each batch run in this
thread one after the other, with the CPU (`time.process_time`) of the pass's main steps summed and
the Python function calls counted (cProfile over the whole pass: a deterministic figure to compare
two trees by, where the CPU moves with the machine's load).

    python3 benchmarks/profile_scheduler.py [--size 10000] [--database postgresql://...]

Each step's figure includes what it calls (draft_many_in includes parsing the versions). Not a
timing of the real pass: that runs two batches in flight (bench_scheduler.py). Run it under
`flock /work/bench.lock` on a shared machine.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_scheduler import StatementCounter, build, end_every_run, populate  # noqa: E402
from benchmarks.databases import drop_database, fresh_database  # noqa: E402

PASSES = (
    ("first pass, all due, 1 launch each", "2026-01-01T00:59:00+00:00"),
    ("steady state, 1/60 due, slots full", "2026-01-01T01:00:00+00:00"),
    ("all due, 1 record each, no launch", "2026-01-01T01:59:00+00:00"),
    ("all due again, 1 launch each", "2026-01-01T02:59:00+00:00"),
)


def _timed(spent: Counter[str], label: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] += time.process_time() - started

    return timed


def instrument(spent: Counter[str]) -> None:
    """Wrap the pass's steps (module attributes the batch calls through) so their CPU is summed."""
    from myapp.db import run_store, specs
    from myapp.scheduling import batch, scheduler

    steps = {
        (scheduler, "claim_due"): "claim",
        (batch, "load_snapshots"): "snapshots",
        (batch, "plan_pass"): "planning (plan_pass)",
        (batch, "insert_records"): "records: insert_records",
        (batch, "update_pipelines"): "pipelines' UPDATE",
        (batch, "expire_records"): "expiry",
        (batch, "mark_launched"): "mark launched",
        (run_store, "draft_run"): "  draft_run",
        (run_store, "started_rows"): "  started_rows",
        (run_store, "insert_started"): "  insert_started (runs, task instances)",
        (run_store.RunStore, "draft_many_in"): "draft_many_in",
        (run_store.RunStore, "create_drafts_in"): "create_drafts_in",
        (specs.VersionSpecs, "get_many"): "  parsing versions (VersionSpecs.get_many)",
        (batch, "create_from_templates"): "create_from_templates (runs, task instances, records)",
        (batch, "fill_from_drafts"): "  fill_from_drafts (templates of drafted versions)",
        (batch.Batch, "_insert"): "records: Batch._insert (with insert_records)",
        (batch.Batch, "_launch"): "launching (Batch._launch, with the records)",
        (batch.Batch, "run"): "the batches (Batch.run)",
    }
    for (owner, name), label in steps.items():
        setattr(owner, name, _timed(spent, label, getattr(owner, name)))


def run_batches(services: Any, now: datetime) -> Any:
    """Run a pass's batches one after the other in this thread (the pass itself keeps two in flight)."""
    from myapp.scheduling.batch import PassReport
    from myapp.scheduling.scheduler import BATCH_SIZE, _Claim, _run_batch

    report, after = PassReport(now), 0
    while True:
        claim = _Claim()
        done, _ = _run_batch(services, now, claim, after_id=after, limit=BATCH_SIZE)
        if not claim.ids:
            return report
        after = claim.ids[-1]
        report.add(done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1/postgres")
    parser.add_argument("--size", type=int, default=10_000)
    args = parser.parse_args()
    calls(args)  # first: the timers below would add calls of their own
    spent: Counter[str] = Counter()
    instrument(spent)
    url = fresh_database(args.database)
    try:
        with tempfile.TemporaryDirectory() as home:
            services = build(url, Path(home))
            populate(services, args.size, cron_of=lambda i: f"{i % 60} * * * *", start=datetime(2026, 1, 1, tzinfo=UTC))
            counter = StatementCounter(services)
            for label, now in PASSES:
                if now.startswith("2026-01-01T02"):
                    end_every_run(services)
                counter.reset()
                spent.clear()
                gc.disable()  # as run_pass does
                started = time.process_time()
                report = run_batches(services, datetime.fromisoformat(now))
                cpu = time.process_time() - started
                gc.enable()
                print(
                    f"{label}: {report.pipelines} due, {len(report.launched)} launched, client CPU {cpu * 1000:.0f} ms, "
                    f"{counter.count} statements"
                )
                for step, seconds in sorted(spent.items(), key=lambda item: -item[1]):
                    print(f"    {step:<48} {seconds * 1000:7.0f} ms")
            services.db.dispose()
    finally:
        drop_database(args.database, url)


def calls(args: argparse.Namespace) -> None:
    """The Python function calls of each pass, on a fresh database (cProfile slows the pass down)."""
    url = fresh_database(args.database)
    try:
        with tempfile.TemporaryDirectory() as home:
            services = build(url, Path(home))
            populate(services, args.size, cron_of=lambda i: f"{i % 60} * * * *", start=datetime(2026, 1, 1, tzinfo=UTC))
            for label, now in PASSES:
                if now.startswith("2026-01-01T02"):
                    end_every_run(services)
                profile = cProfile.Profile(time.process_time)
                gc.disable()
                profile.enable()
                run_batches(services, datetime.fromisoformat(now))
                profile.disable()
                gc.enable()
                print(f"{label}: {pstats.Stats(profile).total_calls:,} Python calls")  # type: ignore[attr-defined]
            services.db.dispose()
    finally:
        drop_database(args.database, url)


if __name__ == "__main__":
    main()
