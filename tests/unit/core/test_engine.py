"""DAG-run decisions: readiness, failure blocking, retries, outcomes, stop and timeout targets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from myapp.core import engine
from myapp.core.dag import Dag
from myapp.core.engine import TaskView
from myapp.core.states import RunState, TaskState

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DIAMOND = Dag.from_edges("abcd", [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")])
P, Q, R, S, F = TaskState.PENDING, TaskState.QUEUED, TaskState.RUNNING, TaskState.SUCCEEDED, TaskState.FAILED


def views(**states: TaskState) -> dict[str, TaskView]:
    return {name: TaskView(name, state) for name, state in states.items()}


def test_roots_are_ready_first() -> None:
    assert engine.ready_to_queue(DIAMOND, views(a=P, b=P, c=P, d=P), "abcd", NOW) == ["a"]


def test_join_waits_for_every_upstream() -> None:
    assert engine.ready_to_queue(DIAMOND, views(a=S, b=S, c=R, d=P), "d", NOW) == []
    assert engine.ready_to_queue(DIAMOND, views(a=S, b=S, c=S, d=P), "d", NOW) == ["d"]


def test_only_candidates_are_examined() -> None:
    assert engine.ready_to_queue(DIAMOND, views(a=S, b=P, c=P, d=P), ["b"], NOW) == ["b"]


def test_failed_upstream_blocks_pending_descendant() -> None:
    assert engine.settle_pending(DIAMOND, {"a": S, "b": F, "c": S, "d": P}) == {"d": TaskState.UPSTREAM_FAILED}
    assert engine.settle_pending(DIAMOND, {"a": S, "b": R, "c": S, "d": P}) == {}


def test_retry_waits_for_its_delay() -> None:
    later = NOW + timedelta(seconds=30)
    tasks = {"a": TaskView("a", TaskState.UP_FOR_RETRY, 1, 3, later)}
    dag = Dag.from_edges("a", [])
    assert engine.ready_to_queue(dag, tasks, "a", NOW) == []
    assert engine.ready_to_queue(dag, tasks, "a", later) == ["a"]


def test_failed_attempt_retries_while_tries_remain() -> None:
    assert engine.after_failed_attempt(TaskView("a", R, 1, 3), NOW, 0, None)[0] is TaskState.UP_FOR_RETRY
    assert engine.after_failed_attempt(TaskView("a", R, 3, 3), NOW, 0, None)[0] is TaskState.FAILED


def test_no_retry_scheduled_after_the_run_deadline() -> None:
    state, _ = engine.after_failed_attempt(TaskView("a", R, 1, 3), NOW, 60, NOW + timedelta(seconds=10))
    assert state is TaskState.FAILED


def test_run_outcome() -> None:
    assert engine.run_outcome([S, S, TaskState.SKIPPED]) is RunState.SUCCEEDED
    assert engine.run_outcome([S, F, TaskState.UPSTREAM_FAILED]) is RunState.FAILED
    assert engine.run_outcome([S, R]) is None


def test_stop_and_timeout_targets() -> None:
    states = {"a": S, "b": R, "c": P, "d": Q, "e": TaskState.UP_FOR_RETRY}
    assert engine.on_stop(states) == {
        "b": TaskState.STOPPED,
        "c": TaskState.STOPPED,
        "d": TaskState.STOPPED,
        "e": TaskState.STOPPED,
    }
    assert engine.on_run_timeout(states) == {"b": F, "c": TaskState.STOPPED, "d": TaskState.STOPPED, "e": F}


def test_retry_gives_a_fresh_budget_and_keeps_attempt_numbers() -> None:
    tasks = {
        "a": TaskView("a", S, 1, 1),
        "b": TaskView("b", F, 3, 3),
        "c": TaskView("c", TaskState.UPSTREAM_FAILED, 0, 1),
    }
    assert engine.to_retry(tasks, {"a": 0, "b": 2, "c": 0}) == {"b": 6, "c": 1}


def test_dag_cycle_and_order() -> None:
    assert DIAMOND.find_cycle() is None
    assert DIAMOND.topological_order() == ("a", "b", "c", "d")
    cyclic = Dag.from_edges("abc", [("a", "b"), ("b", "c"), ("c", "a")])
    assert cyclic.find_cycle() == ["a", "b", "c", "a"]
    chain = Dag.from_edges([str(i) for i in range(10000)], [(str(i), str(i + 1)) for i in range(9999)])
    assert chain.find_cycle() is None and len(chain.descendants("0")) == 9999


def test_counts_start_at_the_number_of_upstreams_and_follow_the_states() -> None:
    assert engine.initial_waiting(DIAMOND) == {"a": 0, "b": 1, "c": 1, "d": 2}
    states = {"a": S, "b": S, "c": R, "d": P}
    assert engine.count_waiting(DIAMOND, states) == {"a": 0, "b": 0, "c": 0, "d": 1}
    assert engine.count_waiting(DIAMOND, {**states, "c": TaskState.SKIPPED}, ["d"]) == {"d": 0}
    # a failed upstream has ended too: what its end means is the trigger rule's (R13), not the count's
    assert engine.count_waiting(DIAMOND, {**states, "c": F}, ["d"]) == {"d": 0}


def test_a_success_releases_only_its_own_downstream_tasks() -> None:
    assert engine.released_by(DIAMOND, "a") == ("b", "c")
    assert engine.released_by(DIAMOND, "b") == ("d",)
    assert engine.released_by(DIAMOND, "d") == ()


def test_ready_by_count_is_the_state_rule_with_the_count_given() -> None:
    later = NOW + timedelta(seconds=30)
    tasks = [
        TaskView("p0", P, waiting=0),
        TaskView("p1", P, waiting=1),
        TaskView("unknown", P),
        TaskView("retry_due", TaskState.UP_FOR_RETRY, 1, 3, NOW),
        TaskView("retry_later", TaskState.UP_FOR_RETRY, 1, 3, later),
        TaskView("running", R, waiting=0),
    ]
    assert engine.ready_by_count(tasks, NOW) == ["p0", "retry_due"]


def test_both_ways_of_counting_agree_on_every_state_of_a_diamond() -> None:
    import itertools

    for combo in itertools.product(list(TaskState), repeat=3):
        states = dict(zip("abc", combo, strict=True)) | {"d": P}
        if engine.settle_pending(DIAMOND, states).get("d", TaskState.QUEUED) is not TaskState.QUEUED:
            continue  # the upstream end that settled d (R13) ended d too: d is not pending there
        by_state = engine.ready_to_queue(DIAMOND, views(**states), "d", NOW)
        counted = engine.ready_by_count(
            [TaskView("d", P, waiting=engine.count_waiting(DIAMOND, states, ["d"])["d"])], NOW
        )
        assert by_state == counted, states


def test_a_new_run_queues_what_ready_to_queue_picks_among_all_pending_tasks() -> None:
    fan_in = Dag.from_edges(["r", "x", "y", "j", "solo"], [("r", "x"), ("r", "y"), ("x", "j"), ("y", "j")])
    for dag in (DIAMOND, fan_in, Dag.from_edges("a", [])):
        pending = {name: TaskView(name, P) for name in dag.names}
        assert engine.ready_at_start(dag) == set(engine.ready_to_queue(dag, pending, dag.names, NOW))


def test_what_a_success_does_to_each_released_task_is_known_before_it_is_written() -> None:
    from myapp.core.trigger_rules import TriggerRule

    # each of b..e has upstream tasks of its own besides a: four counts, one per task
    dag = Dag.from_edges(
        "abcdexyz", [("a", "b"), ("a", "c"), ("x", "c"), ("a", "d"), ("y", "d"), ("a", "e"), ("z", "e")]
    )
    rules = {"c": TriggerRule.ONE_FAILED, "d": TriggerRule.ALL_DONE, "e": TriggerRule.ALL_SKIPPED}
    plan = engine.success_release(dag, "a", rules)
    assert plan.released == ("b", "c", "d", "e")
    assert plan.queue == ("b", "d")  # one_failed and all_skipped settle otherwise (skipped): not queued
    assert set(plan.wait) >= {"b", "c", "d"}  # none of these decides on a success while others wait
    assert engine.success_release(dag, "b") == engine.SuccessRelease((), (), ())


def test_a_success_takes_one_off_a_shared_count_once_and_queues_its_tasks_together() -> None:
    from myapp.core.trigger_rules import Outcome, TriggerRule, on_upstream_end

    dag = Dag.from_edges("abc", [("a", "b"), ("a", "c")])
    for rule in TriggerRule:
        plan = engine.success_release(dag, "a", {"b": rule, "c": rule})
        waits = on_upstream_end(rule, Outcome.SUCCESS, 1) is None and rule not in {
            TriggerRule.ONE_FAILED  # runs before its upstream tasks all ended: its tasks' states matter
        }
        assert plan == engine.SuccessRelease(
            ("b",), ("b",) if waits else (), ("b",) if waits else (), ("c",) if waits else ()
        ), rule
    # two counts taken off at once: a shared one reaching 0 is left to the transaction
    two = Dag.from_edges("abcde", [("a", "b"), ("a", "c"), ("a", "d"), ("e", "d")])
    assert engine.success_release(two, "a") == engine.SuccessRelease(("b", "d"), ("b", "d"), ("d",))


def test_tasks_with_the_same_upstream_tasks_share_one_count() -> None:
    layers = Dag.from_edges(
        ["a1", "a2", "b1", "b2", "b3", "c1", "c2", "d"],
        [(u, v) for u in ("a1", "a2") for v in ("b1", "b2", "b3")]
        + [(u, v) for u in ("b1", "b2", "b3") for v in ("c1", "c2")]
        + [("a2", "d"), ("a1", "d")],  # the same set as the b's, in another order
    )
    assert layers.counted_by == {
        "a1": "a1",
        "a2": "a2",
        "b1": "b1",
        "b2": "b1",
        "b3": "b1",
        "c1": "c1",
        "c2": "c1",
        "d": "b1",
    }
    assert layers.sharing["b1"] == ("b1", "b2", "b3", "d")
    assert engine.counts_released_by(layers, "a1") == ("b1",)  # one count, not four
    assert engine.counts_released_by(layers, "b2") == ("c1",)
    assert engine.counts_released_by(layers, "c1") == ()
    # the count kept by b1 is each sharing task's own count, from any states
    states = {"a1": S, "a2": R, "b1": P, "b2": P, "b3": P, "c1": P, "c2": P, "d": P}
    counts = engine.count_waiting(layers, states)
    assert all(counts[name] == counts[layers.counted_by[name]] for name in layers.names)


def test_an_end_leaves_a_shared_count_waiting_only_when_it_decides_none_of_its_tasks() -> None:
    from myapp.core.trigger_rules import Outcome, TriggerRule

    at_zero_only = [TriggerRule.ALL_SUCCESS, TriggerRule.NONE_FAILED, TriggerRule.ALL_DONE]
    assert engine.leaves_waiting(at_zero_only, Outcome.SUCCESS, 3)
    assert engine.leaves_waiting([TriggerRule.ALL_DONE], Outcome.FAILED, 1)
    assert engine.leaves_waiting(at_zero_only, None, 1)
    assert not engine.leaves_waiting(at_zero_only, Outcome.SUCCESS, 0)  # the count reached 0: decide
    assert not engine.leaves_waiting([TriggerRule.ALL_SUCCESS], Outcome.FAILED, 2)  # upstream_failed at once
    assert not engine.leaves_waiting([TriggerRule.NONE_FAILED], Outcome.FAILED, 2)
    assert not engine.leaves_waiting([TriggerRule.ALL_SUCCESS], Outcome.SKIPPED, 2)  # skipped at once
    assert not engine.leaves_waiting([TriggerRule.ALL_DONE, TriggerRule.ONE_FAILED], Outcome.SUCCESS, 2)
    assert not engine.leaves_waiting([TriggerRule.ALL_SKIPPED], Outcome.SUCCESS, 2)
