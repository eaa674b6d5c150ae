"""Container log files as the container runtime writes them and kubelet reads them (CRI format).

Writing (containerd's side): every line of stdout/stderr becomes one record
`TIMESTAMP STREAM TAG CONTENT\\n` (timestamp in RFC3339Nano, trailing zeros trimmed; tag `F` for a
full line, `P` for a part); a line longer than 16 KiB is cut into `P` records of 16 KiB and a final
`F`; a last line without newline is written as `F` when the stream closes. Rotation as kubelet's
container log manager does it: the file is renamed to `NAME.YYYYMMDD-HHMMSS`, a new one is opened,
older rotated files beyond `max_files` are removed (kubelet gzips all but the newest rotated file;
they are never read back, so they are kept plain here). Unlike kubelet, which checks sizes every
10 s, the size is checked after each record (deterministic rotation for tests).

Reading (kubelet's `ReadLogs`, pkg/kubelet/kuberuntime/logs in 1.20): only the current file is read
(rotated files are never served); `tailLines` counts file records from the end; `sinceTime` is
compared per record; with `timestamps` each record's content is prefixed with its time in the fixed
9-digit RFC3339 form, so the parts of a long line come back as `TS1 part1TS2 part2\\n`; without, the
parts join into the original line. `limitBytes` cuts the output. A follow reads to the end, then,
while the container runs, waits for writes (woken by them; checking at least every second); a rotated file is
reopened at its new start (what was still unread in the old one is lost, as with kubelet).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

MAX_LINE = 16 * 1024  # containerd's maxContainerLogLineSize
FORCE_CHECK = 1.0  # kubelet's logForceCheckPeriod


def rfc3339nano(ns: int) -> str:
    """Go's time.RFC3339Nano of a UTC time in ns (fraction without trailing zeros)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def rfc3339fixed(ns: int) -> str:
    """kubelet's RFC3339NanoFixed: always nine fraction digits."""
    seconds, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def parse_time(text: str) -> int:
    """An RFC3339 time (any fraction length, Z or offset) as ns since the epoch."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    main, _, rest = text.partition(".")
    frac, offset = "", ""
    if rest:
        idx = next((i for i, ch in enumerate(rest) if ch in "+-"), len(rest))
        frac, offset = rest[:idx], rest[idx:]
    else:
        idx = max(main.rfind("+"), main.rfind("-"))
        if idx > 10:
            main, offset = main[:idx], main[idx:]
    stamp = datetime.fromisoformat(main + (offset or "+00:00"))
    return int(stamp.timestamp()) * 1_000_000_000 + int((frac + "000000000")[:9])


class LogFile:
    """The log file of one container, written by the node's output reactor (thread-safe). Readers
    that follow it register a callback in `watchers`, called after every record, rotation and close
    (kubelet is told by fsnotify)."""

    def __init__(self, path: Path, *, max_size: int, max_files: int, clock: Callable[[], int] = time.time_ns) -> None:
        self.path, self.max_size, self.max_files, self.clock = path, max_size, max_files, clock
        self.lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("ab")
        self.rotations = 0
        self.watchers: set[Callable[[], None]] = set()

    def write_stream(self, stream: str, source: Iterator[bytes]) -> None:
        """Copy a pipe (an iterator of chunks) into records until it ends."""
        writer = StreamWriter(self, stream)
        for chunk in source:
            writer.feed(chunk)
        writer.end()

    def record(self, stream: str, tag: str, content: bytes) -> None:
        with self.lock:
            if self._file.closed:
                return  # the container was reported ended: late output is dropped
            line = f"{rfc3339nano(self.clock())} {stream} {tag} ".encode() + content + b"\n"
            self._file.write(line)
            self._file.flush()
            if self.max_size and self._file.tell() > self.max_size:
                self._rotate()
        self._notify()

    def rotate(self) -> None:
        with self.lock:
            self._rotate()
        self._notify()

    def _rotate(self) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.{stamp}")
        n = 0
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.{stamp}.{n}")
        os.rename(self.path, target)
        self._file.close()
        self._file = self.path.open("ab")
        self.rotations += 1
        rotated = sorted((p for p in self.path.parent.glob(self.path.name + ".*")), key=lambda p: p.stat().st_mtime)
        for old in rotated[: max(0, len(rotated) - (self.max_files - 1))]:
            old.unlink(missing_ok=True)

    def close(self) -> None:
        with self.lock:
            self._file.close()
        self._notify()

    def _notify(self) -> None:
        for watcher in list(self.watchers):
            watcher()


class StreamWriter:
    """One output stream of a container, cut into CRI records chunk by chunk as it arrives."""

    def __init__(self, log: LogFile, stream: str) -> None:
        self.log, self.stream, self.pending = log, stream, b""

    def feed(self, chunk: bytes) -> None:
        pending = self.pending + chunk
        while True:
            cut = pending.find(b"\n")
            if cut < 0 or cut > MAX_LINE:
                if len(pending) >= MAX_LINE:
                    self.log.record(self.stream, "P", pending[:MAX_LINE])
                    pending = pending[MAX_LINE:]
                    continue
                break
            self.log.record(self.stream, "F", pending[:cut])
            pending = pending[cut + 1 :]
        self.pending = pending

    def end(self) -> None:
        if self.pending:
            self.log.record(self.stream, "F", self.pending)
            self.pending = b""


class LogOptions:
    """kubelet's LogOptions from the query the API server forwards."""

    def __init__(self, query: dict[str, str], now_ns: int) -> None:
        def flag(name: str) -> bool:
            return query.get(name, "false").lower() in ("true", "1")

        self.follow, self.timestamps = flag("follow"), flag("timestamps")
        self.tail = int(query["tailLines"]) if query.get("tailLines") else -1
        self.limit = int(query["limitBytes"]) if query.get("limitBytes") else -1
        self.since = 0
        if query.get("sinceSeconds"):
            self.since = now_ns - int(query["sinceSeconds"]) * 1_000_000_000
        if query.get("sinceTime"):
            self.since = max(self.since, parse_time(query["sinceTime"]))


def tail_start(f: BinaryIO, n: int) -> int:
    """kubelet's FindTailLineStartIndex: where the last n lines start (0 for n < 0); an incomplete
    last line is not counted."""
    if n < 0:
        return 0
    left = f.seek(0, os.SEEK_END)
    count, buf = 0, b""
    while left > 0 and count <= n:
        step = min(4096, left)
        left -= step
        f.seek(left)
        chunk = f.read(step)
        count += chunk.count(b"\n")
        buf = chunk + buf
    while count > n:
        cut = buf.index(b"\n") + 1
        buf, left, count = buf[cut:], left + cut, count - 1
    return left


async def read_logs(
    log: LogFile,
    opts: LogOptions,
    running: Callable[[], bool],
    write: Callable[[bytes], Awaitable[None]],
    stalled: Callable[[], bool] = lambda: False,
    closed: Callable[[], bool] = lambda: False,
) -> None:
    """Stream a container's log to `write` as kubelet's ReadLogs does (a coroutine of the node's
    endpoint: the file's writes wake it, as fsnotify wakes kubelet)."""
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def notify() -> None:
        try:
            loop.call_soon_threadsafe(changed.set)
        except RuntimeError:  # the endpoint's loop is closed
            pass

    path = log.path
    f = path.open("rb")
    log.watchers.add(notify)
    try:
        f.seek(tail_start(f, opts.tail))
        remain = opts.limit if opts.limit >= 0 else 1 << 62
        found = True
        inode = os.fstat(f.fileno()).st_ino
        while not closed():
            line = f.readline()
            if not line.endswith(b"\n"):
                if not opts.follow:
                    if not line:
                        return
                else:
                    if not found:
                        return
                    f.seek(-len(line), os.SEEK_CUR)
                    found, recreated = await _wait(path, f, inode, running, changed, closed)
                    if recreated:
                        f.close()
                        f = path.open("rb")
                        inode = os.fstat(f.fileno()).st_ino
                    continue
            while stalled() and not closed():
                await asyncio.sleep(0.05)
            out = _format(line, opts)
            if out is None:
                continue
            if len(out) > remain:
                out = out[:remain]
            await write(out)
            remain -= len(out)
            if remain <= 0:
                return
    finally:
        log.watchers.discard(notify)
        f.close()


async def _wait(
    path: Path, f: BinaryIO, inode: int, running: Callable[[], bool], changed: asyncio.Event, closed: Callable[[], bool]
) -> tuple[bool, bool]:
    """kubelet's waitLogs: (more may come, the file was recreated); woken by the file's writes,
    and checks at least every second (logForceCheckPeriod)."""
    if not running():
        return False, False
    offset = f.tell()
    deadline = time.monotonic() + FORCE_CHECK
    while not closed():
        changed.clear()
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return True, False
        if st.st_ino != inode:
            return True, True
        if st.st_size > offset:
            return True, False
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            await asyncio.wait_for(changed.wait(), left)
        except TimeoutError:
            pass
    return True, False


def _format(line: bytes, opts: LogOptions) -> bytes | None:
    try:
        stamp, stream, tag, content = line.split(b" ", 3)
        ns = parse_time(stamp.decode())
    except ValueError:
        return None
    if stream not in (b"stdout", b"stderr"):
        return None
    if tag.split(b":")[0] == b"P" and content.endswith(b"\n"):
        content = content[:-1]
    if ns < opts.since:
        return None
    if opts.timestamps:
        content = rfc3339fixed(ns).encode() + b" " + content
    return content
