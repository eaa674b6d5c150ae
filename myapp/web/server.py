"""How `myapp webserver` runs gunicorn so that slow or stalled clients cannot take the site down.

gunicorn's sync workers read a request in the process that serves it: two clients that send half a
request held both default workers until gunicorn's 30 s timeout (issue 13, B9). Here every worker
is threaded (`gthread`: `web_threads` requests at once per process) and each client connection
gets kernel read and write timeouts (`web_client_timeout`, SO_RCVTIMEO/SO_SNDTIMEO): a client that
stays silent that long while sending its request, or stops reading the answer, is disconnected
and its thread freed. A buffering reverse proxy in front (nginx, an ingress) is still the
recommended production setup; this is what holds when there is none.

Must not import the stores, the engine or the executors.
"""

from __future__ import annotations

import gc
import logging
import socket
import struct
import sys
from pathlib import Path
from typing import Any

from gunicorn.workers.gthread import ThreadWorker as GunicornThreadWorker

from myapp.settings import Settings, load_settings

WORKER_CLASS = "myapp.web.server.ThreadWorker"


def gunicorn_argv(
    settings: Settings,
    bind: str,
    workers: int | None = None,
    threads: int | None = None,
    *,
    access_log: bool = True,
    graceful_timeout: int = 30,
    chdir: Path | None = None,
) -> list[str]:
    """Return the argv that serves the web app with gunicorn's threaded workers."""
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--preload",
        "-w",
        str(workers or settings.web_workers),
        "--threads",
        str(threads or settings.web_threads),
        "-k",
        WORKER_CLASS,
        "--timeout",
        "60",
        "--graceful-timeout",
        str(graceful_timeout),
        "--keep-alive",
        "5",
        "--limit-request-line",
        "8190",
        "--limit-request-fields",
        "100",
        "-b",
        bind,
    ]
    argv += ["--chdir", str(chdir)] if chdir is not None else []
    argv += ["--access-logfile", "-"] if access_log else ["--log-level", "warning"]
    return [*argv, "myapp.web.wsgi:application"]


class _StalledClientLog(logging.Filter):
    """Turn gunicorn's traceback for a client that timed out into one informative line."""

    def __init__(self, timeout: int) -> None:
        super().__init__()
        self.timeout = timeout

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, (BlockingIOError, TimeoutError)):
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "closed a connection silent for %ss (slow or stalled client)", (self.timeout,)
        return True


class ThreadWorker(GunicornThreadWorker):
    """gunicorn's threaded worker whose client sockets time out when the client stalls."""

    client_timeout = 10

    def init_process(self) -> None:
        # The app was loaded before the fork (--preload): move its ~200,000 objects out of the cyclic
        # collector's sight. A 10,000-task save allocates enough to trigger full collections, each
        # of which walked them all: half of the save's time (issue 13 B15; docs/benchmarks.md).
        gc.freeze()
        self.client_timeout = load_settings().web_client_timeout
        self.log.error_log.addFilter(_StalledClientLog(self.client_timeout))
        super().init_process()

    def enqueue_req(self, conn: Any) -> None:
        set_client_timeouts(conn.sock, self.client_timeout)
        super().enqueue_req(conn)


def set_client_timeouts(sock: socket.socket, seconds: int) -> None:
    """Make blocking reads and writes on `sock` fail after `seconds` without progress (kernel timeouts).

    gunicorn switches the socket between blocking and non-blocking mode, which resets Python's
    own socket timeout; the kernel's SO_RCVTIMEO/SO_SNDTIMEO stay.
    """
    value = struct.pack("ll", int(seconds), 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
