"""run_task_instances (myapp/executor/batch.py): a batch runs its ids in order in this process, and
gives the ones not started back while one of them runs longer than the hold."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from myapp.executor.batch import run_task_instances

pytestmark = pytest.mark.timeout(60)


def wait_for(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


class Recorder:
    """A run_one that records the ids it ran; `block` makes one id wait for `release`."""

    def __init__(self, block: int | None = None) -> None:
        self.ran: list[int] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.block = block

    def __call__(self, ti_id: int, services: Any) -> int:
        self.ran.append(ti_id)
        if ti_id == self.block:
            self.started.set()
            assert self.release.wait(30), "never released"
        return 1


def test_a_batch_of_short_task_instances_runs_them_all_in_order_here() -> None:
    run, sent = Recorder(), []
    assert run_task_instances([3, 1, 2], None, sent.extend, hold=60, run_one=run) == 3  # type: ignore[arg-type]
    assert run.ran == [3, 1, 2] and sent == []


def test_a_long_task_instance_sends_the_rest_back_after_the_hold_and_runs_nothing_more() -> None:
    run, sent = Recorder(block=1), []
    sent_at: list[float] = []
    batch = threading.Thread(
        target=run_task_instances,
        args=([1, 2, 3, 4], None, lambda ids: (sent.extend(ids), sent_at.append(time.monotonic()))),
        kwargs={"hold": 0.05, "run_one": run},
    )
    batch.start()
    assert run.started.wait(30)
    began = time.monotonic()
    wait_for(lambda: sent, "the rest to be sent back")  # while task instance 1 still runs
    assert sent == [2, 3, 4] and not run.release.is_set()
    assert sent_at[0] - began < 5, "sent back long after the hold"  # the hold is 0.05 s; a loaded host may lag
    run.release.set()
    batch.join(30)
    assert run.ran == [1]  # what went back is not run here too


def test_the_hold_restarts_with_each_task_instance_of_the_batch() -> None:
    # Each short one keeps the batch; a long one after them sends back only what follows it.
    run, sent = Recorder(block=3), []
    batch = threading.Thread(
        target=run_task_instances, args=([1, 2, 3, 4, 5], None, sent.extend), kwargs={"hold": 5, "run_one": run}
    )
    batch.start()
    assert run.started.wait(30)
    wait_for(lambda: sent, "the rest after the long one to be sent back")
    assert run.ran == [1, 2, 3] and sent == [4, 5]
    run.release.set()
    batch.join(30)


def test_batches_on_threads_are_watched_each_with_its_own_hold() -> None:
    # Two batches in one process (the threads pool): the long one gives its rest back; the other,
    # with a hold no task of it reaches, keeps all of its own.
    long, short, sent_long, sent_short = Recorder(block=10), Recorder(), [], []
    one = threading.Thread(
        target=run_task_instances, args=([10, 11, 12], None, sent_long.extend), kwargs={"hold": 0.05, "run_one": long}
    )
    one.start()
    assert long.started.wait(30)
    assert run_task_instances([20, 21, 22], None, sent_short.extend, hold=60, run_one=short) == 3  # type: ignore[arg-type]
    wait_for(lambda: sent_long, "the long batch's rest to be sent back")
    long.release.set()
    one.join(30)
    assert (long.ran, sent_long, short.ran, sent_short) == ([10], [11, 12], [20, 21, 22], [])


def test_an_error_sends_the_rest_back_at_once_and_is_raised() -> None:
    sent: list[int] = []

    def failing(ti_id: int, services: Any) -> int:
        raise RuntimeError("database gone")

    with pytest.raises(RuntimeError):
        run_task_instances([7, 8, 9], None, sent.extend, hold=60, run_one=failing)  # type: ignore[arg-type]
    assert sent == [8, 9]
