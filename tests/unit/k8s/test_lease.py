"""Leader election of watchers through a Lease (myapp/k8s/lease.py), on an in-memory Lease store."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from myapp.k8s.lease import LeaderElector


class Leases:
    """Create fails when present, replace fails on a stale resourceVersion: the API server's rules."""

    def __init__(self) -> None:
        self.obj: dict[str, Any] | None = None
        self.version = 0

    def get_lease(self, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.obj)

    def create_lease(self, body: dict[str, Any]) -> bool:
        if self.obj is not None:
            return False
        return self._store(body)

    def replace_lease(self, name: str, body: dict[str, Any]) -> bool:
        if self.obj is None or body["metadata"].get("resourceVersion") != self.obj["metadata"]["resourceVersion"]:
            return False
        return self._store(body)

    def _store(self, body: dict[str, Any]) -> bool:
        self.version += 1
        self.obj = copy.deepcopy(body)
        self.obj["metadata"]["resourceVersion"] = str(self.version)
        return True


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return datetime(2026, 12, 6, tzinfo=UTC) + timedelta(seconds=self.t)


def electors(store: Leases, clock: Clock, *names: str) -> list[LeaderElector]:
    return [
        LeaderElector(store, "myapp-watcher-x", n, duration=15, now=clock.now, monotonic=clock.monotonic) for n in names
    ]


def test_one_leads_the_others_stand_by_and_take_over_only_after_the_lease_expires() -> None:
    store, clock = Leases(), Clock()
    a, b = electors(store, clock, "a", "b")
    assert a.try_acquire_or_renew() and not b.try_acquire_or_renew()
    assert b.holder == "a" and store.obj is not None and store.obj["spec"]["holderIdentity"] == "a"
    for _ in range(10):  # a renews every 5 s: b never takes over
        clock.t += 5
        assert a.try_acquire_or_renew() and not b.try_acquire_or_renew()
    clock.t += 14  # a stops renewing (killed)
    assert not b.try_acquire_or_renew(), "not before b has seen the record unchanged for the whole duration"
    clock.t += 1
    assert b.try_acquire_or_renew()
    assert store.obj["spec"]["holderIdentity"] == "b" and store.obj["spec"]["leaseTransitions"] == 1
    assert not a.try_acquire_or_renew(), "the old leader, back, stands by"


def test_two_followers_racing_for_an_expired_lease_cannot_both_win() -> None:
    store, clock = Leases(), Clock()
    a, b, c = electors(store, clock, "a", "b", "c")
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew() and not c.try_acquire_or_renew()
    clock.t += 16
    stale = store.get_lease("x")
    assert b.try_acquire_or_renew()
    store_get = store.get_lease
    store.get_lease = lambda name: stale  # type: ignore[method-assign]  c read before b wrote
    try:
        assert not c.try_acquire_or_renew(), "c's write carries a stale resourceVersion"
    finally:
        store.get_lease = store_get  # type: ignore[method-assign]
    assert store.obj is not None and store.obj["spec"]["holderIdentity"] == "b"


def test_a_released_lease_is_taken_at_once() -> None:
    store, clock = Leases(), Clock()
    a, b = electors(store, clock, "a", "b")
    assert a.try_acquire_or_renew() and not b.try_acquire_or_renew()
    a.release()
    assert b.try_acquire_or_renew(), "a clean stop hands over without waiting for the expiry"
