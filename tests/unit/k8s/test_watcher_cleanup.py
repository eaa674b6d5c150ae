"""The deletes after a finish run on the Cleaner's threads (myapp/k8s/cleanup.py): a slow or failing
delete holds no finish, is retried when the refusal passes by itself, and is bounded."""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest

from myapp.k8s.cleanup import Cleaner, Deletion
from myapp.k8s.config import KubeConfig
from myapp.k8s.launcher import LaunchError
from myapp.k8s.pods import Outcome, PodView
from myapp.k8s.tracked import TrackedAttempt
from myapp.k8s.watcher import Watcher
from tests.unit.k8s.test_pods import raw_pod, terminated
from tests.unit.k8s.test_watcher_retry import NOW, Hub, wait_for


def attempt(attempt_id: int) -> TrackedAttempt:
    launch = {"kind": "pod", "pods": [f"p{attempt_id}"], "secret": f"p{attempt_id}-secret"}
    return TrackedAttempt(attempt_id, attempt_id, "t", 1, NOW - timedelta(seconds=5), container={"launch": launch})


def succeeded(attempt_id: int) -> dict[str, Any]:
    raw = raw_pod(f"p{attempt_id}", "Succeeded", container=terminated(0))
    raw["metadata"]["labels"].update({"myapp/attempt": str(attempt_id), "myapp/run": str(attempt_id)})
    return raw


class Book:
    def __init__(self, *ids: int) -> None:
        self.attempts = {i: attempt(i) for i in ids}
        self.running = set(ids)

    def running_ids(self) -> set[int]:
        return set(self.running)

    def newest_id(self) -> int:
        return max(self.attempts)

    def ended_after(self, after_id: int) -> set[int]:
        return set()

    def load(self, ids: Collection[int]) -> dict[int, TrackedAttempt]:
        return {i: self.attempts[i] for i in ids if i in self.attempts}

    def heartbeat(self, ids: Collection[int], now: Any) -> None:
        pass

    def save_status(self, updates: Mapping[int, Any]) -> None:
        pass


class Finisher:
    def __init__(self, book: Book) -> None:
        self.book = book
        self.finished: list[int] = []

    def finish(self, attempt: TrackedAttempt, outcome: Outcome, pods: Sequence[PodView]) -> None:
        self.book.running.discard(attempt.attempt_id)
        self.finished.append(attempt.attempt_id)

    def release(self, attempt: TrackedAttempt, pods: Sequence[PodView]) -> None:
        raise AssertionError("a finished attempt is not released")

    def judge_resource(self, attempt: TrackedAttempt, obj: Any) -> Outcome | None:
        return None


class SlowLauncher:
    """Every delete waits for `go` (a loaded API server), or answers with the next of its object's `refusals`."""

    def __init__(self, refusals: Mapping[str, Sequence[LaunchError]] | None = None) -> None:
        self.go = threading.Event()
        self.refusals = {name: list(errors) for name, errors in (refusals or {}).items()}
        self.deleted: list[tuple[str, str]] = []
        self.tries = 0
        self.lock = threading.Lock()

    def delete(self, kind: str, name: str, **_: Any) -> str:
        with self.lock:
            self.tries += 1
            left = self.refusals.get(name)
            refusal = left.pop(0) if left else None
        if refusal is not None:
            raise refusal
        self.go.wait(30)
        with self.lock:
            self.deleted.append((kind, name))
        return "deleted"


def test_a_finish_is_not_held_by_the_deletes_of_an_earlier_one() -> None:
    # One finisher thread: before the cleaner, attempt 2 waited until attempt 1's pod and Secret deletes were answered.
    book, launcher = Book(1, 2), SlowLauncher()
    finisher = Finisher(book)
    watcher = Watcher(KubeConfig(namespace="ns", group="g"), launcher, book, finisher, Hub(), lambda: NOW, workers=1)  # type: ignore[arg-type]
    try:
        watcher.on_pod_sync([])
        watcher.tick(NOW)
        watcher.on_pod_event("MODIFIED", succeeded(1))
        wait_for(lambda: launcher.tries >= 1)  # attempt 1 is recorded and its pod's delete hangs
        assert finisher.finished == [1]
        watcher.on_pod_event("MODIFIED", succeeded(2))
        wait_for(lambda: finisher.finished == [1, 2])
        assert launcher.deleted == [], "both finishes were recorded while the first delete still hung"
        assert watcher.cleaner.pending("Pod", "p1")
        watcher.tick(NOW + timedelta(seconds=1))  # the pods being deleted are not orphans to delete again
        launcher.go.set()
        assert watcher.cleaner.wait_idle(10)
        assert sorted(launcher.deleted) == [
            ("Pod", "p1"),
            ("Pod", "p2"),
            ("Secret", "p1-secret"),
            ("Secret", "p2-secret"),
        ]
        assert launcher.tries == 4
    finally:
        launcher.go.set()
        watcher.pool.shutdown(wait=True)
        watcher.cleaner.close()


def test_a_refusal_that_passes_by_itself_is_retried_and_one_that_does_not_is_left_to_the_sweeps() -> None:
    launcher = SlowLauncher(
        {
            "a": [
                LaunchError("cannot delete Pod a: Too many requests", 429, retry_after=0.01),
                LaunchError("cannot delete Pod a: the server is currently unable to handle the request", 503, 0.01),
            ],
            "s": [LaunchError("cannot delete Secret s: forbidden", 403)],
        }
    )
    launcher.go.set()
    cleaner = Cleaner(launcher, workers=1)  # type: ignore[arg-type]
    try:
        cleaner.submit(1, [Deletion("Pod", "a"), Deletion("Secret", "s")])
        assert cleaner.wait_idle(10)
        assert launcher.deleted == [("Pod", "a")], "429 and 503 are tried again; 403 is not"
        assert (cleaner.deleted, cleaner.failed, launcher.tries) == (1, 1, 4)
    finally:
        cleaner.close()


def test_a_full_queue_holds_the_submitter_until_a_delete_is_done() -> None:
    launcher = SlowLauncher()
    cleaner = Cleaner(launcher, workers=1, capacity=1)  # type: ignore[arg-type]
    try:
        cleaner.submit(1, [Deletion("Pod", "a")])  # taken by the worker, which hangs on it
        wait_for(lambda: launcher.tries == 1)
        cleaner.submit(2, [Deletion("Pod", "b")])  # queued: the queue is full now
        third = threading.Thread(target=cleaner.submit, args=(3, [Deletion("Pod", "c")]))
        third.start()
        third.join(0.2)
        assert third.is_alive(), "a third attempt waits for room in the queue"
        assert cleaner.backlog == 1
        launcher.go.set()
        third.join(10)
        assert not third.is_alive()
        assert cleaner.wait_idle(10)
        assert launcher.deleted == [("Pod", "a"), ("Pod", "b"), ("Pod", "c")]
    finally:
        launcher.go.set()
        cleaner.close()


@pytest.mark.parametrize("drain", [True, False])
def test_close_drains_what_is_queued_within_its_timeout_then_drops_the_rest(drain: bool) -> None:
    launcher = SlowLauncher()
    cleaner = Cleaner(launcher, workers=1)  # type: ignore[arg-type]
    cleaner.submit(1, [Deletion("Pod", "a"), Deletion("Secret", "s")])
    wait_for(lambda: launcher.tries == 1)
    if drain:
        launcher.go.set()
    closing = threading.Thread(target=cleaner.close, kwargs={"timeout": 10.0 if drain else 0.1})
    closing.start()
    if not drain:
        wait_for(lambda: cleaner._give_up.is_set())
        launcher.go.set()  # the delete under way is answered; the Secret's is dropped
    closing.join(10)
    assert not closing.is_alive()
    assert launcher.deleted == ([("Pod", "a"), ("Secret", "s")] if drain else [("Pod", "a")])
    cleaner.submit(2, [Deletion("Pod", "b")])  # dropped: a stopping watcher leaves it to the next one's sweep
    assert launcher.tries == (2 if drain else 1)
