"""kill -9 of one worker in the middle of an attempt, while another worker runs another run: the
killed worker's attempt is declared lost and retried, its task process dies with it (the reaper),
and the other worker's run goes on untouched: the same attempt, never interrupted, one line of
log after another."""

from __future__ import annotations

import dataclasses
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import WorkerProcess, worker_env
from tests.integration.engine_helpers import detail, save, start, task_lines, wait_finished, wait_until
from tests.processes import wait_gone

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def two_workers(services: Any, broker_url: str) -> Iterator[tuple[Any, WorkerProcess, WorkerProcess]]:
    """`busy`: one attempt at a time, with the beat (reconciler); `victim`: a prefork worker, no beat."""
    from myapp.queue.celery_app import create_celery, use_celery

    settings = dataclasses.replace(services.settings, broker_url=broker_url)
    app, _ = create_celery(settings)
    use_celery(services, app)
    env = worker_env(settings, broker_url)
    busy, victim = WorkerProcess(env, 1, "solo", beat=True), WorkerProcess(env, 2, "prefork", beat=False)
    busy.start()
    try:
        yield services, busy, victim
    finally:
        victim.stop()
        busy.stop()


def test_killing_one_worker_leaves_the_other_workers_run_alone(two_workers: Any) -> None:
    services, busy, victim = two_workers
    # The steady task runs until the test is done with the other worker (a fixed duration would end
    # it before `victim` has started on a loaded machine, and `busy` would take the doomed task).
    release = services.settings.home / "steady-release"
    steady = save(
        services,
        f"""
        name: steady
        tasks:
          - name: tick
            template: shell
            args: {{script: 'i=0; while [ ! -e {release} ]; do i=$((i+1)); echo "tick $i"; sleep 0.5; done; echo done'}}
    """,
    )
    steady_run = start(services, steady)
    running = wait_until(
        services,
        steady_run,
        lambda d: d["by_name"]["tick"]["attempts"] and d["by_name"]["tick"]["attempts"][0]["pid"],
        what="the steady task running on `busy`",
    )
    steady_attempt = running["by_name"]["tick"]["attempts"][0]
    victim.start()  # `busy` is taken (solo), so the next task can only go to `victim`
    doomed = save(
        services,
        """
        name: doomed
        tasks:
          - name: victim
            template: shell
            args: {script: '[ "$MYAPP_TRY_NUMBER" -ge 2 ] || sleep 60; echo "try $MYAPP_TRY_NUMBER"'}
            retries: 1
    """,
    )
    doomed_run = start(services, doomed)
    taken = wait_until(
        services,
        doomed_run,
        lambda d: d["by_name"]["victim"]["attempts"] and d["by_name"]["victim"]["attempts"][0]["pid"],
        what="the doomed task running on `victim`",
    )
    task_pid = taken["by_name"]["victim"]["attempts"][0]["pid"]
    assert victim.proc is not None and busy.proc is not None
    assert taken["by_name"]["victim"]["attempts"][0]["worker"] != steady_attempt["worker"]
    victim.stop(sig=signal.SIGKILL)  # kill -9 of its whole process group, mid-attempt
    assert detail(services, steady_run)["by_name"]["tick"]["state"] == "running"
    release.touch()  # `busy` runs the reconciler (its beat) and the retry once its task is done

    doomed_end = wait_finished(services, doomed_run, timeout=150)  # heartbeat_timeout (30 s), then the retry
    tries = doomed_end["by_name"]["victim"]["attempts"]
    assert doomed_end["state"] == "succeeded", doomed_end
    assert tries[0]["state"] == "failed" and "lost" in tries[0]["message"] and tries[1]["state"] == "succeeded"
    assert wait_gone(task_pid, 60), "the killed worker's task process is still running"

    steady_end = wait_finished(services, steady_run, timeout=120)
    (only,) = steady_end["by_name"]["tick"]["attempts"]
    assert steady_end["state"] == "succeeded" and only["state"] == "succeeded"
    assert (only["pid"], only["worker"]) == (steady_attempt["pid"], steady_attempt["worker"])
    lines = task_lines(services, steady_run, "tick")
    assert len(lines) >= 3 and lines == [f"tick {i}" for i in range(1, len(lines))] + ["done"], lines
    assert busy.proc.poll() is None and os.path.exists(f"/proc/{busy.proc.pid}")
