"""The watcher tries again to finish an attempt whose first finish failed (myapp/k8s/watcher.py)."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from myapp.k8s.config import KubeConfig
from myapp.k8s.pods import Outcome, PodView
from myapp.k8s.tracked import TrackedAttempt
from myapp.k8s.watcher import Watcher
from tests.unit.k8s.test_pods import raw_pod, terminated

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
ATTEMPT = TrackedAttempt(
    9,
    3,
    "train",
    1,
    NOW - timedelta(seconds=5),
    container={"launch": {"kind": "distributed", "pods": ["p-0", "p-1"], "service": "p"}},
)


class Book:
    """The database side: one running attempt until the finisher records its end."""

    def __init__(self, attempt: TrackedAttempt = ATTEMPT) -> None:
        self.attempt = attempt
        self.running = {attempt.attempt_id}

    def running_ids(self) -> set[int]:
        return set(self.running)

    def newest_id(self) -> int:
        return self.attempt.attempt_id

    def ended_after(self, after_id: int) -> set[int]:
        return set()

    def load(self, ids: Collection[int]) -> dict[int, TrackedAttempt]:
        return {i: self.attempt for i in ids if i == self.attempt.attempt_id}

    def heartbeat(self, ids: Collection[int], now: datetime) -> None:
        pass

    def save_status(self, updates: Mapping[int, tuple[Mapping[str, Any], Sequence[Any]]]) -> None:
        pass


class FlakyFinisher:
    """Fails its first finish (a database outage, say), records the second."""

    def __init__(self, book: Book) -> None:
        self.book = book
        self.calls: list[tuple[Outcome, list[str]]] = []

    def finish(self, attempt: TrackedAttempt, outcome: Outcome, pods: Sequence[PodView]) -> None:
        self.calls.append((outcome, [p.name for p in pods]))
        if len(self.calls) == 1:
            raise RuntimeError("database is locked")
        self.book.running.discard(attempt.attempt_id)

    def release(self, attempt: TrackedAttempt, pods: Sequence[PodView]) -> None:
        raise AssertionError("a finished attempt is not released")

    def judge_resource(self, attempt: TrackedAttempt, obj: Mapping[str, Any] | None) -> Outcome | None:
        return None


class Hub:
    def observe(self, pod: PodView) -> None:
        pass


class Launcher:
    def __init__(self) -> None:
        self.deleted: list[tuple[str, str]] = []

    def delete(self, kind: str, name: str, **_: Any) -> None:
        self.deleted.append((kind, name))


def wait_for(predicate: Any) -> None:
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_failed_finish_is_tried_again_from_the_cached_pods() -> None:
    book, launcher = Book(), Launcher()
    finisher = FlakyFinisher(book)
    watcher = Watcher(
        KubeConfig(namespace="ns", group="g"),
        launcher,
        book,
        finisher,
        Hub(),  # type: ignore[arg-type]
        lambda: NOW,
        workers=1,
    )
    try:
        watcher.on_pod_sync([])  # the pod cache is complete (pods missing from it would mean something)
        watcher.tick(NOW)  # loads the running attempt
        for rank in (0, 1):  # both pods succeed; pods that ended send no more events
            watcher.on_pod_event("MODIFIED", raw_pod(f"p-{rank}", "Succeeded", rank=rank, container=terminated(0)))
        wait_for(lambda: len(finisher.calls) == 1 and ATTEMPT.attempt_id not in watcher.busy)
        assert [p.name for p in watcher.pods_of(ATTEMPT.attempt_id)] == ["p-0", "p-1"], "the pods were forgotten"
        assert launcher.deleted == [], "nothing is deleted before the attempt's end is recorded"

        watcher.tick(NOW + timedelta(seconds=1))  # the next tick decides the attempt again
        wait_for(lambda: book.running == set() and ATTEMPT.attempt_id not in watcher.busy)
        assert finisher.calls[1] == (Outcome(True, 0, ""), ["p-0", "p-1"])
        assert watcher.cleaner.wait_idle(10)  # the deletes after the finish run on the cleaner's threads
        assert sorted(launcher.deleted) == [("Pod", "p-0"), ("Pod", "p-1"), ("Service", "p")]
    finally:
        watcher.pool.shutdown(wait=True)
        watcher.cleaner.close()
