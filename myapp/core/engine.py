"""DAG-run decisions (docs/rules.md P4 and R10) as pure functions of task states and `now`.

The run store loads the part of a run a decision needs, calls these, and applies the result in
one transaction. Nothing here touches a database, a queue or a clock.

Readiness is counted, not searched: every task has `waiting`, the number of its direct upstream
tasks that have not finished yet (`count_waiting` from the states). Tasks with the same set of
upstream tasks share one count, kept by the first of them (`Dag.counted_by`); a task that ends, in
any state, takes one off each count its downstream tasks share (`counts_released_by`). What the
ended task's outcome and the remaining count decide for each pending downstream task is its
trigger rule's (R13, myapp/core/trigger_rules.py): run, skip, upstream-failed or wait. So finishing
a task reads its own downstream tasks only, never a sibling's other upstreams (a join after a
1,000-wide fan-out costs each leaf one decrement, not 1,000 reads, whatever the rule), and writes
one count per distinct upstream set it feeds (a task of a 100-wide layer under another: 1, not 100).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from myapp.core.dag import Dag
from myapp.core.states import (
    TASK_DONE_OK,
    TASK_RETRYABLE,
    TASK_UNFINISHED,
    RunState,
    TaskState,
)
from myapp.core.trigger_rules import (
    DEFAULT_RULE,
    QUEUE,
    Outcome,
    TriggerRule,
    at_zero,
    from_upstream_states,
    on_upstream_end,
)

Rules = Mapping[str, TriggerRule]  # task name -> its trigger rule; absent: the default (all_success)


@dataclass(frozen=True)
class TaskView:
    """What the engine needs to know of one task instance."""

    name: str
    state: TaskState
    try_number: int = 0
    max_tries: int = 1
    next_try_at: datetime | None = None
    waiting: int | None = None  # direct upstream tasks not finished yet; None: not known (recount)


def count_waiting(dag: Dag, states: Mapping[str, TaskState], names: Iterable[str] | None = None) -> dict[str, int]:
    """Return, for each of `names` (default: every task), how many direct upstreams have not finished.

    `states` must hold those tasks' upstreams.
    """
    return {
        name: sum(1 for up in dag.upstream.get(name, ()) if states[up] in TASK_UNFINISHED)
        for name in (dag.names if names is None else names)
    }


def initial_waiting(dag: Dag) -> dict[str, int]:
    """Return each task's count when its run is created: every upstream still waits."""
    return {name: len(dag.upstream.get(name, ())) for name in dag.names}


def ready_at_start(dag: Dag) -> frozenset[str]:
    """Return the tasks a new run queues as it starts: all are pending, so those whose count is 0.

    Every rule runs a task without upstream tasks (validation refuses the rules that could not, R13).
    """
    return frozenset(name for name, waiting in initial_waiting(dag).items() if waiting == 0)


def released_by(dag: Dag, ended: str) -> tuple[str, ...]:
    """Return the tasks the end of `ended` releases (its direct downstream tasks)."""
    return dag.downstream.get(ended, ())


def counts_released_by(dag: Dag, ended: str) -> tuple[str, ...]:
    """Return the counting tasks (`Dag.counted_by`) whose count the end of `ended` takes one off:
    one per distinct upstream set among its downstream tasks, in declaration order."""
    return tuple(dict.fromkeys(dag.counted_by[name] for name in dag.downstream.get(ended, ())))


# Rules under which a task never runs before all its upstream tasks ended (R13: an upstream's end
# alone only skips or upstream-fails it): while its count is above 0 such a task is pending or
# ended, never queued, running or up for retry.
_RUN_ONLY_AT_ZERO = frozenset({TriggerRule.ALL_SUCCESS, TriggerRule.NONE_FAILED, TriggerRule.ALL_DONE})


def leaves_waiting(rules: Iterable[TriggerRule], outcome: Outcome | None, waiting: int) -> bool:
    """Return True when an upstream end (`outcome`; None: none) that leaves a shared count at
    `waiting` decides nothing for any task sharing it, whatever their states: every rule runs
    only at zero and none is settled by this outcome. The store then reads none of those tasks."""
    if waiting <= 0:
        return False
    return all(
        rule in _RUN_ONLY_AT_ZERO and (outcome is None or on_upstream_end(rule, outcome, waiting) is None)
        for rule in rules
    )


def is_ready(view: TaskView, now: datetime, rule: TriggerRule = DEFAULT_RULE) -> bool:
    """Return True when a task should be queued now.

    Pending: no upstream left unfinished and its rule runs it then (`at_zero`). Up for retry:
    its delay has passed.
    """
    if view.state is TaskState.PENDING:
        return view.waiting == 0 and at_zero(rule) is QUEUE
    return view.state is TaskState.UP_FOR_RETRY and (view.next_try_at is None or view.next_try_at <= now)


def ready_by_count(tasks: Iterable[TaskView], now: datetime, rules: Rules | None = None) -> list[str]:
    """Return the names of the tasks that are ready by their counts (`is_ready`), in the given order."""
    return [view.name for view in tasks if is_ready(view, now, (rules or {}).get(view.name, DEFAULT_RULE))]


def on_release(
    tasks: Iterable[TaskView], outcome: Outcome | None, now: datetime, rules: Rules | None = None
) -> dict[str, TaskState]:
    """Return what the end of one upstream task (with `outcome`) decides for each released task.

    `tasks` carry their counts with that end already taken off. QUEUED for each to run now (a
    task up for retry whose delay passed, too), SKIPPED or UPSTREAM_FAILED for each it settles
    without a run (R13); tasks still waiting are absent. `outcome` None: no upstream ended (a
    retry came due), so only the counts decide.
    """
    decided: dict[str, TaskState] = {}
    for view in tasks:
        rule = (rules or {}).get(view.name, DEFAULT_RULE)
        if view.state is TaskState.PENDING and view.waiting is not None:
            target = (
                at_zero(rule)
                if outcome is None and view.waiting == 0
                else (None if outcome is None else on_upstream_end(rule, outcome, view.waiting))
            )
            if target is not None:
                decided[view.name] = target
        elif is_ready(view, now, rule):
            decided[view.name] = QUEUE
    return decided


def settle_pending(dag: Dag, states: Mapping[str, TaskState], rules: Rules | None = None) -> dict[str, TaskState]:
    """Return the decision for every pending task of a run from all its states (the recount path).

    Goes in topological order, so a task skipped or upstream-failed here counts as ended for its
    downstream tasks (R13). QUEUED: run it now; absent: it waits.
    """
    now_states = dict(states)
    decided: dict[str, TaskState] = {}
    for name in dag.topological_order():
        if now_states.get(name) is not TaskState.PENDING:
            continue
        target = from_upstream_states(
            (rules or {}).get(name, DEFAULT_RULE), (now_states[up] for up in dag.upstream.get(name, ()))
        )
        if target is not None:
            decided[name] = target
            if target is not QUEUE:
                now_states[name] = target
    return decided


def ready_to_queue(
    dag: Dag, tasks: Mapping[str, TaskView], candidates: Iterable[str], now: datetime, rules: Rules | None = None
) -> list[str]:
    """Return the candidates that should be queued now, in DAG declaration order, counting from the states.

    The same rule as `ready_by_count` (a pending task runs when its trigger rule says so, R13; a
    task up for retry when its delay has passed), with each count taken from `tasks`, which must
    hold the candidates and their upstreams.
    """
    wanted = set(candidates)
    names = [name for name in dag.names if name in wanted and name in tasks]
    settled = settle_pending(dag, {name: view.state for name, view in tasks.items()}, rules)
    return [
        name
        for name in names
        if settled.get(name) is QUEUE or (tasks[name].state is not TaskState.PENDING and is_ready(tasks[name], now))
    ]


def after_failed_attempt(
    view: TaskView, now: datetime, retry_delay: int, deadline: datetime | None
) -> tuple[TaskState, datetime | None]:
    """Return the task's state after a failed attempt: up for retry while tries remain, else failed.

    No retry is scheduled past the run deadline (D8: no attempt starts after it).
    """
    if view.try_number < view.max_tries:
        next_try = now + timedelta(seconds=retry_delay)
        if deadline is None or next_try < deadline:
            return TaskState.UP_FOR_RETRY, next_try
    return TaskState.FAILED, None


def run_outcome(leaf_states: Iterable[TaskState]) -> RunState | None:
    """Return the run's final state from its leaf tasks' states (R13), once none is unfinished.

    Succeeded when every leaf (a task with no downstream task) succeeded or was skipped, else
    failed. With the default rule a failure reaches every leaf below it as upstream_failed, so this
    is "any task failed"; a failure a trigger rule handled (an all_done or one_failed cleanup leaf
    that succeeded) does not fail the run, as in Airflow.
    """
    seen = list(leaf_states)
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
        name: view.try_number + retries.get(name, 0) + 1 for name, view in tasks.items() if view.state in TASK_RETRYABLE
    }


@dataclass(frozen=True)
class SuccessRelease:
    """What a success of one task does to the counts it takes one off, decided before it is written.

    `released`: the counting tasks of its direct downstream tasks (`counts_released_by`); `wait`:
    those whose tasks a success leaves waiting while others of their upstream tasks are unfinished
    (whatever their states, `leaves_waiting`, for a shared count); `queue`: those, counting for
    themselves only, it queues when it was the last one. A store may apply the success in one
    statement when each counting task is pending and falls in one of the two (the count tells
    which); any other case is decided by `on_release`. A shared count is in `queue` only when it
    is the one count the success takes off and every task sharing it runs at 0: `sharers` are the
    other tasks sharing it, queued with it when they are all pending.
    """

    released: tuple[str, ...]
    wait: tuple[str, ...]
    queue: tuple[str, ...]
    sharers: tuple[str, ...] = ()


def success_release(dag: Dag, ended: str, rules: Rules | None = None) -> SuccessRelease:
    """Return what a success of `ended` does to each count it takes one off (`SuccessRelease`)."""
    released = counts_released_by(dag, ended)
    wait: list[str] = []
    queue: list[str] = []
    sharers: tuple[str, ...] = ()
    for counter in released:
        sharing = dag.sharing[counter]
        kinds = {(rules or {}).get(name, DEFAULT_RULE) for name in sharing}
        if len(sharing) == 1:  # its own count: the count tells whether it waits or is queued
            (rule,) = kinds
            if on_upstream_end(rule, Outcome.SUCCESS, 1) is None:
                wait.append(counter)
            if on_upstream_end(rule, Outcome.SUCCESS, 0) is QUEUE:
                queue.append(counter)
        elif leaves_waiting(kinds, Outcome.SUCCESS, 1):
            wait.append(counter)
            if len(released) == 1 and all(on_upstream_end(rule, Outcome.SUCCESS, 0) is QUEUE for rule in kinds):
                queue.append(counter)
                sharers = sharing[1:]
    return SuccessRelease(released, tuple(wait), tuple(queue), sharers)
