"""Trigger rules, the run's outcome and conditions (docs/rules.md R13, R14) in process: a fixed clock,
dispatch captured.

Every backend of tests/integration/backends.py, like test_engine_rules.py (whose helpers these are):
each test claims and finishes attempts itself at explicit instants.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from myapp.core.values import AttemptResult
from myapp.db.tables import TaskAttempt, TaskInstance
from myapp.executor.condition import condition_result
from tests.integration.backends import store_services  # noqa: F401  (the `services` fixture, per backend)
from tests.integration.test_engine_rules import FAIL, OK, T0, claim, names, run_of, run_task, states

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
S1 = timedelta(seconds=1)


def task(name: str, *ups: str, rule: str = "") -> str:
    deps = f", depends_on: [{', '.join(ups)}]" if ups else ""
    return f"  - {{name: {name}, image: local, command: ['true']{deps}{', trigger_rule: ' + rule if rule else ''}}}\n"


def pipeline(name: str, *tasks: str) -> str:
    return f"name: {name}\ntasks:\n" + "".join(tasks)


def messages(services: Any, run_id: int) -> dict[str, str]:
    with services.db.read() as s:
        return dict(
            s.execute(select(TaskInstance.task_name, TaskInstance.message).where(TaskInstance.run_id == run_id)).all()
        )


def test_a_cleanup_after_a_failure_runs_and_the_run_outcome_comes_from_the_leaves(
    services: Any, sent: list[int]
) -> None:
    # a fails: b (default) and its child c are upstream-failed; cleanup (all_done) and alarm
    # (one_failed) run; ok (none_failed) is upstream-failed. The leaves c and ok fail the run.
    run_id = run_of(
        services,
        pipeline(
            "cleanup",
            task("a"),
            task("b", "a"),
            task("c", "b"),
            task("cleanup", "a", "b", rule="all_done"),
            task("alarm", "a", rule="one_failed"),
            task("ok", "a", rule="none_failed"),
        ),
    )
    run_task(services, sent, run_id, "a", FAIL, T0)
    assert names(services, sent) == ["alarm", "cleanup"]
    assert states(services, run_id)[1] == {
        "a": "failed",
        "b": "upstream_failed",
        "c": "upstream_failed",
        "cleanup": "queued",
        "alarm": "queued",
        "ok": "upstream_failed",
    }
    assert messages(services, run_id)["b"] == "upstream task 'a' did not succeed"
    assert messages(services, run_id)["c"] == "upstream task 'b' did not succeed"
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
    run_id = run_of(
        services,
        pipeline(
            "skips",
            task("a"),
            task("b"),
            task("alarm", "a", "b", rule="one_failed"),
            task("d", "alarm"),
            task("e", "alarm", rule="none_failed"),
            task("f", "alarm", rule="all_skipped"),
            task("g", "d", rule="all_done"),
        ),
    )
    run_task(services, sent, run_id, "a", OK, T0)
    assert names(services, sent) == ["b"], "alarm waits for b: it runs on the first failure only"
    run_task(services, sent, run_id, "b", OK, T0 + S1)
    assert names(services, sent) == ["e", "f", "g"]
    assert states(services, run_id)[1] == {
        "a": "succeeded",
        "b": "succeeded",
        "alarm": "skipped",
        "d": "skipped",
        "e": "queued",
        "f": "queued",
        "g": "queued",
    }
    assert messages(services, run_id)["alarm"] == "skipped by its trigger rule (R13) when upstream task 'b' ended"
    assert messages(services, run_id)["d"] == "skipped by its trigger rule (R13) when upstream task 'alarm' ended"
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
    run_id = run_of(
        services,
        pipeline(
            "fan",
            task("root"),
            *(task(n, "root") for n in leaves),
            task("join", *leaves, rule="all_done"),
            task("strict", *leaves),
        ),
    )
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


CONDITIONAL = """\
name: conditional
parameters: [{name: go, default: 'yes'}]
tasks:
  - {name: check, image: local, command: ['true'], outputs: [{name: score, path: s.txt}]}
  - {name: train, image: local, command: ['true'], depends_on: [check],
     when: "{{ tasks.check.outputs.score | float > 0.9 and params.go == 'yes' }}"}
  - {name: deploy, image: local, command: ['true'], depends_on: [train]}
  - {name: report, image: local, command: ['true'], depends_on: [train], trigger_rule: none_failed}
"""


def run_with_condition(services: Any, sent: list[int], run_id: int, name: str, at: Any) -> AttemptResult | None:
    """Claim `name`, check its condition as the executors do; run it (OK) unless the condition ended it."""
    ctx = claim(services, sent, run_id, name, at)
    early = condition_result(ctx, "local")
    services.attempts.finish(ctx.attempt_id, early or OK, at + S1)
    return early


def test_a_false_condition_skips_the_task_and_the_skip_propagates(services: Any, sent: list[int]) -> None:
    run_id = run_of(services, CONDITIONAL)
    ctx = claim(services, sent, run_id, "check", T0)
    services.attempts.finish(
        ctx.attempt_id, AttemptResult(succeeded=True, outputs={"score": {"type": "text", "value": "0.5"}}), T0 + S1
    )
    early = run_with_condition(services, sent, run_id, "train", T0 + 2 * S1)
    assert early is not None and early.skipped
    state, tasks = states(services, run_id)
    assert tasks == {"check": "succeeded", "train": "skipped", "deploy": "skipped", "report": "queued"}
    assert messages(services, run_id)["train"].startswith("skipped: its condition")
    with services.db.read() as s:  # the attempt ended without running anything
        assert s.scalars(
            select(TaskAttempt.state)
            .join(TaskInstance)
            .where(TaskInstance.run_id == run_id, TaskInstance.task_name == "train")
        ).all() == ["succeeded"]
    run_task(services, sent, run_id, "report", OK, T0 + 3 * S1)
    assert states(services, run_id)[0] == "succeeded"


def test_a_true_condition_runs_the_task(services: Any, sent: list[int]) -> None:
    run_id = run_of(services, CONDITIONAL)
    ctx = claim(services, sent, run_id, "check", T0)
    services.attempts.finish(
        ctx.attempt_id, AttemptResult(succeeded=True, outputs={"score": {"type": "text", "value": "0.95"}}), T0 + S1
    )
    assert run_with_condition(services, sent, run_id, "train", T0 + 2 * S1) is None
    assert names(services, sent) == ["deploy", "report"]


def test_a_broken_condition_fails_the_attempt_naming_the_field(services: Any, sent: list[int]) -> None:
    broken = CONDITIONAL.replace("name: conditional", "name: broken").replace(
        "tasks.check.outputs.score | float > 0.9 and params.go == 'yes'", "tasks.check.outputs.score"
    )
    run_id = run_of(services, broken)
    ctx = claim(services, sent, run_id, "check", T0)
    services.attempts.finish(
        ctx.attempt_id, AttemptResult(succeeded=True, outputs={"score": {"type": "text", "value": "high"}}), T0 + S1
    )
    early = run_with_condition(services, sent, run_id, "train", T0 + 2 * S1)
    assert early is not None and not early.succeeded
    assert early.message == "task 'train', field when: rendered 'high', which is neither true nor false"
    assert states(services, run_id)[1]["train"] == "failed"
    assert states(services, run_id)[1]["report"] == "upstream_failed"
