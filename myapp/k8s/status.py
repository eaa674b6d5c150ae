"""What the run page shows of a Kubernetes attempt: TaskAttempt.container (the launch record plus
each pod's status, or the resource object's status) and TaskAttempt.events. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from myapp.k8s.events import EventBook
from myapp.k8s.launcher import Raw
from myapp.k8s.pods import PodView, pod_summary
from myapp.k8s.tracked import TrackedAttempt

MISSING: Raw = {"__missing__": True}  # no resource read yet (not the same as "the object is gone")


def attempt_status(
    attempt: TrackedAttempt,
    pods: Sequence[PodView],
    events: EventBook,
    resource: Raw | None = MISSING,
    *,
    notice: str = "",
) -> tuple[dict[str, Any], list[Any]]:
    """Return (container, events) of one attempt for TaskAttempt; `notice`: the watcher's trouble, if any."""
    container: dict[str, Any] = {**attempt.container, "pods": [pod_summary(p) for p in pods]}
    if pods:  # created at last: a create retry's waiting reason (loaded earlier) is history
        container.pop("waiting", None)
        container.pop("creating_until", None)
    container.pop("watcher", None)
    if notice:
        container["watcher"] = notice
    if resource is None:
        container["object"] = {"exists": False}
    elif resource is not MISSING:
        container["object"] = {"exists": True, "status": resource.get("status") or {}}
    names = {p.name for p in pods} | set(attempt.object_names())
    return container, events.records(sorted(names))
