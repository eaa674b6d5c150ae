"""Shared test resources: settings on a temporary home, a migrated database, a real Celery worker.

The database comes from MYAPP_TEST_DATABASE_URL (a PostgreSQL server URL such as
postgresql://postgres@127.0.0.1/postgres; each test module gets its own fresh database) or, by
default, a SQLite file per module. Integration tests use a real Redis broker (MYAPP_TEST_REDIS_URL,
default redis://127.0.0.1:6379) and real `myapp worker` processes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from myapp.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs PostgreSQL/Redis/Celery or subprocesses")
    config.addinivalue_line("markers", "slow: long-running suite (faults, load)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Append the logs of the test's worker and watcher processes (and, for Kubernetes tests, of the
    API server and the node simulator) to a failure's report.

    Those processes log to files in the test's MYAPP_HOME, which pytest deletes a few runs later:
    without this a failure in CI says what was waited for, never why it did not happen.
    """
    outcome: Any = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    shown: set[Path] = set()
    values = list(getattr(item, "funcargs", {}).values())
    found = list(_process_logs(values))
    # Processes a test starts by itself (a standalone, a burst worker, a private server) log into
    # its tmp_path or its module's home: their logs written during the test are shown too.
    found += [(log.name, log) for log in _logs_written_since(values, call.start - 1)]
    for name, log in found:
        if log.exists() and log.resolve() not in shown and len(shown) < 12:
            shown.add(log.resolve())
            report.sections.append((f"log of {name} (last 6000 characters)", log.read_text(errors="replace")[-6000:]))


def _logs_written_since(values: Any, since: float) -> list[Path]:
    """`*.log` files at the top (or one folder down) of the directories a test's fixtures hold
    (tmp_path, a module's home, services' MYAPP_HOME), written to at or after `since`."""
    folders: list[Path] = []
    for value in values:
        for folder in (value, getattr(getattr(value, "settings", None), "home", None)):
            if isinstance(folder, Path) and folder.is_dir() and folder not in folders:
                folders.append(folder)
    logs: list[Path] = []
    for folder in folders:
        for log in sorted([*folder.glob("*.log"), *folder.glob("*/*.log")]):
            try:
                if log.is_file() and log.stat().st_mtime >= since and log not in logs:
                    logs.append(log)
            except OSError:
                continue
    return logs


def _process_logs(values: Any) -> Iterator[tuple[str, Path]]:
    """Yield (name, log file) of the processes a test's fixtures hold: a process itself, its `worker`,
    `watcher` or `workers`, or those of its `cluster` (the Kubernetes fixtures hang them there, with
    the API server's and node simulator's logs given by `report_logs()`)."""
    for value in values:
        for holder in (value, getattr(value, "cluster", None)):
            if holder is None:
                continue
            if callable(getattr(holder, "report_logs", None)):
                for name, log in holder.report_logs():
                    if isinstance(log, Path):
                        yield name, log
            many = getattr(holder, "workers", None)
            processes = [
                holder,
                getattr(holder, "worker", None),
                getattr(holder, "watcher", None),
                *(many if isinstance(many, (list, tuple)) else []),
            ]
            for process in processes:
                log = getattr(process, "log", None)
                if isinstance(log, Path):
                    yield log.name, log


def database_name() -> str:
    """A new test database's name: `myapp_test_<pid>_<random>`. The pid says which test process
    owns it, so that a later session can drop what a killed one left (`drop_orphaned_databases`)
    without touching a database of another test run going on at the same time."""
    return f"myapp_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"


def orphaned(names: Any) -> list[str]:
    """The names among `names` made by `database_name` in a process that no longer runs."""
    from tests.processes import alive

    found = []
    for name in names:
        match = re.fullmatch(r"myapp_test_([0-9]+)_[0-9a-f]{8}", str(name))
        if match and int(match[1]) != os.getpid() and not alive(int(match[1])):
            found.append(str(name))
    return found


def _drop_orphaned_databases(server: str) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        names = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'myapp\\_test\\_%'").fetchall()
        for name in orphaned(row[0] for row in names):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fresh_database_url(tmp: Path) -> str:
    server = os.environ.get("MYAPP_TEST_DATABASE_URL", "")
    if not server.startswith("postgresql"):
        return f"sqlite:///{tmp / 'myapp.db'}"
    import psycopg

    name = database_name()
    admin = server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin.rsplit("/", 1)[0] + "/" + name


def _drop_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    import psycopg

    server = os.environ["MYAPP_TEST_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Commands a test starts with an environment of its own run tasks as the test process, sharing the test's
# /tmp (see make_settings).
NO_TASK_ACCOUNTS = {"MYAPP_TASK_ISOLATION": "none", "MYAPP_TASK_TMP": "shared"}


def make_settings(home: Path, database_url: str, **overrides: Any) -> Settings:
    """Return settings for a test home: fast heartbeats and reconciler passes so fault tests finish
    quickly, but a heartbeat grace longer than a worker's stall on a loaded machine.

    heartbeat_timeout is how long an attempt may go without a heartbeat before the reconciler
    declares its worker lost: from the claim until the task's process runs and its heartbeat
    thread beats, and across any stall of the worker. At 5 s, a process start on a loaded 2-core
    machine (another test run beside this one) outlasted it and a healthy attempt was failed as
    "lost"; 30 s costs the tests that kill a worker 25 s each, and nothing else.
    """
    values: dict[str, Any] = {
        "home": home,
        "database_url": database_url,
        "workflow_space": home / "workflow_space",
        "secret_key": "test-secret-key-of-at-least-32-bytes!!",
        "heartbeat_interval": 0.2,
        "reconcile_interval": 1,
        "kill_grace": 1.0,
        "requeue_after": 3,
        "heartbeat_timeout": 30,
        # Tasks run as the test process unless a module asks for task accounts (tests/security/test_task_isolation.py).
        "task_isolation": "none",
        # Tasks share the machine's /tmp (with the test's tmp_path) unless a module asks for a private one.
        "task_tmp": "shared",
    }
    values.update(overrides)
    return load_settings({}, **values)


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def database_url(module_home: Path) -> Iterator[str]:
    url = _fresh_database_url(module_home)
    yield url
    _drop_database(url)


def _initialise(home: Path, url: str) -> None:
    from myapp.cli.process import init_database
    from myapp.services import build_services

    svc = build_services(make_settings(home, url, redis_url=_redis_url() + "/0"))
    try:
        init_database(svc, admin_user="admin", admin_password="admin-pass", admin_email="a@b.c", quiet=True)
    finally:
        svc.db.dispose()


@pytest.fixture(scope="session")
def initialised_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database initialised as `myapp init` leaves it (schema, roles, admin, default project,
    plugins); each module's `services` starts from a copy of it instead of migrating its own
    (about 3 s saved per module)."""
    home = tmp_path_factory.mktemp("initialised")
    server = os.environ.get("MYAPP_TEST_DATABASE_URL", "")
    if server.startswith("postgresql"):
        _drop_orphaned_databases(server.replace("postgresql+psycopg://", "postgresql://"))
    url = _fresh_database_url(home)
    _initialise(home, url)
    yield url
    _drop_database(url)


def _copy_database(template: str, module_home: Path) -> str:
    if not template.startswith("postgresql"):
        import sqlite3
        from contextlib import closing

        target = module_home / "myapp.db"
        # The backup API copies a consistent snapshot, including what is still in the WAL file.
        with (
            closing(sqlite3.connect(template.removeprefix("sqlite:///"))) as src,
            closing(sqlite3.connect(target)) as dst,
        ):
            src.backup(dst)
        return f"sqlite:///{target}"
    import psycopg

    name, source = database_name(), template.rsplit("/", 1)[1]
    with psycopg.connect(
        os.environ["MYAPP_TEST_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as conn:
        # A template must have no sessions: init's web app keeps a pooled connection of its own.
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (source,))
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    return template.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="module")
def services(
    module_home: Path, initialised_database: str, broker_url: str, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """Services on a migrated, initialised database (admin user, default project, plugins) of the module's own.

    A test module may set `SETTINGS_OVERRIDES = {"setting": value}` for its own services.

    Live logs go to the module's own Redis database (the broker's, as in the product's default):
    their keys are named after run ids, which every module's fresh database starts again at 1, so
    in a shared database a key an earlier module (or a killed run) left behind would be read as
    this module's log.
    """
    from myapp.services import build_services

    url = _copy_database(initialised_database, module_home)
    overrides = getattr(request.module, "SETTINGS_OVERRIDES", {})
    svc = build_services(make_settings(module_home, url, redis_url=broker_url, **overrides))
    yield svc
    svc.db.dispose()
    _drop_database(url)


def _redis_url() -> str:
    base = os.environ.get("MYAPP_TEST_REDIS_URL", "redis://127.0.0.1:6379")
    return base.rstrip("/")


def _take_redis_database(client: Any) -> tuple[int, str]:
    """Lock one of the Redis databases 1..15 for this process: (index, lock key).

    The lock (`myapp:test:lock:N` in database 0, value "<pid> <random>") is shared by every test
    process of the machine, other clones' concurrent runs included. A lock whose process no longer
    runs (a killed run) is taken over instead of blocking its database for the lock's hour.
    """
    from tests.processes import alive

    mine = f"{os.getpid()} {uuid.uuid4().hex[:8]}"
    for _ in range(2):
        for index in range(1, 16):
            key = f"myapp:test:lock:{index}"
            if client.set(key, mine, nx=True, ex=3600):
                return index, mine
        for index in range(1, 16):
            key = f"myapp:test:lock:{index}"
            holder = client.get(key)
            pid = (holder or b"").split(b" ")[0]
            if pid.isdigit() and not alive(int(pid)):
                # Only if it still holds the dead process's value: another process may be taking it too.
                with client.pipeline() as pipe:
                    try:
                        pipe.watch(key)
                        if pipe.get(key) == holder:
                            pipe.multi()
                            pipe.delete(key)
                            pipe.execute()
                    except Exception:  # noqa: BLE001  (redis.WatchError: someone else was faster)
                        pass
    pytest.fail("no free Redis database for the test broker (15 test processes hold one each)")


def _release_redis_database(client: Any, index: int, mine: str) -> None:
    key = f"myapp:test:lock:{index}"
    if client.get(key) == mine.encode():  # expired and taken by another process: not ours to delete
        client.delete(key)


@pytest.fixture(scope="module")
def broker_url() -> Iterator[str]:
    """A Redis database of its own for this module's broker, emptied before use."""
    import redis

    client = redis.Redis.from_url(_redis_url() + "/0")
    index, mine = _take_redis_database(client)
    url = f"{_redis_url()}/{index}"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()
    _release_redis_database(client, index, mine)


class WorkerProcess:
    """A real `myapp worker` (Celery, prefork) subprocess."""

    def __init__(self, env: dict[str, str], concurrency: int = 2, pool: str = "prefork", beat: bool = True) -> None:
        self.env = env
        self.concurrency = concurrency
        self.pool = pool
        self.beat = beat
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(env["MYAPP_HOME"]) / f"worker-{uuid.uuid4().hex[:6]}.log"

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "myapp",
                "worker",
                *(["--beat"] if self.beat else []),
                "-c",
                str(self.concurrency),
                "--pool",
                self.pool,
            ],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120  # a start takes seconds; on a loaded machine ten times that
        while time.monotonic() < deadline:
            if b"ready." in self.log.read_bytes():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready: {self.log.read_text()[-3000:]}")

    def stop(self, sig: int = 15) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()


def worker_env(settings: Settings, broker: str) -> dict[str, str]:
    """Return the environment of a worker sharing `settings`' database and home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYAPP_")}
    env.update(
        {
            "MYAPP_HOME": str(settings.home),
            "MYAPP_DATABASE_URL": settings.effective_database_url,
            "MYAPP_BROKER_URL": broker,
            "MYAPP_SECRET_KEY": settings.secret_key,
            "MYAPP_REDIS_URL": settings.effective_redis_url or broker,
            "MYAPP_WORKFLOW_SPACE": str(settings.workflow_space),
            "MYAPP_HEARTBEAT_INTERVAL": str(settings.heartbeat_interval),
            "MYAPP_HEARTBEAT_TIMEOUT": str(settings.heartbeat_timeout),
            "MYAPP_RECONCILE_INTERVAL": str(settings.reconcile_interval),
            "MYAPP_KILL_GRACE": str(settings.kill_grace),
            "MYAPP_REQUEUE_AFTER": str(settings.requeue_after),
            "MYAPP_BROKER_LIVENESS_TIMEOUT": str(settings.broker_liveness_timeout),
            "MYAPP_TASK_ISOLATION": settings.task_isolation,
            "MYAPP_TASK_TMP": settings.task_tmp,
            "MYAPP_TASK_USER": settings.task_user,
            "MYAPP_TASK_UID_BASE": str(settings.task_uid_base),
            "PYTHONPATH": str(REPO),
        }
    )
    return env


@pytest.fixture(scope="module")
def engine_services(services: Any, broker_url: str) -> Iterator[Any]:
    """Services whose dispatch sends to Redis, plus two running Celery worker processes."""
    import dataclasses

    from myapp.queue.celery_app import celery_dispatch, create_celery

    settings = dataclasses.replace(services.settings, broker_url=broker_url)
    app, _ = create_celery(settings)
    services.set_dispatch(celery_dispatch(app))
    worker = WorkerProcess(worker_env(settings, broker_url))
    worker.start()
    services.worker = worker
    yield services
    worker.stop()
