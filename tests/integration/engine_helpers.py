"""Helpers for engine scenarios: save a pipeline from YAML text, start a run, wait for states."""

from __future__ import annotations

import textwrap
import time
from typing import Any

from myapp.core.pipeline_spec import parse_pipeline
from myapp.core.states import RUN_TERMINAL, RunState, Trigger
from myapp.core.values import NewRun
from myapp.db.run_views import run_detail
from myapp.yaml_io import load_yaml


def save(services: Any, yaml_text: str) -> int:
    """Save a pipeline from YAML text; return its id."""
    spec = parse_pipeline(load_yaml(textwrap.dedent(yaml_text)))
    return services.pipelines.save(spec, services.clock.now()).pipeline_id


def start(services: Any, pipeline_id: int, params: dict[str, str] | None = None, **kw: Any) -> int:
    """Start a manual (or debug, with debug_task=) run; return its id."""
    now = services.clock.now()
    trigger = Trigger.DEBUG if kw.get("debug_task") else Trigger.MANUAL
    return services.runs.create_run(
        NewRun(
            pipeline_id=pipeline_id, trigger=trigger, execution_date=now, params=params or {}, runner="tester", **kw
        ),
        now,
    )


def detail(services: Any, run_id: int) -> dict[str, Any]:
    """Return the run's detail dict (tasks by name under 'by_name')."""
    with services.db.read() as s:
        data = run_detail(s, run_id)
    data["by_name"] = {t["name"]: t for t in data["tasks"]}
    return data


# Waits for something that must happen eventually give it at least a minute: one minute of a machine
# ten times slower (another test run beside this one) adds ~54 s to whatever the wait covers. A
# wait that asserts promptness (before a reconciler pass, within a grace) bounds its own timeout.
PATIENCE = 60.0


def poll(predicate: Any, what: str, timeout: float = PATIENCE, interval: float = 0.05) -> Any:
    """Return the first truthy value of `predicate()`, polled every `interval`; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def wait_until(services: Any, run_id: int, pred: Any, timeout: float = 2 * PATIENCE, what: str = "") -> dict[str, Any]:
    """Poll the run until `pred(detail)` holds; fail with the last detail after `timeout`."""
    deadline = time.monotonic() + timeout
    data = detail(services, run_id)
    while time.monotonic() < deadline:
        data = detail(services, run_id)
        if pred(data):
            return data
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or pred}: {data}")


def wait_finished(services: Any, run_id: int, timeout: float = 2 * PATIENCE) -> dict[str, Any]:
    """Wait until the run reaches a terminal state."""
    return wait_until(services, run_id, lambda d: RunState(d["state"]) in RUN_TERMINAL, timeout, "run to finish")


def log_text(services: Any, run_id: int, task: str, try_number: int = 1) -> str:
    """Return an attempt's whole log."""
    from myapp.logs.attempt_logs import LogKey

    lines, _ = services.logs.lines(LogKey(run_id, task, try_number))
    return "".join(lines)


def task_lines(services: Any, run_id: int, task: str, try_number: int = 1) -> list[str]:
    """Return an attempt's log lines written by the task (without myapp's own lines)."""
    text = log_text(services, run_id, task, try_number)
    return [line for line in text.splitlines() if not line.startswith("[myapp]")]


def slice_fails_until(name: str, flag: Any) -> str:
    """A pipeline `name` whose task `train` is sliced over [a, b, c]: slice train[1] (item b) fails
    until the file `flag` exists; the slice-retry tests (REST, CLI, run page) create it, then retry."""
    return f"""
name: {name}
tasks:
  - name: train
    image: local
    command: ["sh", "-c", "echo item $0; [ $0 != b ] || [ -e {flag} ]", "$x"]
    inputs: {{x: [a, b, c]}}
    slices: {{inputs: [x]}}
"""
