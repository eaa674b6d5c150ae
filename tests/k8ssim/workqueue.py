"""kubelet's pod workers on a bounded pool: each pod is synced by one thread at a time, when it is
kicked (its pod changed in the watch, a container ended, a knob was turned) or when the timer its
last sync asked for is due. A kick during a sync makes one more sync right after it. A thousand
pods cost a few threads and no polling.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from typing import Protocol


class Syncable(Protocol):
    def sync(self) -> float | None:
        """Do one sync; return the seconds until the next one is wanted (None: only when kicked)."""


class WorkQueue:
    """start() it with `size` threads; kick() or schedule items; stop() it."""

    def __init__(self, size: int, name: str = "pod sync") -> None:
        self._cond = threading.Condition()
        self._ready: deque[Syncable] = deque()
        self._queued: set[Syncable] = set()
        self._active: set[Syncable] = set()
        self._again: set[Syncable] = set()
        self._due: dict[Syncable, float] = {}
        self._timers: list[tuple[float, int, Syncable]] = []
        self._seq = itertools.count()
        self._stop = False
        self._threads = [threading.Thread(target=self._loop, name=f"{name} {i}", daemon=True) for i in range(size)]

    def start(self) -> WorkQueue:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(10)

    def kick(self, item: Syncable) -> None:
        """Sync `item` as soon as a thread is free (again after the current sync, if one runs)."""
        with self._cond:
            self._enqueue(item)

    def _enqueue(self, item: Syncable) -> None:
        if item in self._active:
            self._again.add(item)
        elif item not in self._queued:
            self._queued.add(item)
            self._ready.append(item)
            self._cond.notify()

    def _next(self) -> Syncable | None:
        with self._cond:
            while not self._stop:
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    when, _, item = heapq.heappop(self._timers)
                    if self._due.get(item) == when:  # not superseded by a later sync's timer
                        del self._due[item]
                        self._enqueue(item)
                if self._ready:
                    item = self._ready.popleft()
                    self._queued.discard(item)
                    self._active.add(item)
                    return item
                self._cond.wait(self._timers[0][0] - now if self._timers else None)
            return None

    def _loop(self) -> None:
        while (item := self._next()) is not None:
            delay = item.sync()
            with self._cond:
                self._active.discard(item)
                if delay is None:
                    self._due.pop(item, None)
                else:
                    when = time.monotonic() + delay
                    self._due[item] = when
                    heapq.heappush(self._timers, (when, next(self._seq), item))
                    self._cond.notify()
                if item in self._again:
                    self._again.discard(item)
                    self._enqueue(item)
