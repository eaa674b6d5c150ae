"""Watch streams: newline-delimited `{"type": ..., "object": ...}` events.

Follows the watch cache: no resourceVersion (or "0") starts with synthetic
ADDED events for the current state; a resourceVersion replays history after
it, or sends one ERROR event with a 410 Expired Status when it is too old.
Selectors are applied to both the new and previous object, so an object that
stops matching arrives as DELETED and one that starts matching as ADDED.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from tests.k8sfake.errors import StatusError
from tests.k8sfake.meta import JsonObj, clone, metadata
from tests.k8sfake.responses import AbortStream, StreamResponse
from tests.k8sfake.selectors import FieldGetter, FieldSelector, LabelSelector
from tests.k8sfake.store import Change, Store, Subscription

Shape = Callable[[JsonObj], JsonObj]
_POLL_SECONDS = 0.5  # how often a quiet stream checks whether its client hung up


@dataclass(frozen=True)
class ObjectFilter:
    """Namespace plus label and field selectors, as a list or watch applies them."""

    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    getters: Mapping[str, FieldGetter]

    def matches(self, obj: JsonObj) -> bool:
        """Return whether `obj` is in scope."""
        if self.namespace is not None and metadata(obj).get("namespace", "") != self.namespace:
            return False
        return self.labels.matches(obj) and self.fields.matches(obj, self.getters)


@dataclass(frozen=True)
class WatchOptions:
    """The watch query parameters."""

    since: int | None  # None: start with the current state
    timeout_seconds: float | None
    allow_bookmarks: bool
    send_initial_events: bool
    kind: str
    api_version: str
    alive: Callable[[], bool] = lambda: True  # False once the client hung up


def to_event(change: Change, scope: ObjectFilter) -> tuple[str, JsonObj] | None:
    """Return the (type, object) a watcher with `scope` sees for `change`, if any."""
    now_in = change.type != "DELETED" and scope.matches(change.obj)
    was_in = change.prev is not None and scope.matches(change.prev)
    if change.type == "DELETED":
        return ("DELETED", change.obj) if was_in else None
    if now_in:
        return ("MODIFIED" if was_in else "ADDED", change.obj)
    if was_in and change.prev is not None:
        gone = clone(change.prev)
        metadata(gone)["resourceVersion"] = str(change.rv)
        return "DELETED", gone
    return None


def _line(kind: str, obj: JsonObj) -> bytes:
    return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"


def _bookmark(options: WatchOptions, revision: int, initial_end: bool = False) -> bytes:
    meta: JsonObj = {"resourceVersion": str(revision), "creationTimestamp": None}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return _line("BOOKMARK", {"kind": options.kind, "apiVersion": options.api_version, "metadata": meta})


def open_watch(store: Store, key: str, scope: ObjectFilter, options: WatchOptions, shape: Shape) -> StreamResponse:
    """Subscribe now (before the response headers go out) and return the event stream."""
    try:
        subscription, replay, initial, revision = _open(store, key, scope, options, shape)
    except StatusError as too_old:  # the watch cache answers 200, then this one event
        return StreamResponse(iter([_line("ERROR", too_old.status())]), "application/json")

    def chunks() -> Iterator[bytes]:
        try:
            for obj in initial:
                yield _line("ADDED", obj)
            if options.send_initial_events and options.allow_bookmarks:
                yield _bookmark(options, revision, initial_end=True)
            yield from _encode(replay, scope, shape)
            yield from _follow(store, subscription, scope, options, shape)
        finally:
            store.unsubscribe(subscription)

    return StreamResponse(chunks(), "application/json", lambda: store.unsubscribe(subscription))


def _open(
    store: Store, key: str, scope: ObjectFilter, options: WatchOptions, shape: Shape
) -> tuple[Subscription, list[Change], list[JsonObj], int]:
    """Atomically subscribe and snapshot what the watch starts with."""
    with store.lock:
        subscription, replay = store.subscribe(key, options.since)
        initial = []
        if options.since is None:
            initial = [shape(o) for o in store.items(key, scope.namespace) if scope.matches(o)]
        return subscription, replay, initial, store.revision


def _encode(changes: list[Change], scope: ObjectFilter, shape: Shape) -> Iterator[bytes]:
    for change in changes:
        event = to_event(change, scope)
        if event is not None:
            yield _line(event[0], shape(event[1]))


def _follow(
    store: Store, subscription: Subscription, scope: ObjectFilter, options: WatchOptions, shape: Shape
) -> Iterator[bytes]:
    deadline = None if options.timeout_seconds is None else time.monotonic() + options.timeout_seconds
    while True:
        hung_up = False
        with store.lock:
            while not (subscription.changes or subscription.closed or store.closed or subscription.bookmark_due):
                remaining = None if deadline is None else deadline - time.monotonic()
                hung_up = not options.alive()
                if hung_up or (remaining is not None and remaining <= 0):
                    break
                store.lock.wait(_POLL_SECONDS if remaining is None else min(remaining, _POLL_SECONDS))
            batch = list(subscription.changes)
            subscription.changes.clear()
            bookmark, subscription.bookmark_due = subscription.bookmark_due, False
            ending = subscription.closed or ("clean" if store.closed else "")
            revision = store.revision
        if hung_up:
            return
        yield from _encode(batch, scope, shape)
        if ending == "abrupt":
            raise AbortStream()
        timed_out = deadline is not None and time.monotonic() >= deadline
        if options.allow_bookmarks and (bookmark or timed_out):
            yield _bookmark(options, revision)
        if ending or timed_out:
            return
