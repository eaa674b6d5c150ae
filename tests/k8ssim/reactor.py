"""The node's container I/O in one thread, as containerd's shims do it with an event loop: every
container's stdout and stderr copied into its CRI log file as output arrives, and every container's
end noticed through a pidfd, then reaped. A container is *ended* once it exited and both its pipes
reached EOF (so its whole output is in the log before its end is reported), or 10 s after it
exited if something else still holds a pipe. Then its `on_end` callback runs (in this thread: it
must only hand over, e.g. queue the pod for a sync).

One thread and one selector for the whole node, instead of two pump threads and a waiter per
container: a thousand idle containers cost nothing here.
"""

from __future__ import annotations

import logging
import os
import selectors
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.k8ssim.crilog import StreamWriter

if TYPE_CHECKING:
    from tests.k8ssim.sandbox import Process

log = logging.getLogger("k8ssim.reactor")
LINGER = 10.0  # seconds an exited container's pipes may stay open before it counts as ended


@dataclass
class _Watched:
    process: Process
    on_end: Callable[[], None]
    pidfd: int
    pipes: dict[int, tuple[Any, StreamWriter]] = field(default_factory=dict)  # fd -> (file, writer)
    exited_at: float = 0.0


class Reactor:
    """start() it, watch() each started container, stop() it."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._added: list[_Watched] = []
        self._lingering: list[_Watched] = []
        self._stop = False
        self.thread = threading.Thread(target=self._run, name="k8ssim reactor", daemon=True)

    def start(self) -> Reactor:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop = True
        self._kick()
        self.thread.join(10)

    def watch(self, process: Process, on_end: Callable[[], None]) -> None:
        """Copy the process's output into its log and call `on_end` once it ended (called right
        after the start, before anything else may reap the process)."""
        try:
            pidfd = os.pidfd_open(process.popen.pid)
        except ProcessLookupError:
            pidfd = -1
        watched = _Watched(process, on_end, pidfd)
        for stream, pipe in (("stdout", process.popen.stdout), ("stderr", process.popen.stderr)):
            assert pipe is not None
            os.set_blocking(pipe.fileno(), False)
            watched.pipes[pipe.fileno()] = (pipe, StreamWriter(process.log, stream))
        with self._lock:
            self._added.append(watched)
        self._kick()

    def _kick(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass  # already woken

    def _run(self) -> None:
        while not self._stop:
            timeout = None
            if self._lingering:
                timeout = max(0.05, min(w.exited_at for w in self._lingering) + LINGER - time.monotonic())
            for key, _ in self._sel.select(timeout):
                try:
                    self._ready(key.fileobj, key.data)  # type: ignore[arg-type]
                except Exception as exc:  # noqa: BLE001  reported by the simulator's errors
                    log.exception("reactor")
                    self.errors.append(f"reactor: {type(exc).__name__}: {exc}")
            self._register_added()
            now = time.monotonic()
            for watched in [w for w in self._lingering if now - w.exited_at >= LINGER]:
                for fd in list(watched.pipes):
                    self._close_pipe(watched, fd)
                self._maybe_ended(watched)

    def _register_added(self) -> None:
        with self._lock:
            added, self._added = self._added, []
        for watched in added:
            for fd in watched.pipes:
                self._sel.register(fd, selectors.EVENT_READ, ("pipe", watched))
            if watched.pidfd >= 0:
                self._sel.register(watched.pidfd, selectors.EVENT_READ, ("pid", watched))
            else:
                self._exited(watched)

    def _ready(self, fd: int, data: tuple[str, _Watched] | None) -> None:
        if data is None:  # the wake-up pipe
            try:
                while os.read(self._wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
            return
        kind, watched = data
        if kind == "pid":
            self._exited(watched)
            return
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        if chunk:
            watched.pipes[fd][1].feed(chunk)
            return
        self._close_pipe(watched, fd)
        self._maybe_ended(watched)

    def _exited(self, watched: _Watched) -> None:
        if watched.pidfd >= 0:
            self._sel.unregister(watched.pidfd)
            os.close(watched.pidfd)
            watched.pidfd = -1
        watched.exited_at = time.monotonic()
        self._lingering.append(watched)
        self._maybe_ended(watched)

    def _close_pipe(self, watched: _Watched, fd: int) -> None:
        pipe, writer = watched.pipes.pop(fd)
        self._sel.unregister(fd)
        writer.end()
        pipe.close()

    def _maybe_ended(self, watched: _Watched) -> None:
        if not watched.exited_at or watched.pipes:
            return
        if watched in self._lingering:
            self._lingering.remove(watched)
        watched.process.ended()
        try:
            watched.on_end()
        except Exception as exc:  # noqa: BLE001
            log.exception("on_end")
            self.errors.append(f"reactor on_end: {type(exc).__name__}: {exc}")
