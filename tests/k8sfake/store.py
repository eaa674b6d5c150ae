"""Object storage with etcd's semantics: one global revision, history, watchers.

Every write bumps one counter (the resourceVersion of every kind, as in etcd),
records a Change in the history that watches replay from, and pushes it to
open watches. `compact()` forgets history, so older resourceVersions get 410.
All state is guarded by one re-entrant Condition, `store.lock`.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field

from tests.k8sfake.errors import expired
from tests.k8sfake.meta import JsonObj, clone, metadata, name_of


@dataclass(frozen=True)
class Change:
    """One stored write: what a watch event is made from."""

    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    key: str  # storage key, e.g. "pods" or "jobs.batch"
    namespace: str
    obj: JsonObj
    prev: JsonObj | None


@dataclass(eq=False)
class Subscription:
    """An open watch's queue of changes to one storage key."""

    key: str
    changes: deque[Change] = field(default_factory=deque)
    closed: str = ""  # "" while open; "clean" or "abrupt" once the server ends it
    bookmark_due: bool = False


class Store:
    """Objects by storage key and (namespace, name), plus the change history."""

    def __init__(self, history_limit: int | None = None) -> None:
        self.lock = threading.Condition(threading.RLock())
        self.revision = 1
        self.floor = 0  # watches from a resourceVersion below this get 410 Expired
        self.history: list[Change] = []
        self.history_limit = history_limit
        self.objects: dict[str, dict[tuple[str, str], JsonObj]] = {}
        self.subscriptions: list[Subscription] = []
        self.closed = False

    def get(self, key: str, namespace: str, name: str) -> JsonObj | None:
        """Return a copy of the stored object, or None."""
        with self.lock:
            obj = self.objects.get(key, {}).get((namespace, name))
            return clone(obj) if obj is not None else None

    def items(self, key: str, namespace: str | None = None) -> list[JsonObj]:
        """Return copies of the objects of `key`, in one namespace or all, in etcd key order."""
        with self.lock:
            stored = self.objects.get(key, {})
            return [clone(stored[k]) for k in sorted(stored) if namespace is None or k[0] == namespace]

    def put(self, key: str, obj: JsonObj, *, prev: JsonObj | None = None) -> JsonObj:
        """Store `obj` at a new revision (ADDED, or MODIFIED when `prev` is given); return a copy."""
        with self.lock:
            self.revision += 1
            metadata(obj)["resourceVersion"] = str(self.revision)
            namespace = str(metadata(obj).get("namespace") or "")
            self.objects.setdefault(key, {})[(namespace, name_of(obj))] = clone(obj)
            self._record(Change(self.revision, "MODIFIED" if prev else "ADDED", key, namespace, clone(obj), prev))
            return clone(obj)

    def remove(self, key: str, namespace: str, name: str) -> JsonObj:
        """Delete the object at a new revision (DELETED); return its final state."""
        with self.lock:
            obj = self.objects[key].pop((namespace, name))
            self.revision += 1
            prev = clone(obj)
            metadata(obj)["resourceVersion"] = str(self.revision)
            self._record(Change(self.revision, "DELETED", key, namespace, clone(obj), prev))
            return obj

    def _record(self, change: Change) -> None:
        self.history.append(change)
        if self.history_limit is not None and len(self.history) > self.history_limit:
            dropped = self.history[: len(self.history) - self.history_limit]
            self.history = self.history[len(dropped) :]
            self.floor = dropped[-1].rv
        for subscription in self.subscriptions:
            if subscription.key == change.key:
                subscription.changes.append(change)
        self.lock.notify_all()

    def bump(self) -> int:
        """Advance the revision without a change (what another kind's write would do)."""
        with self.lock:
            self.revision += 1
            return self.revision

    def compact(self) -> None:
        """Forget all history: watches from any earlier resourceVersion now get 410."""
        with self.lock:
            self.history.clear()
            self.floor = self.revision

    def subscribe(self, key: str, since: int | None) -> tuple[Subscription, list[Change]]:
        """Open a watch on `key`: return its queue and the history after `since`.

        Raises 410 Expired when `since` predates the retained history, with the
        message the watch cache uses: `too old resource version: N (M)`.
        """
        with self.lock:
            replay: list[Change] = []
            if since is not None:
                if since < self.floor:
                    raise expired(f"too old resource version: {since} ({self.floor})")
                start = bisect_right([c.rv for c in self.history], since)
                replay = [c for c in self.history[start:] if c.key == key]
            subscription = Subscription(key)
            self.subscriptions.append(subscription)
            self.lock.notify_all()
            return subscription, replay

    def unsubscribe(self, subscription: Subscription) -> None:
        """Close a watch's queue."""
        with self.lock:
            if subscription in self.subscriptions:
                self.subscriptions.remove(subscription)
            self.lock.notify_all()

    def end_watches(self, key: str | None, how: str) -> int:
        """End open watches (of `key`, or all) "clean"ly or "abrupt"ly; return how many."""
        with self.lock:
            chosen = [s for s in self.subscriptions if key is None or s.key == key]
            for subscription in chosen:
                subscription.closed = how  # deliver what is queued, then end; nothing newer
                self.subscriptions.remove(subscription)
            self.lock.notify_all()
            return len(chosen)

    def request_bookmarks(self) -> None:
        """Ask every open watch to send a BOOKMARK (those that allowed them will)."""
        with self.lock:
            for subscription in self.subscriptions:
                subscription.bookmark_due = True
            self.lock.notify_all()

    def close(self) -> None:
        """Mark the store closed so every open stream ends."""
        with self.lock:
            self.closed = True
            self.lock.notify_all()
