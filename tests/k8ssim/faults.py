"""The fault knobs' state, read by the scheduler, the pod workers and the node server (thread-safe).
Tests set them through NodeSimulator's control API (see README.md)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.k8ssim.pods import PodWorker, Runtime

Obj = dict[str, Any]
PodMatch = Callable[[Obj], bool]


def matcher(match: str | PodMatch) -> PodMatch:
    """A pod predicate from a callable or a pod-name prefix ("ns/prefix" also matches the namespace)."""
    if callable(match):
        return match
    namespace, _, prefix = match.rpartition("/")
    return lambda pod: (
        pod["metadata"]["name"].startswith(prefix) and (not namespace or pod["metadata"]["namespace"] == namespace)
    )


@dataclass
class Faults:
    lock: threading.Lock = field(default_factory=threading.Lock)
    holds: list[tuple[PodMatch, str]] = field(default_factory=list)
    delays: list[tuple[PodMatch, float]] = field(default_factory=list)
    pull_failures: dict[str, int] = field(default_factory=dict)  # image substring -> failing pulls
    sidecars: list[tuple[PodMatch, Obj]] = field(default_factory=list)
    stalled: list[PodMatch] = field(default_factory=list)
    on_start_hooks: list[tuple[PodMatch, Callable[[PodWorker, Runtime], None]]] = field(default_factory=list)
    log_requests: list[tuple[str, str, str, dict[str, str]]] = field(default_factory=list)

    def reset(self) -> None:
        with self.lock:
            self.holds.clear()
            self.delays.clear()
            self.pull_failures.clear()
            self.sidecars.clear()
            self.stalled.clear()
            self.on_start_hooks.clear()

    # --- read by the components ---------------------------------------------------------------
    def held(self, pod: Obj) -> str | None:
        """The FailedScheduling message of a held pod ("" for a silent hold), None if not held."""
        with self.lock:
            return next((message for match, message in self.holds if match(pod)), None)

    def start_delay(self, pod: Obj) -> float:
        with self.lock:
            return max([delay for match, delay in self.delays if match(pod)], default=0.0)

    def pull_fails(self, image: str, failed_so_far: int) -> bool:
        with self.lock:
            return any(part in image and failed_so_far < times for part, times in self.pull_failures.items())

    def mutate(self, pod: Obj, namespace: str) -> list[Obj]:
        pod = {**pod, "metadata": {**pod.get("metadata", {}), "namespace": namespace}}
        with self.lock:
            containers = [container for match, container in self.sidecars if match(pod)]
        return [{"op": "add", "path": "/spec/containers/-", "value": c} for c in containers]

    def log_stalled(self, namespace: str, name: str) -> bool:
        pod = {"metadata": {"namespace": namespace, "name": name}}
        with self.lock:
            return any(match(pod) for match in self.stalled)

    def log_request(self, namespace: str, pod: str, container: str, query: dict[str, str]) -> None:
        with self.lock:
            self.log_requests.append((namespace, pod, container, dict(query)))

    def on_start(self, worker: PodWorker, runtime: Runtime) -> None:
        with self.lock:
            hooks = [hook for match, hook in self.on_start_hooks if match(worker.pod)]
        for hook in hooks:
            hook(worker, runtime)
