"""A batch of task instances on the local executor and a real database (myapp/executor/batch.py):
a long first task instance does not hold the others back; they go back to the broker after the
hold and run elsewhere while it still runs. No worker: the test is the other process."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import select

from myapp.db.tables import TaskInstance
from myapp.executor.batch import run_task_instances
from tests.integration.engine_helpers import poll, save, start, wait_finished

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def states(services: Any, run_id: int) -> dict[str, tuple[int, str]]:
    with services.db.read() as s:
        rows = s.execute(
            select(TaskInstance.task_name, TaskInstance.id, TaskInstance.state).where(TaskInstance.run_id == run_id)
        ).all()
    return {name: (ti_id, state) for name, ti_id, state in rows}


def test_a_long_first_task_does_not_hold_back_the_rest_of_its_batch(services: Any, sent: list[int]) -> None:
    release = services.settings.home / "release-slow"
    pid = save(
        services,
        f"""
        name: batch-hold
        tasks:
          - {{name: slow, image: local, command: ['sh', '-c', 'while [ ! -e {release} ]; do sleep 0.02; done']}}
          - {{name: a, image: local, command: ['true']}}
          - {{name: b, image: local, command: ['true']}}
        """,
    )
    run_id = start(services, pid)
    ids = {name: ti_id for name, (ti_id, _) in states(services, run_id).items()}
    assert sorted(sent) == sorted(ids.values())
    given: list[int] = []
    batch = threading.Thread(
        target=run_task_instances,
        args=([ids["slow"], ids["a"], ids["b"]], services, given.extend),
        kwargs={"hold": 0.05},
    )
    batch.start()
    try:
        poll(lambda: given, "the batch to send back what it has not started")
        assert given == [ids["a"], ids["b"]]
        # Another worker process takes them from the broker (here: this one) and runs them
        # while the slow one still runs: they waited for the hold, not for it. (A hold they
        # cannot reach: on a loaded machine `true` may take 50 ms, and b would be sent back.)
        assert run_task_instances(given, services, sent.extend, hold=600) == 2
        now = states(services, run_id)
        assert (now["a"][1], now["b"][1], now["slow"][1]) == ("succeeded", "succeeded", "running")
    finally:
        release.touch()
        batch.join(60)
    assert not batch.is_alive()
    assert wait_finished(services, run_id)["state"] == "succeeded"
