"""Container logs and `GET .../pods/NAME/log`, as apiserver + kubelet serve them.

Lines are kept per pod uid and container (a recreated pod starts empty). The
checks and messages follow LogLocation (apiserver) and
validateContainerLogStatus (kubelet); `follow=true` streams until the
container terminates or the pod goes away.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from tests.k8sfake.errors import bad_request
from tests.k8sfake.meta import Clock, JsonObj, format_nano_time, metadata, parse_time
from tests.k8sfake.pods import container_state
from tests.k8sfake.responses import AbortStream, Response, StreamResponse, TextResponse
from tests.k8sfake.store import Store

CRI_MAX_LINE = 16 * 1024  # characters here (bytes for containerd; tests write ASCII)
_POLL_SECONDS = 0.5  # how often a quiet follow checks whether its client hung up


@dataclass(frozen=True)
class LogLine:
    """One written line (or trailing partial line) and when it was written."""

    at: datetime
    text: str


@dataclass(frozen=True)
class LogOptions:
    """PodLogOptions from the query string."""

    container: str
    follow: bool
    timestamps: bool
    tail_lines: int | None
    since: datetime | None
    limit_bytes: int | None


class LogBook:
    """All container logs, guarded by the store's lock."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.lines: dict[tuple[str, str], list[LogLine]] = {}
        self.breaks = 0  # bumped by break_streams(); open follows compare it
        self.stalls = 0  # bumped by stall_streams(): follows open before then send nothing more
        self.follows: set[object] = set()  # one token per open follow stream

    def append(self, uid: str, container: str, text: str) -> None:
        """Write `text` (split into lines) to a container's log.

        As the CRI runtime does (containerd's max_container_log_line_size, 16 KiB), a line longer than
        CRI_MAX_LINE is stored as partial chunks, each with its own time: with `timestamps=true` the
        kubelet (1.20) then prefixes each chunk with a timestamp inside the one long line.
        """
        with self.store.lock:
            now = self.clock()
            entries = self.lines.setdefault((uid, container), [])
            for piece in text.splitlines(keepends=True):
                while len(piece.rstrip("\n")) > CRI_MAX_LINE:
                    entries.append(LogLine(now, piece[:CRI_MAX_LINE]))
                    piece = piece[CRI_MAX_LINE:]
                entries.append(LogLine(now, piece))
            self.store.lock.notify_all()

    def stall_streams(self) -> int:
        """Make every open follow stream go silent (connection kept, nothing sent); return how many."""
        with self.store.lock:
            self.stalls += 1
            self.store.lock.notify_all()
            return len(self.follows)

    def break_streams(self) -> int:
        """Drop every open follow stream mid-way; return how many were open."""
        with self.store.lock:
            self.breaks += 1
            self.store.lock.notify_all()
            return len(self.follows)

    def respond(self, pod: JsonObj, query: Mapping[str, str], alive: Callable[[], bool]) -> Response:
        """Serve a log request for `pod` (already known to exist)."""
        options = _options(pod, query, self.clock())
        if not pod["spec"].get("nodeName"):
            return TextResponse(200, "")  # LogLocation: no host yet means an empty stream
        _check_state(pod, options.container, query.get("previous") == "true")
        key = (str(metadata(pod)["uid"]), options.container)
        token = object()
        with self.store.lock:
            lines = list(self.lines.get(key, []))
            breaks = self.breaks
            if options.follow:
                self.follows.add(token)
                self.store.lock.notify_all()
        selected = _select(lines, options)
        if not options.follow:
            return TextResponse(200, _limit("".join(_render(selected, options)), options.limit_bytes))
        follow = _Follow(pod, key, len(lines), breaks, alive, self.stalls)
        return StreamResponse(
            self._stream(follow, selected, options, token), "text/plain", lambda: self._release(token)
        )

    def _release(self, token: object) -> None:
        with self.store.lock:
            self.follows.discard(token)
            self.store.lock.notify_all()

    def _stream(self, follow: _Follow, first: list[LogLine], options: LogOptions, token: object) -> Iterator[bytes]:
        budget = options.limit_bytes
        try:
            pending = first
            while True:
                for chunk in _render(pending, options):
                    data = chunk.encode()
                    if budget is not None:
                        data, budget = data[:budget], budget - len(data)
                    yield data
                    if budget is not None and budget <= 0:
                        return
                with self.store.lock:
                    pending, done = self._wait(follow)
                if done == "abrupt":
                    raise AbortStream()
                if done and not pending:
                    return
        finally:
            self._release(token)

    def _wait(self, follow: _Follow) -> tuple[list[LogLine], str]:
        """Block until new lines or an end; return (new lines, "" | "clean" | "abrupt" | "gone")."""
        while True:
            if self.breaks != follow.breaks:
                return [], "abrupt"
            lines = self.lines.get(follow.key, [])
            pod = self.store.objects.get("pods", {}).get((follow.namespace, follow.name))
            if not follow.alive():
                return [], "gone"
            if follow.stalls != self.stalls:  # a stalled kubelet stream: silent until the client gives up
                self.store.lock.wait(timeout=_POLL_SECONDS)
                continue
            if pod is None or metadata(pod).get("uid") != follow.key[0] or self.store.closed:
                ended = True
            else:
                ended = "terminated" in container_state(pod, follow.key[1])
            if len(lines) > follow.seen or ended:
                new, follow.seen = lines[follow.seen :], len(lines)
                return new, "clean" if ended else ""
            self.store.lock.wait(timeout=_POLL_SECONDS)


@dataclass
class _Follow:
    """Where one follow stream is: its pod, container and lines already sent."""

    pod: JsonObj
    key: tuple[str, str]  # (pod uid, container)
    seen: int
    breaks: int
    alive: Callable[[], bool]
    stalls: int = 0

    @property
    def namespace(self) -> str:
        return str(metadata(self.pod).get("namespace", ""))

    @property
    def name(self) -> str:
        return str(metadata(self.pod)["name"])


def _int(query: Mapping[str, str], key: str) -> int | None:
    if key not in query:
        return None
    try:
        return int(query[key])
    except ValueError as wrong:
        raise bad_request(f"{key}: Invalid value: {query[key]!r}: must be an integer") from wrong


def _options(pod: JsonObj, query: Mapping[str, str], now: datetime) -> LogOptions:
    name = metadata(pod)["name"]
    containers = [c["name"] for c in pod["spec"].get("containers") or []]
    init = [c["name"] for c in pod["spec"].get("initContainers") or []]
    container = query.get("container", "")
    if not container:
        if len(containers) != 1:
            message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
            if init:
                message += f" or one of the init containers: [{' '.join(init)}]"
            raise bad_request(message)
        container = containers[0]
    elif container not in containers + init:
        raise bad_request(f"container {container} is not valid for pod {name}")
    since_seconds = _int(query, "sinceSeconds")
    since = parse_time(query["sinceTime"]) if "sinceTime" in query else None
    if since_seconds is not None:
        since = now - timedelta(seconds=since_seconds)
    return LogOptions(
        container,
        query.get("follow") == "true",
        query.get("timestamps") == "true",
        _int(query, "tailLines"),
        since,
        _int(query, "limitBytes"),
    )


def _check_state(pod: JsonObj, container: str, previous: bool) -> None:
    pod_name = metadata(pod)["name"]
    state = container_state(pod, container)
    if not state:
        raise bad_request(f'container "{container}" in pod "{pod_name}" is not available')
    if previous:
        raise bad_request(f'previous terminated container "{container}" in pod "{pod_name}" not found')
    if "waiting" in state:
        reason = state["waiting"].get("reason", "")
        detail = {"ErrImagePull": "image can't be pulled", "ImagePullBackOff": "trying and failing to pull image"}.get(
            reason, reason
        )
        raise bad_request(f'container "{container}" in pod "{pod_name}" is waiting to start: {detail}')


def _select(lines: list[LogLine], options: LogOptions) -> list[LogLine]:
    if options.since is not None:
        lines = [line for line in lines if line.at >= options.since]
    if options.tail_lines is not None:
        lines = lines[-options.tail_lines :] if options.tail_lines > 0 else []
    return lines


def _render(lines: list[LogLine], options: LogOptions) -> list[str]:
    if options.timestamps:
        return [f"{format_nano_time(line.at)} {line.text}" for line in lines]
    return [line.text for line in lines]


def _limit(text: str, limit: int | None) -> str:
    return text if limit is None else text.encode()[:limit].decode(errors="ignore")
