"""Every pod of a worker group as the watch last reported it, by name and by attempt (thread-safe)."""

from __future__ import annotations

import threading

from myapp.k8s.pods import PodView


class PodCache:
    """The watcher's in-memory view of its pods (one list+watch keeps it current)."""

    def __init__(self) -> None:
        self._pods: dict[str, PodView] = {}
        self._by_attempt: dict[int, set[str]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._pods)

    def put(self, pod: PodView) -> None:
        """Store the newest view of a pod."""
        with self._lock:
            self._pods[pod.name] = pod
            if pod.attempt_id is not None:
                self._by_attempt.setdefault(pod.attempt_id, set()).add(pod.name)

    def forget(self, name: str) -> None:
        """Drop a pod (deleted, and nobody needs its last state any more)."""
        with self._lock:
            self._forget(name)

    def _forget(self, name: str) -> None:
        pod = self._pods.pop(name, None)
        if pod is not None and pod.attempt_id is not None:
            names = self._by_attempt.get(pod.attempt_id)
            if names is not None:
                names.discard(name)
                if not names:
                    del self._by_attempt[pod.attempt_id]

    def forget_attempt(self, attempt_id: int, *, keep_finished: bool) -> None:
        """Drop an ended attempt's pods: deleted ones always, finished ones unless kept in the cluster."""
        with self._lock:
            for name in list(self._by_attempt.get(attempt_id, ())):
                if self._pods[name].gone or not keep_finished:
                    self._forget(name)

    def get(self, name: str) -> PodView | None:
        with self._lock:
            return self._pods.get(name)

    def of(self, attempt_id: int) -> list[PodView]:
        """Return an attempt's pods, by name."""
        with self._lock:
            return [self._pods[n] for n in sorted(self._by_attempt.get(attempt_id, ()))]

    def all(self) -> list[PodView]:
        with self._lock:
            return list(self._pods.values())
