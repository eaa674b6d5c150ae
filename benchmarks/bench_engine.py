"""Engine benchmark: task-to-task latency (a chain of 100 no-op tasks) and throughput (a fan-out of
1000 no-op tasks) with the local executor, one Celery worker with 2 processes, Redis and PostgreSQL.

    python3 benchmarks/bench_engine.py [--database postgresql://postgres@127.0.0.1/postgres]
                                       [--redis redis://127.0.0.1:6379/14] [--chain 100] [--fanout 1000]

Latency is measured from the database's own timestamps: the start of attempt N+1 minus the end of
attempt N along the chain (claim-to-claim includes the commit, the Celery hop and process spawn).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.databases import drop_database, fresh_database  # noqa: E402


def chain_yaml(n: int) -> str:
    lines = ["name: bench-chain", "tasks:"]
    for i in range(n):
        dep = f", depends_on: [t{i - 1}]" if i else ""
        lines.append(f"  - {{name: t{i}, image: local, command: ['true']{dep}}}")
    return "\n".join(lines) + "\n"


def fanout_yaml(n: int) -> str:
    lines = ["name: bench-fanout", "tasks:", "  - {name: root, image: local, command: ['true']}"]
    lines += [f"  - {{name: leaf{i}, image: local, command: ['true'], depends_on: [root]}}" for i in range(n)]
    return "\n".join(lines) + "\n"


def attempts(services: Any, run_id: int) -> list[tuple[str, datetime, datetime]]:
    from sqlalchemy import select

    from myapp.db.tables import TaskAttempt, TaskInstance

    with services.db.read() as s:
        rows = s.execute(select(TaskInstance.task_name, TaskAttempt.started_at, TaskAttempt.ended_at)
                         .join(TaskAttempt, TaskAttempt.task_instance_id == TaskInstance.id)
                         .where(TaskInstance.run_id == run_id)).all()
    return [(name, start, end) for name, start, end in rows]


def run_and_wait(services: Any, yaml_text: str, timeout: float) -> tuple[int, float]:
    """Start a run and poll only its state row (cheap, so the poller does not steal the CPU)."""
    from myapp.core.states import RUN_TERMINAL, RunState
    from myapp.db.tables import Run
    from tests.integration.engine_helpers import save, start

    pid = save(services, yaml_text)
    began = time.perf_counter()
    run_id = start(services, pid)
    while time.perf_counter() - began < timeout:
        with services.db.read() as s:
            run = s.get(Run, run_id)
            state, message = run.state, run.message
        if RunState(state) in RUN_TERMINAL:
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - began
    if state != "succeeded":
        raise SystemExit(f"benchmark run {run_id} ended {state}: {message}")
    return run_id, elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--chain", type=int, default=100)
    parser.add_argument("--fanout", type=int, default=1000)
    parser.add_argument("--pool", choices=["solo", "prefork"], default="prefork")
    args = parser.parse_args()

    import dataclasses

    import redis

    from myapp.cli.process import init_database
    from myapp.queue.celery_app import celery_dispatch, create_celery
    from myapp.services import build_services
    from tests.conftest import WorkerProcess, make_settings, worker_env

    home = Path(tempfile.mkdtemp(prefix="myapp-bench-"))
    url = fresh_database(args.database)
    redis.Redis.from_url(args.redis).flushdb()
    settings = dataclasses.replace(make_settings(home, url, heartbeat_interval=2.0), broker_url=args.redis)
    services = build_services(settings)
    init_database(services, admin_user="admin", admin_password="bench", admin_email="a@b.c", quiet=True)
    app, _ = create_celery(settings)
    services.set_dispatch(celery_dispatch(app))
    env = worker_env(settings, args.redis)
    if args.pool == "solo":  # two worker processes, each running one attempt at a time
        workers = [WorkerProcess(env, 1, "solo", beat=True), WorkerProcess(env, 1, "solo", beat=False)]
    else:  # one Celery worker with a prefork pool of two processes
        workers = [WorkerProcess(env, 2, "prefork")]
    for worker in workers:
        worker.start()
    try:
        print(f"workers: {args.pool} ({'2 x solo' if args.pool == 'solo' else 'prefork, concurrency 2'})")
        report(services, args)
    finally:
        for worker in workers:
            worker.stop()
        services.db.dispose()
        drop_database(args.database, url)


def report(services: Any, args: argparse.Namespace) -> None:
    run_and_wait(services, chain_yaml(3), 60)  # warm up the worker processes
    run_id, elapsed = run_and_wait(services, chain_yaml(args.chain), 600)
    rows = {name: (start, end) for name, start, end in attempts(services, run_id)}
    gaps = [(rows[f"t{i}"][0] - rows[f"t{i - 1}"][1]).total_seconds() * 1000 for i in range(1, args.chain)]
    durations = [(end - start).total_seconds() * 1000 for start, end in rows.values()]
    print(f"chain of {args.chain} no-op tasks: {elapsed:.2f} s wall")
    print(f"  task->task latency (end of N to start of N+1): p50 {statistics.median(gaps):.1f} ms, "
          f"p95 {percentile(gaps, 0.95):.1f} ms, max {max(gaps):.1f} ms")
    print(f"  attempt duration (spawn to exit, logs, outputs): p50 {statistics.median(durations):.1f} ms")
    run_id, elapsed = run_and_wait(services, fanout_yaml(args.fanout), 900)
    leaves = [(s, e) for name, s, e in attempts(services, run_id) if name != "root"]
    span = (max(e for _, e in leaves) - min(s for s, _ in leaves)).total_seconds()
    print(f"fan-out of {args.fanout} no-op tasks: {elapsed:.2f} s wall, leaves span {span:.2f} s")
    print(f"  throughput: {len(leaves) / span:.0f} tasks/s (2 worker processes)")
    print(f"database: {services.db.engine.dialect.name}, python {sys.version.split()[0]}, cpus {os.cpu_count()}")


if __name__ == "__main__":
    main()
