"""Slices (docs/rules.md R15) in the engine: a task fanned out over a list, on every database backend
(SQLite and MariaDB's generic path in the SQLite suite; PostgreSQL's one-statement and generic paths
in the PostgreSQL suite: tests/integration/backends.py).

No worker: the messages are captured, and each test claims and finishes attempts itself, so every
order of events is chosen by the test. The local executor runs slices in test_engine_scenarios-like
tests in tests/integration/test_slices_local.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import select, text

from myapp.core.values import AttemptResult
from myapp.db.tables import TaskInstance
from tests.integration.backends import store_services  # noqa: F401  (the `services` fixture, per backend)
from tests.integration.engine_helpers import detail, save, start
from tests.integration.test_attempt_store import claim
from tests.integration.test_fan_in import measured
from tests.integration.test_scheduler_disable_race import Thread, _wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

FAIL = AttemptResult(succeeded=False, exit_code=1, message="failed on purpose")


def ok(**texts: str) -> AttemptResult:
    return AttemptResult(
        succeeded=True, exit_code=0, outputs={k: {"type": "text", "value": v} for k, v in texts.items()}
    )


def take(sent: list[int]) -> list[int]:
    out = list(sent)
    sent.clear()
    return out


def run_one(services: Any, ti_id: int, result: AttemptResult) -> Any:
    ctx = claim(services, ti_id)
    assert ctx is not None
    services.attempts.finish(ctx.attempt_id, result, services.clock.now())
    return ctx


def sweep(services: Any, name: str, items: str = "{from: make.lrs}", extra: str = "") -> int:
    return save(
        services,
        f"""
        name: {name}
        parameters: [{{name: lrs, default: '[0.1, 0.2, 0.3]'}}]
        tasks:
          - name: make
            image: local
            command: ['true']
            outputs: [{{name: lrs, path: /tmp/lrs, type: text}}]
          - name: train
            image: local
            command: ['echo', '$lr']
            inputs: {{lr: {items}}}
            outputs: [{{name: score, path: /tmp/score, type: text}}]
            slices: {{inputs: [lr]{extra}}}
          - name: best
            image: local
            command: ['echo', '$scores']
            inputs: {{scores: {{from: train.score}}}}
        """,
    )


def states(services: Any, run_id: int) -> dict[str, str]:
    return {t["name"]: t["state"] for t in detail(services, run_id)["tasks"]}


def outputs_of(services: Any, run_id: int, name: str) -> dict[str, Any]:
    with services.db.read() as s:
        return dict(
            s.scalar(select(TaskInstance.outputs).where(TaskInstance.run_id == run_id, TaskInstance.task_name == name))
            or {}
        )


def test_a_sliced_task_runs_one_instance_per_item_and_gathers_outputs_in_order(services: Any, sent: list[int]) -> None:
    run_id = start(services, sweep(services, "slices-basic"))
    run_one(services, take(sent)[0], ok(lrs="[0.1, 0.01, 0.001]"))
    slices = take(sent)
    assert len(slices) == 3
    assert states(services, run_id)["train"] == "running"
    contexts = []
    for ti_id, score in reversed(list(zip(slices, ["a", "b", "c"], strict=True))):  # end in reverse order
        ctx = run_one(services, ti_id, ok(score=score))
        contexts.append(ctx)
        if score != "a":
            assert sent == [], "the join was queued before every slice ended"
    assert sorted(c.task.name for c in contexts) == ["train[0]", "train[1]", "train[2]"]
    by_name = {c.task.name: c for c in contexts}
    assert [b.value for b in by_name["train[1]"].task.inputs] == ["0.01"]
    assert json.loads(outputs_of(services, run_id, "train")["score"]["value"]) == ["a", "b", "c"]
    (best,) = take(sent)
    ctx = run_one(services, best, ok())
    assert ctx.upstream_outputs["train"]["score"]["value"] == '["a", "b", "c"]'
    assert detail(services, run_id)["state"] == "succeeded"


def test_slices_from_a_literal_or_a_parameter_start_with_the_run(services: Any, sent: list[int]) -> None:
    literal = start(services, sweep(services, "slices-literal", items="['x', 'y']"))
    assert {states(services, literal)[f"train[{i}]"] for i in range(2)} == {"queued"}
    param = start(services, sweep(services, "slices-param", items="{from: params.lrs}"), params={"lrs": "[1, 2, 3, 4]"})
    assert sum(1 for n in states(services, param) if n.startswith("train[")) == 4
    for run_id in (literal, param):
        services.runs.stop_run(run_id, services.clock.now())
    assert set(states(services, param).values()) >= {"stopped"}
    take(sent)


def test_parallelism_caps_the_slices_in_flight(services: Any, sent: list[int]) -> None:
    run_id = start(services, sweep(services, "slices-cap", items="[1, 2, 3, 4, 5]", extra=", parallelism: 2"))
    pending = take(sent)
    assert len(pending) == 3  # make, train[0], train[1]
    order = []
    while pending:
        ctx = run_one(services, pending.pop(0), ok(score="s", lrs="[]"))
        order.append(ctx.task.name)
        pending += take(sent)
        in_flight = [n for n, st in states(services, run_id).items() if n.startswith("train[") and st == "queued"]
        assert len(in_flight) <= 2, in_flight
    assert order[-1] == "best" and detail(services, run_id)["state"] == "succeeded"
    assert [n for n in order if n.startswith("train[")] == [f"train[{i}]" for i in range(5)]


def test_a_list_that_is_not_one_fails_the_task_saying_so(services: Any, sent: list[int]) -> None:
    run_id = start(services, sweep(services, "slices-not-a-list"))
    run_one(services, take(sent)[0], ok(lrs="not json"))
    run = detail(services, run_id)
    train = run["by_name"]["train"]
    assert train["state"] == "failed" and "make.lrs" in train["message"] and "not a JSON list" in train["message"]
    assert run["by_name"]["best"]["state"] == "upstream_failed" and run["state"] == "failed"


def test_an_empty_list_succeeds_with_empty_gathered_lists(services: Any, sent: list[int]) -> None:
    run_id = start(services, sweep(services, "slices-empty"))
    run_one(services, take(sent)[0], ok(lrs="[]"))
    assert states(services, run_id)["train"] == "succeeded"
    assert outputs_of(services, run_id, "train")["score"]["value"] == "[]"
    (best,) = take(sent)
    run_one(services, best, ok())
    assert detail(services, run_id)["state"] == "succeeded"


def test_success_ratio_decides_the_task_and_retry_reruns_only_failed_slices(services: Any, sent: list[int]) -> None:
    run_id = start(services, sweep(services, "slices-ratio", items="[1, 2, 3, 4]", extra=", success_ratio: 0.75"))
    ids = take(sent)
    make, slices = ids[0], ids[1:]
    run_one(services, make, ok(lrs="[]"))
    for i, ti in enumerate(slices):
        run_one(services, ti, FAIL if i in (1, 2) else ok(score=str(i)))
    run = detail(services, run_id)
    assert run["by_name"]["train"]["state"] == "failed", run["by_name"]["train"]
    assert "2 of 4 slices succeeded" in run["by_name"]["train"]["message"]
    assert run["state"] == "failed" and sent == []
    services.runs.retry_run(run_id, services.clock.now())
    again = take(sent)
    assert sorted(states(services, run_id)[n] for n in ("train[0]", "train[3]")) == ["succeeded", "succeeded"]
    names = [run_one(services, ti, ok(score="r")).task.name for ti in again]
    assert sorted(names) == ["train[1]", "train[2]"]
    assert json.loads(outputs_of(services, run_id, "train")["score"]["value"]) == ["0", "r", "r", "3"]
    (best,) = take(sent)
    run_one(services, best, ok())
    assert detail(services, run_id)["state"] == "succeeded"


def test_retrying_one_slice_reruns_it_alone_and_gathers_again(services: Any, sent: list[int]) -> None:
    from myapp.core.errors import Conflict, NotFound

    run_id = start(services, sweep(services, "slices-retry-one", items="[1, 2, 3]"))
    ids = take(sent)
    run_one(services, ids[0], ok(lrs="[]"))
    for i, ti in enumerate(ids[1:]):
        run_one(services, ti, FAIL if i in (0, 2) else ok(score=str(i)))
    run = detail(services, run_id)
    assert run["state"] == "failed" and run["by_name"]["best"]["state"] == "upstream_failed"
    now = services.clock.now()
    for name, error, words in [
        ("train[1]", Conflict, "is succeeded"),
        ("train", Conflict, "not a slice"),
        ("train[7]", NotFound, "not found"),
    ]:
        with pytest.raises(error, match=re.escape(words)):
            services.runs.retry_slice(run_id, name, now)
    assert sent == [] and detail(services, run_id)["state"] == "failed"  # a refused retry changes nothing

    services.runs.retry_slice(run_id, "train[2]", now)
    (again,) = take(sent)
    assert states(services, run_id) | {"train[2]": "?"} == {
        "make": "succeeded",
        "train": "running",
        "train[0]": "failed",  # the other failed slice stays as it was
        "train[1]": "succeeded",
        "train[2]": "?",
        "best": "pending",
    }
    assert detail(services, run_id)["state"] == "running"
    assert run_one(services, again, ok(score="r")).task.name == "train[2]"
    assert sent == []
    run = detail(services, run_id)
    assert (
        run["by_name"]["train"]["state"] == "failed" and "2 of 3 slices succeeded" in run["by_name"]["train"]["message"]
    )
    assert [a["try_number"] for a in run["by_name"]["train[2]"]["attempts"]] == [1, 2]
    assert json.loads(outputs_of(services, run_id, "train")["score"]["value"]) == [None, "1", "r"]
    assert run["state"] == "failed" and run["by_name"]["best"]["state"] == "upstream_failed"

    services.runs.retry_slice(run_id, "train[0]", services.clock.now())
    (last,) = take(sent)
    assert run_one(services, last, ok(score="q")).task.name == "train[0]"
    (best,) = take(sent)  # the task succeeded this time: its downstream runs
    run_one(services, best, ok())
    assert json.loads(outputs_of(services, run_id, "train")["score"]["value"]) == ["q", "1", "r"]
    assert detail(services, run_id)["state"] == "succeeded"
    with pytest.raises(Conflict, match="succeeded"):
        services.runs.retry_slice(run_id, "train[0]", services.clock.now())


def test_continue_on_failed_gathers_null_for_failed_slices(services: Any, sent: list[int]) -> None:
    run_id = start(services, sweep(services, "slices-continue", items="[1, 2]", extra=", continue_on_failed: true"))
    for ti in take(sent):
        ctx = claim(services, ti)
        assert ctx is not None
        result = FAIL if ctx.task.name == "train[1]" else ok(score="s", lrs="[]")
        services.attempts.finish(ctx.attempt_id, result, services.clock.now())
    (best,) = take(sent)
    run_one(services, best, ok())
    run = detail(services, run_id)
    assert run["by_name"]["train"]["state"] == "succeeded", run["by_name"]["train"]
    assert json.loads(outputs_of(services, run_id, "train")["score"]["value"]) == ["s", None]
    assert run["state"] == "succeeded"


def test_a_run_retry_leaves_the_failed_slices_of_a_task_that_succeeded(services: Any, sent: list[int]) -> None:
    # continue_on_failed: the task succeeded with a failed slice; the run failed on another task.
    # A retry re-runs that task only: the slice stays failed (pending, it would never run: the run
    # would stay running for ever).
    pid = save(
        services,
        """
        name: slices-retry-kept
        tasks:
          - {name: train, image: local, command: ['true'], inputs: {x: [1, 2]}, slices: {inputs: [x], continue_on_failed: true}}
          - {name: other, image: local, command: ['true']}
        """,
    )
    run_id = start(services, pid)
    for ti in take(sent):
        ctx = claim(services, ti)
        assert ctx is not None
        result = FAIL if ctx.task.name in ("train[1]", "other") else ok()
        services.attempts.finish(ctx.attempt_id, result, services.clock.now())
    assert detail(services, run_id)["state"] == "failed"
    services.runs.retry_run(run_id, services.clock.now())
    assert states(services, run_id) == {
        "train": "succeeded",
        "train[0]": "succeeded",
        "train[1]": "failed",
        "other": "queued",
    }
    (other,) = take(sent)
    run_one(services, other, ok())
    assert detail(services, run_id)["state"] == "succeeded"


def test_a_slice_retries_on_its_own(services: Any, sent: list[int]) -> None:
    pid = save(
        services,
        """
        name: slices-retry
        tasks:
          - {name: train, image: local, command: ['true'], inputs: {x: [1, 2]}, slices: {inputs: [x]}, retries: 1}
        """,
    )
    run_id = start(services, pid)
    first, second = take(sent)
    run_one(services, first, FAIL)
    assert states(services, run_id)["train[0]"] in ("up_for_retry", "queued")
    (again,) = take(sent)
    assert again == first
    ctx = run_one(services, again, ok())
    assert ctx.try_number == 2
    run_one(services, second, ok())
    assert detail(services, run_id)["state"] == "succeeded"


def test_a_slice_finish_costs_the_same_whatever_the_width(services: Any, sent: list[int]) -> None:
    """Issue 15 item 5: a sweep of N slices and a select-best join; ending a slice reads no sibling."""
    by_width: dict[int, list[tuple[int, int]]] = {}
    for width in (5, 100):
        items = json.dumps(list(range(width)))
        run_id = start(services, sweep(services, f"slices-cost-{width}", items=f"'{items}'"))
        ids = take(sent)
        costs = []
        for ti in ids[:-1]:  # the last slice gathers and queues the join: measured apart
            ctx = claim(services, ti)
            assert ctx is not None
            with measured(services) as cost:
                services.attempts.finish(ctx.attempt_id, ok(score="1"), services.clock.now())
            costs.append((cost.statements, cost.values))
        assert sent == []
        run_one(services, ids[-1], ok(score="1"))
        (best,) = take(sent)
        run_one(services, best, ok())
        assert detail(services, run_id)["state"] == "succeeded"
        by_width[width] = costs
    assert set(by_width[100]) == set(by_width[5]), (by_width[5][:3], by_width[100][:3])


def test_slices_are_made_once_whatever_advances_the_run_again(services: Any, sent: list[int]) -> None:
    """A recount (the reconciler, a duplicate message's advance) and a second start find the slices made:
    the sliced task is running, and a second set of rows would break the unique (run, name)."""
    from sqlalchemy import func

    from myapp.db.slice_store import start_sliced

    run_id = start(services, sweep(services, "slices-once", items="[1, 2, 3]", extra=", parallelism: 2"))
    first = take(sent)
    now = services.clock.now()
    for _ in range(2):
        with services.db.write() as s:
            run = services.runs.lock_run(s, run_id)
            again = services.runs.advance_in(s, run, now)
            train = s.scalar(
                select(TaskInstance.id).where(TaskInstance.run_id == run_id, TaskInstance.task_name == "train")
            )
            again += start_sliced(services.runs, s, run, train, "train", now)  # as if a second worker started it
        assert set(again) <= set(first), (again, first)
    with services.db.read() as s:
        count = s.scalar(
            select(func.count())
            .select_from(TaskInstance)
            .where(TaskInstance.run_id == run_id, TaskInstance.slice_of == "train")
        )
    assert count == 3 and states(services, run_id)["train"] == "running"
    assert sum(1 for n, st in states(services, run_id).items() if n.startswith("train[") and st == "queued") == 2
    services.runs.stop_run(run_id, services.clock.now())


def test_a_retry_reads_the_list_again_when_it_was_not_one(services: Any, sent: list[int]) -> None:
    run_id = start(services, sweep(services, "slices-retry-list"))
    run_one(services, take(sent)[0], ok(lrs='{"not": "a list"}'))
    assert states(services, run_id)["train"] == "failed"
    services.runs.retry_run(run_id, services.clock.now())  # make succeeded and keeps its output
    run = detail(services, run_id)
    assert run["by_name"]["train"]["state"] == "failed" and "not a JSON list" in run["by_name"]["train"]["message"]
    assert sent == [] and run["state"] == "failed"


def test_a_run_whose_sliced_root_ends_at_once_ends_as_it_starts(services: Any, sent: list[int]) -> None:
    pid = save(
        services,
        """
        name: slices-at-start
        parameters: [{name: xs, default: '[]'}]
        tasks:
          - {name: train, image: local, command: ['true'], inputs: {x: {from: params.xs}}, slices: {inputs: [x]}}
        """,
    )
    empty = start(services, pid)
    got = detail(services, empty)
    assert got["state"] == "succeeded" and states(services, empty) == {"train": "succeeded"}, (
        got["message"],
        got["tasks"][0]["message"],
    )
    broken = start(services, pid, params={"xs": "oops"})
    run = detail(services, broken)
    assert run["state"] == "failed" and "params.xs" in run["by_name"]["train"]["message"]
    assert sent == []


def test_a_jinja_default_is_rendered_in_the_sandbox_to_the_sliced_list(services: Any, sent: list[int]) -> None:
    jinja = save(
        services,
        """
        name: slices-jinja-default
        parameters:
          - {name: n, default: '3'}
          - {name: xs, default: '{{ [params.n | int, params.n | int + 1, run_id] }}'}
        tasks:
          - {name: train, image: local, command: ['true'], inputs: {x: {from: params.xs}}, slices: {inputs: [x]}}
        """,
    )
    run_id = start(services, jinja, params={"n": "2"})
    assert len(take(sent)) == 3, [(t["name"], t["state"], t["message"]) for t in detail(services, run_id)["tasks"]]
    from sqlalchemy import select

    from myapp.db.tables import TaskInstance

    with services.db.read() as s:
        rows = s.execute(
            select(TaskInstance.task_name, TaskInstance.slice_item).where(
                TaskInstance.run_id == run_id, TaskInstance.slice_of == "train"
            )
        ).all()
    assert sorted((name, item["x"]["value"]) for name, item in rows) == [
        ("train[0]", "2"),  # params.n as given to the run
        ("train[1]", "3"),
        ("train[2]", str(run_id)),  # the run's variables, as at a task's start
    ], rows
    broken = save(
        services,
        """
        name: slices-jinja-broken
        parameters: [{name: xs, default: '{{ 1 // 0 }}'}, {name: ys, default: '{{ cluster_name }}'}]
        tasks:
          - {name: train, image: local, command: ['true'], inputs: {x: {from: params.xs}}, slices: {inputs: [x]}}
          - {name: other, image: local, command: ['true'], inputs: {y: {from: params.ys}}, slices: {inputs: [y]}}
        """,
    )
    run = detail(services, start(services, broken))
    assert run["state"] == "failed" and "does not render: " in run["by_name"]["train"]["message"], run
    assert "ZeroDivisionError" in run["by_name"]["train"]["message"]
    assert "uses cluster_name" in run["by_name"]["other"]["message"]
    assert sent == []


def _slices_left(services: Any, run_id: int, name: str = "train") -> int | None:
    with services.db.read() as s:
        return s.scalar(
            select(TaskInstance.slices_left).where(TaskInstance.run_id == run_id, TaskInstance.task_name == name)
        )


def _lock_waiters(services: Any) -> int:
    """Backends of this test's database waiting for a lock (a row lock: the run's)."""
    with services.db.read() as s:
        return int(
            s.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            )
            or 0
        )


@pytest.mark.parametrize("width", [2, 3])
def test_slices_ending_at_once_end_their_task_exactly_once(services: Any, sent: list[int], width: int) -> None:
    """Every slice of a sliced task ends at the same instant (PostgreSQL's row locks): each one's
    finish waits for the run lock the test holds, then they go one after another. The count of
    slices left is the arbiter: exactly one of them finds itself the last, ends the task (its
    outputs gathered in order) and queues the join once; none is counted twice or lost."""
    if services.db.engine.dialect.name != "postgresql":
        pytest.skip("row-level concurrency: PostgreSQL (SQLite serializes writers; MariaDB takes the generic path)")
    items = json.dumps([f"i{i}" for i in range(width)])
    run_id = start(services, sweep(services, f"slices-at-once-{width}", items=f"'{items}'"))
    claimed = [claim(services, ti) for ti in take(sent)]  # `make` (no upstream here) and the slices
    assert all(ctx is not None for ctx in claimed)
    for ctx in claimed:
        if ctx.task.name == "make":
            services.attempts.finish(ctx.attempt_id, ok(), services.clock.now())
    contexts = sorted((ctx for ctx in claimed if ctx.task.name != "make"), key=lambda ctx: ctx.task.name)
    assert [ctx.task.name for ctx in contexts] == [f"train[{i}]" for i in range(width)]
    now = services.clock.now()
    with services.db.write() as s:
        services.runs.lock_run(s, run_id)  # every finish waits for this lock: they start together
        threads = [
            Thread(lambda ctx=ctx, i=i: services.attempts.finish(ctx.attempt_id, ok(score=f"s{i}"), now))
            for i, ctx in enumerate(contexts)
        ]
        for thread in threads:
            thread.start()
        _wait_for(lambda: _lock_waiters(services) >= width, f"{width} finishes to wait for the run lock")
    for thread in threads:
        thread.outcome()
    assert _slices_left(services, run_id) == 0
    run = detail(services, run_id)
    assert {run["by_name"][f"train[{i}]"]["state"] for i in range(width)} == {"succeeded"}
    assert run["by_name"]["train"]["state"] == "succeeded"
    assert json.loads(outputs_of(services, run_id, "train")["score"]["value"]) == [f"s{i}" for i in range(width)]
    (best,) = take(sent)  # the join, queued once
    run_one(services, best, ok())
    assert detail(services, run_id)["state"] == "succeeded"


def test_a_slice_success_reported_while_its_attempt_is_declared_lost_is_not_counted(
    services: Any, sent: list[int]
) -> None:
    """The reconciler ends a slice's attempt as lost (failed, in a transaction holding the run) while
    the slice's worker reports its success: the success waits for the run, then finds the attempt
    ended and counts nothing (its statement began before the loss committed: it must judge the
    attempt's latest version, not what it saw when it began). The slice stays failed."""
    if services.db.engine.dialect.name != "postgresql":
        pytest.skip("row-level concurrency: PostgreSQL")
    run_id = start(services, sweep(services, "slices-lost-race", items="'[1, 2, 3]'"))
    make, first, *others = take(sent)  # `make` has no downstream task here
    run_one(services, make, ok())
    ctx = claim(services, first)
    assert ctx is not None and ctx.task.name == "train[0]"
    now = services.clock.now()
    lost = AttemptResult(succeeded=False, message="worker w lost: no heartbeat")
    with services.db.write() as s:
        services.attempts.finish_in(s, ctx.attempt_id, lost, now)  # holds the run lock until the commit
        reported = Thread(lambda: services.attempts.finish(ctx.attempt_id, ok(score="late"), now))
        reported.start()
        _wait_for(lambda: _lock_waiters(services) >= 1, "the success to wait for the run lock")
    reported.outcome()
    assert _slices_left(services, run_id) == 2  # counted once, by the loss
    run = detail(services, run_id)
    assert run["by_name"]["train[0]"]["state"] == "failed"
    for ti in others:
        run_one(services, ti, ok(score="1"))
    assert detail(services, run_id)["by_name"]["train"]["state"] == "failed"
    assert _slices_left(services, run_id) == 0


def test_a_slice_is_claimed_and_ended_at_a_leafs_cost(services: Any, sent: list[int]) -> None:
    """A slice's claim returns its item with the claim (every backend: no read after it), and on
    PostgreSQL a slice's success that is not its task's last is one statement, as a leaf's."""
    pid = save(
        services,
        """
        name: slices-vs-leaf
        tasks:
          - {name: solo, image: local, command: ['true']}
          - {name: train, image: local, command: ['true'], inputs: {x: [1, 2, 3]}, slices: {inputs: [x]}}
        """,
    )
    costs: dict[str, tuple[int, int]] = {}
    for measuring in (False, True):  # the first run fills the caches (spec, pipeline name, release plan)
        run_id = start(services, pid)
        left = []
        for ti in take(sent):
            with measured(services) as claimed:
                ctx = claim(services, ti)
            assert ctx is not None
            if ctx.task.name not in ("solo", "train[0]"):
                left.append(ctx)
                continue
            with measured(services) as finished:
                services.attempts.finish(ctx.attempt_id, ok(), services.clock.now())
            if measuring:
                costs[ctx.task.name] = (claimed.statements, finished.statements)
        for ctx in left:
            services.attempts.finish(ctx.attempt_id, ok(), services.clock.now())
        assert detail(services, run_id)["state"] == "succeeded"
    assert costs["train[0]"][0] == costs["solo"][0], costs  # the claims
    if services.attempts._in_one:
        assert costs["train[0]"] == costs["solo"] == (1, 1), costs
