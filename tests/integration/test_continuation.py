"""A worker process goes on with the task its success made ready (myapp/executor/worker.py): a chain
hops from task to task in one process without a broker message per hop, and the tasks that it does
not keep still go through the broker to the other processes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from myapp.db.tables import TaskAttempt, TaskInstance
from tests.integration.engine_helpers import save, start, wait_finished

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
RECEIVED = re.compile(r"Task myapp\.execute_task_instance\[[^\]]+\] received")


def workers_by_task(services: Any, run_id: int) -> dict[str, str]:
    with services.db.read() as s:
        rows = s.execute(
            select(TaskInstance.task_name, TaskAttempt.worker)
            .join(TaskAttempt, TaskAttempt.task_instance_id == TaskInstance.id)
            .where(TaskInstance.run_id == run_id)
        ).all()
    return {name: worker for name, worker in rows}


def test_a_chain_hops_in_the_process_that_finished_each_task(engine_services: Any) -> None:
    services, log = engine_services, engine_services.worker.log
    tasks = "\n".join(
        f"  - {{name: t{i}, template: shell, args: {{script: 'echo {i}'}}{f', depends_on: [t{i - 1}]' if i else ''}}}"
        for i in range(6)
    )
    pid = save(services, f"name: hop-in-place\ntasks:\n{tasks}\n")
    received_before = len(RECEIVED.findall(log.read_text(errors="replace")))
    run_id = start(services, pid)
    assert wait_finished(services, run_id)["state"] == "succeeded"
    assert len(set(workers_by_task(services, run_id).values())) == 1, workers_by_task(services, run_id)
    received = len(RECEIVED.findall(log.read_text(errors="replace"))) - received_before
    assert received == 1, f"{received} execute messages for a chain of 6: only its first task needs one"


def test_a_fan_out_keeps_one_task_and_sends_the_others(engine_services: Any) -> None:
    services = engine_services
    leaves = "\n".join(
        f"  - {{name: leaf{i}, template: shell, args: {{script: 'sleep 0.3'}}, depends_on: [root]}}" for i in range(4)
    )
    pid = save(
        services, f"name: keep-one\ntasks:\n  - {{name: root, template: shell, args: {{script: 'true'}}}}\n{leaves}\n"
    )
    run_id = start(services, pid)
    assert wait_finished(services, run_id)["state"] == "succeeded"
    workers = workers_by_task(services, run_id)
    assert len(set(workers.values())) == 2, f"the two pool processes share the leaves: {workers}"
