"""Scheduler benchmark: one pass (`make_timerun_config`) over 1,000 and 10,000 enabled cron pipelines,
with the SQL statements each pass sends and the CPU it costs on both sides, and the three-year outage.

    python3 benchmarks/bench_scheduler.py [--database postgresql://postgres@127.0.0.1/postgres]
                                          [--sizes 1000,10000] [--batch-size 500] [--no-templates]

Each size gets a fresh database with N one-task pipelines `M * * * *` (M = i mod 60: hourly, spread
over the minutes), start_time 2026-01-01 00:00 UTC, expired_limit 1, max_active_runs 1, and each
version's launch template as saving it writes (`--no-templates`: versions saved before migration
0010, whose first launching pass drafts the runs and writes the templates). Passes:

1. 00:59  first pass: every pipeline is due, each creates its first record and launches a cron run
          (a run with its task instance, started in the same transaction); the process has not
          parsed any pipeline version (and with templates never does);
2. 01:00  steady state: only the pipelines firing at minute 0 (N/60) are due; their slot is taken,
          so the record waits;
3. 01:59  every pipeline is due again (one new record each), no slot free: no launch;
   (then, not timed, every run is marked succeeded in one UPDATE: the slots are free)
4. 02:59  every pipeline is due and launches again: it creates its 02:MM record, expires the 01:MM
          one (expired_limit 1) and launches a run.

Per pass: wall-clock time (and, for the passes over all 10,000, whether issue 14's < 1 s held: a
figure for an idle 2-core machine), CPU time of this process ("client") and of the database's server
processes ("server", read from /proc: only when the server runs on this machine), the statements
(counted with a `before_cursor_execute` listener, an executemany counts once; "creating the runs"
are those of RunStore.draft_many_in, create_drafts_in and create_in, and of launch_templates'
create_from_templates and fill_from_drafts), and the load average.
Dispatching the queued tasks is not part of it (no broker). The outage case: `* * * * *`,
expired_limit 5, start_time 2023-01-01, one pass at 2025-12-31 23:59.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import machine_speed  # noqa: E402
from benchmarks.databases import drop_database, fresh_database  # noqa: E402

RUN_CREATION = ("draft_many_in", "create_drafts_in", "create_in")
TEMPLATED = ("create_from_templates", "fill_from_drafts")  # run creation from launch templates (scheduling.batch)


def build(url: str, home: Path) -> Any:
    from myapp.db.migrate import upgrade
    from myapp.services import build_services
    from myapp.settings import Settings

    services = build_services(Settings(home=home, database_url=url, secret_key="bench"))
    upgrade(services.db)
    return services


def populate(
    services: Any, n: int, *, cron_of: Any, start: datetime, expired_limit: int = 1, templates: bool = True
) -> None:
    """Insert `n` enabled cron pipelines, one version each (own name, own spec), in a few bulk statements.

    With `templates`, each version's launch template too, as PipelineStore.save writes it; without,
    the versions are as saved before migration 0010 (the first launching pass drafts and fills them).
    """
    from sqlalchemy import insert, text

    from myapp.core.dag import Dag
    from myapp.core.pipeline_spec import parse_pipeline, pipeline_to_dict
    from myapp.db.launch_templates import template_rows, write_templates
    from myapp.db.tables import Pipeline, PipelineVersion, Project

    def spec(i: int) -> dict[str, Any]:
        return pipeline_to_dict(
            parse_pipeline({"name": f"p{i}", "tasks": [{"name": "a", "image": "local", "command": ["true"]}]})
        )

    with services.db.write() as s:
        s.execute(insert(Project.__table__), [{"id": 1, "name": "default", "description": "", "created_at": start}])
        s.execute(
            insert(Pipeline.__table__),
            [
                {
                    "id": i,
                    "project_id": 1,
                    "name": f"p{i}",
                    "description": "",
                    "created_at": start,
                    "updated_at": start,
                    "schedule_type": "crontab",
                    "cron": cron_of(i),
                    "timezone": "UTC",
                    "start_time": start,
                    "depends_on_past": False,
                    "expired_limit": expired_limit,
                    "max_active_runs": 1,
                    "schedule_enabled": True,
                    "alerts": {},
                }
                for i in range(1, n + 1)
            ],
        )
        s.execute(
            insert(PipelineVersion.__table__),
            [
                {
                    "id": i,
                    "pipeline_id": i,
                    "number": 1,
                    "spec": spec(i),
                    "spec_hash": f"bench-{i}",
                    "message": "",
                    "created_at": start,
                }
                for i in range(1, n + 1)
            ],
        )
        s.execute(text("UPDATE pipelines SET current_version_id = id"))
        if templates:
            rows = []
            for i in range(1, n + 1):
                parsed = parse_pipeline(spec(i))
                rows += template_rows(i, parsed, Dag.from_spec(parsed)) or []
            write_templates(s, rows)
    if services.db.engine.dialect.name == "postgresql":
        with services.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))


class StatementCounter:
    """Counts the SQL statements sent on an engine, and apart those that create the launched runs."""

    current: StatementCounter | None = None

    def __init__(self, services: Any) -> None:
        from sqlalchemy import event

        self.count = self.per_run = 0
        self.wall = 0.0  # the last timed pass's wall-clock seconds
        self._local = threading.local()  # the pass runs its batches in two threads
        self._lock = threading.Lock()
        event.listen(services.db.engine, "before_cursor_execute", self._on_execute)
        for name in RUN_CREATION:
            setattr(services.runs, name, self._counted(getattr(services.runs, name)))
        from myapp.scheduling import batch

        StatementCounter.current = self
        for name in TEMPLATED:  # module functions: wrapped once per process, counted by the newest counter
            function = getattr(batch, name)
            if not hasattr(function, "counted"):
                setattr(batch, name, _counted_by_current(function))

    def _counted(self, method: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            outer = getattr(self._local, "in_run", False)
            self._local.in_run = True
            try:
                return method(*args, **kwargs)
            finally:
                self._local.in_run = outer

        return counted

    def reset(self) -> None:
        self.count = self.per_run = 0

    def _on_execute(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        with self._lock:
            self.count += 1
            if getattr(self._local, "in_run", False) or statement.startswith(("SAVEPOINT", "RELEASE SAVEPOINT")):
                self.per_run += 1


def _counted_by_current(function: Any) -> Any:
    def counted(*args: Any, **kwargs: Any) -> Any:
        counter = StatementCounter.current
        return function(*args, **kwargs) if counter is None else counter._counted(function)(*args, **kwargs)

    counted.counted = True  # type: ignore[attr-defined]
    return counted


class ServerCpu:
    """CPU seconds used by the database server's processes serving this database (Linux /proc)."""

    def __init__(self, services: Any) -> None:
        self.engine = services.db.engine
        self.tick = os.sysconf("SC_CLK_TCK")

    def read(self) -> float | None:
        if self.engine.dialect.name != "postgresql":
            return None
        from sqlalchemy import text

        with self.engine.connect() as conn:
            pids = list(conn.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")))
        total = 0
        try:
            for pid in pids:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, IndexError, ValueError):
            return None
        return total / self.tick


def timed_pass(
    services: Any, counter: StatementCounter, server: ServerCpu, now: datetime, batch_size: int
) -> tuple[str, Any]:
    from myapp.scheduling.scheduler import run_pass

    counter.reset()
    server_before, client_before, started = server.read(), time.process_time(), time.perf_counter()
    report = run_pass(services, now, batch_size=batch_size)
    wall, client, server_after = time.perf_counter() - started, time.process_time() - client_before, server.read()
    counter.wall = wall
    cpu = f"client {client * 1000:6.0f} ms"
    if server_before is not None and server_after is not None:
        cpu += f", server {(server_after - server_before) * 1000:5.0f} ms"
    runs = f" ({counter.count - counter.per_run} + {counter.per_run} creating the runs)" if counter.per_run else ""
    return (
        f"{wall * 1000:8.1f} ms | CPU {cpu} | {counter.count}{runs} statements | load {os.getloadavg()[0]:.1f}",
        report,
    )


def end_every_run(services: Any) -> None:
    """Mark every active run succeeded in one statement (not timed): the slots are free again."""
    from sqlalchemy import text

    with services.db.write() as s:
        s.execute(text("UPDATE task_instances SET state = 'succeeded' WHERE state IN ('queued', 'running')"))
        s.execute(text("UPDATE runs SET state = 'succeeded' WHERE state IN ('queued', 'running')"))


def bench_size(server_url: str, n: int, batch_size: int, templates: bool = True) -> None:
    url = fresh_database(server_url)
    try:
        with tempfile.TemporaryDirectory() as home:
            services = build(url, Path(home))
            populate(
                services,
                n,
                cron_of=lambda i: f"{i % 60} * * * *",
                start=datetime(2026, 1, 1, tzinfo=UTC),
                templates=templates,
            )
            counter, server = StatementCounter(services), ServerCpu(services)
            for label, now in (
                ("first pass, all due, 1 launch each", "2026-01-01T00:59:00+00:00"),
                ("steady state, 1/60 due, slots full", "2026-01-01T01:00:00+00:00"),
                ("all due, 1 record each, no launch", "2026-01-01T01:59:00+00:00"),
                ("all due again, 1 launch each", "2026-01-01T02:59:00+00:00"),
            ):
                if now.startswith("2026-01-01T02"):
                    end_every_run(services)
                figures, report = timed_pass(services, counter, server, datetime.fromisoformat(now), batch_size)
                verdict = ""
                if n >= 10_000 and report.pipelines >= 10_000:  # issue 14 item 4 (and R3's pass without launches)
                    verdict = f" | target < 1 s: {'met' if counter.wall < 1.0 else 'NOT met'}"
                print(
                    f"{n:>6} pipelines | {label:<35} | {report.pipelines:>6} due | {report.created:>6} created | "
                    f"{len(report.launched):>6} launched | {figures}{verdict}",
                    flush=True,
                )
            services.db.dispose()
    finally:
        drop_database(server_url, url)


def bench_outage(server_url: str) -> None:
    url = fresh_database(server_url)
    try:
        with tempfile.TemporaryDirectory() as home:
            services = build(url, Path(home))
            populate(
                services, 1, cron_of=lambda _: "* * * * *", start=datetime(2023, 1, 1, tzinfo=UTC), expired_limit=5
            )
            counter, server = StatementCounter(services), ServerCpu(services)
            figures, report = timed_pass(services, counter, server, datetime(2025, 12, 31, 23, 59, tzinfo=UTC), 500)
            print(
                f"outage: 3 years of '* * * * *', expired_limit 5 | {report.created} created, {report.skipped:,} "
                f"skipped, {len(report.launched)} launched | {figures}"
            )
            services.db.dispose()
    finally:
        drop_database(server_url, url)


def main() -> None:
    from myapp.scheduling.scheduler import BATCH_SIZE

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1/postgres")
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument(
        "--no-templates",
        action="store_true",
        help="versions without launch templates (saved before migration 0010): the first launching pass drafts",
    )
    args = parser.parse_args()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine_speed.describe()}", flush=True)
    for n in (int(x) for x in args.sizes.split(",")):
        bench_size(args.database, n, args.batch_size, templates=not args.no_templates)
    bench_outage(args.database)


if __name__ == "__main__":
    main()
