"""The lifecycles (core/states.py): every state has a row, is reachable, and the SQL follows the tables.

Adding a state is one edit of its table in core/states.py; `test_every_state_has_a_row` fails until
it is given its transitions, and `test_the_tables` pins each table so the change is reviewed here.
"""

from __future__ import annotations

import ast
from enum import StrEnum
from pathlib import Path

import pytest

from myapp.core.errors import IllegalTransition
from myapp.core.states import (
    ALERT,
    ATTEMPT,
    LIFECYCLES,
    RECORD,
    RUN,
    RUN_TERMINAL,
    TASK,
    TASK_TERMINAL,
    TASK_UNFINISHED,
    TEMPLATE,
    AlertStatus,
    AttemptState,
    Lifecycle,
    RecordStatus,
    RunState,
    TaskState,
    TemplateStatus,
    check_run_transition,
    check_task_transition,
    task_sources,
)

MYAPP = Path(__file__).resolve().parents[3] / "myapp"


def _reachable(lifecycle: Lifecycle[StrEnum]) -> set[StrEnum]:
    seen, todo = {lifecycle.initial}, [lifecycle.initial]
    while todo:
        for nxt in lifecycle.transitions[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize("lifecycle", LIFECYCLES, ids=lambda lc: lc.name)
def test_every_state_has_a_row(lifecycle: Lifecycle[StrEnum]) -> None:
    assert set(lifecycle.transitions) == set(type(lifecycle.initial))
    for nexts in lifecycle.transitions.values():
        assert nexts <= set(type(lifecycle.initial))


@pytest.mark.parametrize("lifecycle", LIFECYCLES, ids=lambda lc: lc.name)
def test_every_state_is_reachable_and_something_ends(lifecycle: Lifecycle[StrEnum]) -> None:
    assert _reachable(lifecycle) == set(lifecycle.transitions)
    assert lifecycle.terminal and lifecycle.initial not in lifecycle.terminal


def test_the_tables() -> None:
    """Each lifecycle as it stands: a changed table is a visible change of this test."""

    def edges(lc: Lifecycle[StrEnum]) -> set[tuple[str, str]]:
        return {(a.value, b.value) for a, nexts in lc.transitions.items() for b in nexts}

    assert edges(RUN) == {
        ("creating", "queued"),
        ("creating", "running"),
        ("creating", "failed"),
        ("creating", "stopped"),
        ("queued", "running"),
        ("queued", "failed"),
        ("queued", "stopped"),
        ("running", "succeeded"),
        ("running", "failed"),
        ("running", "stopped"),
    }
    assert edges(TASK) == {
        ("pending", "queued"),
        ("pending", "upstream_failed"),
        ("pending", "stopped"),
        ("pending", "skipped"),
        ("queued", "running"),
        ("queued", "failed"),
        ("queued", "stopped"),
        ("running", "succeeded"),
        ("running", "failed"),
        ("running", "up_for_retry"),
        ("running", "stopped"),
        ("running", "skipped"),
        ("up_for_retry", "queued"),
        ("up_for_retry", "failed"),
        ("up_for_retry", "stopped"),
    }
    assert edges(ATTEMPT) == {("running", "succeeded"), ("running", "failed"), ("running", "stopped")}
    assert edges(RECORD) == {("waiting", "launched"), ("waiting", "expired")}
    assert edges(TEMPLATE) == {
        ("draft", "draft"),
        ("draft", "pending"),
        ("pending", "published"),
        ("pending", "rejected"),
        ("pending", "draft"),
        ("rejected", "draft"),
        ("rejected", "pending"),
    }
    assert edges(ALERT) == {("pending", "sent"), ("pending", "failed")}
    assert (RUN.initial, TASK.initial, ATTEMPT.initial, RECORD.initial, TEMPLATE.initial, ALERT.initial) == (
        RunState.CREATING,
        TaskState.PENDING,
        AttemptState.RUNNING,
        RecordStatus.WAITING,
        TemplateStatus.DRAFT,
        AlertStatus.PENDING,
    )


def test_terminal_states_are_derived_from_the_tables() -> None:
    assert RUN_TERMINAL == {RunState.SUCCEEDED, RunState.FAILED, RunState.STOPPED}
    assert TASK_TERMINAL == {
        TaskState.SUCCEEDED,
        TaskState.FAILED,
        TaskState.UPSTREAM_FAILED,
        TaskState.STOPPED,
        TaskState.SKIPPED,
    }
    assert TASK_UNFINISHED == {TaskState.PENDING, TaskState.QUEUED, TaskState.RUNNING, TaskState.UP_FOR_RETRY}
    assert ATTEMPT.unfinished == {AttemptState.RUNNING}
    assert RECORD.terminal == {RecordStatus.LAUNCHED, RecordStatus.EXPIRED}
    assert TEMPLATE.terminal == {TemplateStatus.PUBLISHED}


@pytest.mark.parametrize(
    "current,target",
    [
        (RunState.SUCCEEDED, RunState.RUNNING),
        (RunState.FAILED, RunState.SUCCEEDED),
        (RunState.STOPPED, RunState.QUEUED),
        (RunState.RUNNING, RunState.QUEUED),
    ],
)
def test_illegal_run_transitions_raise(current: RunState, target: RunState) -> None:
    with pytest.raises(IllegalTransition):
        check_run_transition(current, target)


def test_legal_run_transition_returns_target() -> None:
    assert check_run_transition(RunState.QUEUED, RunState.RUNNING) is RunState.RUNNING


@pytest.mark.parametrize(
    "current,target",
    [
        (TaskState.PENDING, TaskState.RUNNING),
        (TaskState.SUCCEEDED, TaskState.FAILED),
        (TaskState.UPSTREAM_FAILED, TaskState.QUEUED),
        (TaskState.QUEUED, TaskState.SUCCEEDED),
    ],
)
def test_illegal_task_transitions_raise(current: TaskState, target: TaskState) -> None:
    with pytest.raises(IllegalTransition):
        check_task_transition(current, target)


@pytest.mark.parametrize(
    "lifecycle,current,target",
    [
        (ATTEMPT, AttemptState.SUCCEEDED, AttemptState.FAILED),
        (ATTEMPT, AttemptState.STOPPED, AttemptState.RUNNING),
        (RECORD, RecordStatus.EXPIRED, RecordStatus.LAUNCHED),
        (RECORD, RecordStatus.LAUNCHED, RecordStatus.EXPIRED),
        (TEMPLATE, TemplateStatus.PUBLISHED, TemplateStatus.DRAFT),
        (ALERT, AlertStatus.FAILED, AlertStatus.SENT),
    ],
)
def test_illegal_transitions_of_the_other_lifecycles_raise(
    lifecycle: Lifecycle[StrEnum], current: StrEnum, target: StrEnum
) -> None:
    with pytest.raises(IllegalTransition, match=lifecycle.name):
        lifecycle.check(current, target)


def test_only_running_tasks_succeed() -> None:
    assert task_sources(TaskState.SUCCEEDED) == {TaskState.RUNNING}
    assert task_sources(TaskState.UPSTREAM_FAILED) == {TaskState.PENDING}
    assert RECORD.sources(RecordStatus.LAUNCHED) == RECORD.sources(RecordStatus.EXPIRED) == {RecordStatus.WAITING}


# Attributes whose values are lifecycle states: comparing them with a literal bypasses the tables.
STATE_ATTRIBUTES = {"state", "status", "ti_state"}
LIFECYCLE_VALUES = {s.value for lc in LIFECYCLES for s in lc.transitions}


def _literal_state_comparisons(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        named = any(isinstance(s, ast.Attribute) and s.attr in STATE_ATTRIBUTES for s in sides)
        literals = [s.value for s in sides if isinstance(s, ast.Constant) and s.value in LIFECYCLE_VALUES]
        if named and literals:
            found.append(f"{path.relative_to(MYAPP.parent)}:{node.lineno} {literals[0]!r}")
    return found


def test_no_sql_or_state_check_spells_a_state_by_hand() -> None:
    """Guards and checks name states through core/states.py (the enums or the derived guards of
    myapp/db/guards.py), never as bare strings; Kubernetes' own container states are not ours."""
    skip = {MYAPP / "core" / "states.py"}
    paths = [p for p in MYAPP.rglob("*.py") if p not in skip and "k8s" not in p.parts and "migrations" not in p.parts]
    assert [hit for p in sorted(paths) for hit in _literal_state_comparisons(p)] == []
