"""A task's condition checked after the claim (myapp/executor/condition.py, docs/rules.md R14)."""

from __future__ import annotations

from typing import Any

from myapp.core.values import AttemptContext
from myapp.executor.condition import condition_result
from tests.factories import make_param, make_pipeline, make_task


def context(when: str, **overrides: Any) -> AttemptContext:
    task = make_task("train", depends_on=("check",), when=when)
    spec = make_pipeline(
        tasks=[make_task("check"), task], parameters=(make_param("go", default="yes"), make_param("key", secret=True))
    )
    values: dict[str, Any] = dict(
        attempt_id=1,
        task_instance_id=1,
        try_number=1,
        run_id=7,
        pipeline_id=1,
        pipeline_name="demo",
        spec=spec,
        task=task,
        trigger="manual",
        execution_date="2026-01-01 00:00:00",
        params={"key": "s3cr3t-value"},
        creator="ann",
        runner="ann",
        user_id=None,
        token="t",
        upstream_outputs={"check": {"ok": {"type": "text", "value": "true"}}},
    )
    return AttemptContext(**{**values, **overrides})


def test_no_condition_or_a_true_one_runs_the_task() -> None:
    assert condition_result(context(""), "local") is None
    assert condition_result(context("{{ tasks.check.outputs.ok and params.go == 'yes' }}"), "local") is None


def test_a_false_condition_ends_the_attempt_skipped() -> None:
    result = condition_result(context("{{ params.go == 'no' }}"), "local")
    assert result is not None and result.succeeded and result.skipped
    assert result.message == "skipped: its condition \"{{ params.go == 'no' }}\" is false"


def test_a_debug_run_ignores_the_condition() -> None:
    assert condition_result(context("{{ params.go == 'no' }}", debug_inputs={}), "local") is None


def test_a_broken_condition_fails_and_never_shows_a_secret() -> None:
    result = condition_result(context("{{ params.key }}"), "local")
    assert result is not None and not result.succeeded and not result.skipped
    assert "field when" in result.message and "s3cr3t" not in result.message, result.message
