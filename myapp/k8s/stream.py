"""One list-then-watch stream, as an informer keeps it: resume from the last resourceVersion, and
after 410 Gone (history compacted) list again and hand the fresh state to the consumer.

Events are raw dicts (no model building per event). A broken connection resumes from the last
version seen (bookmarks included) after a short backoff; the stream ends only when asked to.
A resourceVersion the server does not have yet ("Too large resource version": a lagging API
server behind a load balancer, a restored etcd) means a fresh list, as client-go's reflector
does; so does a watch that failed three times in a row from the same version, and a watch that ended
without a change or a bookmark (kube-apiserver 1.20 answers a version from the future with silence). A failing or
forbidden stream is reported (`error`, `healthy`) so its owner can say so and fall back.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubernetes.client import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.response import BaseHTTPResponse

from myapp.k8s.launcher import LaunchError, Raw

log = logging.getLogger(__name__)
OnEvent = Callable[[str, Raw], None]
OnSync = Callable[[list[Raw]], None]


class WatchSource(Protocol):
    def list_raw(self, what: str, *, label_selector: str = "", field_selector: str = "") -> Raw: ...
    def watch_raw(
        self, what: str, *, resource_version: str, timeout_seconds: int, label_selector: str = ""
    ) -> BaseHTTPResponse: ...


@dataclass
class StreamStats:
    """Counters for tests and the benchmark."""

    lists: int = 0
    watches: int = 0
    events: int = 0
    expired: int = 0
    errors: int = 0
    too_new: int = 0
    silent: int = 0  # watches that ended without delivering anything (followed by a list)


@dataclass
class ListWatch:
    """Keeps one watch open on `what` (pods or events) with `selector`, feeding `on_event`."""

    source: WatchSource
    what: str
    selector: str = ""
    timeout_seconds: int = 300
    backoff: float = 1.0
    stats: StreamStats = field(default_factory=StreamStats)
    _response: BaseHTTPResponse | None = None
    error: str = ""  # the last failure, "" once a list or watch succeeded again
    error_kind: str = ""  # its short form, no server text: "HTTP 403 Forbidden", "ConnectionRefusedError"
    failing: int = 0  # consecutive failures

    @property
    def healthy(self) -> bool:
        """Return True unless the stream failed since its last watch opened (a list alone brings no changes)."""
        return not self.error

    def run(self, stop: threading.Event, on_event: OnEvent, on_sync: OnSync) -> None:
        """List, then watch until `stop` is set; call on_sync after every (re)list."""
        version = ""
        failures = 0
        while not stop.is_set():
            try:
                if not version:
                    version = self._relist(on_sync)
                version = self._watch(version, stop, on_event)
                failures = 0
            except LaunchError as exc:
                if exc.status == 410:  # some servers answer the watch request itself with 410
                    self.stats.expired += 1
                    version = ""
                    continue
                failures = self._pause(stop, exc, failures)
                if is_too_new(str(exc)) or failures >= 3:
                    self.stats.too_new += is_too_new(str(exc))
                    version = ""  # list again rather than insist on a version the server lacks
            except (ApiException, Urllib3Error, OSError, ValueError) as exc:
                failures = self._pause(stop, exc, failures)

    def _pause(self, stop: threading.Event, exc: Exception, failures: int) -> int:
        self.error, self.error_kind, self.failing = f"{self.what}: {exc}", error_kind(exc), self.failing + 1
        if not stop.is_set():
            self.stats.errors += 1
            log.warning("watch %s: %s; resuming", self.what, exc)
            stop.wait(min(self.backoff * (failures + 1), 30.0))
        return failures + 1

    def close(self) -> None:
        """Cut the open watch so `run` notices its stop event at once."""
        response = self._response
        if response is not None:
            _shutdown(response)

    def _relist(self, on_sync: OnSync) -> str:
        data = self.source.list_raw(self.what, label_selector=self.selector)
        self.stats.lists += 1
        items = list(data.get("items") or [])
        version = str((data.get("metadata") or {}).get("resourceVersion") or "")
        log.debug("list %s: %d items at resourceVersion %s", self.what, len(items), version)
        on_sync(items)
        return version

    def _watch(self, version: str, stop: threading.Event, on_event: OnEvent) -> str:
        response = self.source.watch_raw(
            self.what, resource_version=version, timeout_seconds=self.timeout_seconds, label_selector=self.selector
        )
        self._response = response
        self.stats.watches += 1
        log.debug("watch %s opened from resourceVersion %s", self.what, version)
        self.error, self.error_kind, self.failing = "", "", 0
        delivered = False
        try:
            for line in _lines(response):
                delivered = True
                if stop.is_set():
                    break
                event = json.loads(line)
                kind, obj = str(event.get("type", "")), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        self.stats.expired += 1
                        return ""  # too old: list again
                    if is_too_new(str(obj.get("message", ""))):
                        self.stats.too_new += 1
                        return ""  # too new: list again
                    raise LaunchError(f"watch {self.what}: {obj.get('message', obj)}")
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind != "BOOKMARK":
                    self.stats.events += 1
                    on_event(kind, obj)
        finally:
            self._response = None
            response.close()
        if not delivered and not stop.is_set():
            # A whole watch without a change or a bookmark: quiet, or blind. kube-apiserver 1.20 keeps
            # a watch from a version it does not have yet (an etcd restore) open and silent, never
            # sending what changed meanwhile; a fresh list (one per watch timeout when idle) ends that.
            self.stats.silent += 1
            return ""
        return version


def error_kind(exc: Exception) -> str:
    """Return a failure's short form without the server's words: the HTTP status and reason, else
    the exception's type (what /health may show anyone)."""
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status:
        reason = getattr(exc, "reason", "") or ""
        return f"HTTP {status} {reason}".strip() if isinstance(reason, str) and len(reason) < 40 else f"HTTP {status}"
    return type(exc).__name__


def is_too_new(message: str) -> bool:
    """Return True for the API server's answer to a resourceVersion it does not have yet."""
    return "Too large resource version" in message or "ResourceVersionTooLarge" in message


def _lines(response: BaseHTTPResponse) -> Iterator[str]:
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield line.decode("utf-8", "replace")
    if buffer.strip():
        yield buffer.decode("utf-8", "replace")


def _shutdown(response: Any) -> None:
    """Unblock a thread reading `response` by shutting its socket down."""
    try:
        sock = getattr(getattr(response, "connection", None), "sock", None)
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
