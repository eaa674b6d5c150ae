"""Attempt logs: live through Redis while an attempt runs, archived under MYAPP_HOME/logs when it ends.

One reader serves both: the archive if the attempt has ended, else the live Redis stream, else
the live file a worker on this machine is writing (the no-Redis standalone mode).

The stored line format lives here and only here (`format_line` / `parse_line`): every line is
stamped when it is written, never when it is shown, with the stream it came from:

    2026-12-06T15:40:01.123Z out outpraram1
    2026-12-06T15:40:01.125Z err warning: something on stderr
    2026-12-06T15:40:02.002Z sys task 'step2' timed out after 600 s

`out` is the task's stdout (or a pod container's log), `err` its stderr, `sys` what myapp itself
says about the attempt. Lines archived before this format (no stamp) read as `out` with no time.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from myapp.core.ports import LogWriter as LogWriter  # re-exported: the port lives in the core
from myapp.core.values import LogKey as LogKey

LIVE_TTL_SECONDS = 24 * 3600
MAX_LINE = 64 * 1024
FLUSH_AFTER = 0.05  # seconds a buffered line may wait before the live copies get it


class Stream(StrEnum):
    """Where a log line came from."""

    OUT = "out"  # the task's stdout, or a pod container's log
    ERR = "err"  # the task's stderr
    SYS = "sys"  # myapp about the attempt (timeouts, missing outputs, kills)


@dataclass(frozen=True)
class LogLine:
    """One stored line: when it was written (None for a line stored before stamps), its stream, its text."""

    at: datetime | None
    stream: Stream
    text: str  # ends with "\n"

    @property
    def plain(self) -> str:
        """Return the text as the pre-stamp logs showed it (myapp's own lines prefixed `[myapp] `)."""
        return f"[myapp] {self.text}" if self.stream is Stream.SYS else self.text


_STAMPED = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z (out|err|sys) ", re.ASCII)


def format_line(at: datetime, stream: Stream, text: str) -> str:
    """Return the stored form of one line: `<UTC instant, ms>Z <stream> <text>\n`."""
    utc = at.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z {stream.value} {text}"


def parse_line(line: str) -> LogLine:
    """Return the parts of a stored line (an unstamped line is `out` with no time)."""
    found = _STAMPED.match(line)
    if found is None:
        return LogLine(None, Stream.OUT, line)
    at = datetime.fromisoformat(found.group(1)).replace(tzinfo=UTC)
    return LogLine(at, Stream(found.group(2)), line[found.end() :])


class RedisLike(Protocol):
    def rpush(self, key: str, *values: str) -> Any: ...
    def expire(self, key: str, seconds: int) -> Any: ...
    def pipeline(self, transaction: bool = True) -> Any: ...
    def lrange(self, key: str, start: int, end: int) -> Any: ...
    def exists(self, *keys: str) -> Any: ...
    def delete(self, *keys: str) -> Any: ...
    def hset(self, name: str, key: str, value: str) -> Any: ...
    def hgetall(self, name: str) -> Any: ...
    def hdel(self, name: str, *keys: str) -> Any: ...


class AttemptLog:
    """Writes one attempt's lines to the live file and, when configured, to Redis.

    Unbuffered (the default), each line goes out as it is written. Buffered, lines wait until the
    owner calls `flush_if_due` (at most FLUSH_AFTER seconds after the first waiting line) or `close`:
    an attempt that ends within that time costs no Redis round trip and never has a live file.
    """

    def __init__(
        self,
        key: LogKey,
        logs_dir: Path,
        redis: RedisLike | None,
        *,
        buffered: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.key = key
        self._now = clock or (lambda: datetime.now(UTC))
        self.final = key.path(logs_dir)
        self.live = self.final.with_suffix(".live")
        self._file: Any = None  # the live file, opened by the first flush
        self._redis = redis
        self._buffered = buffered
        self._pending: list[str] = []
        self._due = 0.0  # monotonic time by which pending lines must be flushed
        self._closed = False
        self._lock = threading.Lock()
        self._redact: Callable[[str], str] | None = None

    def redact_with(self, redact: Callable[[str], str]) -> None:
        """Pass every line written from now on through `redact` (e.g. a Redactor of the task's secrets)."""
        self._redact = redact

    def write(self, line: str, stream: Stream = Stream.OUT) -> None:
        """Append one line, stamped now (a trailing newline is added if missing; huge lines are cut)."""
        if self._redact is not None:
            line = self._redact(line)
        if len(line) > MAX_LINE:
            line = line[:MAX_LINE] + f"... [line cut at {MAX_LINE} characters]\n"
        if not line.endswith("\n"):
            line += "\n"
        if "\n" in line[:-1]:  # one stored line per line, each stamped (a traceback, a message)
            for part in line[:-1].split("\n"):
                self.write(part, stream)
            return
        line = format_line(self._now(), stream, line)
        with self._lock:
            if not self._pending:
                self._due = time.monotonic() + FLUSH_AFTER
            self._pending.append(line)
            if not self._buffered:
                self._flush(LIVE_TTL_SECONDS)

    def note(self, text: str) -> None:
        """Append one of myapp's own lines about the attempt (the `sys` stream)."""
        self.write(text, Stream.SYS)

    def flush_due_in(self) -> float | None:
        """Return seconds until buffered lines must be flushed (0 if overdue), None if none wait."""
        return max(0.0, self._due - time.monotonic()) if self._pending else None

    def flush_if_due(self) -> None:
        """Send buffered lines to the live file and Redis if the oldest has waited FLUSH_AFTER."""
        with self._lock:
            if self._pending and time.monotonic() >= self._due and not self._closed:
                self._flush(LIVE_TTL_SECONDS)

    def _flush(self, ttl: int) -> None:
        lines, self._pending = self._pending, []
        if self._file is None:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.live.open("a", encoding="utf-8", errors="replace")
        if lines:
            self._file.write("".join(lines))
            self._file.flush()
        if self._redis is not None:
            try:  # one round trip: the lines and the key's time to live
                pipe = self._redis.pipeline(transaction=False)
                if lines:
                    pipe.rpush(self.key.redis_key, *lines)
                pipe.expire(self.key.redis_key, ttl)
                pipe.execute()
            except Exception:  # noqa: BLE001  live view is best effort; the archive keeps every line
                self._redis = None

    def close(self) -> None:
        """Archive: the live file becomes the final log; the Redis copy expires soon after.

        Lines never flushed before (an attempt that ended within FLUSH_AFTER) had no live copy
        and get none: they go straight to the archive.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._file is None:
                self._redis = None
            self._flush(300)
            self._file.close()
            os.replace(self.live, self.final)


class LogReader:
    """Reads an attempt's log from the archive, Redis, or the live file — whichever exists."""

    def __init__(self, logs_dir: Path, redis: RedisLike | None) -> None:
        self.logs_dir = logs_dir
        self.redis = redis

    def lines(self, key: LogKey, start: int = 0) -> tuple[list[str], bool]:
        """Return (the text of the lines from line number `start`, finished?), without stamps."""
        stored, finished = self.stored(key, start)
        return [parse_line(line).plain for line in stored], finished

    def entries(self, key: LogKey, start: int = 0) -> tuple[list[LogLine], bool]:
        """Return (the lines from line number `start` with their time and stream, finished?)."""
        stored, finished = self.stored(key, start)
        return [parse_line(line) for line in stored], finished

    def stored(self, key: LogKey, start: int = 0) -> tuple[list[str], bool]:
        """Return (the stored lines from line number `start`, finished?)."""
        final = key.path(self.logs_dir)
        if final.exists():
            return _file_lines(final, start), True
        if self.redis is not None:
            try:
                if self.redis.exists(key.redis_key):
                    raw = self.redis.lrange(key.redis_key, start, -1)
                    return [r.decode() if isinstance(r, bytes) else str(r) for r in raw], False
            except Exception:  # noqa: BLE001  fall back to the live file
                pass
        live = final.with_suffix(".live")
        if live.exists():
            return _file_lines(live, start), False
        return [], False

    def follow(self, key: LogKey, is_active: Any, sleep: Any, poll: float = 0.5) -> Iterator[str]:
        """Yield lines as they arrive until the attempt's log is archived and `is_active()` is False."""
        seen = 0
        while True:
            new, finished = self.lines(key, seen)
            seen += len(new)
            yield from new
            if finished or not is_active():
                if not finished:
                    new, _ = self.lines(key, seen)
                    yield from new
                return
            sleep(poll)


def _file_lines(path: Path, start: int) -> list[str]:
    with path.open(encoding="utf-8", errors="replace") as fh:
        return [line for i, line in enumerate(fh) if i >= start]
