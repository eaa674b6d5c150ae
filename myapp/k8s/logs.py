"""Log aggregation: every container of every pod of an attempt merged into one live stream.

Like stern, each line of an attempt with several containers is prefixed `pod/container `; an
attempt with a single container keeps its lines as they are (as `kubectl logs` shows them).
Pods that start late are followed as soon as their containers have a log. A broken stream is
resumed with `sinceTime` (second precision, as the API takes it) and lines already written are
skipped by their nanosecond timestamps. A follow that stays silent past the read timeout
(`k8s_log_read_timeout`: a stalled connection) is resumed the same way. Lines the container
runtime split (over 16 KiB) are joined again (join_partials). When the attempt ends its log is
archived by closing the sink (myapp.logs.attempt_logs.AttemptLog). Past `max_streams` live streams, logs are
read once at the end.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.response import BaseHTTPResponse

from myapp.core.ports import LogWriter
from myapp.core.redact import NO_SECRETS, Redactor
from myapp.core.values import LogKey
from myapp.k8s.launcher import LaunchError, Raw
from myapp.k8s.pods import PodView
from myapp.k8s.stream import _shutdown

log = logging.getLogger(__name__)
START_RETRIES = 40  # a container not started yet: retry this many times (0.25 s apart)
CLOSED_MEMORY = 100_000  # archived attempts remembered, so late pod events never reopen their log
CRI_SPLIT = 16 * 1024  # containerd's max_container_log_line_size: longer lines come in chunks
_INNER_STAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d) ")


class LogSource(Protocol):
    def open_log(self, pod: str, container: str, *, follow: bool, since_time: str = "") -> BaseHTTPResponse: ...
    def get_pod(self, name: str) -> Raw | None: ...
    def get_secret_data(self, name: str) -> dict[str, str]: ...


def timestamp_key(stamp: str) -> str:
    """Return an RFC3339(Nano) UTC timestamp in a form that sorts as text (nanoseconds padded)."""
    body = stamp.rstrip("Z")
    seconds, _, fraction = body.partition(".")
    return f"{seconds}.{fraction.ljust(9, '0')}"


class Follower:
    """Copies one container's log into an attempt stream, resuming after breaks."""

    def __init__(
        self,
        source: LogSource,
        pod: str,
        container: str,
        emit: Callable[[str], None],
        *,
        follow: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source, self.pod, self.container, self.emit = source, pod, container, emit
        self.follow, self.sleep = follow, sleep
        self.last_key, self.at_last, self.replayed, self.resumes = "", 0, 0, 0
        self.on_done: Callable[[], None] = lambda: None
        self._stopped = False
        self._response: BaseHTTPResponse | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"log {pod}/{container}")

    def stop(self) -> None:
        """Stop following now (cuts an open stream)."""
        self._stopped = True
        if self._response is not None:
            _shutdown(self._response)

    def _run(self) -> None:
        try:
            self._follow()
        finally:
            self.on_done()

    def _follow(self) -> None:
        failures = 0
        while not self._stopped and failures < START_RETRIES:
            try:
                response = self.source.open_log(self.pod, self.container, follow=self.follow, since_time=self._since())
            except LaunchError as exc:
                if exc.status == 404:
                    return
                failures += 1
                self.sleep(0.25)  # waiting to start, or the API hiccuped
                continue
            except (Urllib3Error, OSError):
                failures += 1
                self.sleep(0.25)
                continue
            if self._copy(response) and (not self.follow or self._container_done()):
                return
            self.resumes += 1
            failures = 0

    def _copy(self, response: BaseHTTPResponse) -> bool:
        """Copy lines until the stream ends; return False when it broke."""
        self._response = response
        try:
            for line in _lines(response):
                self._take(line)
            return True
        except (Urllib3Error, OSError, ValueError):
            return False
        finally:
            self._response = None
            response.close()

    def _take(self, line: str) -> None:
        stamp, _, text = line.partition(" ")
        key = timestamp_key(stamp)
        if key < self.last_key:
            return
        if key == self.last_key:
            self.replayed += 1
            if self.replayed <= self.at_last:
                return  # written before the stream broke
            self.at_last += 1
        else:
            self.last_key, self.at_last, self.replayed = key, 1, 1
        self.emit(text)

    def _since(self) -> str:
        if not self.last_key:
            return ""
        self.replayed = 0
        return self.last_key.split(".")[0] + "Z"

    def _container_done(self) -> bool:
        try:
            raw = self.source.get_pod(self.pod)
        except (LaunchError, Urllib3Error, OSError):
            return False
        if raw is None:
            return True
        status_of = raw.get("status") or {}
        for status in [*(status_of.get("initContainerStatuses") or []), *(status_of.get("containerStatuses") or [])]:
            if status.get("name") == self.container:
                return bool((status.get("state") or {}).get("terminated"))
        return False


def join_partials(line: bytes, split: int = CRI_SPLIT) -> bytes:
    """Return a timestamped log line with the timestamps of its CRI partial chunks removed.

    The container runtime stores a line longer than `split` bytes (containerd's default 16 KiB) as
    chunks of exactly that size; with timestamps a kubelet (1.20) writes each chunk's own timestamp
    into the line: `T1 <16384 bytes>T2 rest`. Only a timestamp at such a boundary is removed.
    """
    stamp, sep, body = line.partition(b" ")
    at = split
    while len(body) > at:
        inner = _INNER_STAMP.match(body, at)
        if inner is None:
            break
        body = body[:at] + body[inner.end() :]
        at += split
    return stamp + sep + body


def _lines(response: BaseHTTPResponse) -> Iterator[str]:
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        *whole, buffer = buffer.split(b"\n")
        for line in whole:
            yield join_partials(line).decode("utf-8", "replace")
    if buffer:
        yield join_partials(buffer).decode("utf-8", "replace")


@dataclass
class AttemptStream:
    """One attempt's merged log."""

    sink: LogWriter
    followers: dict[tuple[str, str], Follower] = field(default_factory=dict)
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    secrets: frozenset[str] = frozenset()
    redact: Redactor = NO_SECRETS
    read_secrets: set[str] = field(default_factory=set)  # the attempt's Secrets already read for masking

    def mask(self, secrets: Sequence[str]) -> None:
        """Mask these values (a pod's secret parameters) in every line written from now on."""
        with self.lock:
            if not set(secrets) <= self.secrets:
                self.secrets = self.secrets | set(secrets)
                self.redact = Redactor(self.secrets)

    def write(self, line: str) -> None:
        with self.lock:
            if not self.closed:
                self.sink.write(self.redact(line))

    def note(self, text: str) -> None:
        """Write one of myapp's own lines (the `sys` stream, not the task's output)."""
        with self.lock:
            if not self.closed:
                self.sink.note(self.redact(text))


class LogHub:
    """The watcher's log aggregation for all attempts of its group."""

    def __init__(
        self,
        source: LogSource,
        open_sink: Callable[[LogKey], LogWriter],
        *,
        max_streams: int = 2000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source, self.open_sink, self.max_streams, self.sleep = source, open_sink, max_streams, sleep
        self._streams: dict[int, AttemptStream] = {}
        self._closed: dict[int, None] = {}  # recently archived attempts, oldest first (bounded)
        self._lock = threading.Lock()
        self.live_streams = 0  # followers running now (guarded by _lock)

    def has_stream(self, attempt_id: int) -> bool:
        """Return True when this watcher has written to (or follows) the attempt's log."""
        with self._lock:
            return attempt_id in self._streams

    def note(self, attempt_id: int, key: LogKey, text: str) -> None:
        """Write one of myapp's own lines to the attempt's log: the `sys` stream, which readers
        show as `[myapp] ...`; never the task's stdout (a task printing `[myapp]` stays its own)."""
        self._stream(attempt_id, key).note(text)

    def observe(self, pod: PodView) -> None:
        """Follow every container of `pod` that has a log and is not followed yet."""
        if (
            pod.attempt_id is None
            or pod.run_id is None
            or pod.try_number is None
            or not pod.task
            or pod.attempt_id in self._closed
        ):
            return
        ready = [c.name for c in pod.every_container if c.has_log]
        if not ready:
            return
        stream = self._stream(pod.attempt_id, LogKey(pod.run_id, pod.task, pod.try_number))
        self._mask(stream, pod)  # before any of its lines is read
        prefixed = _prefixed(pod)
        with self._lock:
            for name in ready:
                if (
                    (pod.name, name) not in stream.followers
                    and not stream.closed
                    and self.live_streams < self.max_streams
                ):
                    self._start(stream, pod.name, name, prefixed, follow=True)

    def close(self, attempt_id: int, key: LogKey, pods: Sequence[PodView], *, timeout: float = 10.0) -> None:
        """Drain the attempt's streams (reading logs never followed), then archive its log."""
        stream = self._stream(attempt_id, key)
        if stream.closed:
            return
        for pod in pods:
            self._mask(stream, pod)
        with self._lock:
            for pod in pods:
                prefixed = _prefixed(pod)
                for c in pod.every_container:
                    if c.has_log and (pod.name, c.name) not in stream.followers and not pod.gone:
                        self._start(stream, pod.name, c.name, prefixed, follow=False)
            followers = list(stream.followers.values())
        deadline = time.monotonic() + timeout
        for follower in followers:
            follower.thread.join(max(0.0, deadline - time.monotonic()))
        for follower in followers:
            follower.stop()
        with stream.lock:
            stream.closed = True
            stream.sink.close()
        with self._lock:
            self._streams.pop(attempt_id, None)
            self._closed[attempt_id] = None
            if len(self._closed) > CLOSED_MEMORY:
                del self._closed[next(iter(self._closed))]

    def _mask(self, stream: AttemptStream, pod: PodView) -> None:
        """Mask the pod's secret parameters: inline values, or read once from the attempt's Secret."""
        stream.mask(pod.secrets)
        for name in sorted({n for n, _ in pod.secret_refs} - stream.read_secrets):
            try:
                data = self.source.get_secret_data(name)
            except (LaunchError, Urllib3Error, OSError) as exc:
                log.warning("cannot read secret %s to mask its values (tried again): %s", name, exc)
                continue
            stream.read_secrets.add(name)
            stream.mask([data[k] for n, k in pod.secret_refs if n == name and data.get(k)])

    def _stream(self, attempt_id: int, key: LogKey) -> AttemptStream:
        with self._lock:
            if attempt_id in self._closed:  # archived already: never reopen (it would replace the archive)
                return AttemptStream(_NullSink(), closed=True)
            stream = self._streams.get(attempt_id)
            if stream is None:
                stream = self._streams[attempt_id] = AttemptStream(self.open_sink(key))
            return stream

    def _start(self, stream: AttemptStream, pod: str, container: str, prefixed: bool, *, follow: bool) -> None:
        prefix = f"{pod}/{container} " if prefixed else ""
        follower = Follower(
            self.source, pod, container, lambda text: stream.write(prefix + text), follow=follow, sleep=self.sleep
        )
        follower.on_done = self._ended
        stream.followers[(pod, container)] = follower
        self.live_streams += 1
        follower.thread.start()

    def _ended(self) -> None:
        with self._lock:
            self.live_streams -= 1


def _prefixed(pod: PodView) -> bool:
    """Return True when the pod's lines get a `pod/container ` prefix: a rank, or several containers
    (a SeqPod's step containers excepted: their lines carry `[STEP] ` already, as on the local executor)."""
    return pod.rank is not None or (pod.several_containers and not pod.steps)


class _NullSink:
    def write(self, line: str) -> None:
        """Drop the line."""

    def note(self, text: str) -> None:
        """Drop the line."""

    def close(self) -> None:
        """Nothing to archive."""
