"""The engine's rules (docs/rules.md R10, D8, D11, P4) in process: a fixed clock, dispatch captured.

No Celery worker and no polling: each test claims and finishes attempts itself at explicit
instants, so what it proves does not depend on a worker's timing. Runs on every backend of
tests/integration/backends.py, like the claim/finish contract suite (test_attempt_store.py); the
end-to-end scenarios through real workers stay in test_engine_scenarios.py.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from myapp.core.pipeline_spec import parse_pipeline
from myapp.core.states import RunState, Trigger
from myapp.core.values import AttemptContext, AttemptResult, NewRun
from myapp.db.tables import Run, TaskAttempt, TaskInstance
from myapp.yaml_io import load_yaml
from tests.integration.backends import store_services  # noqa: F401  (the `services` fixture, per backend)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # the fixed clock: every instant below is T0 + something
OK = AttemptResult(succeeded=True, exit_code=0)
FAIL = AttemptResult(succeeded=False, exit_code=1, message="exit code 1")


def run_of(services: Any, yaml_text: str, params: dict[str, str] | None = None) -> int:
    spec = parse_pipeline(load_yaml(textwrap.dedent(yaml_text)))
    pipeline_id = services.pipelines.save(spec, T0).pipeline_id
    return int(
        services.runs.create_run(
            NewRun(
                pipeline_id=pipeline_id, trigger=Trigger.MANUAL, execution_date=T0, params=params or {}, runner="tester"
            ),
            T0,
        )
    )


def names(services: Any, ids: list[int]) -> list[str]:
    with services.db.read() as s:
        return sorted(s.scalars(select(TaskInstance.task_name).where(TaskInstance.id.in_(ids))))


def task_id(services: Any, run_id: int, name: str) -> int:
    with services.db.read() as s:
        return int(
            s.scalar(select(TaskInstance.id).where(TaskInstance.run_id == run_id, TaskInstance.task_name == name))
        )


def claim(services: Any, sent: list[int], run_id: int, name: str, at: datetime) -> AttemptContext:
    ti_id = task_id(services, run_id, name)
    assert ti_id in sent, f"{name} was not dispatched"
    sent.remove(ti_id)
    ctx = services.attempts.claim(ti_id, "w", at)
    assert ctx is not None, f"{name} could not be claimed"
    return ctx


def run_task(services: Any, sent: list[int], run_id: int, name: str, result: AttemptResult, at: datetime) -> None:
    ctx = claim(services, sent, run_id, name, at)
    services.attempts.finish(ctx.attempt_id, result, at + timedelta(seconds=1))


def states(services: Any, run_id: int) -> tuple[str, dict[str, str]]:
    with services.db.read() as s:
        run = s.get(Run, run_id)
        assert run is not None
        return run.state, {
            str(n): str(st)
            for n, st in s.execute(
                select(TaskInstance.task_name, TaskInstance.state).where(TaskInstance.run_id == run_id)
            )
        }


def tries(services: Any, run_id: int, name: str) -> list[tuple[int, str]]:
    with services.db.read() as s:
        return [
            (int(n), str(st))
            for n, st in s.execute(
                select(TaskAttempt.try_number, TaskAttempt.state)
                .join(TaskInstance)
                .where(TaskInstance.run_id == run_id, TaskInstance.task_name == name)
                .order_by(TaskAttempt.try_number)
            )
        ]


DIAMOND = """\
    name: {name}
    tasks:
      - {{name: a, image: local, command: ['true']}}
      - {{name: b, image: local, command: ['true'], depends_on: [a]}}
      - {{name: c, image: local, command: ['true'], depends_on: [b]}}
      - {{name: d, image: local, command: ['true'], depends_on: [a]}}
"""


def test_a_task_starts_only_when_all_its_upstream_tasks_succeeded(services: Any, sent: list[int]) -> None:
    run_id = run_of(
        services,
        DIAMOND.format(name="order") + "      - {name: e, image: local, command: ['true'], depends_on: [c, d]}\n",
    )
    assert names(services, sent) == ["a"]
    run_task(services, sent, run_id, "a", OK, T0)
    assert names(services, sent) == ["b", "d"]
    run_task(services, sent, run_id, "d", OK, T0 + timedelta(seconds=5))
    assert names(services, sent) == ["b"], "e waits for c too"
    run_task(services, sent, run_id, "b", OK, T0 + timedelta(seconds=6))
    run_task(services, sent, run_id, "c", OK, T0 + timedelta(seconds=7))
    assert names(services, sent) == ["e"]
    run_task(services, sent, run_id, "e", OK, T0 + timedelta(seconds=8))
    assert states(services, run_id) == ("succeeded", dict.fromkeys("abcde", "succeeded"))


def test_a_failure_marks_its_descendants_and_independent_branches_go_on(services: Any, sent: list[int]) -> None:
    run_id = run_of(services, DIAMOND.format(name="propagation"))
    run_task(services, sent, run_id, "a", OK, T0)
    run_task(services, sent, run_id, "b", FAIL, T0 + timedelta(seconds=2))
    assert states(services, run_id) == (
        "running",
        {"a": "succeeded", "b": "failed", "c": "upstream_failed", "d": "queued"},
    )
    run_task(services, sent, run_id, "d", OK, T0 + timedelta(seconds=3))
    assert states(services, run_id)[0] == "failed" and sent == []


def test_retries_give_n_plus_one_attempts_then_fail(services: Any, sent: list[int]) -> None:
    run_id = run_of(services, "name: retries\ntasks:\n  - {name: t, image: local, command: ['false'], retries: 2}\n")
    for attempt in range(3):
        run_task(services, sent, run_id, "t", FAIL, T0 + timedelta(seconds=10 * attempt))
    assert tries(services, run_id, "t") == [(1, "failed"), (2, "failed"), (3, "failed")]
    assert states(services, run_id) == ("failed", {"t": "failed"}) and sent == []


def test_stop_kills_running_attempts_and_stops_every_unfinished_task(services: Any, sent: list[int]) -> None:
    run_id = run_of(services, DIAMOND.format(name="stop"))
    run_task(services, sent, run_id, "a", OK, T0)
    running = claim(services, sent, run_id, "b", T0 + timedelta(seconds=2))
    services.runs.stop_run(run_id, T0 + timedelta(seconds=3), by="tester")
    assert services.attempts.heartbeat(running.attempt_id, T0 + timedelta(seconds=4)) is False  # the kill signal
    assert states(services, run_id) == ("stopped", {"a": "succeeded", "b": "stopped", "c": "stopped", "d": "stopped"})
    assert services.attempts.claim(task_id(services, run_id, "d"), "w", T0 + timedelta(seconds=5)) is None
    assert tries(services, run_id, "b") == [(1, "stopped")]  # a stop never triggers a retry (R10)


def test_retry_from_the_failure_keeps_succeeded_tasks_and_continues_attempt_numbers(
    services: Any, sent: list[int]
) -> None:
    run_id = run_of(
        services,
        DIAMOND.format(name="retry-from-failure").replace(
            "depends_on: [a]}\n      - {name: c", "depends_on: [a], retries: 1}\n      - {name: c", 1
        ),
    )
    run_task(services, sent, run_id, "a", OK, T0)
    run_task(services, sent, run_id, "d", OK, T0 + timedelta(seconds=1))
    run_task(services, sent, run_id, "b", FAIL, T0 + timedelta(seconds=2))
    run_task(services, sent, run_id, "b", FAIL, T0 + timedelta(seconds=3))  # retries: 1 spent
    assert states(services, run_id)[0] == "failed"
    services.runs.retry_run(run_id, T0 + timedelta(minutes=1))
    assert names(services, sent) == ["b"], "only the failed branch runs again; a and d keep their results"
    run_task(services, sent, run_id, "b", FAIL, T0 + timedelta(minutes=2))  # a fresh budget (D11) ...
    run_task(services, sent, run_id, "b", OK, T0 + timedelta(minutes=3))
    run_task(services, sent, run_id, "c", OK, T0 + timedelta(minutes=4))
    assert [n for n, _ in tries(services, run_id, "b")] == [1, 2, 3, 4]  # ... numbers never reset
    assert tries(services, run_id, "a") == [(1, "succeeded")] and tries(services, run_id, "d") == [(1, "succeeded")]
    assert states(services, run_id) == ("succeeded", dict.fromkeys("abcd", "succeeded"))


def test_copy_starts_a_new_run_of_the_same_version_with_the_same_parameters(services: Any, sent: list[int]) -> None:
    run_id = run_of(
        services,
        "name: copy\nparameters: [{name: x, default: '1'}]\ntasks:\n"
        "  - {name: t, image: local, command: ['echo', '{{ params.x }}']}\n",
        params={"x": "7"},
    )
    run_task(services, sent, run_id, "t", FAIL, T0)
    copy_id = services.runs.copy_run(run_id, T0 + timedelta(minutes=1))
    with services.db.read() as s:
        first, copy = s.get(Run, run_id), s.get(Run, copy_id)
        assert first is not None and copy is not None and copy_id != run_id
        assert (copy.version_id, copy.params, copy.trigger) == (first.version_id, first.params, "manual")
    assert names(services, sent) == ["t"] and states(services, copy_id) == ("running", {"t": "queued"})
    assert states(services, run_id) == ("failed", {"t": "failed"}), "the original run is left as it was"


def test_a_run_timeout_fails_the_run_fails_running_tasks_and_stops_the_rest(services: Any, sent: list[int]) -> None:
    run_id = run_of(services, DIAMOND.format(name="run-timeout").replace("    tasks:", "    timeout: 60\n    tasks:"))
    run_task(services, sent, run_id, "a", OK, T0)
    running = claim(services, sent, run_id, "b", T0 + timedelta(seconds=2))
    assert (
        services.attempts.reconcile(T0 + timedelta(seconds=59), heartbeat_timeout=3600, requeue_after=3600)[
            "timed_out_runs"
        ]
        == 0
    )
    counts = services.attempts.reconcile(T0 + timedelta(seconds=61), heartbeat_timeout=3600, requeue_after=3600)
    assert counts["timed_out_runs"] == 1
    with services.db.read() as s:
        run = s.get(Run, run_id)
        assert run is not None and run.state == RunState.FAILED.value and "timed out" in (run.message or "")
    # D8: the running task failed, the never-started ones are stopped, and nothing starts after the deadline.
    assert states(services, run_id)[1] == {"a": "succeeded", "b": "failed", "c": "stopped", "d": "stopped"}
    assert services.attempts.heartbeat(running.attempt_id, T0 + timedelta(seconds=62)) is False
    assert services.attempts.claim(task_id(services, run_id, "d"), "w", T0 + timedelta(seconds=63)) is None


def test_mark_overwrites_a_finished_runs_outcome(services: Any, sent: list[int]) -> None:
    run_id = run_of(services, "name: mark\ntasks:\n  - {name: t, image: local, command: ['false']}\n")
    run_task(services, sent, run_id, "t", FAIL, T0)
    services.runs.mark_run(run_id, RunState.SUCCEEDED, T0 + timedelta(minutes=1), by="tester")
    assert states(services, run_id)[0] == "succeeded"
