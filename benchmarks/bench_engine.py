"""Engine benchmark: task-to-task latency (a chain of 100 no-op tasks) and throughput (a fan-out of
1000 no-op tasks) with the local executor, one Celery worker with 2 processes, Redis and PostgreSQL.

    python3 benchmarks/bench_engine.py [--database postgresql://postgres@127.0.0.1/postgres]
                                       [--redis redis://127.0.0.1:6379] [--chain 100] [--fanout 1000]

Latency is measured from the database's own timestamps: the start of attempt N+1 minus the end of
attempt N along the chain (claim-to-claim includes the commit, the Celery hop and process spawn).
CPU per fan-out task sums /proc CPU times over the fan-out: the worker process tree (with the task
processes it reaped), the PostgreSQL backends of the benchmark database, and the Redis server
(shared with anything else using it); "machine" is all CPU time used on the host meanwhile.
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

# The product's reconciler timing (config/myapp.yaml). The test suite's (reconcile every second,
# re-send a message queued for 3 s) would re-send most of a 1000-task backlog several times over.
PRODUCT_TIMING = {
    "reconcile_interval": 10,
    "requeue_after": 120,
    "heartbeat_timeout": 60,
    "heartbeat_interval": 2.0,
    "kill_grace": 5.0,
}
TEST_TIMING = {"heartbeat_interval": 2.0}


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
        rows = s.execute(
            select(TaskInstance.task_name, TaskAttempt.started_at, TaskAttempt.ended_at)
            .join(TaskAttempt, TaskAttempt.task_instance_id == TaskInstance.id)
            .where(TaskInstance.run_id == run_id)
        ).all()
    return [(name, start, end) for name, start, end in rows]


def take_redis_database(url: str) -> tuple[str, Any]:
    """Return (database URL, release): a database given in `url`, else a free one of its server.

    Free means unlocked by the test suite's lock keys (tests/conftest.py), which this takes too:
    the benchmark empties its database, and must not empty one a test run is using.
    """
    import re

    import redis

    if re.search(r"/\d+$", url):
        redis.Redis.from_url(url).flushdb()
        return url, lambda: None
    base = url.rstrip("/")
    locks = redis.Redis.from_url(base + "/0")
    for index in range(15, 0, -1):
        if locks.set(f"myapp:test:lock:{index}", f"bench_engine-{os.getpid()}", nx=True, ex=7200):
            taken = f"{base}/{index}"
            redis.Redis.from_url(taken).flushdb()

            def release(index: int = index, taken: str = taken) -> None:
                redis.Redis.from_url(taken).flushdb()
                locks.delete(f"myapp:test:lock:{index}")

            return taken, release
    raise SystemExit("no free Redis database (1-15 are all locked by test runs)")


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


class CpuMeter:
    """CPU seconds used by the benchmark's processes, read from /proc (Linux only)."""

    def __init__(self, services: Any, worker_pids: list[int]) -> None:
        self.services = services
        self.worker_pids = worker_pids
        self.tick = os.sysconf("SC_CLK_TCK")

    def _proc(self, pid: int, *, own: bool = False) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        # utime stime (own: the process alone), cutime cstime (the children it reaped)
        return sum(int(f) for f in fields[11 : 13 if own else 15]) / self.tick

    def _pool(self) -> list[int]:
        """Return the worker's direct children (the prefork pool's processes)."""
        pool = []
        for pid in self._tree():
            try:
                ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid in self.worker_pids:
                pool.append(pid)
        return pool

    def _tree(self) -> list[int]:
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
        tree, frontier = set(self.worker_pids), set(self.worker_pids)
        while frontier:
            frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - tree
            tree |= frontier
        return sorted(tree)

    def _backends(self) -> list[int]:
        from sqlalchemy import text

        if self.services.db.engine.dialect.name != "postgresql":
            return []
        with self.services.db.read() as s:
            return list(s.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")))

    def _redis(self) -> list[int]:
        return [
            int(d.name)
            for d in Path("/proc").glob("[0-9]*")
            if (d / "comm").exists() and _read(d / "comm").startswith("redis-server")
        ]

    def sample(self) -> dict[str, Any]:
        """Return CPU seconds per process of each group, and the machine's busy seconds."""
        cpu = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        busy = (sum(int(v) for v in cpu[:8]) - int(cpu[3]) - int(cpu[4])) / self.tick  # minus idle, iowait
        return {
            "worker": {p: self._proc(p) for p in self._tree()},
            # the worker's own CPU (Celery's consumer, the pool's hand-off) and the pool processes'
            # own (without the task processes they reaped): the rest of "worker" is the tasks'
            "worker_main": {p: self._proc(p, own=True) for p in self.worker_pids},
            "worker_pool": {p: self._proc(p, own=True) for p in self._pool()},
            "postgres": {p: self._proc(p) for p in self._backends()},
            "redis": {p: self._proc(p) for p in self._redis()},
            "machine": busy,
        }

    @staticmethod
    def used(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
        """Return CPU seconds per group between two samples (a process new in `after` counts whole)."""
        out = {"machine": after["machine"] - before["machine"]}
        for group in ("worker", "worker_main", "worker_pool", "postgres", "redis"):
            out[group] = sum(v - before[group].get(p, 0.0) for p, v in after[group].items())
        return out


def _parent(pid: int) -> int:
    return int(_read(Path(f"/proc/{pid}/stat")).rsplit(")", 1)[-1].split()[1] or 0)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379",
        help="a Redis server (a free database of it is taken) or a database URL ending in /N",
    )
    parser.add_argument("--chain", type=int, default=100)
    parser.add_argument("--fanout", type=int, default=1000)
    parser.add_argument("--pool", choices=["solo", "prefork", "threads"], default="prefork")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=2,
        help="prefork processes of the worker, or solo / threads workers (the product's default is 2)",
    )
    parser.add_argument("--threads", type=int, default=4, help="with --pool threads: threads per worker process")
    parser.add_argument(
        "--test-timing",
        action="store_true",
        help="the test suite's reconciler timing (re-send queued messages after 3 s) instead of the product's",
    )
    parser.add_argument("--cpu-detail", action="store_true", help="print the fan-out CPU of each worker process")
    args = parser.parse_args()
    args.redis, release_redis = take_redis_database(args.redis)
    try:
        run_benchmark(args)
    finally:
        release_redis()


def run_benchmark(args: argparse.Namespace) -> None:
    """Set up a throwaway database and the workers, report, and tear them down."""
    import dataclasses

    from myapp.cli.process import init_database
    from myapp.queue.celery_app import celery_dispatch, create_celery
    from myapp.services import build_services
    from tests.conftest import WorkerProcess, make_settings, worker_env

    home = Path(tempfile.mkdtemp(prefix="myapp-bench-"))
    url = fresh_database(args.database, home)  # a SQLite file in the home for a non-PostgreSQL --database
    timing = TEST_TIMING if args.test_timing else PRODUCT_TIMING
    settings = dataclasses.replace(make_settings(home, url, **timing), broker_url=args.redis)
    services = build_services(settings)
    init_database(services, admin_user="admin", admin_password="bench", admin_email="a@b.c", quiet=True)
    app, _ = create_celery(settings)
    services.set_dispatch(celery_dispatch(app))
    env = worker_env(settings, args.redis)
    n = args.concurrency
    if args.pool == "solo":  # n worker processes, each running one attempt at a time
        workers = [WorkerProcess(env, 1, "solo", beat=i == 0) for i in range(n)]
    elif args.pool == "threads":  # n worker processes, each supervising up to --threads attempts at once
        workers = [WorkerProcess(env, args.threads, "threads", beat=i == 0) for i in range(n)]
    else:  # one Celery worker with a prefork pool of n processes
        workers = [WorkerProcess(env, n, "prefork")]
    for worker in workers:
        worker.start()
    try:
        shape = {"solo": f"{n} x solo", "threads": f"{n} processes x {args.threads} threads"}.get(
            args.pool, f"prefork, concurrency {n}"
        )
        print(f"workers: {args.pool} ({shape})")
        pids = [w.proc.pid for w in workers if w.proc is not None]
        report(services, args, CpuMeter(services, pids))
    finally:
        for worker in workers:
            worker.stop()
        services.db.dispose()
        drop_database(args.database, url)


def report(services: Any, args: argparse.Namespace, meter: CpuMeter) -> None:
    run_and_wait(services, chain_yaml(3), 60)  # warm up the worker processes
    run_id, elapsed = run_and_wait(services, chain_yaml(args.chain), 600)
    rows = {name: (start, end) for name, start, end in attempts(services, run_id)}
    gaps = [(rows[f"t{i}"][0] - rows[f"t{i - 1}"][1]).total_seconds() * 1000 for i in range(1, args.chain)]
    durations = [(end - start).total_seconds() * 1000 for start, end in rows.values()]
    print(f"chain of {args.chain} no-op tasks: {elapsed:.2f} s wall")
    print(
        f"  task->task latency (end of N to start of N+1): p50 {statistics.median(gaps):.1f} ms, "
        f"p95 {percentile(gaps, 0.95):.1f} ms, max {max(gaps):.1f} ms"
    )
    print(f"  attempt duration (spawn to exit, logs, outputs): p50 {statistics.median(durations):.1f} ms")
    before = meter.sample()
    run_id, elapsed = run_and_wait(services, fanout_yaml(args.fanout), 900)
    after = meter.sample()
    used = meter.used(before, after)
    leaves = [(s, e) for name, s, e in attempts(services, run_id) if name != "root"]
    span = (max(e for _, e in leaves) - min(s for s, _ in leaves)).total_seconds()
    print(f"fan-out of {args.fanout} no-op tasks: {elapsed:.2f} s wall, leaves span {span:.2f} s")
    print(f"  throughput: {len(leaves) / span:.0f} tasks/s ({args.concurrency} worker processes)")
    per = {k: v * 1000 / (args.fanout + 1) for k, v in used.items()}
    ours = per["worker"] + per["postgres"] + per["redis"]
    print(
        f"  CPU per task: {ours:.1f} ms = worker tree {per['worker']:.1f} + postgres backends "
        f"{per['postgres']:.1f} + redis-server {per['redis']:.1f}; whole machine {per['machine']:.1f} ms "
        f"({used['machine'] / elapsed:.2f} of {os.cpu_count()} cpus busy)"
    )
    if args.cpu_detail:
        for pid, cpu in sorted(after["worker"].items()):
            spent = (cpu - before["worker"].get(pid, 0.0)) * 1000 / (args.fanout + 1)
            print(f"    pid {pid} (parent {_parent(pid)}): {spent:.2f} ms per task")
    print(f"database: {services.db.engine.dialect.name}, python {sys.version.split()[0]}, cpus {os.cpu_count()}")


if __name__ == "__main__":
    main()
