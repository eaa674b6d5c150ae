"""What every fault test starts and checks: multi-task runs whose logs and outputs are known in advance.

After recovery every run must be terminal (succeeded: the tasks themselves never fail), every
task instance must have exactly one attempt per try number and one successful attempt, every log
line read before the fault must still be in the archived log, and every output must be intact.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select

from myapp.core.states import RUN_TERMINAL, RunState
from myapp.db.tables import TaskAttempt, TaskInstance
from myapp.logs.attempt_logs import LogKey, parse_line
from tests.integration.engine_helpers import detail, save, start

TASKS = ("a", "b", "c", "d")


def save_diamond(services: Any, name: str, lines: int = 12, pause: float = 0.1) -> int:
    """Save a -> (b, c) -> d: each task logs numbered lines, b and c pass a's output on, d joins them."""
    loop = f'for i in $(seq 1 {lines}); do echo "$MYAPP_TASK_NAME line $i"; sleep {pause}; done'
    return save(
        services,
        f"""
        name: {name}
        tasks:
          - name: a
            template: shell
            args: {{script: '{loop}; echo "a$MYAPP_RUN_ID" > out.txt'}}
            outputs: [{{name: o, path: out.txt, type: text}}]
          - name: b
            template: shell
            depends_on: [a]
            inputs: {{x: {{from: a.o}}}}
            args: {{script: '{loop}; echo "b-$x" > out.txt'}}
            outputs: [{{name: o, path: out.txt, type: text}}]
          - name: c
            template: shell
            depends_on: [a]
            inputs: {{x: {{from: a.o}}}}
            args: {{script: '{loop}; echo "c-$x" > out.txt'}}
            outputs: [{{name: o, path: out.txt, type: text}}]
          - name: d
            template: shell
            depends_on: [b, c]
            inputs: {{y: {{from: b.o}}, z: {{from: c.o}}}}
            args: {{script: 'echo "joined $y $z"; echo "$y+$z" > out.txt'}}
            outputs: [{{name: o, path: out.txt, type: text}}]
    """,
    )


def start_runs(services: Any, pipeline_id: int, n: int) -> list[int]:
    return [start(services, pipeline_id) for _ in range(n)]


def expected_outputs(run_id: int) -> dict[str, dict[str, dict[str, str]]]:
    a = f"a{run_id}"
    values = {"a": a, "b": f"b-{a}", "c": f"c-{a}", "d": f"b-{a}+c-{a}"}
    return {task: {"o": {"type": "text", "value": value}} for task, value in values.items()}


def snapshot(services: Any, run_ids: Iterable[int]) -> dict[tuple[int, str, int], list[str]]:
    """Return the log lines readable now (the live copy for running attempts) by (run, task, try)."""
    seen: dict[tuple[int, str, int], list[str]] = {}
    for run_id in run_ids:
        for task in detail(services, run_id)["tasks"]:
            for attempt in task["attempts"]:
                key = (run_id, task["name"], attempt["try_number"])
                lines, _ = services.logs.lines(LogKey(*key))
                if lines:
                    seen[key] = lines
    return seen


def succeeded_outputs(services: Any, run_ids: Iterable[int]) -> dict[tuple[int, str], dict[str, Any]]:
    """Return the outputs of the task instances that have succeeded so far."""
    return {
        (run_id, t["name"]): t["outputs"]
        for run_id in run_ids
        for t in detail(services, run_id)["tasks"]
        if t["state"] == "succeeded"
    }


def wait_all_finished(services: Any, run_ids: list[int], timeout: float) -> list[dict[str, Any]]:
    """Wait until every run is terminal; fail naming the unfinished ones."""
    deadline = time.monotonic() + timeout
    while True:
        runs = [detail(services, run_id) for run_id in run_ids]
        if all(RunState(r["state"]) in RUN_TERMINAL for r in runs):
            return runs
        if time.monotonic() > deadline:
            stuck = {
                r["id"]: {t["name"]: t["state"] for t in r["tasks"]}
                for r in runs
                if RunState(r["state"]) not in RUN_TERMINAL
            }
            raise AssertionError(f"runs not terminal after {timeout} s: {stuck}")
        time.sleep(0.2)


def check_recovered(
    services: Any,
    run_ids: list[int],
    acknowledged: dict[tuple[int, str, int], list[str]],
    outputs_before: dict[tuple[int, str], dict[str, Any]],
    *,
    one_attempt: bool = True,
) -> None:
    """Assert the invariants of a recovery (see the module docstring)."""
    runs = [detail(services, run_id) for run_id in run_ids]
    assert {r["id"]: r["state"] for r in runs} == {run_id: "succeeded" for run_id in run_ids}, runs
    assert no_duplicate_attempts(services), "an attempt was recorded twice for the same (task instance, try)"
    for run in runs:
        for task in run["tasks"]:
            tries = [a["try_number"] for a in task["attempts"]]
            assert tries == list(range(1, len(tries) + 1)), (run["id"], task["name"], task["attempts"])
            assert [a["state"] for a in task["attempts"]].count("succeeded") == 1, (run["id"], task)
            if one_attempt:
                assert len(tries) == 1, f"run {run['id']} task {task['name']} ran again: {task['attempts']}"
        assert {t["name"]: t["outputs"] for t in run["tasks"]} == expected_outputs(run["id"]), run
        d_lines = [
            line
            for line in log_lines(services, run["id"], "d", run["by_name"]["d"]["try_number"])
            if not line.startswith("[myapp]")
        ]
        want = expected_outputs(run["id"])
        assert d_lines == [f"joined {want['b']['o']['value']} {want['c']['o']['value']}"], d_lines
    for key, outputs in outputs_before.items():
        assert detail(services, key[0])["by_name"][key[1]]["outputs"] == outputs, f"output of {key} changed"
    for key, lines in acknowledged.items():
        archived = log_lines(services, *key, archived=True)
        assert archived[: len(lines)] == [line.rstrip("\n") for line in lines], (
            f"log {key}: lines read before the fault are missing from the archive"
        )


def log_lines(services: Any, run_id: int, task: str, try_number: int, *, archived: bool = False) -> list[str]:
    key = LogKey(run_id, task, try_number)
    if archived:
        path = key.path(services.settings.logs_dir)
        assert path.exists(), f"no archived log {path}"
        # The archive holds stored lines (stamped, with their stream); compare their text as read live.
        return [parse_line(line).plain.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines(True)]
    lines, _ = services.logs.lines(key)
    return [line.rstrip("\n") for line in lines]


def no_duplicate_attempts(services: Any) -> bool:
    with services.db.read() as s:
        dup = s.execute(
            select(TaskAttempt.task_instance_id, TaskAttempt.try_number)
            .group_by(TaskAttempt.task_instance_id, TaskAttempt.try_number)
            .having(func.count() > 1)
        ).all()
        twice = s.execute(
            select(TaskAttempt.task_instance_id)
            .where(TaskAttempt.state == "succeeded")
            .group_by(TaskAttempt.task_instance_id)
            .having(func.count() > 1)
        ).all()
        orphans = s.scalar(
            select(func.count())
            .select_from(TaskAttempt)
            .outerjoin(TaskInstance, TaskInstance.id == TaskAttempt.task_instance_id)
            .where(TaskInstance.id.is_(None))
        )
    return not dup and not twice and not orphans
