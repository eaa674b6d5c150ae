"""Trigger rules (docs/rules.md R13): when a pending task runs, is skipped or is upstream-failed.

Pure decisions over a task's rule and what its direct upstream tasks did, two ways:
- `on_upstream_end`, the event path: one upstream just ended (its outcome) and `waiting` upstreams
  are still unfinished. A task is decided by the first event that settles it, so ending a task
  reads only its own downstream tasks and their counts, never a sibling's other upstreams.
- `from_upstream_states`, the recount path (a run's start, an operator retry, the reconciler),
  from the states of all the task's upstream tasks.
Which outcomes settle a task early is chosen so that a pending task whose count reaches 0 needs
no memory of earlier events: every rule is then decided by `at_zero` alone. The two paths agree:
the first upstream end after which the recount decides is the end the event path decides on, with
the same decision (tests/unit/core/test_trigger_rules.py walks every order of ends).

Imports only the state enums.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from myapp.core.states import TASK_UNFINISHED, TaskState


class TriggerRule(StrEnum):
    ALL_SUCCESS = "all_success"  # the default: every upstream succeeded
    ALL_DONE = "all_done"  # every upstream finished, whatever its state
    ONE_FAILED = "one_failed"  # at least one upstream failed (runs at once, without waiting)
    NONE_FAILED = "none_failed"  # every upstream finished, none failed (skipped is fine)
    ALL_SKIPPED = "all_skipped"  # every upstream was skipped


class Outcome(StrEnum):
    """What a finished upstream task means to its downstream tasks."""

    SUCCESS = "success"
    SKIPPED = "skipped"
    FAILED = "failed"  # failed, upstream_failed or stopped


DEFAULT_RULE = TriggerRule.ALL_SUCCESS
QUEUE = TaskState.QUEUED  # the decision "run it"
# Rules that can never run a task without upstream tasks (refused on such a task, R12).
NEED_UPSTREAM = frozenset({TriggerRule.ONE_FAILED, TriggerRule.ALL_SKIPPED})

# R13: what one ended upstream decides at once, per rule (absent: nothing yet, wait for the rest).
_AT_ONCE: dict[TriggerRule, dict[Outcome, TaskState]] = {
    TriggerRule.ALL_SUCCESS: {Outcome.FAILED: TaskState.UPSTREAM_FAILED, Outcome.SKIPPED: TaskState.SKIPPED},
    TriggerRule.ALL_DONE: {},
    TriggerRule.ONE_FAILED: {Outcome.FAILED: QUEUE},
    TriggerRule.NONE_FAILED: {Outcome.FAILED: TaskState.UPSTREAM_FAILED},
    TriggerRule.ALL_SKIPPED: {Outcome.SUCCESS: TaskState.SKIPPED, Outcome.FAILED: TaskState.SKIPPED},
}
# R13: a pending task whose upstream tasks all ended without settling it.
_AT_ZERO: dict[TriggerRule, TaskState] = {
    TriggerRule.ALL_SUCCESS: QUEUE,
    TriggerRule.ALL_DONE: QUEUE,
    TriggerRule.ONE_FAILED: TaskState.SKIPPED,
    TriggerRule.NONE_FAILED: QUEUE,
    TriggerRule.ALL_SKIPPED: QUEUE,
}
# When several ended upstreams could each have settled the task, the recount applies them in
# this order (a failure first, as Airflow does); the event path applies whichever came first.
_PRIORITY = (Outcome.FAILED, Outcome.SKIPPED, Outcome.SUCCESS)


def outcome_of(state: TaskState) -> Outcome | None:
    """Return what a task in `state` means to its downstream tasks; None while it is unfinished."""
    if state in TASK_UNFINISHED:
        return None
    if state is TaskState.SUCCEEDED:
        return Outcome.SUCCESS
    if state is TaskState.SKIPPED:
        return Outcome.SKIPPED
    return Outcome.FAILED


def at_zero(rule: TriggerRule) -> TaskState:
    """Return the decision for a pending task whose upstream tasks all ended without settling it."""
    return _AT_ZERO[rule]


def on_upstream_end(rule: TriggerRule, outcome: Outcome, waiting: int) -> TaskState | None:
    """Return the decision for a pending task after one upstream ended with `outcome`.

    `waiting`: its upstream tasks still unfinished, this one already taken off. QUEUED means run
    it; SKIPPED or UPSTREAM_FAILED end it without running; None means wait for more.
    """
    now = _AT_ONCE[rule].get(outcome)
    if now is not None:
        return now
    return _AT_ZERO[rule] if waiting == 0 else None


def from_upstream_states(rule: TriggerRule, states: Iterable[TaskState]) -> TaskState | None:
    """Return the decision for a pending task from its upstream tasks' states (the recount path)."""
    outcomes = [outcome_of(state) for state in states]
    ended = {o for o in outcomes if o is not None}
    for outcome in _PRIORITY:
        if outcome in ended and outcome in _AT_ONCE[rule]:
            return _AT_ONCE[rule][outcome]
    return _AT_ZERO[rule] if None not in outcomes else None


def parse_rule(text: str) -> TriggerRule | None:
    """Return the rule named `text`, or None when there is no such rule."""
    try:
        return TriggerRule(text)
    except ValueError:
        return None
