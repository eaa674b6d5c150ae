"""Large-DAG benchmark (issue 13, B15): saving and running a 10,000-task pipeline through a real web server.

    python3 benchmarks/bench_big_dag.py                       # PostgreSQL (a fresh throwaway database)
    python3 benchmarks/bench_big_dag.py --database sqlite     # a SQLite file
    python3 benchmarks/bench_big_dag.py --tasks 10000 --repeat 3 --workers 2 --threads 8

Starts `myapp webserver` (gunicorn, threaded workers, as deployed) on a free port, signs in through
the API, then `--repeat` times: saves a new version of an N-task chain (JSON, as the canvas sends
it) and starts a run of it. While each request is in flight a second thread asks `/health` every
50 ms; the figures are each request's duration and the slowest `/health` answer meanwhile (what a
load balancer's probe or another user would wait). A run of more than `run_inline_tasks` tasks is
answered 202 (state creating): the benchmark then does the worker's part in its own process
(`finish_creation`, what the Celery task `myapp.create_run` calls) and times it. No Celery worker
is started: the run's first task is queued, nothing executes.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.databases import drop_database, fresh_database  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def call(base: str, method: str, path: str, body: Any = None, token: str = "") -> tuple[int, Any, float]:
    """Return (status, JSON answer, seconds) of one request."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    began = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=300) as res:
            return res.status, json.loads(res.read() or b"{}"), time.perf_counter() - began
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:300], time.perf_counter() - began


class HealthProbe:
    """Asks /health every 50 ms in a thread; remembers the slowest answer."""

    def __init__(self, base: str) -> None:
        self.base, self.slowest, self.count = base, 0.0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            status, _, seconds = call(self.base, "GET", "/health")
            assert status == 200
            self.slowest, self.count = max(self.slowest, seconds), self.count + 1
            self.stop.wait(0.05)

    def __enter__(self) -> HealthProbe:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def start_server(env: dict[str, str], port: int, workers: int, threads: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "myapp",
            "webserver",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--threads",
            str(threads),
        ],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if call(f"http://127.0.0.1:{port}", "GET", "/health")[0] == 200:
                return proc
        except OSError:
            time.sleep(0.3)
        if proc.poll() is not None:
            raise RuntimeError(log.read_text()[-3000:])
    raise RuntimeError("the web server did not answer /health in 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server URL, or 'sqlite' for a SQLite file",
    )
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    from myapp.cli.process import init_database
    from myapp.services import build_services
    from tests.conftest import make_settings

    home = Path(tempfile.mkdtemp(prefix="myapp-big-dag-"))
    url = fresh_database(args.database, home)
    services = build_services(make_settings(home, url))
    proc = None
    try:
        init_database(services, admin_user="admin", admin_password="bench-password-1", admin_email="a@b.c", quiet=True)
        services.db.dispose()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MYAPP_")},
            "MYAPP_HOME": str(home),
            "MYAPP_DATABASE_URL": url,
            "MYAPP_SECRET_KEY": services.settings.secret_key,
            "PYTHONPATH": str(REPO),
        }
        port = free_port()
        proc = start_server(env, port, args.workers, args.threads, home / "web.log")
        base = f"http://127.0.0.1:{port}"
        status, login, _ = call(
            base,
            "POST",
            "/api/v1/security/login",
            {"username": "admin", "password": "bench-password-1", "provider": "db"},
        )
        assert status == 200, login
        token = login["access_token"]
        rows: dict[str, list[tuple[float, float]]] = {"save": [], "run": [], "create": []}
        for i in range(args.repeat):
            tasks = [
                {
                    "name": f"t{k}",
                    "template": "shell",
                    "args": {"script": f"echo {i}"},
                    **({"depends_on": [f"t{k - 1}"]} if k else {}),
                }
                for k in range(args.tasks)
            ]
            with HealthProbe(base) as probe:
                status, saved, seconds = call(
                    base, "POST", "/api/v1/pipelines/", {"name": "huge", "project": "default", "tasks": tasks}, token
                )
            assert status == 200, saved
            rows["save"].append((seconds, probe.slowest))
            with HealthProbe(base) as probe:
                status, run, seconds = call(base, "POST", f"/api/v1/pipelines/{saved['id']}/runs", {}, token)
            assert status in (201, 202), run
            rows["run"].append((seconds, probe.slowest))
            if status == 202:  # the worker's part, off the web server
                from myapp.db.run_creation import finish_creation

                began = time.perf_counter()
                assert finish_creation(services.runs, run["id"], services.clock.now())
                rows["create"].append((time.perf_counter() - began, 0.0))
        print(
            f"{args.tasks:,}-task chain, {args.workers} workers x {args.threads} threads, "
            f"{'PostgreSQL' if url.startswith('postgresql') else 'SQLite'}, {args.repeat} repeats"
        )
        for what, label in (
            ("save", "save a new version (POST /pipelines/)"),
            ("run", "start a run (POST /pipelines/N/runs)"),
            ("create", "worker creates the run (finish_creation)"),
        ):
            if not rows[what]:
                continue
            took = [r[0] for r in rows[what]]
            health = [r[1] for r in rows[what]]
            print(
                f"  {label:42s} median {statistics.median(took):6.2f} s  max {max(took):6.2f} s   "
                + (f"slowest /health meanwhile {max(health) * 1000:6.0f} ms" if what != "create" else "(no request)")
            )
    finally:
        if proc is not None:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=30)
        services.db.dispose()
        drop_database(args.database, url)


if __name__ == "__main__":
    main()
