"""A resource attempt's object: absent before it was ever seen is "not created yet", not "deleted" (myapp/k8s/watcher.py).

The launching worker commits the launch record before it creates the object, so a watcher tick can
come first; that must not fail the attempt while within missing_grace.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from myapp.k8s.config import KubeConfig
from myapp.k8s.pods import Outcome, PodView
from myapp.k8s.tracked import TrackedAttempt
from myapp.k8s.watcher import Watcher
from tests.unit.k8s.test_watcher_retry import Book, Hub

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
REF = {"apiVersion": "batch.example.com/v1", "kind": "TrainingJob", "name": "mnist-11"}
ATTEMPT = TrackedAttempt(
    11, 4, "job", 1, NOW - timedelta(seconds=5), container={"launch": {"kind": "resource", "resource": REF}}
)


class Finisher:
    """Judges like myapp/executor/kubernetes/pod_finish.py: no object is "deleted"; status.succeeded is success."""

    def __init__(self, book: Book) -> None:
        self.book, self.outcomes = book, []  # type: list[Outcome]

    def judge_resource(self, attempt: TrackedAttempt, obj: Mapping[str, Any] | None) -> Outcome | None:
        if obj is None:
            return Outcome(False, None, "TrainingJob mnist-11 was deleted before it reached its success condition")
        return Outcome(True, 0, "") if (obj.get("status") or {}).get("succeeded") else None

    def finish(self, attempt: TrackedAttempt, outcome: Outcome, pods: Sequence[PodView]) -> None:
        self.outcomes.append(outcome)
        self.book.running.discard(attempt.attempt_id)

    def release(self, attempt: TrackedAttempt, pods: Sequence[PodView]) -> None:
        raise AssertionError("a finished attempt is not released")


class Launcher:
    def __init__(self) -> None:
        self.obj: dict[str, Any] | None = None

    def get_object(self, api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        return self.obj

    def delete(self, kind: str, name: str, **_: Any) -> None:
        pass


def run(steps: Sequence[tuple[timedelta, dict[str, Any] | None]]) -> list[Outcome]:
    """Tick the watcher at NOW + each offset with the object the API server would return then."""
    book, launcher = Book(ATTEMPT), Launcher()
    finisher = Finisher(book)
    watcher = Watcher(
        KubeConfig(namespace="ns", group="g"),
        launcher,
        book,
        finisher,
        Hub(),  # type: ignore[arg-type]
        lambda: NOW,
        workers=1,
        missing_grace=60,
    )
    try:
        watcher.on_pod_sync([])
        for offset, obj in steps:
            launcher.obj = obj
            watcher.tick(NOW + offset)
            deadline = time.monotonic() + 10
            while watcher.busy:  # a finish runs on the watcher's pool
                assert time.monotonic() < deadline, "timed out"
                time.sleep(0.01)
        return finisher.outcomes
    finally:
        watcher.pool.shutdown(wait=True)


def test_an_object_not_created_yet_is_waited_for_and_then_judged() -> None:
    outcomes = run(
        [
            (timedelta(0), None),
            (timedelta(seconds=1), {"status": {}}),
            (timedelta(seconds=2), {"status": {"succeeded": 1}}),
        ]
    )
    assert outcomes == [Outcome(True, 0, "")]


def test_an_object_that_never_appears_fails_after_missing_grace() -> None:
    outcomes = run([(timedelta(0), None), (timedelta(seconds=30), None), (timedelta(seconds=60), None)])
    assert [o.succeeded for o in outcomes] == [False]
    assert "deleted before it reached its success condition" in outcomes[0].message


def test_an_object_seen_and_then_gone_fails_at_once() -> None:
    outcomes = run([(timedelta(0), {"status": {}}), (timedelta(seconds=1), None)])
    assert [o.succeeded for o in outcomes] == [False]
