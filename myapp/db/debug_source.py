"""Where a debug run's upstream inputs come from: the pipeline's latest succeeded run (core/debug_inputs.py).

Two indexed reads: the newest succeeded non-debug run of the pipeline, then the outputs of the
task's upstream tasks in it. The CLI (`task debug`) and the REST API (`debug_inputs`, `runs`)
both call `debug_plan`, so they fill and refuse alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from myapp.core.debug_inputs import DebugPlan, plan_debug_inputs
from myapp.core.errors import NotFound
from myapp.core.model import PipelineSpec
from myapp.core.states import RunState
from myapp.db.tables import Run, TaskInstance


def latest_upstream_outputs(s: Session, pipeline_id: int, tasks: set[str]) -> tuple[int | None, dict[str, Any]]:
    """Return (run id, {task: outputs}) of the pipeline's newest succeeded non-debug run."""
    if not tasks:
        return None, {}
    run_id = s.scalar(
        select(Run.id)
        .where(Run.pipeline_id == pipeline_id, Run.state == RunState.SUCCEEDED.value, Run.debug_task.is_(None))
        .order_by(Run.id.desc())
        .limit(1)
    )
    if run_id is None:
        return None, {}
    rows = s.execute(
        select(TaskInstance.task_name, TaskInstance.outputs).where(
            TaskInstance.run_id == run_id, TaskInstance.task_name.in_(sorted(tasks))
        )
    ).all()
    return run_id, {name: dict(outputs or {}) for name, outputs in rows}


def debug_plan(s: Session, pipeline_id: int, spec: PipelineSpec, task: str, given: Mapping[str, str]) -> DebugPlan:
    """Return how each input of `task` is filled for a debug run (NotFound for an unknown task)."""
    if task not in {t.name for t in spec.tasks}:
        raise NotFound(f"task {task!r} not found in pipeline {spec.name!r}")
    task_spec = spec.task(task)
    upstream = {b.task for b in task_spec.inputs if b.source == "task" and b.task and b.name not in given}
    run_id, outputs = latest_upstream_outputs(s, pipeline_id, upstream)
    return plan_debug_inputs(task_spec, given, outputs, run_id)
