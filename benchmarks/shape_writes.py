"""Rows of task_instances a shape writes per task: a count, not a time, so two trees compare on shared cores.

    python3 benchmarks/shape_writes.py                          # layers, PostgreSQL, this tree
    python3 benchmarks/shape_writes.py --shape diamonds         # another shape of bench_shapes.py
    python3 benchmarks/shape_writes.py --repo /tmp/old-tree     # the same on another checkout

One run of the shape on a fresh database; every queued task instance is claimed and finished
(succeeded) in this process, in the order it was queued: no worker, no task process. Printed: the
row updates of task_instances the server counted (pg_stat_user_tables.n_tup_upd, read after the
connections closed, so every backend's statistics are flushed) and the SQL statements sent, per task.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def updated_rows(url: str) -> int:
    """Row updates of task_instances so far, as the server's statistics count them."""
    from sqlalchemy import create_engine, text

    time.sleep(1.2)  # a closed backend's statistics reach the shared counters within a second
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'task_instances'")
                ).scalar_one()
            )
    finally:
        engine.dispose()


def measure(url: str, shape: str) -> str:
    from sqlalchemy import event

    from benchmarks import bench_shapes
    from myapp.cli.process import init_database
    from myapp.core.values import AttemptResult
    from myapp.services import build_services
    from tests.conftest import make_settings
    from tests.integration.engine_helpers import save

    home = Path(tempfile.mkdtemp(prefix="myapp-writes-"))
    services = build_services(make_settings(home, url))
    init_database(services, admin_user="admin", admin_password="bench", admin_email="a@b.c", quiet=True)
    sent: list[int] = []
    services.set_dispatch(sent.extend)
    pid = save(services, bench_shapes.pipeline_yaml(shape, getattr(bench_shapes, shape)()))
    statements = [0]

    def count(*_: Any) -> None:
        statements[0] += 1

    services.db.dispose()
    before = updated_rows(url)
    event.listen(services.db.engine, "before_cursor_execute", count)
    bench_shapes.create_runs(services, pid, 1)
    done = 0
    while sent:
        ctx = services.attempts.claim(sent.pop(0), "bench", datetime.now(UTC))
        assert ctx is not None
        services.attempts.finish(ctx.attempt_id, AttemptResult(succeeded=True, exit_code=0), datetime.now(UTC))
        done += 1
    services.db.dispose()
    rows = updated_rows(url) - before
    return (
        f"{shape}: {done} tasks; task_instances row updates {rows} ({rows / done:.2f} per task); "
        f"SQL statements {statements[0] / done:.2f} per task"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--shape", default="layers")
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent), help="the checkout to measure")
    args = parser.parse_args()
    sys.path.insert(0, args.repo)
    from benchmarks.databases import drop_database, fresh_database

    url = fresh_database(args.database)
    try:
        print(measure(url, args.shape))
    finally:
        drop_database(args.database, url)


if __name__ == "__main__":
    main()
