"""Leader election of the watchers of one worker group through a coordination.k8s.io/v1 Lease.

Several `myapp k8s-watcher` processes may run for one group (and installation); one leads and
watches, the others stand by. As client-go's leaderelection does:
- the leader renews `spec.renewTime` every `duration / 3` seconds and stops leading when it could
  not renew for `2/3 * duration` (before anyone else may take over);
- a follower takes over when the Lease's record (holder, renewTime) has not changed for `duration`
  seconds *as the follower observed it* (its own monotonic clock: no trust in others' clocks);
- writes carry the resourceVersion read, so two followers racing for a Lease cannot both win (409);
- a leader that stops cleanly releases the Lease (empty holder), so a follower takes over at once.
A new leader adopts the running attempts from the database (pods run on without a watcher).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

log = logging.getLogger(__name__)
Raw = dict[str, Any]


class LeaseStore(Protocol):
    def get_lease(self, name: str) -> Raw | None: ...
    def create_lease(self, body: Raw) -> bool: ...  # False: it exists (someone was first)
    def replace_lease(self, name: str, body: Raw) -> bool: ...  # False: it changed since read (409)


@dataclass(frozen=True)
class Observed:
    """A Lease record as last seen, and when (this process's monotonic clock)."""

    holder: str
    renewed: str
    at: float


def lease_free(spec: Raw, observed: Observed | None, identity: str, duration: float, monotonic_now: float) -> bool:
    """Return True when `identity` may take the Lease with this spec. Pure."""
    holder = str(spec.get("holderIdentity") or "")
    if not holder or holder == identity:
        return True
    record = (holder, str(spec.get("renewTime") or ""))
    if observed is None or (observed.holder, observed.renewed) != record:
        return False  # changed since we last looked: its holder is alive (we start counting now)
    return monotonic_now - observed.at >= duration


def micro_time(at: datetime) -> str:
    """Return a MicroTime as the API writes it."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Acquires, renews and releases one Lease for `identity`."""

    def __init__(
        self,
        store: LeaseStore,
        name: str,
        identity: str,
        *,
        duration: float = 15.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.name, self.identity, self.duration = store, name, identity, duration
        self.now, self.monotonic = now, monotonic
        self.observed: Observed | None = None
        self.holder = ""  # the leader as last seen (for the log and health)

    @property
    def renew_every(self) -> float:
        return max(self.duration / 3.0, 0.2)

    def try_acquire_or_renew(self) -> bool:
        """Take or renew the Lease once; return True while this process leads."""
        current = self.store.get_lease(self.name)
        stamp = micro_time(self.now())
        if current is None:
            body = self._body({}, stamp, transitions=0, acquired=stamp)
            return self._won(self.store.create_lease(body), body)
        spec = current.get("spec") or {}
        self._observe(spec)
        if not lease_free(spec, self.observed, self.identity, self.duration, self.monotonic()):
            return False
        mine = spec.get("holderIdentity") == self.identity
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
        body = self._body(
            current, stamp, transitions=transitions, acquired=str(spec.get("acquireTime") or stamp) if mine else stamp
        )
        return self._won(self.store.replace_lease(self.name, body), body)

    def release(self) -> None:
        """Give the Lease up (a clean stop): a follower takes over without waiting for it to expire."""
        current = self.store.get_lease(self.name)
        if current is None or (current.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        body = dict(current)
        body["spec"] = {
            **(current.get("spec") or {}),
            "holderIdentity": "",
            "leaseDurationSeconds": 1,
            "renewTime": micro_time(self.now()),
        }
        self.store.replace_lease(self.name, body)

    def lead(self, stop: threading.Event, lost: threading.Event) -> None:
        """Renew every `renew_every` until `stop`; set `lost` when renewals failed for 2/3 of the duration."""
        last = self.monotonic()
        while not stop.wait(self.renew_every):
            try:
                if self.try_acquire_or_renew():
                    last = self.monotonic()
                    continue
            except Exception as exc:  # noqa: BLE001  an API outage: keep trying until the deadline
                log.warning("renewing lease %s: %s", self.name, exc)
            if self.monotonic() - last >= self.duration * 2 / 3:
                log.error("lost the lease %s (now held by %r): stopping", self.name, self.holder)
                lost.set()
                return

    def _observe(self, spec: Raw) -> None:
        record = (str(spec.get("holderIdentity") or ""), str(spec.get("renewTime") or ""))
        self.holder = record[0]
        if self.observed is None or (self.observed.holder, self.observed.renewed) != record:
            self.observed = Observed(record[0], record[1], self.monotonic())

    def _won(self, written: bool, body: Raw) -> bool:
        if written:
            self.holder = self.identity
            self.observed = Observed(self.identity, str(body["spec"]["renewTime"]), self.monotonic())
        return written

    def _body(self, current: Raw, stamp: str, *, transitions: int, acquired: str) -> Raw:
        meta = {
            k: v
            for k, v in (current.get("metadata") or {}).items()
            if k in ("name", "namespace", "resourceVersion", "labels", "annotations")
        }
        meta.setdefault("name", self.name)
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": max(int(self.duration), 1),
                "acquireTime": acquired,
                "renewTime": stamp,
                "leaseTransitions": transitions,
            },
        }
