"""Conditions (`when`, docs/rules.md R14): references, syntax, rendering to true or false, bounds."""

from __future__ import annotations

import pytest

from myapp.core.conditions import condition_problem, is_condition_met, referenced_tasks
from myapp.core.errors import RenderError
from myapp.core.render import RenderContext

CTX = RenderContext(
    creator="ann",
    runner="bob",
    pipeline_id=1,
    pipeline_name="p",
    run_id=7,
    task_name="train",
    cluster_name="local",
    execution_date="2026-01-01 00:00:00",
    params={"mode": "full", "n": "3"},
)
OUTPUTS = {
    "check": {"score": {"type": "text", "value": "0.95"}, "ok": "true"},
    "my-task": {"flag": "no"},
    "files": {"model": {"type": "file", "path": "/space/run/7/model"}},
}


def test_references_are_found_in_both_forms_once_in_order() -> None:
    text = "{{ tasks.check.outputs.score | float > 0.9 and tasks['my-task'].outputs.flag == 'x' or tasks.check }}"
    assert referenced_tasks(text) == ("check", "my-task")
    assert referenced_tasks("{{ params.mode == 'full' }}") == ()


@pytest.mark.parametrize(
    ("when", "met"),
    [
        ("{{ tasks.check.outputs.score | float > 0.9 }}", True),
        ("{{ tasks.check.outputs.score | float > 0.99 }}", False),
        ("{{ tasks.check.outputs.ok }}", True),
        ("{{ tasks['my-task'].outputs.flag }}", False),
        ("{{ tasks.files.outputs.model.endswith('/model') }}", True),
        ("{{ params.mode == 'full' and params.n | int >= 3 }}", True),
        ("{{ execution_date[:4] == '2025' }}", False),
        (" {{ 'YES' }} ", True),
        ("{% if params.mode == 'quick' %}true{% endif %}{{ '' }}", False),  # nothing rendered: false
    ],
)
def test_a_condition_renders_to_true_or_false(when: str, met: bool) -> None:
    assert is_condition_met(when, CTX, OUTPUTS) is met


@pytest.mark.parametrize(
    ("when", "words"),
    [
        ("{{ params.mode }}", "neither true nor false"),
        ("{{ tasks.ghost.outputs.x }}", "field when"),
        ("{{ params.nope }}", "no attribute 'nope'"),
        ("{{ 'a' * 10000000 }}", "field when"),  # the sandbox's bounds hold here too
    ],
)
def test_a_broken_condition_is_an_error_naming_the_task_and_the_field(when: str, words: str) -> None:
    with pytest.raises(RenderError, match="task 'train', field when") as caught:
        is_condition_met(when, CTX, OUTPUTS)
    assert words in str(caught.value)


def test_syntax_is_checked_at_save() -> None:
    assert condition_problem("{{ params.go == 'yes' }}") is None
    assert "Jinja expression" in (condition_problem("params.go == 'yes'") or "")
    assert "syntax" in (condition_problem("{{ params.go == }}") or "")
