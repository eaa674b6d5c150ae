"""PostgreSQL dies under running work: a private cluster is killed with -9 (postmaster, crash recovery)
and later restarted (`pg_ctl restart -m fast`) while a real `myapp worker --beat` runs diamonds whose
tasks claim, heartbeat, log and finish against it.

Asserted after recovery, as for the broker (tests/faults/runs.py): every run succeeded, every task
instance has attempts numbered 1..n with exactly one success and no (task instance, try) twice,
outputs and logs intact, and the same worker process is still running (it reconnected by itself:
pooled connections are checked before use, store calls whose connection dropped are repeated,
a claim whose reply was lost finds its own attempt). A task may have a second try only when its
first attempt was declared lost while the database was away; the test says how many were.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import WorkerProcess, make_settings, worker_env
from tests.faults.runs import check_recovered, save_diamond, snapshot, start_runs, succeeded_outputs, wait_all_finished
from tests.faults.servers import PrivatePostgres
from tests.integration.engine_helpers import detail, poll

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        not os.environ.get("MYAPP_TEST_DATABASE_URL", "").startswith("postgresql"),
        reason="PostgreSQL fault test: set MYAPP_TEST_DATABASE_URL to run the suite on PostgreSQL",
    ),
]


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()  # skips when the server binaries are missing
    server.init()
    yield server
    server.destroy()


@pytest.fixture(scope="module")
def crash_services(module_home: Path, private_pg: PrivatePostgres, broker_url: str) -> Iterator[Any]:
    """Services on the private cluster, a Redis broker of the module's own, and a real worker with its beat."""
    from myapp.cli.process import init_database
    from myapp.queue.celery_app import create_celery, use_celery
    from myapp.services import build_services

    # The product's heartbeat timeout is 60 s; the suite's 30 s could declare a running attempt lost
    # while the database restarts on a loaded machine, which is not what this test is about.
    settings = make_settings(
        module_home, private_pg.url, broker_url=broker_url, redis_url=broker_url, heartbeat_timeout=60
    )
    services = build_services(settings)
    init_database(services, admin_user="admin", admin_password="admin-pass", admin_email="a@b.c", quiet=True)
    app, _ = create_celery(settings)
    use_celery(services, app)
    services.worker = WorkerProcess(worker_env(settings, broker_url), concurrency=2, beat=True)
    services.worker.start()
    yield services
    services.worker.stop()
    services.db.dispose()


def running(services: Any, run_ids: list[int]) -> list[tuple[int, str]]:
    return [(r, t["name"]) for r in run_ids for t in detail(services, r)["tasks"] if t["state"] == "running"]


def test_postgres_crash_and_restart_mid_run_lose_nothing(crash_services: Any, private_pg: PrivatePostgres) -> None:
    services, worker = crash_services, crash_services.worker
    run_ids = start_runs(services, save_diamond(services, "pg-crash", lines=20, pause=0.1), 3)
    poll(lambda: len(running(services, run_ids)) >= 2, "two tasks running", timeout=60)
    acknowledged, outputs = snapshot(services, run_ids), succeeded_outputs(services, run_ids)
    services.db.dispose()  # the test's own pooled connections die with the server too
    private_pg.crash(down=1.0)

    poll(
        lambda: any(t in ("b", "c") for _, t in running(services, run_ids)),
        "a second-level task running",
        timeout=90,
        interval=0.1,
    )
    time.sleep(0.3)  # a few of its lines are written before the next fault
    acknowledged.update(snapshot(services, run_ids))
    outputs.update(succeeded_outputs(services, run_ids))
    services.db.dispose()
    private_pg.restart()

    wait_all_finished(services, run_ids, timeout=120)
    check_recovered(services, run_ids, acknowledged, outputs, one_attempt=False)
    log = worker.log.read_text(errors="replace")
    assert worker.proc is not None and worker.proc.poll() is None, "the worker exited:\n" + log[-3000:]
    assert "internal error" not in log, log[-5000:]
    retried = [
        (r["id"], t["name"], t["attempts"])
        for r in (detail(services, i) for i in run_ids)
        for t in r["tasks"]
        if len(t["attempts"]) > 1
    ]
    for _run, _task, attempts in retried:  # an extra try only for an attempt lost while the database was away
        assert all("lost" in a["message"] or "heartbeat" in a["message"] for a in attempts[:-1]), attempts
    assert "database connection lost" in log, "the faults never reached the worker:\n" + log[-3000:]
    # The same worker takes new work at once.
    fresh = start_runs(services, save_diamond(services, "after-pg-crash", lines=1, pause=0), 1)
    wait_all_finished(services, fresh, timeout=60)
    check_recovered(services, fresh, {}, {})
