"""Ports: the Protocols through which the core and the use-cases reach the outside world.

Adapters in myapp/db, myapp/queue, myapp/executor and myapp/k8s implement them; tests use fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

from myapp.core.model import TemplateSpec
from myapp.core.values import AttemptContext, AttemptResult

T = TypeVar("T")

# Send queued task instances to the workers; called after the transaction that queued them commits.
Dispatch = Callable[[Sequence[int]], None]


class Clock(Protocol):
    """The only source of the current time; entry modules hold one and pass `now` down."""

    def now(self) -> datetime:
        """Return the current instant, UTC, tz-aware."""
        ...


class TemplateCatalog(Protocol):
    """Looks up registered task templates by reference."""

    def get(self, ref: str) -> TemplateSpec | None:
        """Return the template for "name" (newest published version) or "name@version"."""
        ...


class AttemptPort(Protocol):
    """Where an executor claims an attempt and reports on it (myapp/db/attempt_store.py implements it)."""

    def claim(self, ti_id: int, worker: str, now: datetime) -> AttemptContext | None:
        """Start the next attempt of a queued task instance, or return None if it is not claimable."""
        ...

    def heartbeat(
        self, attempt_id: int, now: datetime, *, pid: int | None = None, container: Mapping[str, Any] | None = None
    ) -> bool:
        """Refresh the attempt's heartbeat; False means: kill it."""
        ...

    def record_process(
        self,
        attempt_id: int,
        *,
        pid: int | None = None,
        pod_names: Sequence[str] | None = None,
        container: Mapping[str, Any] | None = None,
    ) -> None:
        """Remember where the attempt runs."""
        ...

    def finish(
        self,
        attempt_id: int,
        result: AttemptResult,
        now: datetime,
        *,
        keep_one: bool = False,
        claim_as: str | None = None,
    ) -> int | None:
        """Record how the attempt ended; with `keep_one`, return a task instance to run next (with `claim_as`,
        claimed already for that worker where the store can do it in the finish's round trip)."""
        ...


class Reconnecting(Protocol):
    """Repeats a unit of work whose database connection dropped (myapp/db/session.py Database)."""

    def retry_on_disconnect(
        self, work: Callable[[], T], *, within: float = 30.0, sleep: Callable[[float], None] = ...
    ) -> T:
        """Return `work()`, calling it again while it fails on a lost connection."""
        ...


class LogWriter(Protocol):
    """Takes one attempt's log lines (myapp/logs/attempt_logs.py AttemptLog); closing it archives the log."""

    def write(self, line: str) -> None:
        """Append a line of the task's own output (stream `out`)."""
        ...

    def note(self, text: str) -> None:
        """Append one of myapp's own lines about the attempt (stream `sys`, shown `[myapp] ...`)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ArtifactDownload:
    """A stored artifact opened for reading: a file as it is, a directory as a gzipped tar of it."""

    name: str  # the file's or the directory's own name
    directory: bool
    stream: IO[bytes]  # the caller closes it


class ArtifactRepository(Protocol):
    """Where file outputs (a file or a directory) are kept between the task that wrote them and
    their consumers, downloads and retries (docs/artifacts.md, decisions/0011): myapp/artifacts/."""

    def put(self, source: Path, key: str) -> str:
        """Store the file or directory `source` under `key`; return its location (kept in the output's record)."""
        ...

    def fetch(self, location: str, target_dir: Path) -> Path:
        """Copy a stored artifact into `target_dir` under its own name; return the local path."""
        ...

    def holds(self, location: str) -> bool:
        """Return True when `location` is an artifact of this repository that exists."""
        ...

    def open(self, location: str) -> ArtifactDownload:
        """Open a stored artifact for a download."""
        ...

    def delete_run(self, run_id: int) -> None:
        """Delete every artifact of run `run_id` (retention)."""
        ...
