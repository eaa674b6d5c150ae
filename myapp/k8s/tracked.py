"""The watcher's ports: the running attempts it owns, and what finishes them. No I/O here.

`AttemptBook` is the database side (implemented in myapp/executor/kubernetes/pod_attempts.py), `Finisher`
collects outputs and records the end (myapp/executor/kubernetes/pod_finish.py). The watcher only decides
when; they do the work.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from myapp.core.values import LogKey
from myapp.k8s.pods import Outcome, PodView


@dataclass(frozen=True)
class TrackedAttempt:
    """A running attempt of the watcher's group as the database has it.

    `container` is TaskAttempt.container: the launching worker wrote `launch` there (kind, pod
    names, service, resource, outputs, ...) before creating anything.
    """

    attempt_id: int
    run_id: int
    task: str
    try_number: int
    started_at: datetime
    deadline_at: datetime | None = None
    container: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> LogKey:
        return LogKey(self.run_id, self.task, self.try_number)

    @property
    def launch(self) -> Mapping[str, Any]:
        launch = self.container.get("launch")
        return launch if isinstance(launch, Mapping) else {}

    @property
    def kind(self) -> str:
        return str(self.launch.get("kind", ""))

    @property
    def pod_names(self) -> tuple[str, ...]:
        return tuple(str(n) for n in self.launch.get("pods") or ())

    @property
    def timeout(self) -> int:
        return int(self.launch.get("timeout") or 0)

    def object_names(self) -> tuple[str, ...]:
        """Return the names of every object of the attempt (pods, service, resource)."""
        names = list(self.pod_names)
        if self.launch.get("service"):
            names.append(str(self.launch["service"]))
        resource = self.launch.get("resource")
        if isinstance(resource, Mapping) and resource.get("name"):
            names.append(str(resource["name"]))
        return tuple(names)


class AttemptBook(Protocol):
    """The database side of the watcher."""

    def running_ids(self) -> set[int]: ...
    def newest_id(self) -> int: ...
    def ended_after(self, after_id: int) -> set[int]: ...
    def load(self, ids: Collection[int]) -> dict[int, TrackedAttempt]: ...  # any state
    def heartbeat(self, ids: Collection[int], now: datetime) -> None: ...
    def save_status(self, updates: Mapping[int, tuple[Mapping[str, Any], Sequence[Any]]]) -> None: ...


class Finisher(Protocol):
    """Ends attempts: outputs, the log archive and the database record."""

    def finish(self, attempt: TrackedAttempt, outcome: Outcome, pods: Sequence[PodView]) -> None: ...
    def release(self, attempt: TrackedAttempt, pods: Sequence[PodView]) -> None: ...
    def judge_resource(self, attempt: TrackedAttempt, obj: Mapping[str, Any] | None) -> Outcome | None: ...
