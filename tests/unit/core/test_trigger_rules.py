"""Trigger rules (docs/rules.md R13): the table, the event path against the recount, cascades, outcomes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from myapp.core import engine
from myapp.core.dag import Dag
from myapp.core.engine import TaskView
from myapp.core.states import RunState, TaskState
from myapp.core.trigger_rules import (
    QUEUE,
    Outcome,
    TriggerRule,
    at_zero,
    from_upstream_states,
    on_upstream_end,
    outcome_of,
    parse_rule,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
P, R, S, F = TaskState.PENDING, TaskState.RUNNING, TaskState.SUCCEEDED, TaskState.FAILED
SK, UF, ST = TaskState.SKIPPED, TaskState.UPSTREAM_FAILED, TaskState.STOPPED
A = TriggerRule
OUTCOME_STATE = {Outcome.SUCCESS: S, Outcome.SKIPPED: SK, Outcome.FAILED: F}

# The table of docs/rules.md R13: (rule, upstream states) -> decision; None = wait.
TABLE = [
    (A.ALL_SUCCESS, [S, S], QUEUE),
    (A.ALL_SUCCESS, [S, R], None),
    (A.ALL_SUCCESS, [F, R], UF),
    (A.ALL_SUCCESS, [SK, R], SK),
    (A.ALL_SUCCESS, [UF, S], UF),
    (A.ALL_SUCCESS, [ST, S], UF),
    (A.ALL_DONE, [S, R], None),
    (A.ALL_DONE, [F, SK], QUEUE),
    (A.ALL_DONE, [UF, S], QUEUE),
    (A.ONE_FAILED, [F, R], QUEUE),
    (A.ONE_FAILED, [UF, R], QUEUE),
    (A.ONE_FAILED, [S, R], None),
    (A.ONE_FAILED, [S, SK], SK),
    (A.NONE_FAILED, [S, SK], QUEUE),
    (A.NONE_FAILED, [SK, R], None),
    (A.NONE_FAILED, [F, R], UF),
    (A.ALL_SKIPPED, [SK, SK], QUEUE),
    (A.ALL_SKIPPED, [SK, R], None),
    (A.ALL_SKIPPED, [S, R], SK),
    (A.ALL_SKIPPED, [F, R], SK),
]


@pytest.mark.parametrize(("rule", "ups", "expected"), TABLE)
def test_the_table_of_rules(rule: TriggerRule, ups: list[TaskState], expected: TaskState | None) -> None:
    assert from_upstream_states(rule, ups) is expected


def test_the_event_path_decides_where_the_recount_first_does() -> None:
    # Every rule, every order of 3 upstream ends: the first prefix the recount decides on is the
    # event at which the event path decides, with the same decision; before it, both wait.
    for rule, ends in itertools.product(TriggerRule, itertools.product(Outcome, repeat=3)):
        states = [R, R, R]
        for i, outcome in enumerate(ends):
            states[i] = OUTCOME_STATE[outcome]
            by_event = on_upstream_end(rule, outcome, waiting=2 - i)
            assert by_event is from_upstream_states(rule, states), (rule, ends, i)
            if by_event is not None:
                break


def test_a_failure_wins_over_a_skip_in_the_recount() -> None:
    assert from_upstream_states(A.ALL_SUCCESS, [SK, F]) is UF


def test_outcomes_and_names() -> None:
    assert [outcome_of(s) for s in (S, SK, F, UF, ST, R, P)] == [
        Outcome.SUCCESS,
        Outcome.SKIPPED,
        Outcome.FAILED,
        Outcome.FAILED,
        Outcome.FAILED,
        None,
        None,
    ]
    assert parse_rule("one_failed") is A.ONE_FAILED and parse_rule("one_success") is None
    assert at_zero(A.ONE_FAILED) is SK and at_zero(A.ALL_DONE) is QUEUE


def test_settle_pending_cascades_skips_and_failures_in_one_pass() -> None:
    # a -> b -> c -> d, with cleanup (all_done) after c, and e (one_failed) after a.
    dag = Dag.from_edges("abcdxe", [("a", "b"), ("b", "c"), ("c", "d"), ("c", "x"), ("a", "e")])
    rules = {"x": A.ALL_DONE, "e": A.ONE_FAILED}
    decided = engine.settle_pending(dag, {"a": F, "b": P, "c": P, "d": P, "x": P, "e": P}, rules)
    assert decided == {"b": UF, "c": UF, "d": UF, "x": QUEUE, "e": QUEUE}
    decided = engine.settle_pending(dag, {"a": SK, "b": P, "c": P, "d": P, "x": P, "e": P}, rules)
    assert decided == {"b": SK, "c": SK, "d": SK, "x": QUEUE, "e": SK}


def test_on_release_decides_released_tasks_from_their_counts() -> None:
    tasks = [
        TaskView("join", P, waiting=3),
        TaskView("cleanup", P, waiting=0),
        TaskView("alarm", P, waiting=2),
        TaskView("done", S, waiting=0),
    ]
    rules = {"cleanup": A.ALL_DONE, "alarm": A.ONE_FAILED}
    assert engine.on_release(tasks, Outcome.FAILED, NOW, rules) == {"join": UF, "cleanup": QUEUE, "alarm": QUEUE}
    assert engine.on_release(tasks, Outcome.SUCCESS, NOW, rules) == {"cleanup": QUEUE}
    assert engine.on_release([TaskView("alarm", P, waiting=0)], Outcome.SUCCESS, NOW, rules) == {"alarm": SK}


def test_ready_to_queue_follows_the_rules() -> None:
    dag = Dag.from_edges("abc", [("a", "c"), ("b", "c")])
    tasks = {"a": TaskView("a", F), "b": TaskView("b", S), "c": TaskView("c", P)}
    assert engine.ready_to_queue(dag, tasks, "c", NOW) == []
    assert engine.ready_to_queue(dag, tasks, "c", NOW, {"c": A.ALL_DONE}) == ["c"]
    assert engine.ready_to_queue(dag, tasks, "c", NOW, {"c": A.NONE_FAILED}) == []


def test_the_run_outcome_is_read_from_the_leaves() -> None:
    dag = Dag.from_edges("abc", [("a", "b"), ("a", "c")])
    assert dag.leaves() == ("b", "c")
    # a failed, its all_done cleanup c succeeded, b was upstream-failed: b fails the run.
    assert engine.run_outcome([UF, S]) is RunState.FAILED
    # the only leaf is a cleanup that succeeded after a failure: the run succeeded (Airflow's rule).
    assert engine.run_outcome([S]) is RunState.SUCCEEDED
    assert engine.run_outcome([SK, S]) is RunState.SUCCEEDED
    assert engine.run_outcome([SK, R]) is None
