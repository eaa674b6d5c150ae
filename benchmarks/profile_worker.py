"""Profile the worker's path of a task in one process, without Celery: where the CPU of a task goes.

    python3 benchmarks/profile_worker.py                       # 300 no-op leaves, PostgreSQL
    python3 benchmarks/profile_worker.py --leaves 500 --profile 30   # and the 30 costliest functions
    python3 benchmarks/profile_worker.py --repo /tmp/old-tree  # the same on another checkout (bisecting)
    python3 benchmarks/profile_worker.py --chain               # a chain of 301 instead (each success queues the next)
    python3 benchmarks/profile_worker.py --accounts            # as root: tasks run as the project's account
    python3 benchmarks/profile_worker.py --shape layers        # a shape of bench_shapes.py (layers: 90,000 edges)
    python3 benchmarks/profile_worker.py --chain --accounts --steps   # wall time of each step of a link

A fan-out of a root and N leaves (`command: ['true']`) is saved and started; the root runs through
`execute_task_instance` (which queues the leaves), then each leaf does, one after the other, in this
process: claim, spawn, wait, archive the log, finish. With --shape, a shape of bench_shapes.py runs instead,
every task instance in the order it was queued (the per-task figures then include its first task). Reported per leaf: this process's CPU, the task
processes' CPU (reaped children), the PostgreSQL backend's CPU (from /proc), SQL statements and
commits (a SQLAlchemy listener; a commit in autocommit is none), round trips (statements + a BEGIN
and a COMMIT per commit), the transactions the server committed (an autocommit statement is one), and, with --profile, Python function calls (cProfile). Function
calls and statements do not depend on the machine's load or its cores' speed, so comparing them
between two commits finds what a change added even on shared cores; the CPU figures move with both.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:13]) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--leaves", type=int, default=300)
    parser.add_argument(
        "--chain",
        action="store_true",
        help="a chain of root + N tasks instead of a fan-out (each success queues the next)",
    )
    parser.add_argument("--shape", default=None, help="a shape of benchmarks/bench_shapes.py instead of the fan-out")
    parser.add_argument("--profile", type=int, default=0, help="print the N functions of most own time")
    parser.add_argument("--sort", default="tottime", help="pstats sort key for --profile (tottime, cumulative)")
    parser.add_argument("--dump", default=None, help="write the cProfile stats to this file (pstats format)")
    parser.add_argument("--wall", action="store_true", help="profile wall time instead of this process's CPU time")
    parser.add_argument(
        "--steps",
        action="store_true",
        help="the wall time of each step of a task (claim, spawn, wait, log close, finish...), median per task",
    )
    parser.add_argument(
        "--repo", default=str(Path(__file__).resolve().parent.parent), help="the checkout whose myapp is profiled"
    )
    parser.add_argument(
        "--accounts",
        action="store_true",
        help="as root: tasks run as their project's account (task_isolation: users), as a root worker runs them",
    )
    args = parser.parse_args()
    sys.path.insert(0, args.repo)
    sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

    from sqlalchemy import event, text
    from sqlalchemy.engine import Engine

    from benchmarks.databases import drop_database, fresh_database
    from myapp.cli.process import init_database
    from myapp.executor.worker import execute_task_instance, local_executor
    from myapp.services import build_services
    from tests.conftest import make_settings
    from tests.integration.engine_helpers import save, start

    home = Path(tempfile.mkdtemp(prefix="myapp-profile-"))
    url = fresh_database(args.database, home)
    overrides: dict[str, Any] = {}
    if args.accounts:  # the workflow space out of the private home, where an account can reach it
        space = Path(tempfile.mkdtemp(prefix="myapp-profile-ws-"))
        space.chmod(0o711)
        overrides = {"task_isolation": "users", "workflow_space": space}
        from myapp.settings import Settings

        if "task_tmp" in Settings.__dataclass_fields__:  # each attempt's own /tmp, as a root worker gives it
            overrides["task_tmp"] = "private"
    services = build_services(make_settings(home, url, heartbeat_interval=2.0, **overrides))
    try:
        init_database(services, admin_user="admin", admin_password="bench", admin_email="a@b.c", quiet=True)
        queued: list[int] = []
        services.set_dispatch(lambda ids: queued.extend(int(i) for i in ids))
        lines = ["name: profile-fanout", "tasks:", "  - {name: root, image: local, command: ['true']}"]
        lines += [
            f"  - {{name: leaf{i}, image: local, command: ['true'], "
            f"depends_on: [{f'leaf{i - 1}' if args.chain and i else 'root'}]}}"
            for i in range(args.leaves)
        ]
        if args.shape:
            from benchmarks.bench_shapes import SHAPES

            lines = ["name: profile-shape", "tasks:", *SHAPES[args.shape][0]()]
        start(services, save(services, "\n".join(lines) + "\n"))
        executor = local_executor(services)
        root = queued.pop(0)
        if args.shape:
            queued.insert(0, root)  # every task instance runs below, as it is queued
        elif not args.chain:
            execute_task_instance(root, services, executor)  # runs the root (and a kept leaf)
        else:
            queued.append(root)  # the chain runs from its root in one call (each success keeps the next)
        with services.db.read() as s:
            backends = (
                list(s.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")))
                if services.db.engine.dialect.name == "postgresql"
                else []
            )

        def server_commits() -> int:
            # Transactions the server committed in this database (an autocommit statement is one;
            # SQLAlchemy's commit of an autocommit connection is none): its stats lag up to a second.
            if not backends:
                return 0
            time.sleep(1.1)
            with services.db.read() as s:
                return int(
                    s.scalar(text("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")) or 0
                )

        def updates() -> tuple[int, int]:
            # task_instances' row updates and those of them that were HOT (no index touched); read
            # after server_commits(), whose wait lets the backends' statistics arrive.
            if not backends:
                return 0, 0
            with services.db.read() as s:
                row = s.execute(
                    text("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'task_instances'")
                ).one()
            return int(row[0]), int(row[1])

        xacts0 = server_commits()
        upd0 = updates()
        counts = [0, 0]
        event.listen(Engine, "before_cursor_execute", lambda *_: counts.__setitem__(0, counts[0] + 1))

        def commit(conn: Any) -> None:  # a commit in autocommit is no transaction (statement_counter.autocommit)
            if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
                counts[1] += 1

        event.listen(Engine, "commit", commit)
        steps = _time_steps(services, executor) if args.steps else None
        profiler = (cProfile.Profile() if args.wall else cProfile.Profile(time.process_time)) if args.profile else None
        leaves = list(queued)
        pg0 = sum(_proc_cpu(p) for p in backends)
        self0, kids0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        ran = 0
        if args.shape:
            queued.clear()  # what the tasks below queue is appended to `leaves` as they run
            services.set_dispatch(lambda ids: leaves.extend(int(i) for i in ids))
        for ti_id in leaves:  # grows while it runs with --shape
            if profiler:
                profiler.enable()
            ran += int(execute_task_instance(ti_id, services, executor))
            if profiler:
                profiler.disable()
        wall = time.perf_counter() - began
        self1, kids1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        pg = sum(_proc_cpu(p) for p in backends) - pg0
        xacts = server_commits() - xacts0 - 2  # less the reads of the counts themselves
        upd1 = updates()
        n = max(ran, 1)

        def ms(a: Any, b: Any) -> float:
            return (b.ru_utime + b.ru_stime - a.ru_utime - a.ru_stime) * 1000 / n

        print(
            f"{ran} leaves in {wall:.2f} s ({ran / wall:.0f}/s one at a time); per leaf: "
            f"worker {ms(self0, self1):.2f} ms CPU, task processes {ms(kids0, kids1):.2f} ms, "
            f"postgres {pg * 1000 / n:.2f} ms, {counts[0] / n:.2f} statements, {counts[1] / n:.2f} commits, "
            f"{(counts[0] + 2 * counts[1]) / n:.2f} round trips, {xacts / n:.2f} transactions on the server "
            f"(load {os.getloadavg()[0]:.1f})"
        )
        if steps is not None:
            _print_steps(steps, wall / n)
        if backends:
            upd, hot = upd1[0] - upd0[0], upd1[1] - upd0[1]
            print(f"task_instances: {upd / n:.1f} row updates per leaf, {hot * 100 / max(upd, 1):.0f} % of them HOT")
        if profiler:
            stats = pstats.Stats(profiler)
            if args.dump:
                stats.dump_stats(args.dump)
            print(f"python function calls per leaf: {stats.total_calls / n:.0f}")  # type: ignore[attr-defined]
            stats.sort_stats(args.sort).print_stats(args.profile)
    finally:
        services.db.dispose()
        drop_database(args.database, url)


def _time_steps(services: Any, executor: Any) -> dict[str, list[float]]:
    """Wrap the steps of a task's path with wall clocks (the product is patched in this process only).

    --steps: claim and finish (the store's calls), the log object and its close, the condition, and the
    executor's run split into prepare (render, working directory), the private /tmp directories, the
    spawn (the namespace thread and Popen), the wait for the exit (pidfd) with the pipes' drain, the
    output collection and the removal of the private /tmp (what of it is on the path).
    """
    import shutil
    import types

    from myapp.executor import launcher, local, worker
    from myapp.logs import attempt_logs

    times: dict[str, list[float]] = {}

    def timed(name: str, fn: Any) -> Any:
        spent = times.setdefault(name, [])

        def wrapper(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent.append((time.perf_counter() - t0) * 1000)

        return wrapper

    attempts = services.attempts
    attempts.claim = timed("claim", attempts.claim)
    attempts.finish = timed("finish", attempts.finish)
    worker.AttemptLog = timed("log object", worker.AttemptLog)
    worker.condition_result = timed("condition", worker.condition_result)
    attempt_logs.AttemptLog.close = timed("log close", attempt_logs.AttemptLog.close)
    cls = type(executor)
    cls.run = timed("executor.run (all)", cls.run)
    cls._prepare = timed("  prepare (render, workdir)", cls._prepare)
    cls._private_places = timed("  private /tmp dirs", cls._private_places)
    launcher.Launcher.popen = timed("  spawn (popen)", launcher.Launcher.popen)
    cls._wait = timed("  wait for exit", cls._wait)
    local.collect_outputs = timed("  outputs", local.collect_outputs)
    if hasattr(local, "REMOVER"):  # removed in background threads: only the hand-over is on the path
        local.REMOVER.remove = timed("  remove private /tmp", local.REMOVER.remove)
    else:
        local.shutil = types.SimpleNamespace(
            **{**vars(shutil), "rmtree": timed("  remove private /tmp", shutil.rmtree)}
        )
    times["_run"] = []
    worker._execute_one = timed("_run", worker._execute_one)
    return times


def _print_steps(times: dict[str, list[float]], per_task: float) -> None:
    import statistics

    run = times.pop("_run")
    print(f"wall per task {per_task * 1000:.2f} ms; median of one _execute_one {statistics.median(run):.2f} ms")
    for name, spent in times.items():
        if spent:
            print(
                f"  {name:32} median {statistics.median(spent):6.2f} ms  mean {statistics.fmean(spent):6.2f} ms"
                f"  ({len(spent)} calls)"
            )


if __name__ == "__main__":
    main()
