"""Trigger rules and the run's outcome (docs/rules.md R13) in process: a fixed clock, dispatch captured.

Every backend of tests/integration/backends.py, like test_engine_rules.py (whose helpers these are):
each test claims and finishes attempts itself at explicit instants.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from myapp.db.tables import TaskInstance
from tests.integration.backends import store_services  # noqa: F401  (the `services` fixture, per backend)
from tests.integration.test_engine_rules import FAIL, OK, T0, names, run_of, run_task, states

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
S1 = timedelta(seconds=1)


@pytest.fixture()
def sent(services: Any) -> Iterator[list[int]]:
    """The task instance ids dispatched while the test runs (nothing reaches a broker)."""
    ids: list[int] = []
    real = services.runs.dispatch
    services.set_dispatch(ids.extend)
    yield ids
    services.set_dispatch(real)


def task(name: str, *ups: str, rule: str = "") -> str:
    deps = f", depends_on: [{', '.join(ups)}]" if ups else ""
    return f"  - {{name: {name}, image: local, command: ['true']{deps}{', trigger_rule: ' + rule if rule else ''}}}\n"


def pipeline(name: str, *tasks: str) -> str:
    return f"name: {name}\ntasks:\n" + "".join(tasks)


def messages(services: Any, run_id: int) -> dict[str, str]:
    with services.db.read() as s:
        return dict(s.execute(select(TaskInstance.task_name, TaskInstance.message)
                              .where(TaskInstance.run_id == run_id)).all())


def test_a_cleanup_after_a_failure_runs_and_the_run_outcome_comes_from_the_leaves(services: Any, sent: list[int]) -> None:
    # a fails: b (default) and its child c are upstream-failed; cleanup (all_done) and alarm
    # (one_failed) run; ok (none_failed) is upstream-failed. The leaves c and ok fail the run.
    run_id = run_of(services, pipeline("cleanup", task("a"), task("b", "a"), task("c", "b"),
                                       task("cleanup", "a", "b", rule="all_done"), task("alarm", "a", rule="one_failed"),
                                       task("ok", "a", rule="none_failed")))
    run_task(services, sent, run_id, "a", FAIL, T0)
    assert names(services, sent) == ["alarm", "cleanup"]
    assert states(services, run_id)[1] == {"a": "failed", "b": "upstream_failed", "c": "upstream_failed",
                                           "cleanup": "queued", "alarm": "queued", "ok": "upstream_failed"}
    run_task(services, sent, run_id, "cleanup", OK, T0 + S1)
    run_task(services, sent, run_id, "alarm", OK, T0 + 2 * S1)
    assert states(services, run_id)[0] == "failed" and sent == []


def test_a_failure_a_rule_handles_does_not_fail_the_run(services: Any, sent: list[int]) -> None:
    # Airflow's rule: the run is read from its leaves; the only leaf is a cleanup that succeeded.
    run_id = run_of(services, pipeline("handled", task("a"), task("cleanup", "a", rule="all_done")))
    run_task(services, sent, run_id, "a", FAIL, T0)
    run_task(services, sent, run_id, "cleanup", OK, T0 + S1)
    assert states(services, run_id) == ("succeeded", {"a": "failed", "cleanup": "succeeded"})


def test_one_failed_is_skipped_when_nothing_failed_and_skips_propagate(services: Any, sent: list[int]) -> None:
    # alarm (one_failed) is skipped when a and b succeed; after it, d (default) is skipped, e
    # (none_failed) runs, f (all_skipped) runs, g (all_done) runs.
    run_id = run_of(services, pipeline("skips", task("a"), task("b"), task("alarm", "a", "b", rule="one_failed"),
                                       task("d", "alarm"), task("e", "alarm", rule="none_failed"),
                                       task("f", "alarm", rule="all_skipped"), task("g", "d", rule="all_done")))
    run_task(services, sent, run_id, "a", OK, T0)
    assert names(services, sent) == ["b"], "alarm waits for b: it runs on the first failure only"
    run_task(services, sent, run_id, "b", OK, T0 + S1)
    assert names(services, sent) == ["e", "f", "g"]
    assert states(services, run_id)[1] == {"a": "succeeded", "b": "succeeded", "alarm": "skipped", "d": "skipped",
                                                "e": "queued", "f": "queued", "g": "queued"}
    assert messages(services, run_id)["d"] == "skipped by its trigger rule (R13)"
    for i, name in enumerate("efg"):
        run_task(services, sent, run_id, name, OK, T0 + (2 + i) * S1)
    assert states(services, run_id)[0] == "succeeded"


def test_one_failed_runs_at_the_first_failure_without_waiting(services: Any, sent: list[int]) -> None:
    run_id = run_of(services, pipeline("early", task("a"), task("b"), task("alarm", "a", "b", rule="one_failed")))
    run_task(services, sent, run_id, "a", FAIL, T0)
    assert names(services, sent) == ["alarm", "b"]
    run_task(services, sent, run_id, "alarm", OK, T0 + S1)
    run_task(services, sent, run_id, "b", OK, T0 + 2 * S1)
    assert states(services, run_id) == ("succeeded", {"a": "failed", "b": "succeeded", "alarm": "succeeded"})


def test_a_wide_fan_in_with_failures_decides_the_join_once_every_leaf_ended(services: Any, sent: list[int]) -> None:
    width = 30
    leaves = [f"l{i}" for i in range(width)]
    run_id = run_of(services, pipeline("fan", task("root"), *(task(n, "root") for n in leaves),
                                       task("join", *leaves, rule="all_done"), task("strict", *leaves)))
    run_task(services, sent, run_id, "root", OK, T0)
    for i, name in enumerate(leaves):
        run_task(services, sent, run_id, name, FAIL if i % 3 == 0 else OK, T0 + i * S1)
        if i < width - 1:
            assert "join" not in names(services, sent)
    assert names(services, sent) == ["join"]
    assert states(services, run_id)[1]["strict"] == "upstream_failed"


def test_retry_sends_upstream_failed_tasks_back_and_the_rules_decide_again(services: Any, sent: list[int]) -> None:
    run_id = run_of(services, pipeline("again", task("a"), task("b", "a"), task("cleanup", "a", rule="all_done")))
    run_task(services, sent, run_id, "a", FAIL, T0)
    run_task(services, sent, run_id, "cleanup", OK, T0 + S1)
    assert states(services, run_id)[0] == "failed"
    services.runs.retry_run(run_id, T0 + 2 * S1)
    assert names(services, sent) == ["a"]
    run_task(services, sent, run_id, "a", OK, T0 + 3 * S1)
    run_task(services, sent, run_id, "b", OK, T0 + 4 * S1)
    assert states(services, run_id) == ("succeeded", {"a": "succeeded", "b": "succeeded", "cleanup": "succeeded"})
