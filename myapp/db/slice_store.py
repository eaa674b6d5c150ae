"""Slices in the database (docs/rules.md R15): start a sliced task, end one slice, resume after a retry.

Called by the run store inside its transaction, with the run locked. A sliced task that becomes
ready is not queued: its lists are read, one task instance per item is inserted (`NAME[i]`, unique
on (run, task name) like every task instance, so a second start can only fail) and the first
`parallelism` of them queued; the task itself is `running` and counts its slices not ended yet
(`slices_left`). A slice that ends takes one off that count (one UPDATE) and, under a cap, queues
the next pending slice (one indexed read): it never reads its siblings. The last one reads them
all once, in order, to gather the outputs and decide the task's outcome, which then releases the
task's downstream tasks like any ended task (R13). On PostgreSQL a slice's success that is not the
last, of a task without a cap, is counted by the attempt store's one statement instead
(`_SUCCEED_SLICE_FAST` in db/attempt_statements.py), with the same guards.

Decides nothing itself: core/slices.py does. Imports no Flask.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from myapp.core import slices as core
from myapp.core.errors import MyappError
from myapp.core.model import PipelineSpec, TaskSpec
from myapp.core.params import is_deferred
from myapp.core.redact import Redactor
from myapp.core.render import RenderContext, render_global_params
from myapp.core.states import TASK_UNFINISHED, TaskState
from myapp.core.trigger_rules import outcome_of
from myapp.db.bulk import insert_rows
from myapp.db.sealed import open_tree
from myapp.db.tables import USERS, Pipeline, Run, TaskInstance

if TYPE_CHECKING:
    from myapp.db.run_store import RunHead, RunStore

_TI = TaskInstance.__table__
_IN_FLIGHT = (TaskState.QUEUED, TaskState.RUNNING, TaskState.UP_FOR_RETRY)


def sliced_names(store: RunStore, s: Session, run: RunHead) -> frozenset[str]:
    """Return the run's sliced tasks (none in a debug run: it runs its task once, with given inputs)."""
    if run.debug_task:
        return frozenset()
    spec, _ = store.specs.get(s, run.version_id)
    return spec.sliced


def start_sliced(store: RunStore, s: Session, run: RunHead, ti_id: int, name: str, now: datetime) -> list[int]:
    """Start a sliced task that became ready: make and queue its slices; return the ids queued.

    Already sliced before (an operator retry of its failed slices): resume instead. A list that
    is not one fails the task saying why; an empty list ends it succeeded with empty lists.
    """
    spec, _ = store.specs.get(s, run.version_id)
    task = spec.task(name)
    conn = s.connection()
    left = conn.execute(select(TaskInstance.slices_left).where(TaskInstance.id == ti_id)).scalar()
    if left is not None:
        return _resume(store, s, run, ti_id, task, now)
    try:
        items = core.slice_items(task, _lists(s, run, spec, task))
    except core.SliceError as exc:
        return _end_task(store, s, run, ti_id, name, TaskState.FAILED, {}, f"slices: {exc}", now)
    if not items:
        message = "no slices: the sliced list is empty"
        return _end_task(store, s, run, ti_id, name, TaskState.SUCCEEDED, core.gather(task, []), message, now)
    assert task.slices is not None
    started = conn.execute(
        update(TaskInstance)
        .where(TaskInstance.id == ti_id, TaskInstance.state == TaskState.PENDING.value)
        .values(state=TaskState.RUNNING.value, started_at=now, slices_left=len(items), message=f"{len(items)} slices")
    )
    if not started.rowcount:
        return []
    first = core.initial_queued(len(items), task.slices)
    rows = [_slice_row(run.id, task, i, item, now if i < first else None) for i, item in enumerate(items)]
    ids = [ti for (ti,) in insert_rows(conn, _TI, rows, returning=("id",))]
    return ids[:first]


def _slice_row(
    run_id: int, task: TaskSpec, index: int, item: dict[str, Any], queued_at: datetime | None
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "task_name": core.slice_name(task.name, index),
        "state": (TaskState.QUEUED if queued_at else TaskState.PENDING).value,
        "try_number": 0,
        "max_tries": task.retries + 1,
        "upstream_waiting": 0,
        "inputs": {},
        "outputs": {},
        "message": "",
        "queued_at": queued_at,
        "slice_of": task.name,
        "slice_index": index,
        "slice_item": item,
    }


def _param_default(
    s: Session, run: RunHead, spec: PipelineSpec, task: TaskSpec, name: str, source: str, given: dict[str, Any]
) -> str | None:
    """Return a global parameter's default for a sliced input. Jinja is rendered in the sandbox as
    at a task's start (core/render.py), with this run's variables and `task_name` the sliced task;
    SliceError when it does not render. `cluster_name` is the executor's, unknown here: refused."""
    default = next((p.default for p in spec.parameters if p.name == name), None)
    if not is_deferred(default):
        return default
    if "cluster_name" in str(default):
        raise core.SliceError(
            f"{source}: the default {default!r} uses cluster_name, known only when a task starts; "
            "give the run the list, or a default without it"
        )
    row = s.execute(
        select(Run.pipeline_id, Run.execution_date_text, Run.runner, Pipeline.name, Pipeline.created_by)
        .join(Pipeline, Pipeline.id == Run.pipeline_id)
        .where(Run.id == run.id)
    ).one()
    creator = s.scalar(select(USERS.c.username).where(USERS.c.id == row.created_by)) if row.created_by else None
    ctx = RenderContext(
        creator=creator or "",
        runner=row.runner or "",
        pipeline_id=row.pipeline_id,
        pipeline_name=row.name,
        run_id=run.id,
        task_name=task.name,
        cluster_name="",
        execution_date=row.execution_date_text,
        params={},
    )
    supplied = {k: str(v) for k, v in given.items() if v is not None}
    try:
        return render_global_params(spec.parameters, supplied, ctx)[name]
    except MyappError as exc:  # a message people read: a secret parameter's value never shows in it
        secrets = Redactor(supplied.get(p.name, "") for p in spec.parameters if p.secret)
        raise core.SliceError(f"{source}: the default {default!r} does not render: {secrets(str(exc))}") from exc


def _lists(s: Session, run: RunHead, spec: PipelineSpec, task: TaskSpec) -> dict[str, list[Any]]:
    """Read each sliced input's value and return its items (SliceError when it is not a list)."""
    assert task.slices is not None
    bound = {b.name: b for b in task.inputs}
    conn = s.connection()
    params: dict[str, Any] | None = None
    lists: dict[str, list[Any]] = {}
    for name in task.slices.inputs:
        b = bound[name]
        value: object
        if b.source == "literal":
            value, source = b.value, f"input {name!r}"
        elif b.source == "param":
            if params is None:
                params = open_tree(dict(conn.execute(select(Run.params).where(Run.id == run.id)).scalar() or {}))
            value, source = params.get(b.param or ""), f"input {name!r} (params.{b.param})"
            if value is None:  # not given for the run: the parameter's default, rendered when Jinja
                value = _param_default(s, run, spec, task, b.param or "", source, params)
        else:
            outputs = conn.execute(
                select(TaskInstance.outputs).where(TaskInstance.run_id == run.id, TaskInstance.task_name == b.task)
            ).scalar()
            value, source = (outputs or {}).get(b.output or ""), f"input {name!r} ({b.task}.{b.output})"
        lists[name] = core.as_list(value, source)
    return lists


def slice_ended(store: RunStore, s: Session, run: RunHead, now: datetime, name: str, task: str) -> list[int]:
    """After slice `name` of `task` ended: count it, queue the next pending slice under a cap, and
    end the task once its last slice ended. Costs a fixed number of statements whatever the width."""
    conn = s.connection()
    where = (TaskInstance.run_id == run.id, TaskInstance.task_name == task)
    counted = update(TaskInstance).where(*where, TaskInstance.state == TaskState.RUNNING.value)
    counted = counted.values(slices_left=TaskInstance.slices_left - 1)
    row: Any = None
    if store.db.engine.dialect.update_returning:
        row = conn.execute(counted.returning(TaskInstance.id, TaskInstance.slices_left)).first()
    elif conn.execute(counted).rowcount:  # MySQL: the run lock keeps the row as written
        row = conn.execute(select(TaskInstance.id, TaskInstance.slices_left).where(*where)).first()
    if row is None:  # the task ended meanwhile (stopped, timed out)
        store.finish_if_done(s, run, now)
        return []
    ti_id, left = int(row[0]), int(row[1] or 0)
    spec, _ = store.specs.get(s, run.version_id)
    sliced = spec.task(task)
    assert sliced.slices is not None
    if left > 0:
        if sliced.slices.parallelism <= 0:
            return []
        following = conn.execute(
            select(TaskInstance.id)
            .where(
                TaskInstance.run_id == run.id,
                TaskInstance.slice_of == task,
                TaskInstance.state == TaskState.PENDING.value,
            )
            .order_by(TaskInstance.slice_index)
            .limit(1)
        ).scalar()
        return store._queue(s, [following], now) if following is not None else []
    return _gather_and_end(store, s, run, ti_id, sliced, now)


def _gather_and_end(store: RunStore, s: Session, run: RunHead, ti_id: int, task: TaskSpec, now: datetime) -> list[int]:
    rows = (
        s.connection()
        .execute(
            select(TaskInstance.state, TaskInstance.outputs)
            .where(TaskInstance.run_id == run.id, TaskInstance.slice_of == task.name)
            .order_by(TaskInstance.slice_index)
        )
        .all()
    )
    state, message = core.outcome(task, [TaskState(r.state) for r in rows])
    outputs = core.gather(task, [dict(r.outputs or {}) if r.state == TaskState.SUCCEEDED.value else {} for r in rows])
    return _end_task(store, s, run, ti_id, task.name, state, outputs, message, now)


def _end_task(
    store: RunStore,
    s: Session,
    run: RunHead,
    ti_id: int,
    name: str,
    state: TaskState,
    outputs: dict[str, Any],
    message: str,
    now: datetime,
) -> list[int]:
    """End the sliced task itself and release its downstream tasks as any ended task does (R13)."""
    s.connection().execute(
        update(TaskInstance)
        .where(TaskInstance.id == ti_id)
        .values(state=state.value, outputs=outputs, message=message, ended_at=now)
    )
    ended = outcome_of(state)
    assert ended is not None
    return store.end_in(s, run, now, name, ended, others_unfinished=False)


def _resume(store: RunStore, s: Session, run: RunHead, ti_id: int, task: TaskSpec, now: datetime) -> list[int]:
    """Start a retried sliced task again: only its unfinished slices run (the retry made them pending)."""
    assert task.slices is not None
    conn = s.connection()
    rows = conn.execute(
        select(TaskInstance.id, TaskInstance.state)
        .where(TaskInstance.run_id == run.id, TaskInstance.slice_of == task.name)
        .order_by(TaskInstance.slice_index)
    ).all()
    unfinished = [r for r in rows if TaskState(r.state) in TASK_UNFINISHED]
    if not unfinished:
        return _gather_and_end(store, s, run, ti_id, task, now)
    conn.execute(
        update(TaskInstance)
        .where(TaskInstance.id == ti_id)
        .values(state=TaskState.RUNNING.value, slices_left=len(unfinished), ended_at=None, message="")
    )
    busy = sum(1 for r in unfinished if TaskState(r.state) in _IN_FLIGHT)
    room = len(unfinished) if task.slices.parallelism <= 0 else max(0, task.slices.parallelism - busy)
    pending = [r.id for r in unfinished if r.state == TaskState.PENDING.value]
    return store._queue(s, pending[:room], now)


def retry_budgets(names: Sequence[str], retries: dict[str, int]) -> dict[str, int]:
    """Return each task instance's automatic retries, a slice's being its task's (for an operator retry)."""
    out = {}
    for name in names:
        owner = core.parent_of(name)
        out[name] = retries.get(name if owner is None else owner[0], 0)
    return out
