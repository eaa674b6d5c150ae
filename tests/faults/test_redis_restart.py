"""The broker restarts in the middle of runs: a private Redis (broker and live logs) is killed with -9
and started again, empty, on the same port, while a real `myapp worker --beat` runs diamonds.

The first kill lands while the worker holds a prefetched message it has not started and is polling
for more: the case that made kombu 5.7 crash the consumer ("Unrecoverable error: 'NoneType' object
has no attribute 'hostname'") before the Redis transport ran without ack emulation
(docs/reliability.md). The second lands while tasks stream log lines through Redis.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NO_TASK_ACCOUNTS, WorkerProcess, make_settings, worker_env
from tests.faults.runs import check_recovered, save_diamond, snapshot, start_runs, succeeded_outputs, wait_all_finished
from tests.faults.servers import PrivateRedis
from tests.integration.engine_helpers import detail, poll

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]
RECEIVED = re.compile(rb"Task (myapp\.[a-z_]+)\[[^\]]+\] received")


@pytest.fixture(scope="module")
def redis_server(module_home: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(module_home)
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def redis_services(module_home: Path, database_url: str, redis_server: PrivateRedis) -> Iterator[Any]:
    """Services whose broker and live logs are the private Redis, and a real worker with its beat."""
    from myapp.cli.process import init_database
    from myapp.queue.celery_app import celery_dispatch, create_celery
    from myapp.services import build_services

    # The beat sends two messages every reconcile_interval; 2 s leaves the first kill time to land
    # before they fill the worker's prefetch.
    # The liveness probe's timeout is short (the product's is 120 s): a broker restart (1 s down)
    # must not be taken for a stuck consumer (tests/faults/test_broker_stall.py has the stuck one).
    # Not shorter: a probe published just before a kill is lost with the keys, and the consumer's
    # reconnection must answer a later one within it on a loaded machine too.
    settings = make_settings(
        module_home,
        database_url,
        broker_url=redis_server.url,
        redis_url=redis_server.url,
        reconcile_interval=2,
        broker_liveness_timeout=30,
    )
    services = build_services(settings)
    init_database(services, admin_user="admin", admin_password="admin-pass", admin_email="a@b.c", quiet=True)
    app, _ = create_celery(settings)
    services.set_dispatch(celery_dispatch(app))
    services.worker = WorkerProcess(worker_env(settings, redis_server.url), concurrency=2, beat=True)
    services.worker.start()
    yield services
    services.worker.stop()
    services.db.dispose()


def running_tasks(services: Any, run_ids: list[int]) -> list[tuple[int, str]]:
    return [(r, t["name"]) for r in run_ids for t in detail(services, r)["tasks"] if t["state"] == "running"]


def test_broker_restarts_mid_run_lose_nothing(redis_services: Any, redis_server: PrivateRedis) -> None:
    services, worker = redis_services, redis_services.worker
    run_ids = start_runs(services, save_diamond(services, "redis-restart"), 3)
    # Two roots run (concurrency 2), the third is prefetched and waits while the consumer polls
    # for more (no beat message received yet, or it would fill the prefetch and stop the polling).
    poll(
        lambda: RECEIVED.findall(worker.log.read_bytes()).count(b"myapp.execute_task_instance") >= 3,
        "the three root messages received",
        timeout=60,
        interval=0.02,
    )
    acknowledged = snapshot(services, run_ids)
    outputs = succeeded_outputs(services, run_ids)
    redis_server.restart(down=1.0)

    poll(
        lambda: any(t in ("b", "c") for _, t in running_tasks(services, run_ids)),
        "a task logging after the first restart",
        timeout=90,
        interval=0.02,
    )
    time.sleep(0.5)  # some lines go live through the new Redis
    acknowledged.update(snapshot(services, run_ids))
    outputs.update(succeeded_outputs(services, run_ids))
    assert any(key[1] in ("b", "c") for key in acknowledged), acknowledged
    redis_server.restart(down=1.0)

    wait_all_finished(services, run_ids, timeout=120)
    check_recovered(services, run_ids, acknowledged, outputs)
    log = worker.log.read_text(errors="replace")
    assert worker.proc is not None and worker.proc.poll() is None, "the worker exited:\n" + log[-3000:]
    assert "Unrecoverable error" not in log, log[-5000:]
    assert "stopped taking messages" not in log and "consumer is stuck" not in log, log[-5000:]
    # The consumer noticed a lost broker and connected again (a restart that redis-py's own retry
    # absorbs is not logged as one); that it takes work after each restart is what the runs show.
    assert "Connection to broker lost" in log and log.count("Connected to redis://") >= 2, log[-5000:]
    # A run started after the faults is taken by the reconnected consumer.
    fresh = start_runs(services, save_diamond(services, "after-restarts", lines=1, pause=0), 1)
    wait_all_finished(services, fresh, timeout=60)
    check_recovered(services, fresh, {}, {})


def test_a_worker_stopped_by_an_unrecoverable_error_exits_non_zero(tmp_path: Path) -> None:
    """A supervisor that restarts failed processes must see the failure (Celery's worker_main drops it)."""
    broken = PrivateRedis(tmp_path, "--rename-command", "BRPOP", "")  # consuming fails: not a connection error
    broken.start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MYAPP_")} | NO_TASK_ACCOUNTS
        env.update(
            {
                "MYAPP_HOME": str(tmp_path / "home"),
                "MYAPP_BROKER_URL": broken.url,
                "MYAPP_SECRET_KEY": "test-secret-key-of-at-least-32-bytes!!",
                "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            }
        )
        done = subprocess.run(
            [sys.executable, "-m", "myapp", "worker", "--pool", "solo"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        broken.kill()
    assert "Unrecoverable error" in done.stderr, done.stderr[-3000:]
    assert done.returncode == 1, done.stderr[-3000:]
    assert "the Celery worker stopped by itself with exit code 1" in done.stderr
