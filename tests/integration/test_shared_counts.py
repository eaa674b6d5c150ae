"""Shared counts (docs/rules.md R13, "The engine keeps its fan-in cost"): tasks with the same upstream
tasks wait on one count, kept by the first of them, and each upstream end writes that one row.

Every backend of tests/integration/backends.py, a fixed clock, dispatch captured (the helpers of
test_engine_rules.py and test_trigger_rules.py): each test claims and finishes attempts itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from myapp.db.migrate import current, upgrade
from myapp.db.tables import Run, TaskInstance
from tests.conftest import _copy_database, _drop_database, make_settings
from tests.integration.backends import store_services  # noqa: F401  (the `services` fixture, per backend)
from tests.integration.test_engine_rules import FAIL, OK, T0, names, run_of, run_task, states
from tests.integration.test_run_ids import _downgrade, _upgrade
from tests.integration.test_trigger_rules import pipeline, task

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def counts(services: Any, run_id: int) -> dict[str, int | None]:
    with services.db.read() as s:
        return dict(
            s.execute(
                select(TaskInstance.task_name, TaskInstance.upstream_waiting).where(TaskInstance.run_id == run_id)
            ).all()
        )


# Two tasks, a1 and a2, feed five tasks of five rules, which share one count (kept by b_ok, the first).
MIXED = pipeline(
    "mixed",
    task("a1"),
    task("a2"),
    task("b_ok", "a1", "a2"),
    task("b_done", "a2", "a1", rule="all_done"),  # the same set, in another order
    task("b_none", "a1", "a2", rule="none_failed"),
    task("b_alarm", "a1", "a2", rule="one_failed"),
    task("b_skip", "a1", "a2", rule="all_skipped"),
    task("c", "b_ok"),
)


def test_an_end_writes_the_shared_count_once_and_each_task_decides_by_its_rule(services: Any, sent: list[int]) -> None:
    run_id = run_of(services, MIXED)
    assert names(services, sent) == ["a1", "a2"]
    run_task(services, sent, run_id, "a1", OK, T0)
    after = counts(services, run_id)
    assert after["b_ok"] == 1  # the shared count
    assert [after[n] for n in ("b_done", "b_none", "b_alarm", "b_skip")] == [2, 2, 2, 2]  # not written
    assert states(services, run_id)[1]["b_skip"] == "skipped"  # all_skipped: a success settles it at once
    assert names(services, sent) == ["a2"]  # nothing more queued
    run_task(services, sent, run_id, "a2", OK, T0)
    assert names(services, sent) == ["b_done", "b_none", "b_ok"]
    assert states(services, run_id)[1]["b_alarm"] == "skipped"  # one_failed: all ended, none failed
    for name in ("b_ok", "b_done", "b_none"):
        run_task(services, sent, run_id, name, OK, T0)
    run_task(services, sent, run_id, "c", OK, T0)
    assert states(services, run_id) == (
        "succeeded",
        {
            "a1": "succeeded",
            "a2": "succeeded",
            "b_ok": "succeeded",
            "b_done": "succeeded",
            "b_none": "succeeded",
            "b_alarm": "skipped",
            "b_skip": "skipped",
            "c": "succeeded",
        },
    )


def test_a_failure_settles_the_sharing_tasks_by_their_rules_and_propagates(services: Any, sent: list[int]) -> None:
    run_id = run_of(services, MIXED)
    run_task(services, sent, run_id, "a1", FAIL, T0)
    assert names(services, sent) == ["a2", "b_alarm"]  # one_failed runs at the first failure
    now = states(services, run_id)[1]
    assert {n: now[n] for n in ("b_ok", "b_done", "b_none", "b_skip", "c")} == {
        "b_ok": "upstream_failed",
        "b_done": "pending",  # all_done waits for a2
        "b_none": "upstream_failed",
        "b_skip": "skipped",
        "c": "upstream_failed",  # below b_ok, in turn
    }
    run_task(services, sent, run_id, "b_alarm", OK, T0)
    run_task(services, sent, run_id, "a2", OK, T0)
    assert names(services, sent) == ["b_done"]
    run_task(services, sent, run_id, "b_done", OK, T0)
    assert states(services, run_id)[0] == "failed"  # the leaf c was upstream-failed


def test_a_retry_counts_again_the_count_its_first_task_keeps_whatever_its_state(services: Any, sent: list[int]) -> None:
    # b_first (all_done) keeps the count b_then shares; it succeeds after a1's failure and keeps
    # that end when the run is retried, while b_then goes back to pending and waits on its count.
    run_id = run_of(
        services,
        pipeline(
            "kept", task("a1"), task("a2"), task("b_first", "a1", "a2", rule="all_done"), task("b_then", "a1", "a2")
        ),
    )
    run_task(services, sent, run_id, "a1", FAIL, T0)
    run_task(services, sent, run_id, "a2", OK, T0)
    assert names(services, sent) == ["b_first"]
    run_task(services, sent, run_id, "b_first", OK, T0)
    assert states(services, run_id) == (
        "failed",
        {"a1": "failed", "a2": "succeeded", "b_first": "succeeded", "b_then": "upstream_failed"},
    )
    services.runs.retry_run(run_id, T0)
    assert names(services, sent) == ["a1"]
    assert counts(services, run_id)["b_first"] == 1  # a1 is unfinished again
    run_task(services, sent, run_id, "a1", OK, T0)
    assert names(services, sent) == ["b_then"]
    run_task(services, sent, run_id, "b_then", OK, T0)
    assert states(services, run_id)[0] == "succeeded"
    assert states(services, run_id)[1]["b_first"] == "succeeded"  # not run again


def test_layers_queue_together_after_a_retry_from_failure(services: Any, sent: list[int]) -> None:
    layer_b = [task(f"b{i}", "a1", "a2", "a3") for i in range(4)]
    run_id = run_of(
        services,
        pipeline("layers", task("a1"), task("a2"), task("a3"), *layer_b, task("c", *(f"b{i}" for i in range(4)))),
    )
    run_task(services, sent, run_id, "a1", OK, T0)
    run_task(services, sent, run_id, "a2", FAIL, T0)
    run_task(services, sent, run_id, "a3", OK, T0)
    assert states(services, run_id)[0] == "failed"
    assert {states(services, run_id)[1][f"b{i}"] for i in range(4)} == {"upstream_failed"}
    services.runs.retry_run(run_id, T0)
    assert names(services, sent) == ["a2"]
    run_task(services, sent, run_id, "a2", OK, T0)
    assert names(services, sent) == ["b0", "b1", "b2", "b3"]
    for i in range(4):
        assert counts(services, run_id)["c"] == 4 - i  # c's own count: each b's end takes one off
        run_task(services, sent, run_id, f"b{i}", OK, T0)
    run_task(services, sent, run_id, "c", OK, T0)
    assert states(services, run_id)[0] == "succeeded"


def test_a_shared_count_not_known_is_counted_again_from_the_states(services: Any, sent: list[int]) -> None:
    run_id = run_of(services, MIXED)
    with services.db.write() as s:  # a run from before counts were kept
        s.execute(update(TaskInstance).where(TaskInstance.run_id == run_id).values(upstream_waiting=None))
    run_task(services, sent, run_id, "a1", OK, T0)
    assert counts(services, run_id)["b_ok"] == 1
    run_task(services, sent, run_id, "a2", OK, T0)
    assert names(services, sent) == ["b_done", "b_none", "b_ok"]


@pytest.fixture
def schema_0011(tmp_path: Path, initialised_database: str, broker_url: str) -> Iterator[Any]:
    """Services on a database of its own, downgraded to the revision before 0012."""
    from myapp.services import build_services

    url = _copy_database(initialised_database, tmp_path)
    svc = build_services(make_settings(tmp_path, url, redis_url=broker_url))
    _downgrade(svc.db, "0011_sqlite_autoincrement")
    yield svc
    svc.db.dispose()
    _drop_database(url)


def test_the_migration_forgets_the_counts_an_unfinished_run_may_hold_stale(schema_0011: Any) -> None:
    # Migration 0012: a row that kept its end in a run retried before the upgrade may now keep a
    # count a pending task shares; its count becomes NULL (counted again from the states when needed).
    services = schema_0011
    ids: list[int] = []
    services.set_dispatch(ids.extend)
    done = run_of(services, MIXED.replace("name: mixed", "name: done"))
    ids.clear()
    live = run_of(services, MIXED)
    with services.db.write() as s:  # b_ok ended with a count that its upstream tasks' states contradict
        s.execute(
            update(TaskInstance)
            .where(TaskInstance.run_id.in_([live, done]), TaskInstance.task_name == "b_ok")
            .values(state="succeeded", upstream_waiting=0)
        )
        s.execute(update(Run).where(Run.id == done).values(state="failed"))
    _upgrade(services.db, "0012_shared_counts")  # this migration (0013 drops an index)
    assert current(services.db) == "0012_shared_counts"
    assert counts(services, live) == {
        "a1": None,  # queued: not pending, in a running run
        "a2": None,
        "b_ok": None,
        "b_done": 2,  # pending: kept
        "b_none": 2,
        "b_alarm": 2,
        "b_skip": 2,
        "c": 1,
    }
    assert counts(services, done)["b_ok"] == 0  # a finished run: its retry counts again
    run_task(services, ids, live, "a1", OK, T0)
    run_task(services, ids, live, "a2", OK, T0)
    assert names(services, ids) == ["b_done", "b_none"]  # counted again: both upstream tasks ended
    _downgrade(services.db, "0011_sqlite_autoincrement")
    assert current(services.db) == "0011_sqlite_autoincrement"
    # The previous engine reads each row's own count; rows that shared one were never written here.
    assert set(counts(services, live).values()) == {None}
    assert counts(services, done)["b_ok"] == 0  # a finished run's counts are left to its retry
    upgrade(services.db)
