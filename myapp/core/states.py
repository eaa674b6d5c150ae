"""Run and task-instance state machines: one enum and one transition table each.

`transition_*` functions are the only way to change a state; terminal states are derived from
the tables. Operator actions that reopen a finished run (retry) or overwrite its outcome (mark)
have their own small tables so the engine tables keep their terminal states terminal.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from myapp.core.errors import IllegalTransition


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"


class TaskState(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    UP_FOR_RETRY = "up_for_retry"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UPSTREAM_FAILED = "upstream_failed"
    STOPPED = "stopped"
    SKIPPED = "skipped"


class Trigger(StrEnum):
    MANUAL = "manual"
    CRON = "cron"
    DEBUG = "debug"


RUN_TRANSITIONS: Mapping[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.RUNNING, RunState.FAILED, RunState.STOPPED}),
    RunState.RUNNING: frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.STOPPED}),
    RunState.SUCCEEDED: frozenset(),
    RunState.FAILED: frozenset(),
    RunState.STOPPED: frozenset(),
}
RUN_TERMINAL = frozenset(s for s, nexts in RUN_TRANSITIONS.items() if not nexts)
RUN_ACTIVE = frozenset(RunState) - RUN_TERMINAL

# Operator actions on finished runs (PRODUCT §4): retry reopens, mark overwrites the outcome.
RUN_RETRYABLE = frozenset({RunState.FAILED, RunState.STOPPED})
RUN_MARKABLE = RUN_TERMINAL
RUN_MARK_TARGETS = frozenset({RunState.SUCCEEDED, RunState.FAILED})

TASK_TRANSITIONS: Mapping[TaskState, frozenset[TaskState]] = {
    TaskState.PENDING: frozenset(
        {TaskState.QUEUED, TaskState.UPSTREAM_FAILED, TaskState.STOPPED, TaskState.SKIPPED}
    ),
    TaskState.QUEUED: frozenset({TaskState.RUNNING, TaskState.FAILED, TaskState.STOPPED}),
    TaskState.RUNNING: frozenset(
        {TaskState.SUCCEEDED, TaskState.FAILED, TaskState.UP_FOR_RETRY, TaskState.STOPPED}
    ),
    TaskState.UP_FOR_RETRY: frozenset({TaskState.QUEUED, TaskState.FAILED, TaskState.STOPPED}),
    TaskState.SUCCEEDED: frozenset(),
    TaskState.FAILED: frozenset(),
    TaskState.UPSTREAM_FAILED: frozenset(),
    TaskState.STOPPED: frozenset(),
    TaskState.SKIPPED: frozenset(),
}
TASK_TERMINAL = frozenset(s for s, nexts in TASK_TRANSITIONS.items() if not nexts)
TASK_UNFINISHED = frozenset(TaskState) - TASK_TERMINAL
TASK_DONE_OK = frozenset({TaskState.SUCCEEDED, TaskState.SKIPPED})
# Retry (R10): these go back to pending in the same run; succeeded ones keep their outputs.
TASK_RETRYABLE = frozenset({TaskState.FAILED, TaskState.UPSTREAM_FAILED, TaskState.STOPPED})


def check_run_transition(current: RunState, target: RunState) -> RunState:
    """Return `target` if the run table allows current -> target, else raise IllegalTransition."""
    if target not in RUN_TRANSITIONS[current]:
        raise IllegalTransition("run", current, target)
    return target


def check_task_transition(current: TaskState, target: TaskState) -> TaskState:
    """Return `target` if the task table allows current -> target, else raise IllegalTransition."""
    if target not in TASK_TRANSITIONS[current]:
        raise IllegalTransition("task", current, target)
    return target


def run_sources(target: RunState) -> frozenset[RunState]:
    """Return the run states from which the engine may move to `target` (for guarded UPDATEs)."""
    return frozenset(s for s, nexts in RUN_TRANSITIONS.items() if target in nexts)


def task_sources(target: TaskState) -> frozenset[TaskState]:
    """Return the task states from which the engine may move to `target` (for guarded UPDATEs)."""
    return frozenset(s for s, nexts in TASK_TRANSITIONS.items() if target in nexts)
