"""The worker's broker liveness bookkeeping (myapp/queue/liveness.py) with a clock the test moves."""

from __future__ import annotations

from typing import Any

from myapp.queue.liveness import Liveness


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Message:
    acked = False

    def ack(self) -> None:
        self.acked = True


def test_a_probe_unanswered_for_longer_than_the_timeout_is_a_stall() -> None:
    clock = Clock()
    live = Liveness(20, clock=clock)
    assert live.interval == 5 and not live.is_stalled()
    live.published()
    clock.now += 15
    live.published()  # the later probe does not move the start of the wait
    clock.now += 6
    assert live.is_stalled()


def test_a_received_probe_ends_the_wait_and_is_acknowledged() -> None:
    clock, message = Clock(), Message()
    live = Liveness(20, clock=clock)
    live.published()
    clock.now += 19
    live.received({"at": 0}, message)
    clock.now += 19
    assert message.acked and not live.is_stalled()


def test_probes_the_broker_refused_or_lost_prove_nothing() -> None:
    clock: Any = Clock()
    live = Liveness(20, clock=clock)
    live.published()  # then the broker restarts empty: this probe is gone with it
    clock.now += 10
    live.unreachable()  # the next probe could not be published: the broker is away
    clock.now += 30
    assert not live.is_stalled()
    live.published()
    clock.now += 21
    assert live.is_stalled()


def test_each_worker_process_has_a_queue_of_its_own() -> None:
    a, b = Liveness(10), Liveness(10)
    assert a.queue.name == b.queue.name and a.queue.name.startswith("myapp.liveness.")  # same process
    assert a.queue.routing_key == a.queue.name and a.queue.exchange.name == a.queue.name
