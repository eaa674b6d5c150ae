"""DAG-run decisions (docs/rules.md P4 and R10) as pure functions of task states and `now`.

The run store loads the part of a run a decision needs, calls these, and applies the result in
one transaction. Nothing here touches a database, a queue or a clock.

Readiness is counted, not searched: every task instance carries `waiting`, the number of its
direct upstream tasks that have not succeeded yet (`count_waiting` from the states; a success
takes one off each of its downstream tasks, `released_by`). A pending task is ready when that
count is 0, so finishing a task reads its own downstream tasks only, never a sibling's other
upstreams: a join after a 1,000-wide fan-out costs each leaf one decrement, not 1,000 reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from myapp.core.dag import Dag
from myapp.core.states import (
    TASK_DONE_OK,
    TASK_RETRYABLE,
    TASK_UNFINISHED,
    RunState,
    TaskState,
)

BLOCKING = frozenset({TaskState.FAILED, TaskState.UPSTREAM_FAILED, TaskState.STOPPED})


@dataclass(frozen=True)
class TaskView:
    """What the engine needs to know of one task instance."""

    name: str
    state: TaskState
    try_number: int = 0
    max_tries: int = 1
    next_try_at: datetime | None = None
    waiting: int | None = None  # direct upstream tasks not succeeded yet; None: not known (recount)


def count_waiting(dag: Dag, states: Mapping[str, TaskState], names: Iterable[str] | None = None) -> dict[str, int]:
    """Return, for each of `names` (default: every task), how many direct upstreams have not succeeded.

    `states` must hold those tasks' upstreams. Skipped counts as succeeded (TASK_DONE_OK).
    """
    return {name: sum(1 for up in dag.upstream.get(name, ()) if states[up] not in TASK_DONE_OK)
            for name in (dag.names if names is None else names)}


def initial_waiting(dag: Dag) -> dict[str, int]:
    """Return each task's count when its run is created: every upstream still waits."""
    return {name: len(dag.upstream.get(name, ())) for name in dag.names}


def ready_at_start(dag: Dag) -> frozenset[str]:
    """Return the tasks a new run queues as it starts: all are pending, so those whose count is 0."""
    return frozenset(name for name, waiting in initial_waiting(dag).items() if waiting == 0)


def released_by(dag: Dag, succeeded: str) -> tuple[str, ...]:
    """Return the tasks whose count a success of `succeeded` takes one off (its direct downstream)."""
    return dag.downstream.get(succeeded, ())


def is_ready(view: TaskView, now: datetime) -> bool:
    """Return True when a task should be queued now.

    Pending: no upstream left waiting (`view.waiting == 0`). Up for retry: its delay has passed.
    """
    if view.state is TaskState.PENDING:
        return view.waiting == 0
    return view.state is TaskState.UP_FOR_RETRY and (view.next_try_at is None or view.next_try_at <= now)


def ready_by_count(tasks: Iterable[TaskView], now: datetime) -> list[str]:
    """Return the names of the tasks that are ready by their counts (`is_ready`), in the given order."""
    return [view.name for view in tasks if is_ready(view, now)]


def ready_to_queue(
    dag: Dag, tasks: Mapping[str, TaskView], candidates: Iterable[str], now: datetime
) -> list[str]:
    """Return the candidates that should be queued now, in DAG declaration order, counting from the states.

    The same rule as `ready_by_count` (a pending task is ready when every upstream succeeded or
    was skipped; a task up for retry when its delay has passed), with each count taken from
    `tasks`, which must hold the candidates and their upstreams.
    """
    wanted = set(candidates)
    names = [name for name in dag.names if name in wanted and name in tasks]
    counts = count_waiting(dag, {name: view.state for name, view in tasks.items()},
                           [n for n in names if tasks[n].state is TaskState.PENDING])
    return [name for name in names if is_ready(replace(tasks[name], waiting=counts.get(name, 0)), now)]


def blocked_by_failure(dag: Dag, tasks: Mapping[str, TaskView], candidates: Iterable[str]) -> list[str]:
    """Return pending candidates with an upstream that failed, was stopped or upstream-failed."""
    return [
        name for name in candidates
        if name in tasks and tasks[name].state is TaskState.PENDING
        and any(tasks[up].state in BLOCKING for up in dag.upstream.get(name, ()))
    ]


def after_failed_attempt(view: TaskView, now: datetime, retry_delay: int, deadline: datetime | None) -> tuple[TaskState, datetime | None]:
    """Return the task's state after a failed attempt: up for retry while tries remain, else failed.

    No retry is scheduled past the run deadline (D8: no attempt starts after it).
    """
    if view.try_number < view.max_tries:
        next_try = now + timedelta(seconds=retry_delay)
        if deadline is None or next_try < deadline:
            return TaskState.UP_FOR_RETRY, next_try
    return TaskState.FAILED, None


def run_outcome(states: Iterable[TaskState]) -> RunState | None:
    """Return the run's final state once nothing can run any more, else None."""
    seen = list(states)
    if any(s in TASK_UNFINISHED for s in seen):
        return None
    return RunState.SUCCEEDED if all(s in TASK_DONE_OK for s in seen) else RunState.FAILED


def on_stop(states: Mapping[str, TaskState]) -> dict[str, TaskState]:
    """Return the new state of each unfinished task when a run is stopped (all become stopped)."""
    return {name: TaskState.STOPPED for name, s in states.items() if s in TASK_UNFINISHED}


def on_run_timeout(states: Mapping[str, TaskState]) -> dict[str, TaskState]:
    """Return new task states when the run deadline passes (D8).

    Running attempts are killed and their tasks fail; a task waiting for a retry also fails
    (it has run); tasks that never started become stopped.
    """
    started = {TaskState.RUNNING, TaskState.UP_FOR_RETRY}
    return {
        name: (TaskState.FAILED if s in started else TaskState.STOPPED)
        for name, s in states.items()
        if s in TASK_UNFINISHED
    }


def to_retry(tasks: Mapping[str, TaskView], retries: Mapping[str, int]) -> dict[str, int]:
    """Return {task: new max_tries} for the tasks an operator retry sends back to pending.

    Attempt numbers continue; each re-run task gets a fresh budget of automatic retries (D11).
    """
    return {
        name: view.try_number + retries.get(name, 0) + 1
        for name, view in tasks.items()
        if view.state in TASK_RETRYABLE
    }
