"""Execute messages of several task instance ids through a real worker (myapp/queue/celery_app.py,
myapp/executor/batch.py): a large dispatch sends fewer messages than task instances, every one of
them runs, and a task instance blocked behind a long one in its message is sent back and run by
the other pool process. The reconciler is kept out of it (requeue_after 600 s): only the hold can
free a task instance held in a batch."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.integration.engine_helpers import poll, save, start, wait_finished
from tests.integration.test_batch_hold import states

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
SETTINGS_OVERRIDES = {"requeue_after": 600}
RECEIVED = re.compile(rb"Task (myapp\.execute_task_instances?)\[[^\]]+\] received")


def received(log: Any) -> list[bytes]:
    return RECEIVED.findall(log.read_bytes())


def test_a_wide_start_goes_in_batches_and_a_long_task_holds_none_back(engine_services: Any) -> None:
    services = engine_services
    release = services.settings.home / "release-t0"
    wait = f"while [ ! -e {release} ]; do sleep 0.02; done"
    tasks = "\n".join(
        f"  - {{name: t{i}, image: local, command: ['sh', '-c', '{wait if i == 0 else 'true'}']}}" for i in range(40)
    )
    pid = save(services, f"name: wide-start\ntasks:\n{tasks}\n")
    real, seen = services.runs.dispatch, []
    services.set_dispatch(lambda ids: (seen.extend(ids), real(ids)))
    before = len(received(services.worker.log))
    try:
        run_id = start(services, pid)
        ids = {name: ti_id for name, (ti_id, _) in states(services, run_id).items()}
        assert seen[:2] == [ids["t0"], ids["t1"]], "t0 leads the first message, t1 waits behind it"
        # t0 runs until released; every other task, t1 included, ends meanwhile.
        poll(
            lambda: all(state == "succeeded" for name, (_, state) in states(services, run_id).items() if name != "t0"),
            "every task but the blocked one to succeed",
            timeout=120,
        )
        assert states(services, run_id)["t0"][1] == "running"
    finally:
        services.set_dispatch(real)
        release.touch()
    assert wait_finished(services, run_id)["state"] == "succeeded"
    names = received(services.worker.log)[before:]
    assert b"myapp.execute_task_instances" in names and len(names) < 40, names
