"""The engine's guarantees under duplicate and lost messages, racing claims and a killed worker."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from myapp.db.tables import TaskAttempt, TaskInstance
from tests.integration.engine_helpers import detail, save, start, wait_finished, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def attempt_counts(services: Any, run_id: int) -> dict[str, int]:
    with services.db.read() as s:
        rows = s.execute(
            select(TaskInstance.task_name, func.count(TaskAttempt.id))
            .join(TaskAttempt, TaskAttempt.task_instance_id == TaskInstance.id, isouter=True)
            .where(TaskInstance.run_id == run_id)
            .group_by(TaskInstance.task_name)
        ).all()
    return {name: n for name, n in rows}


def test_duplicate_messages_run_each_attempt_once(engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: duplicates
        tasks:
          - {name: a, template: shell, args: {script: "sleep 0.2"}}
          - {name: b, template: shell, args: {script: "sleep 0.2"}, depends_on: [a]}
          - {name: c, template: shell, args: {script: "sleep 0.2"}, depends_on: [a]}
    """,
    )
    real = engine_services.runs.dispatch
    engine_services.set_dispatch(lambda ids: [real(ids) for _ in range(5)])
    try:
        run = wait_finished(engine_services, start(engine_services, pid))
    finally:
        engine_services.set_dispatch(real)
    assert run["state"] == "succeeded"
    time.sleep(1)  # let the duplicate messages arrive and find nothing to claim
    assert attempt_counts(engine_services, run["id"]) == {"a": 1, "b": 1, "c": 1}


def test_reconciler_repairs_a_lost_message(engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: lost-message
        tasks:
          - {name: only, template: shell, args: {script: "echo recovered"}}
    """,
    )
    real = engine_services.runs.dispatch
    engine_services.set_dispatch(lambda ids: None)  # the message is lost
    try:
        run_id = start(engine_services, pid)
    finally:
        engine_services.set_dispatch(real)
    assert detail(engine_services, run_id)["by_name"]["only"]["state"] == "queued"
    run = wait_finished(engine_services, run_id, timeout=60)  # requeue_after is 3 s in tests
    assert run["state"] == "succeeded"


def test_concurrent_claims_start_one_attempt(services: Any) -> None:
    pid = save(
        services,
        """
        name: racing-claims
        tasks:
          - {name: t, template: shell, args: {script: "true"}}
    """,
    )
    real = services.runs.dispatch
    services.set_dispatch(lambda ids: None)
    try:
        run_id = start(services, pid)
    finally:
        services.set_dispatch(real)
    with services.db.read() as s:
        ti_id = s.scalar(select(TaskInstance.id).where(TaskInstance.run_id == run_id))
    results: list[Any] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        results.append(services.attempts.claim(ti_id, f"w{threading.get_ident()}", services.clock.now()))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([r for r in results if r is not None]) == 1
    assert attempt_counts(services, run_id) == {"t": 1}


def test_killed_worker_attempt_is_retried_not_left_running(engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: killed-worker
        tasks:
          - name: victim
            template: shell
            args: {script: '[ "$MYAPP_TRY_NUMBER" -ge 2 ] || sleep 60; echo "try $MYAPP_TRY_NUMBER"'}
            retries: 1
    """,
    )
    run_id = start(engine_services, pid)
    running = wait_until(
        engine_services,
        run_id,
        lambda d: d["by_name"]["victim"]["state"] == "running" and d["by_name"]["victim"]["attempts"][0]["pid"],
        what="victim running",
    )
    victim_pid = running["by_name"]["victim"]["attempts"][0]["pid"]
    worker = engine_services.worker
    worker.stop(sig=signal.SIGKILL)  # kill -9 the whole worker process group mid-attempt
    worker.start()
    run = wait_finished(engine_services, run_id, timeout=150)  # heartbeat_timeout (30 s), then the retry
    attempts = run["by_name"]["victim"]["attempts"]
    assert run["state"] == "succeeded", run
    assert attempts[0]["state"] == "failed" and "lost" in attempts[0]["message"]
    assert attempts[1]["state"] == "succeeded"
    assert not os.path.exists(f"/proc/{victim_pid}") or "Z" in open(f"/proc/{victim_pid}/stat").read().split()[2], (
        "the task process of the killed worker is still running"
    )
    assert os.path.exists(engine_services.settings.logs_dir / str(run_id) / "victim" / "2.log")
