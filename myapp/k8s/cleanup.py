"""Deleting what an attempt created: its pods, its headless service, its Secret, its resource object.

The deletes that follow a recorded end run on the `Cleaner`'s own threads, so an attempt's finish
(outcome, log archive, `AttemptStore.finish`) never waits behind another attempt's deletes: with
1,000 pods on a loaded API server the finisher threads otherwise spent half their time there.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from myapp.k8s.launcher import Launcher, LaunchError
from myapp.k8s.pods import PodView
from myapp.k8s.retry import is_retriable, retry_delay
from myapp.k8s.tracked import TrackedAttempt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deletion:
    """One object to delete (pods gracefully unless `grace` says otherwise)."""

    kind: str
    name: str
    grace: int | None = None
    api_version: str = "v1"
    namespace: str | None = None


def delete_quietly(
    launcher: Launcher,
    kind: str,
    name: str,
    *,
    grace: int | None = None,
    api_version: str = "v1",
    namespace: str | None = None,
) -> None:
    """Delete one object; a refusal is logged (the next tick or sweep tries again), never raised."""
    try:
        launcher.delete(kind, name, api_version=api_version, namespace=namespace, grace_seconds=grace)
    except LaunchError as exc:
        log.warning("%s", exc)


def attempt_deletions(
    attempt: TrackedAttempt,
    cached: Sequence[PodView],
    *,
    running_only: bool,
    grace: int | None = None,
) -> list[Deletion]:
    """Return the attempt's pods (only those still running if `running_only`), then its service, Secret, resource."""
    known = {p.name: p for p in cached}
    out = []
    for name in sorted(set(attempt.pod_names) | set(known)):
        pod = known.get(name)
        if pod is not None and (pod.gone or (running_only and pod.is_terminal)):
            continue
        out.append(Deletion("Pod", name, grace))
    if running_only:
        return out
    if attempt.launch.get("service"):
        out.append(Deletion("Service", str(attempt.launch["service"])))
    if attempt.launch.get("secret"):  # owned by the pods, but no garbage collector may run (nor in time)
        out.append(Deletion("Secret", str(attempt.launch["secret"])))
    ref = attempt.launch.get("resource")
    if isinstance(ref, dict) and ref.get("name"):
        out.append(
            Deletion(
                str(ref.get("kind")),
                str(ref["name"]),
                api_version=str(ref.get("apiVersion")),
                namespace=str(ref.get("namespace") or "") or None,
            )
        )
    return out


def delete_attempt_objects(
    launcher: Launcher,
    attempt: TrackedAttempt,
    cached: Sequence[PodView],
    *,
    running_only: bool,
    grace: int | None = None,
) -> None:
    """Delete the attempt's pods (only those still running if `running_only`), then its service and resource."""
    for d in attempt_deletions(attempt, cached, running_only=running_only, grace=grace):
        delete_quietly(launcher, d.kind, d.name, grace=d.grace, api_version=d.api_version, namespace=d.namespace)


class Cleaner:
    """Deletes the objects of ended attempts on `workers` threads of its own, from a bounded queue.

    - Backpressure: at most `capacity` attempts wait; `submit` then blocks its caller (a finisher
      thread) until a worker takes one, so a slow API server slows finishing down only once that
      many deletes are behind, and the backlog's memory stays bounded.
    - Retries: a delete refused with 429, 5xx or a lost connection is tried again after the server's
      Retry-After (else 1 s doubling to 30 s) for up to `retry_for` seconds; any other refusal
      (403 RBAC, ...) is logged and left to the sweeps.
    - What a stopped or dead watcher leaves queued is not lost: the pods of attempts no longer
      running are deleted as orphans by every tick, and a (re)starting watcher's first sweep deletes
      the objects of the attempts ended recently (`Watcher._sweep_ended`).
    """

    def __init__(
        self,
        launcher: Launcher,
        *,
        workers: int = 4,
        capacity: int = 1000,
        retry_for: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.launcher, self.workers, self.retry_for, self.clock = launcher, workers, retry_for, clock
        self._queue: queue.Queue[tuple[int, list[Deletion]] | None] = queue.Queue(maxsize=capacity)
        self._pending: dict[tuple[str, str], int] = {}  # (kind, name) -> its deletes queued or running
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closing = threading.Event()  # stop accepting; drain until `_give_up`
        self._give_up = threading.Event()  # drop what is left (close's timeout passed)
        self.deleted = 0
        self.failed = 0

    def submit(self, attempt_id: int, deletions: Sequence[Deletion]) -> None:
        """Queue an attempt's deletes; block while `capacity` attempts wait. Dropped once closing."""
        if not deletions:
            return
        if self._closing.is_set():
            log.info("attempt %s: watcher stopping, its objects are left to the next sweep", attempt_id)
            return
        self._start()
        with self._cond:
            for d in deletions:
                self._pending[d.kind, d.name] = self._pending.get((d.kind, d.name), 0) + 1
        self._queue.put((attempt_id, list(deletions)))

    def pending(self, kind: str, name: str) -> bool:
        """True while a delete of this object is queued or running."""
        with self._cond:
            return (kind, name) in self._pending

    @property
    def backlog(self) -> int:
        """Attempts whose deletes are queued (not counting those being deleted)."""
        return self._queue.qsize()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or being deleted; return False if `timeout` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Stop accepting; finish the queued deletes within `timeout` s, then drop the rest (see above)."""
        self._closing.set()
        if not self._threads:
            return
        if not self.wait_idle(timeout):
            self._give_up.set()
            log.warning(
                "watcher stopping with the deletes of %d attempts queued: left to the next watcher's sweep",
                self._queue.qsize(),
            )
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=5.0)

    # --- workers -----------------------------------------------------------------------
    def _start(self) -> None:
        with self._cond:
            if self._threads:
                return
            for n in range(self.workers):
                thread = threading.Thread(target=self._work, name=f"cleanup-{n}", daemon=True)
                self._threads.append(thread)
                thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            attempt_id, deletions = item
            for d in deletions:
                try:
                    if not self._give_up.is_set():
                        self._delete(attempt_id, d)
                finally:
                    with self._cond:
                        left = self._pending.get((d.kind, d.name), 1) - 1
                        if left > 0:
                            self._pending[d.kind, d.name] = left
                        else:
                            self._pending.pop((d.kind, d.name), None)
                        self._cond.notify_all()

    def _delete(self, attempt_id: int, d: Deletion) -> None:
        began, failures = self.clock(), 0
        while True:
            try:
                self.launcher.delete(
                    d.kind, d.name, api_version=d.api_version, namespace=d.namespace, grace_seconds=d.grace
                )
                self.deleted += 1
                return
            except LaunchError as exc:
                retriable, why, retry_after = is_retriable(exc.status, exc.reason, str(exc)), str(exc), exc.retry_after
            except Exception as exc:  # noqa: BLE001  a lost connection (urllib3, OSError): worth another try
                retriable, why, retry_after = True, f"cannot delete {d.kind} {d.name}: {exc}", None
            failures += 1
            delay = retry_delay(failures, retry_after)
            if not retriable or self.clock() - began + delay > self.retry_for or self._give_up.is_set():
                self.failed += 1
                log.warning("attempt %s: %s (left to the orphan sweep)", attempt_id, why)
                return
            log.info("attempt %s: %s; trying again in %.0f s", attempt_id, why, delay)
            if self._give_up.wait(delay):
                self.failed += 1
                return
