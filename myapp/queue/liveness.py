"""The worker's broker liveness check: is this worker still taking messages from the broker?

kombu's Redis transport has left workers connected but no longer consuming after a broker restart
(celery #4453, #7705, #9054; kombu #2007, fixed in 5.4) and, in the 5.7 used here, stopped them
while restoring unacked messages through a detached transport (docs/reliability.md). A worker in
that state neither runs tasks nor exits, and a supervisor that restarts failed processes sees
nothing wrong. kombu 5.7 drops a BRPOP connection whose reply is overdue (`health_check_interval`),
which covers a half-open socket; this covers whatever else stops the consumer.

Every `timeout / 4` seconds a thread of the worker's main process publishes a probe, through a
connection of its own, to a queue only this worker consumes (`LivenessStep`, a consumer bootstep
on the worker's own connection, so it is served by the same event loop and transport as the task
queue, but is not held back by a full pool). When a probe that was published is not received
within `timeout` seconds, the worker logs why and stops with exit status 1 (`myapp worker` then
exits 1, and its supervisor or `myapp standalone` starts it again). A probe that cannot be
published (the broker is down) proves nothing: the worker is reconnecting, as it should.

Holds no business rule; only the Celery worker imports it.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from celery import Celery, bootsteps
from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.messaging import Consumer, Producer

log = logging.getLogger(__name__)


class Liveness:
    """Probe bookkeeping: when the oldest unanswered probe was published, when one was last received."""

    def __init__(self, timeout: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self.clock = clock
        name = f"myapp.liveness.{socket.gethostname()}.{os.getpid()}"
        self.queue = Queue(name, Exchange(name, type="direct"), routing_key=name, auto_delete=True)
        self.unanswered_since: float | None = None  # the first probe published since the last one received
        self.failed = threading.Event()

    @property
    def interval(self) -> float:
        """Return the seconds between two probes."""
        return max(self.timeout / 4, 0.2)

    def published(self) -> None:
        """Note a probe that reached the broker."""
        if self.unanswered_since is None:
            self.unanswered_since = self.clock()

    def unreachable(self) -> None:
        """Note a probe the broker did not take: it is away, and what it held may be gone with it."""
        self.unanswered_since = None

    def received(self, _body: Any, message: Any) -> None:
        """Note a probe taken from the broker (the consumer's callback)."""
        self.unanswered_since = None
        message.ack()

    def is_stalled(self) -> bool:
        """Return True when a published probe has waited longer than `timeout`."""
        since = self.unanswered_since
        return since is not None and self.clock() - since > self.timeout


class LivenessStep(bootsteps.ConsumerStep):
    """Consumes this worker's probe queue on the worker's broker connection (restarted with it)."""

    consumers: list[Consumer] | None = None

    def __init__(self, c: Any, **kwargs: Any) -> None:
        super().__init__(c, **kwargs)
        self.liveness: Liveness = c.app.myapp_liveness

    def get_consumers(self, channel: Any) -> list[Consumer]:
        return [Consumer(channel, queues=[self.liveness.queue], callbacks=[self.liveness.received], accept=["json"])]

    def stop(self, c: Any) -> None:
        self._forget()

    def shutdown(self, c: Any) -> None:
        self._forget()

    def _forget(self) -> None:
        # ConsumerStep's own stop cancels through `c.connection`, which Celery has already dropped
        # when the connection was lost ("Error on restarting ...": AttributeError on None). The
        # consumer and its channel belong to that connection: closing them is all there is to do.
        for consumer in self.consumers or []:
            channel: Any = consumer.channel
            try:
                channel.close()
            except Exception:  # noqa: BLE001  a lost connection's channel may fail to close; it is gone anyway
                log.debug("closing the liveness probe's channel failed", exc_info=True)
        self.consumers = []


def install(app: Celery, timeout: float) -> Liveness | None:
    """Add the probe consumer to `app`'s workers and return the bookkeeping (None when `timeout` is 0)."""
    if timeout <= 0:
        return None
    liveness = Liveness(timeout)
    app.myapp_liveness = liveness  # read by LivenessStep
    app.steps["consumer"].add(LivenessStep)
    return liveness


def start_watchdog(app: Celery, liveness: Liveness, *, stop: Callable[[], None] | None = None) -> threading.Thread:
    """Publish probes and watch for their arrival in a daemon thread of the worker's main process.

    On a stall: log, set `liveness.failed`, and ask the worker to stop as SIGTERM does (a warm
    shutdown: running attempts end first; they need only the database).
    """

    def watch() -> None:
        with Connection(app.conf.broker_url, transport_options=app.conf.broker_transport_options) as conn:
            while not liveness.failed.is_set():
                time.sleep(liveness.interval)
                if liveness.is_stalled():
                    log.error(
                        "the worker took no message from the broker for %.0f s although the broker "
                        "accepted probes: its consumer is stuck; stopping so that it is started again",
                        liveness.timeout,
                    )
                    liveness.failed.set()
                    (stop or _terminate)()
                    return
                _probe(conn, liveness)

    thread = threading.Thread(target=watch, name="myapp-liveness", daemon=True)
    thread.start()
    return thread


def _probe(conn: Connection, liveness: Liveness) -> None:
    try:
        Producer(conn).publish(
            {"at": time.time()},
            exchange=liveness.queue.exchange,
            routing_key=liveness.queue.routing_key,
            declare=[liveness.queue],
            serializer="json",
            retry=False,
        )
    except Exception as exc:  # noqa: BLE001  the broker is away: the consumer is reconnecting, not stuck
        log.debug("liveness probe not published: %s", exc)
        liveness.unreachable()
        conn.close()  # the next probe opens a fresh connection
        return
    liveness.published()


def _terminate() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
