"""Fan-in in O(own downstream edges): a leaf of a wide fan-out that a join waits for finishes at the
same cost, in statements and in values sent to the database, whatever the width of the fan-out
(issue 14 item 1). Each task counts its upstream tasks still waiting
(`task_instances.upstream_waiting`), one count shared by the tasks with the same upstream tasks, so
a layer task's finish writes one count whatever the width of the next layer (item 2); every
transition keeps the counts true.

No worker: the messages are captured, and each test claims and finishes attempts itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import event, select, update

from myapp.core.states import RunState
from myapp.core.values import AttemptResult
from myapp.db.tables import TaskInstance
from tests.integration.engine_helpers import detail, save, start
from tests.integration.test_attempt_store import claim

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

OK = AttemptResult(succeeded=True, exit_code=0)
FAIL = AttemptResult(succeeded=False, exit_code=1, message="failed on purpose")


@dataclass
class Cost:
    statements: int = 0
    values: int = 0  # bound values, an array or list counted element by element


def _values(params: Any) -> int:
    if isinstance(params, dict):
        return sum(_values(v) for v in params.values())
    if isinstance(params, (list, tuple)):
        return sum(_values(v) for v in params) if params else 0
    return 1


@contextmanager
def measured(services: Any) -> Iterator[Cost]:
    """Count the statements and the bound values sent to the database meanwhile."""
    cost = Cost()

    def count(_conn: Any, _cursor: Any, _statement: str, params: Any, _context: Any, many: bool) -> None:
        cost.statements += 1
        cost.values += _values(params)

    event.listen(services.db.engine, "before_cursor_execute", count)
    try:
        yield cost
    finally:
        event.remove(services.db.engine, "before_cursor_execute", count)


def fan_in(services: Any, name: str, leaves: int) -> int:
    lines = [f"name: {name}", "tasks:", "  - {name: root, image: local, command: ['true']}"]
    lines += [f"  - {{name: leaf{i}, image: local, command: ['true'], depends_on: [root]}}" for i in range(leaves)]
    lines.append(
        f"  - {{name: join, image: local, command: ['true'], depends_on: [{', '.join(f'leaf{i}' for i in range(leaves))}]}}"
    )
    return save(services, "\n".join(lines) + "\n")


def run_leaves(services: Any, sent: list[int], run_id: int, result: AttemptResult = OK) -> list[Cost]:
    """Claim and finish the root, then every leaf one by one; return each leaf finish's cost."""
    root = claim(services, sent.pop())
    assert root is not None
    services.attempts.finish(root.attempt_id, OK, services.clock.now())
    leaves, costs = list(sent), []
    sent.clear()
    for i, ti_id in enumerate(leaves):
        ctx = claim(services, ti_id)
        assert ctx is not None
        with measured(services) as cost:
            services.attempts.finish(ctx.attempt_id, result if i == 0 else OK, services.clock.now())
        costs.append(cost)
        if i < len(leaves) - 1:
            assert sent == [], f"something was queued before the last leaf finished: {sent}"
    return costs


def test_a_leaf_finish_costs_the_same_whatever_the_width_of_the_fan_in(services: Any, sent: list[int]) -> None:
    by_width = {}
    for width in (5, 300):
        run_id = start(services, fan_in(services, f"fan-in-{width}", width))
        costs = run_leaves(services, sent, run_id)
        (join,) = sent
        sent.clear()
        ctx = claim(services, join)
        assert ctx is not None and ctx.task.name == "join"
        services.attempts.finish(ctx.attempt_id, OK, services.clock.now())
        assert detail(services, run_id)["state"] == "succeeded"
        by_width[width] = costs
    narrow, wide = by_width[5], by_width[300]
    # Every leaf but the last leaves the join waiting; the last one queues it.
    assert {(c.statements, c.values) for c in wide[:-1]} == {(c.statements, c.values) for c in narrow[:-1]}, (
        narrow[:-1],
        wide[:3],
    )
    assert (wide[-1].statements, wide[-1].values) == (narrow[-1].statements, narrow[-1].values), (narrow[-1], wide[-1])
    assert max(c.values for c in wide) < 40, wide[-1]


def test_counts_from_before_the_migration_are_counted_again_from_the_states(services: Any, sent: list[int]) -> None:
    run_id = start(services, fan_in(services, "fan-in-unknown", 4))
    with services.db.write() as s:  # as a run created before migration 0004 leaves them
        s.execute(update(TaskInstance).where(TaskInstance.run_id == run_id).values(upstream_waiting=None))
    run_leaves(services, sent, run_id)
    (join,) = sent
    sent.clear()
    ctx = claim(services, join)
    assert ctx is not None and ctx.task.name == "join"
    services.attempts.finish(ctx.attempt_id, OK, services.clock.now())
    assert detail(services, run_id)["state"] == "succeeded"


def waiting_counts(services: Any, run_id: int) -> dict[str, int | None]:
    with services.db.read() as s:
        rows = s.execute(
            select(TaskInstance.task_name, TaskInstance.upstream_waiting).where(TaskInstance.run_id == run_id)
        ).all()
    return {name: count for name, count in rows}


def test_retry_counts_again_what_the_failed_tasks_wait_for(services: Any, sent: list[int]) -> None:
    run_id = start(services, fan_in(services, "fan-in-retry", 3))
    run_leaves(services, sent, run_id, result=FAIL)  # leaf0 fails: the join is upstream_failed
    run = detail(services, run_id)
    assert run["state"] == "failed" and run["by_name"]["join"]["state"] == "upstream_failed"
    assert sent == []
    services.runs.retry_run(run_id, services.clock.now())
    assert waiting_counts(services, run_id)["join"] == 1  # leaf1 and leaf2 succeeded; leaf0 runs again
    (leaf0,) = sent
    sent.clear()
    ctx = claim(services, leaf0)
    assert ctx is not None and ctx.task.name == "leaf0" and ctx.try_number == 2
    services.attempts.finish(ctx.attempt_id, OK, services.clock.now())
    (join,) = sent
    sent.clear()
    ctx = claim(services, join)
    assert ctx is not None
    services.attempts.finish(ctx.attempt_id, OK, services.clock.now())
    assert detail(services, run_id)["state"] == RunState.SUCCEEDED.value


def test_a_debug_run_and_a_copy_start_with_their_own_counts(services: Any, sent: list[int]) -> None:
    pid = fan_in(services, "fan-in-copy", 2)
    debug = start(services, pid, debug_task="join")
    assert waiting_counts(services, debug) == {"join": 0} and len(sent) == 1  # a debug run is its task alone
    sent.clear()
    first = start(services, pid)
    copy = services.runs.copy_run(first, services.clock.now())
    assert waiting_counts(services, copy) == {"root": 0, "leaf0": 1, "leaf1": 1, "join": 2}
    services.runs.stop_run(first, services.clock.now())
    services.runs.stop_run(copy, services.clock.now())
    services.runs.stop_run(debug, services.clock.now())
    sent.clear()


def test_trigger_rules_keep_a_leaf_end_at_the_same_cost_whatever_the_width(services: Any, sent: list[int]) -> None:
    # R13: a failing leaf ends (and so does a succeeding one) at a cost independent of the width,
    # with an all_done join (runs after all) and an all_success join (upstream-failed at the first failure).
    by_width: dict[int, dict[bool, set[tuple[int, int]]]] = {}
    for width in (6, 300):
        leaves = [f"leaf{i}" for i in range(width)]
        lines = [f"name: rules-fan-in-{width}", "tasks:", "  - {name: root, image: local, command: ['true']}"]
        lines += [f"  - {{name: {n}, image: local, command: ['true'], depends_on: [root]}}" for n in leaves]
        lines.append(
            f"  - {{name: join, image: local, command: ['true'], depends_on: [{', '.join(leaves)}], "
            "trigger_rule: all_done}"
        )
        lines.append(f"  - {{name: strict, image: local, command: ['true'], depends_on: [{', '.join(leaves)}]}}")
        run_id = start(services, save(services, "\n".join(lines) + "\n"))
        root = claim(services, sent.pop())
        assert root is not None
        services.attempts.finish(root.attempt_id, OK, services.clock.now())
        ids, costs = list(sent), {True: set(), False: set()}
        sent.clear()
        for i, ti_id in enumerate(ids[:-1]):  # the last leaf queues the join: measured apart below
            ctx = claim(services, ti_id)
            assert ctx is not None
            failing = i % 3 == 1
            with measured(services) as cost:
                services.attempts.finish(ctx.attempt_id, FAIL if failing else OK, services.clock.now())
            if i > 1:  # the first failure settles `strict` (and the first success is the first of its kind)
                costs[failing].add((cost.statements, cost.values))
            assert sent == []
        ctx = claim(services, ids[-1])
        assert ctx is not None
        services.attempts.finish(ctx.attempt_id, OK, services.clock.now())
        assert [claim(services, j).task.name for j in sent] == ["join"]  # type: ignore[union-attr]
        states = {t["name"]: t["state"] for t in detail(services, run_id)["tasks"]}
        assert states["strict"] == "upstream_failed" and states["join"] == "running"
        sent.clear()
        by_width[width] = costs
    assert by_width[6] == by_width[300], by_width
    assert all(len(c) == 1 for c in by_width[300].values()), by_width[300]


def layers(services: Any, name: str, width: int) -> int:
    """Two layers of `width` tasks under a root, each task of the second depending on every one of the first."""
    first = [f"a{i}" for i in range(width)]
    lines = [f"name: {name}", "tasks:", "  - {name: root, image: local, command: ['true']}"]
    lines += [f"  - {{name: {n}, image: local, command: ['true'], depends_on: [root]}}" for n in first]
    lines += [
        f"  - {{name: b{i}, image: local, command: ['true'], depends_on: [{', '.join(first)}]}}" for i in range(width)
    ]
    return save(services, "\n".join(lines) + "\n")


def test_a_layer_task_writes_one_shared_count_whatever_the_width_of_the_next_layer(
    services: Any, sent: list[int]
) -> None:
    # Issue 14 item 2: the tasks of the second layer share one count (kept by b0): a finish in the
    # first layer writes that row alone, at a cost independent of how many tasks wait on it.
    by_width = {}
    for width in (3, 60):
        run_id = start(services, layers(services, f"layers-{width}", width))
        costs = run_leaves(services, sent, run_id)
        assert waiting_counts(services, run_id) == {
            "root": 0,
            "a0": 0,  # the first layer shares a count too (its upstream set is {root})
            **{f"a{i}": 1 for i in range(1, width)},
            "b0": 0,
            **{f"b{i}": width for i in range(1, width)},  # their own counts, never written
        }
        assert len(sent) == width  # the last finish queued the whole second layer
        for ti_id in list(sent):
            sent.remove(ti_id)
            ctx = claim(services, ti_id)
            assert ctx is not None
            services.attempts.finish(ctx.attempt_id, OK, services.clock.now())
        assert detail(services, run_id)["state"] == "succeeded"
        by_width[width] = costs
    narrow, wide = by_width[3], by_width[60]
    assert {(c.statements, c.values) for c in wide[:-1]} == {(c.statements, c.values) for c in narrow[:-1]}, (
        narrow[:-1],
        wide[:3],
    )
    assert max(c.values for c in wide[:-1]) < 45, wide[:3]  # the sharers of the count: one array, one value


def test_a_root_queues_the_tasks_sharing_its_count_at_a_cost_independent_of_their_number(
    services: Any, sent: list[int]
) -> None:
    # The leaves share one count (kept by leaf0): the root's success queues them all with it. On
    # PostgreSQL that is the one-statement success (its sharers' names bound as one array).
    by_width = {}
    for width in (5, 300):
        start(services, fan_in(services, f"root-{width}", width))
        root = claim(services, sent.pop())
        assert root is not None
        with measured(services) as cost:
            services.attempts.finish(root.attempt_id, OK, services.clock.now())
        assert len(sent) == width
        by_width[width] = cost
        for ti_id in list(sent):  # the leaves run; the join is queued by the last one
            sent.remove(ti_id)
            ctx = claim(services, ti_id)
            assert ctx is not None
            services.attempts.finish(ctx.attempt_id, OK, services.clock.now())
        (join,) = sent
        sent.clear()
        ctx = claim(services, join)
        assert ctx is not None and ctx.task.name == "join"
        services.attempts.finish(ctx.attempt_id, OK, services.clock.now())
    assert by_width[5].statements == by_width[300].statements, by_width
    if services.db.engine.dialect.name == "postgresql" and services.settings.sql_fast_paths:
        assert by_width[300].statements == 1 and by_width[5].values == by_width[300].values, by_width
