"""A batch: the task instances of one execute message, run one after the other in this process.

A large dispatch carries several task instance ids per message (myapp/queue/celery_app.py), so
the worker's main process, Celery's trace and the sender's publish cost once per message instead
of once per task instance. A batch must never hold a task instance back behind a long one: once
one of its task instances (with the chain it goes on with in this process) has run for HOLD
seconds, a thread of this process sends the ones not started yet back through `send_back`, where
any free worker process takes them. A task instance sent twice is harmless: the claim in the
database decides who runs it, and no id is both sent back and run here (one lock hands each out).

Imports nothing from Celery: the caller passes how to send ids back.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from myapp.executor.ports import ExecutorPorts
from myapp.executor.worker import run_task_instance

log = logging.getLogger(__name__)
HOLD = 0.05  # seconds one task instance of a batch may run before the batch's rest goes back to the broker
SendBack = Callable[[Sequence[int]], Any]


def run_task_instances(
    ids: Iterable[int],
    services: ExecutorPorts,
    send_back: SendBack,
    *,
    hold: float = HOLD,
    run_one: Callable[[int, ExecutorPorts], int] = run_task_instance,
) -> int:
    """Run the task instances `ids` one after the other; return how many attempts ran.

    While one of them runs for longer than `hold`, the rest goes to `send_back` and is not run here.
    """
    rest = deque(int(i) for i in ids)
    watcher, ran = _watcher(), 0
    try:
        while (ti_id := watcher.next(rest, send_back, hold)) is not None:
            ran += run_one(ti_id, services)
    finally:
        left = watcher.forget(rest)  # only after an error: what did not start goes back now, not after requeue_after
        if left:
            send_back(left)
    return ran


class _Watcher:
    """One thread per process: sends back the rest of each batch whose running task instance is past its hold.

    Arming costs a dict write under a lock; the thread is woken only when a deadline comes earlier
    than the one it waits for, so a batch of short task instances wakes it at most once per `hold`.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._cond = threading.Condition()
        self._armed: dict[int, tuple[float, deque[int], SendBack]] = {}
        self._wake_at = math.inf  # when the thread wakes next by itself
        threading.Thread(target=self._loop, name="myapp-batch-hold", daemon=True).start()

    def next(self, rest: deque[int], send_back: SendBack, hold: float) -> int | None:
        """Take the batch's next id (None: nothing left) and watch the rest until the next call."""
        with self._cond:
            ti_id = rest.popleft() if rest else None
            if not rest:
                self._armed.pop(id(rest), None)
                return ti_id
            deadline = time.monotonic() + hold
            self._armed[id(rest)] = (deadline, rest, send_back)
            if deadline < self._wake_at:
                self._cond.notify()
            return ti_id

    def forget(self, rest: deque[int]) -> list[int]:
        """Stop watching the batch; return (and take) the ids it has not started."""
        with self._cond:
            self._armed.pop(id(rest), None)
            left = list(rest)
            rest.clear()
            return left

    def _loop(self) -> None:
        while True:
            with self._cond:
                due = self._take_due(time.monotonic())
                if not due:
                    self._wake_at = min((d for d, _, _ in self._armed.values()), default=math.inf)
                    self._cond.wait(None if self._wake_at == math.inf else self._wake_at - time.monotonic())
                    self._wake_at = -math.inf  # awake: an arm need not notify
                    continue
            for ids, send_back in due:
                try:
                    send_back(ids)
                except Exception:  # noqa: BLE001  they stay queued in the database: the reconciler re-sends them
                    log.warning("could not send back %d task instance(s) of a batch", len(ids), exc_info=True)

    def _take_due(self, now: float) -> list[tuple[list[int], SendBack]]:
        due = []
        for key, (deadline, rest, send_back) in list(self._armed.items()):
            if deadline <= now:
                del self._armed[key]
                due.append((list(rest), send_back))
                rest.clear()
        return due


_WATCHER: list[_Watcher] = []  # this process's; a forked child starts its own
_WATCHER_LOCK = threading.Lock()


def _watcher() -> _Watcher:
    if _WATCHER and _WATCHER[0].pid == os.getpid():
        return _WATCHER[0]
    with _WATCHER_LOCK:
        if not _WATCHER or _WATCHER[0].pid != os.getpid():
            _WATCHER[:] = [_Watcher()]
        return _WATCHER[0]
