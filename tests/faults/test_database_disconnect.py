"""A worker loses its database connections (PostgreSQL `pg_terminate_backend`) again and again while
it runs diamonds: every run must still succeed, each task exactly once, with its outputs and logs.

The worker's sessions are found by their application_name (`myapp-worker`, set by
myapp/db/session.py) in this module's own database; other databases on the server are untouched.
Connections dropped while idle are replaced by `pool_pre_ping`; a transaction whose connection
drops midway (claim, heartbeat, finish) is repeated by `Database.retry_on_disconnect`.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from sqlalchemy import text

from myapp.core.states import RUN_TERMINAL, RunState
from tests.faults.runs import check_recovered, save_diamond, snapshot, start_runs, succeeded_outputs, wait_all_finished
from tests.integration.engine_helpers import detail

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not os.environ.get("MYAPP_TEST_DATABASE_URL", "").startswith("postgresql"),
        reason="needs PostgreSQL (MYAPP_TEST_DATABASE_URL): SQLite has no connection to lose",
    ),
]
TERMINATE = text(
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND application_name = 'myapp-worker' "
    "AND pid <> pg_backend_pid()"
)


def test_worker_survives_its_connections_being_terminated(engine_services: Any) -> None:
    services = engine_services
    run_ids = start_runs(services, save_diamond(services, "db-disconnect", lines=15), 4)
    acknowledged: dict[tuple[int, str, int], list[str]] = {}
    outputs: dict[tuple[int, str], dict[str, Any]] = {}
    terminated, rounds = 0, 0
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if all(RunState(detail(services, r)["state"]) in RUN_TERMINAL for r in run_ids):
            break
        acknowledged.update(snapshot(services, run_ids))
        outputs.update(succeeded_outputs(services, run_ids))
        with services.db.engine.connect() as conn:
            terminated += int(conn.execute(TERMINATE).scalar() or 0)
        rounds += 1
        time.sleep(0.3)
    assert rounds >= 5 and terminated >= 5, f"the faults did not happen: {terminated} sessions in {rounds} rounds"
    wait_all_finished(services, run_ids, timeout=120)
    check_recovered(services, run_ids, acknowledged, outputs)
    worker = services.worker
    log = worker.log.read_text(errors="replace")
    assert worker.proc is not None and worker.proc.poll() is None, "the worker exited:\n" + log[-3000:]
    assert "internal error" not in log and "heartbeat failed" not in log, log[-5000:]
