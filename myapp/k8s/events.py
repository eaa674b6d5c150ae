"""Kubernetes events of an attempt's objects, kept for the run page (TaskAttempt.events). Pure.

The watcher watches the namespace's core/v1 events once and keeps those whose involved object
is one of its attempts' pods, services or resources (or is named like one: the pod's own watch
event may come later). Repeats (same event, bumped `count`)
replace the earlier record; each object keeps its newest `limit` events.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EventView:
    """One event as shown on the run page."""

    uid: str
    object_kind: str
    object_name: str
    type: str
    reason: str
    message: str
    count: int
    first_seen: str
    last_seen: str
    source: str

    def record(self) -> dict[str, Any]:
        """Return the JSON kept in TaskAttempt.events."""
        return {
            "object": f"{self.object_kind.lower()}/{self.object_name}",
            "type": self.type,
            "reason": self.reason,
            "message": self.message,
            "count": self.count,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "source": self.source,
        }


def parse_event(raw: Mapping[str, Any]) -> EventView:
    """Return the view of a raw core/v1 Event."""
    meta, involved, source = raw.get("metadata") or {}, raw.get("involvedObject") or {}, raw.get("source") or {}
    last = raw.get("lastTimestamp") or raw.get("eventTime") or meta.get("creationTimestamp") or ""
    return EventView(
        uid=str(meta.get("uid") or meta.get("name") or ""),
        object_kind=str(involved.get("kind") or ""),
        object_name=str(involved.get("name") or ""),
        type=str(raw.get("type") or "Normal"),
        reason=str(raw.get("reason") or ""),
        message=str(raw.get("message") or ""),
        count=int(raw.get("count") or 1),
        first_seen=str(raw.get("firstTimestamp") or last),
        last_seen=str(last),
        source=str(source.get("component") or raw.get("reportingComponent") or ""),
    )


class EventBook:
    """Events by involved object name, for the objects the watcher cares about."""

    def __init__(self, limit: int = 50, objects: int = 20_000) -> None:
        self.limit, self.objects = limit, objects
        self._by_object: dict[str, dict[str, EventView]] = {}  # oldest object first
        self._lock = threading.Lock()

    def add(self, event: EventView) -> None:
        """Keep `event` (replacing an earlier version of the same event)."""
        with self._lock:
            kept = self._by_object.setdefault(event.object_name, {})
            kept[event.uid] = event
            if len(self._by_object) > self.objects:  # objects never claimed by an attempt age out
                del self._by_object[next(iter(self._by_object))]
            if len(kept) > self.limit:
                oldest = min(kept.values(), key=lambda e: e.last_seen)
                kept.pop(oldest.uid)

    def records(self, names: Iterable[str]) -> list[dict[str, Any]]:
        """Return the events of these objects, oldest first."""
        with self._lock:
            found = [e for name in names for e in self._by_object.get(name, {}).values()]
        return [e.record() for e in sorted(found, key=lambda e: (e.last_seen, e.first_seen))]

    def latest(self, name: str, reason: str) -> str:
        """Return the message of the object's newest event with `reason` ("" when none)."""
        with self._lock:
            found = [e for e in self._by_object.get(name, {}).values() if e.reason == reason]
        return max(found, key=lambda e: (e.last_seen, e.first_seen)).message if found else ""

    def forget(self, names: Iterable[str]) -> None:
        """Drop the events of objects that are gone."""
        with self._lock:
            for name in names:
                self._by_object.pop(name, None)
