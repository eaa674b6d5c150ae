"""The state machines: allowed transitions, derived terminal sets, guarded changes."""

from __future__ import annotations

import pytest

from myapp.core.errors import IllegalTransition
from myapp.core.states import (
    RUN_TERMINAL,
    TASK_TERMINAL,
    TASK_UNFINISHED,
    RunState,
    TaskState,
    check_run_transition,
    check_task_transition,
    task_sources,
)


def test_terminal_states_are_derived_from_the_tables() -> None:
    assert RUN_TERMINAL == {RunState.SUCCEEDED, RunState.FAILED, RunState.STOPPED}
    assert TASK_TERMINAL == {TaskState.SUCCEEDED, TaskState.FAILED, TaskState.UPSTREAM_FAILED,
                             TaskState.STOPPED, TaskState.SKIPPED}
    assert TASK_UNFINISHED == {TaskState.PENDING, TaskState.QUEUED, TaskState.RUNNING, TaskState.UP_FOR_RETRY}


@pytest.mark.parametrize("current,target", [
    (RunState.SUCCEEDED, RunState.RUNNING), (RunState.FAILED, RunState.SUCCEEDED),
    (RunState.STOPPED, RunState.QUEUED), (RunState.RUNNING, RunState.QUEUED),
])
def test_illegal_run_transitions_raise(current: RunState, target: RunState) -> None:
    with pytest.raises(IllegalTransition):
        check_run_transition(current, target)


def test_legal_run_transition_returns_target() -> None:
    assert check_run_transition(RunState.QUEUED, RunState.RUNNING) is RunState.RUNNING


@pytest.mark.parametrize("current,target", [
    (TaskState.PENDING, TaskState.RUNNING), (TaskState.SUCCEEDED, TaskState.FAILED),
    (TaskState.UPSTREAM_FAILED, TaskState.QUEUED), (TaskState.QUEUED, TaskState.SUCCEEDED),
])
def test_illegal_task_transitions_raise(current: TaskState, target: TaskState) -> None:
    with pytest.raises(IllegalTransition):
        check_task_transition(current, target)


def test_only_running_tasks_succeed() -> None:
    assert task_sources(TaskState.SUCCEEDED) == {TaskState.RUNNING}
    assert task_sources(TaskState.UPSTREAM_FAILED) == {TaskState.PENDING}
