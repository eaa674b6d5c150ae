"""Scheduler benchmark: one pass (`make_timerun_config`) over 1,000 and 10,000 enabled cron pipelines,
with the SQL statements each pass sends, and the three-year outage.

    python3 benchmarks/bench_scheduler.py [--database postgresql://postgres@127.0.0.1/postgres]
                                          [--sizes 1000,10000]

Each size gets a fresh database with N one-task pipelines `M * * * *` (M = i mod 60: hourly, spread
over the minutes), start_time 2026-01-01 00:00 UTC, expired_limit 1, max_active_runs 1. Passes:

1. 00:59  first pass: every pipeline is due, each creates its first record and launches a cron run
          (a run with its task instances, started in the same transaction);
2. 01:00  steady state: only the pipelines firing at minute 0 (N/60) are due; their slot is taken,
          so the record waits;
3. 01:59  every pipeline is due again (one new record each), no slot free: no launch.

Statements are counted with a `before_cursor_execute` listener (an executemany counts once).
The outage case: `* * * * *`, expired_limit 5, start_time 2023-01-01, one pass at 2025-12-31 23:59.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.databases import drop_database, fresh_database  # noqa: E402


def build(url: str, home: Path) -> Any:
    from myapp.db.migrate import upgrade
    from myapp.services import build_services
    from myapp.settings import Settings

    services = build_services(Settings(home=home, database_url=url, secret_key="bench"))
    upgrade(services.db)
    return services


def populate(services: Any, n: int, *, cron_of: Any, start: datetime, expired_limit: int = 1) -> None:
    """Insert `n` enabled cron pipelines, one version each, in a few bulk statements."""
    from sqlalchemy import insert, text

    from myapp.core.pipeline_spec import parse_pipeline, pipeline_to_dict
    from myapp.db.tables import Pipeline, PipelineVersion, Project

    spec = pipeline_to_dict(parse_pipeline({"name": "bench", "tasks": [
        {"name": "a", "image": "local", "command": ["true"]}]}))
    with services.db.write() as s:
        s.execute(insert(Project.__table__), [{"id": 1, "name": "default", "description": "", "created_at": start}])
        s.execute(insert(Pipeline.__table__), [{
            "id": i, "project_id": 1, "name": f"p{i}", "description": "", "created_at": start, "updated_at": start,
            "schedule_type": "crontab", "cron": cron_of(i), "timezone": "UTC", "start_time": start,
            "depends_on_past": False, "expired_limit": expired_limit, "max_active_runs": 1,
            "schedule_enabled": True, "alerts": {}} for i in range(1, n + 1)])
        s.execute(insert(PipelineVersion.__table__), [{
            "id": i, "pipeline_id": i, "number": 1, "spec": spec, "spec_hash": "bench", "message": "",
            "created_at": start} for i in range(1, n + 1)])
        s.execute(text("UPDATE pipelines SET current_version_id = id"))
    if services.db.engine.dialect.name == "postgresql":
        with services.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))


class StatementCounter:
    """Counts the SQL statements sent on an engine, and apart those that create the launched runs."""

    def __init__(self, services: Any) -> None:
        from sqlalchemy import event

        self.count = self.per_run = 0
        self._in_run = False
        event.listen(services.db.engine, "before_cursor_execute", self._on_execute)
        create_in = services.runs.create_in

        def counted_create_in(*args: Any, **kwargs: Any) -> Any:
            self._in_run = True
            try:
                return create_in(*args, **kwargs)
            finally:
                self._in_run = False
        services.runs.create_in = counted_create_in

    def reset(self) -> None:
        self.count = self.per_run = 0

    def _on_execute(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.count += 1
        if self._in_run or statement.startswith(("SAVEPOINT", "RELEASE SAVEPOINT")):
            self.per_run += 1  # the run, its task instances, its start; the savepoint around it


def timed_pass(services: Any, counter: StatementCounter, now: datetime) -> tuple[float, str, Any]:
    from myapp.scheduler import run_pass

    counter.reset()
    started = time.perf_counter()
    report = run_pass(services, now)
    seconds = time.perf_counter() - started
    runs = f" ({counter.count - counter.per_run} + {counter.per_run} creating the runs)" if counter.per_run else ""
    return seconds, f"{counter.count}{runs}", report


def bench_size(server: str, n: int) -> None:
    url = fresh_database(server)
    try:
        with tempfile.TemporaryDirectory() as home:
            services = build(url, Path(home))
            populate(services, n, cron_of=lambda i: f"{i % 60} * * * *", start=datetime(2026, 1, 1, tzinfo=UTC))
            counter = StatementCounter(services)
            for label, now in (("first pass, all due, 1 launch each", "2026-01-01T00:59:00+00:00"),
                               ("steady state, 1/60 due, slots full", "2026-01-01T01:00:00+00:00"),
                               ("all due, 1 record each, no launch", "2026-01-01T01:59:00+00:00")):
                seconds, statements, report = timed_pass(services, counter, datetime.fromisoformat(now))
                print(f"{n:>6} pipelines | {label:<38} | {report.pipelines:>6} due | {report.created:>6} created | "
                      f"{len(report.launched):>6} launched | {seconds * 1000:8.1f} ms | {statements} statements")
            services.db.dispose()
    finally:
        drop_database(server, url)


def bench_outage(server: str) -> None:
    url = fresh_database(server)
    try:
        with tempfile.TemporaryDirectory() as home:
            services = build(url, Path(home))
            populate(services, 1, cron_of=lambda _: "* * * * *", start=datetime(2023, 1, 1, tzinfo=UTC),
                     expired_limit=5)
            counter = StatementCounter(services)
            seconds, statements, report = timed_pass(services, counter, datetime(2025, 12, 31, 23, 59, tzinfo=UTC))
            print(f"outage: 3 years of '* * * * *', expired_limit 5 | {report.created} created, {report.skipped:,} "
                  f"skipped, {len(report.launched)} launched | {seconds * 1000:.1f} ms | {statements} statements")
            services.db.dispose()
    finally:
        drop_database(server, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1/postgres")
    parser.add_argument("--sizes", default="1000,10000")
    args = parser.parse_args()
    for n in (int(x) for x in args.sizes.split(",")):
        bench_size(args.database, n)
    bench_outage(args.database)


if __name__ == "__main__":
    main()
