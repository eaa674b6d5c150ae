"""Load benchmark (issue 7 item 4): 1,000 concurrent runs of a 10-task pipeline on 2 worker processes
complete with nothing lost.

    python3 benchmarks/bench_load.py [--runs 1000] [--pool prefork|solo] [--creators 2] [--requeue-after 120]
                                     [--database postgresql://postgres@127.0.0.1:5432/postgres | sqlite]
                                     [--redis redis://127.0.0.1:6379]

A fresh PostgreSQL database (benchmarks/databases.py; a non-PostgreSQL --database gives a SQLite file),
a Redis database of its own (taken with the test suite's lock keys), and 2 worker processes: one
`myapp worker --beat` with a prefork pool of 2 (default), or two solo workers (`--pool solo`, the
first with the beat). The beat runs the reconciler as in the product, with the product's default
intervals (reconcile every 10 s, re-send a queued task's message after 120 s, heartbeat timeout
60 s); `--requeue-after 10` makes the reconciler re-send messages during the backlog, so duplicate
messages are exercised too.

The runs are created as fast as `RunStore.create_run` (what the REST API calls) allows from
`--creators` threads, then awaited; tests/load/workload.py checks every run, task instance,
attempt, archived log and output. Exits 1 when anything was lost, duplicated or altered.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.databases import drop_database, fresh_database  # noqa: E402

PRODUCT_TIMING = {
    "reconcile_interval": 10,
    "requeue_after": 120,
    "heartbeat_timeout": 60,
    "heartbeat_interval": 2.0,
    "kill_grace": 5.0,
}


def take_redis_database(base: str) -> tuple[str, Any]:
    """Take a free Redis database number with the test suite's lock keys; return (url, release)."""
    import redis

    client = redis.Redis.from_url(base.rstrip("/") + "/0")
    index = next(
        (
            i
            for i in range(15, 0, -1)
            if client.set(f"myapp:test:lock:{i}", f"bench_load-{os.getpid()}", nx=True, ex=7200)
        ),
        None,
    )
    if index is None:
        raise SystemExit("no free Redis database (all of 1-15 are locked by test runs)")
    url = f"{base.rstrip('/')}/{index}"
    redis.Redis.from_url(url).flushdb()

    def release() -> None:
        redis.Redis.from_url(url).flushdb()
        client.delete(f"myapp:test:lock:{index}")

    return url, release


class ProcessSampler(threading.Thread):
    """Samples the memory of the worker processes (not of the tasks they run) and the load average."""

    def __init__(self, roots: list[int], interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.roots, self.interval = roots, interval
        self.python = os.path.realpath(sys.executable)
        self.peak_total = self.peak_one = self.peak_pss = self.processes = 0
        self.peak_load = os.getloadavg()[0]
        self.stopping = threading.Event()

    def run(self) -> None:
        # The worker processes are found once, after the warm-up: a later scan would also catch the
        # forks that start the tasks, which are Python with the worker's whole RSS until they exec.
        pids = self._workers()
        self.processes = len(pids)
        while not self.stopping.wait(self.interval):
            sizes = [self._memory(pid, "status", "VmRSS:") for pid in pids]
            self.peak_total = max(self.peak_total, sum(sizes))
            self.peak_pss = max(self.peak_pss, sum(self._memory(pid, "smaps_rollup", "Pss:") for pid in pids))
            self.peak_one = max([self.peak_one, *sizes])
            self.peak_load = max(self.peak_load, os.getloadavg()[0])

    def _workers(self) -> list[int]:
        """Return the Python processes under the roots in the roots' sessions (the worker, its pool
        processes, the beat); the tasks run in sessions of their own."""
        children: dict[int, list[int]] = {}
        sessions: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                children.setdefault(int(fields[1]), []).append(int(entry))
                sessions[int(entry)] = int(fields[3])
        found, todo = [], list(self.roots)
        while todo:
            pid = todo.pop()
            try:
                if sessions.get(pid) in self.roots and os.path.realpath(f"/proc/{pid}/exe") == self.python:
                    found.append(pid)
            except OSError:
                continue
            todo += children.get(pid, [])
        return found

    @staticmethod
    def _memory(pid: int, file: str, key: str) -> int:
        try:
            for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--creators", type=int, default=2, help="threads creating runs at once")
    parser.add_argument("--pool", choices=["solo", "prefork"], default="prefork")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument(
        "--requeue-after",
        type=int,
        default=PRODUCT_TIMING["requeue_after"],
        help="seconds before the reconciler re-sends a queued task's message (product: 120)",
    )
    args = parser.parse_args()

    from myapp.cli.process import init_database
    from myapp.queue.celery_app import celery_dispatch, create_celery
    from myapp.services import build_services
    from tests.conftest import WorkerProcess, make_settings, worker_env

    home = Path(tempfile.mkdtemp(prefix="myapp-load-"))
    url = fresh_database(args.database, home)
    broker, release = take_redis_database(args.redis)
    timing = {**PRODUCT_TIMING, "requeue_after": args.requeue_after}
    settings = dataclasses.replace(make_settings(home, url, **timing), broker_url=broker, redis_url=broker)
    services = build_services(settings)
    workers: list[Any] = []
    try:
        init_database(services, admin_user="admin", admin_password="bench", admin_email="a@b.c", quiet=True)
        app, _ = create_celery(settings)
        services.set_dispatch(celery_dispatch(app))
        env = worker_env(settings, broker)
        if args.pool == "solo":  # two worker processes, each running one attempt at a time
            workers = [WorkerProcess(env, 1, "solo", beat=True), WorkerProcess(env, 1, "solo", beat=False)]
        else:  # one Celery worker with a prefork pool of two processes
            workers = [WorkerProcess(env, 2, "prefork")]
        for worker in workers:
            worker.start()
        print(
            f"workers: {'2 x solo' if args.pool == 'solo' else 'one worker, prefork pool of 2'}, with beat "
            f"(reconcile every {settings.reconcile_interval} s, re-send queued after {settings.requeue_after} s); "
            f"database {services.db.engine.dialect.name}; "
            f"python {sys.version.split()[0]}, {os.cpu_count()} cpus"
        )
        ok = measure(services, args, workers)
    finally:
        for worker in workers:
            worker.stop()
        services.db.dispose()
        drop_database(args.database, url)
        release()
    sys.exit(0 if ok else 1)


def measure(services: Any, args: argparse.Namespace, workers: list[Any]) -> bool:
    from tests.load.workload import TASKS, check, launch, save_pipeline, wait_all

    warmup = save_pipeline(services, "load-warmup")
    launch(services, warmup, 2)
    if not wait_all(services, warmup, 2, 120):
        raise SystemExit("warm-up runs did not finish")
    pipeline_id = save_pipeline(services)
    sampler = ProcessSampler([w.proc.pid for w in workers])
    load_before = os.getloadavg()
    sampler.start()
    began = time.perf_counter()
    created_in = launch(services, pipeline_id, args.runs, creators=args.creators)
    print(
        f"created {args.runs} runs in {created_in:.1f} s: {args.runs / created_in:.0f} runs/s "
        f"({args.creators} creator threads, RunStore.create_run)"
    )
    finished = wait_all(services, pipeline_id, args.runs, args.timeout)
    wall = time.perf_counter() - began
    sampler.stopping.set()
    sampler.join()
    report = check(services, pipeline_id, args.runs)
    tasks = args.runs * len(TASKS)
    print(
        f"all runs terminal: {finished}; wall time {wall:.1f} s (creation start -> last run terminal), "
        f"{tasks / wall:.1f} tasks/s over the wall time"
    )
    for line in report.lines():
        print("  " + line)
    print(
        f"peak worker RSS: {sampler.peak_total / 2**20:.0f} MiB summed over the {sampler.processes} worker processes "
        f"(main, pool, beat; PSS {sampler.peak_pss / 2**20:.0f} MiB), {sampler.peak_one / 2**20:.0f} MiB the largest one"
    )
    received = sum(w.log.read_text(errors="replace").count("myapp.execute_task_instance[") // 2 for w in workers)
    batches = sum(w.log.read_text(errors="replace").count("myapp.execute_task_instances[") // 2 for w in workers)
    print(
        f"execute messages handled by the workers: ~{received} of one and ~{batches} of several (up to 8) "
        f"task instances for {tasks + 20} task instances "
        f"(more means the reconciler re-sent stale messages; a duplicate claims nothing)"
    )
    print(
        f"load average (1 min): {load_before[0]:.1f} before, peak {sampler.peak_load:.1f}, "
        f"{os.getloadavg()[0]:.1f} after"
    )
    if report.problems or not finished:
        print(f"LOST OR ALTERED WORK ({len(report.problems)} problems):")
        for problem in report.problems:
            print("  " + problem)
        return False
    print(
        f"nothing lost: {report.runs['succeeded']} runs, {report.task_instances['succeeded']} task instances, "
        f"1 attempt each, {report.logs_checked} logs, {report.outputs_checked} outputs intact; "
        f"run duration p50 {statistics.median(report.run_seconds):.1f} s"
    )
    return True


if __name__ == "__main__":
    main()
