"""A new run as rows: the run and its task instances, drafted once, then inserted one by one
(`RunStore.create_in`, through the ORM and `advance_in`) or for a whole batch (`insert_started`:
one INSERT ... RETURNING for the runs and one for the task instances, however many runs).

Both ways give identical rows: the checks (`draft_run`) are the same function, and the start
decision of a batch (the core's `ready_at_start`) is `ready_to_queue` (what `advance_in` uses)
applied to a run whose tasks are all pending. Holds no business rule of its own;
must not import Celery, Flask or kubernetes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from myapp.core import engine as core
from myapp.core.dag import Dag
from myapp.core.errors import Conflict, NotFound, SpecError
from myapp.core.model import PipelineSpec
from myapp.core.secrets import map_run_params
from myapp.core.states import RunState, TaskState, check_run_transition
from myapp.db.bulk import insert_rows
from myapp.db.sealed import seal
from myapp.db.tables import Run, TaskInstance

if TYPE_CHECKING:
    from myapp.core.values import NewRun

_RUNS = Run.__table__
_TASK_INSTANCES = TaskInstance.__table__


class PipelineRow(NamedTuple):
    """The pipeline columns a new run copies."""

    id: int
    name: str
    project_id: int
    current_version_id: int | None
    timezone: str


class RunDraft(NamedTuple):
    """A checked new run: its row (state queued), its task instances (pending) and the DAG it executes."""

    run: Mapping[str, Any]
    tasks: tuple[Mapping[str, Any], ...]
    dag: Dag
    sliced: frozenset[str] = frozenset()  # its sliced tasks (R15): starting one makes its slices
    ready: frozenset[str] | None = None  # the core's ready_at_start(dag), when the draft knows it


@dataclass(frozen=True)
class _Shape:
    """What every new run of one parsed version starts with (a debug run aside): its task instances'
    (name, max_tries, count of waiting upstream tasks) and the tasks its start queues.

    Versions never change, so it is worked out once per parsed version (VersionSpecs keeps the parsed
    spec and DAG objects): a pass launching thousands of runs does not walk each spec and DAG again.
    """

    spec: PipelineSpec
    dag: Dag
    tasks: tuple[tuple[str, int, int], ...]
    ready: frozenset[str]


_SHAPES: dict[int, _Shape] = {}  # by id(dag); an entry holds its dag, so the id is not reused meanwhile
_SHAPES_SIZE = 16384  # as many as VersionSpecs keeps


def _shape(spec: PipelineSpec, dag: Dag) -> _Shape:
    hit = _SHAPES.get(id(dag))
    if hit is not None and hit.dag is dag and hit.spec is spec:
        return hit
    waiting = core.initial_waiting(dag)
    shape = _Shape(
        spec,
        dag,
        tuple((name, spec.task(name).retries + 1, waiting[name]) for name in dag.names),
        core.ready_at_start(dag),
    )
    if len(_SHAPES) >= _SHAPES_SIZE:
        _SHAPES.clear()
    _SHAPES[id(dag)] = shape  # two scheduler threads may both work one out: the same value
    return shape


@lru_cache(maxsize=4096)  # the runs of one pass share a few instants
def format_execution_date(instant: datetime, timezone: str) -> str:
    """Render an instant as `%Y-%m-%d %H:%M:%S` in the pipeline's zone (R2)."""
    return instant.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S")


def version_of(new: NewRun, pipeline: PipelineRow | None) -> int:
    """Return the version a new run pins (D10: the current one unless given); raise if there is none."""
    if pipeline is None:
        raise NotFound(f"pipeline {new.pipeline_id} not found")
    version_id = new.version_id or pipeline.current_version_id
    if version_id is None:
        raise Conflict(f"pipeline {pipeline.name!r} has no version yet")
    return version_id


_PENDING = TaskState.PENDING.value
_QUEUED_RUN = RunState.QUEUED.value


def draft_run(
    new: NewRun, pipeline: PipelineRow, version_id: int, spec: PipelineSpec, dag: Dag, now: datetime
) -> RunDraft:
    """Check a new run (parameters, debug task) and return its rows; raise a MyappError if refused."""
    if new.params:
        params = map_run_params(check_params(spec, new.params), spec, seal)  # secret values sealed at rest (B6)
    else:  # every cron run: no value given, so nothing to seal (check_params still refuses a required one)
        if spec.parameters:
            check_params(spec, new.params)
        params = {}
    if new.debug_task and new.debug_task not in dag.names:
        raise NotFound(f"task {new.debug_task!r} not found in pipeline {spec.name!r}")
    run = {
        "pipeline_id": pipeline.id,
        "version_id": version_id,
        "project_id": pipeline.project_id,
        "trigger": str(new.trigger),
        "state": _QUEUED_RUN,
        "params": params,
        "execution_date": new.execution_date,
        "execution_date_text": format_execution_date(new.execution_date, pipeline.timezone),
        "debug_task": new.debug_task,
        "copied_from_id": new.copied_from,
        "created_by": new.user_id,
        "runner": new.runner,
        "timeout": spec.timeout,
        "created_at": now,
        "updated_at": now,
    }
    if new.debug_task:  # the one task alone, with the inputs given
        executed = Dag((new.debug_task,), {new.debug_task: ()})
        task = {
            "task_name": new.debug_task,
            "state": _PENDING,
            "try_number": 0,
            "max_tries": spec.task(new.debug_task).retries + 1,
            "upstream_waiting": 0,
            "inputs": dict(new.debug_inputs or {}),
            "outputs": {},
        }
        return RunDraft(run, (task,), executed, frozenset(), core.ready_at_start(executed))
    shape = _shape(spec, dag)
    tasks = tuple(
        {
            "task_name": name,
            "state": _PENDING,
            "try_number": 0,
            "max_tries": max_tries,
            "upstream_waiting": waiting,
            "inputs": {},
            "outputs": {},
        }
        for name, max_tries, waiting in shape.tasks
    )
    return RunDraft(run, tasks, dag, spec.sliced, shape.ready)


def check_params(spec: PipelineSpec, supplied: Mapping[str, Any]) -> dict[str, str]:
    """Return the run's parameters: declared ones only, required ones present."""
    declared = {p.name: p for p in spec.parameters}
    unknown = sorted(set(supplied) - set(declared))
    if unknown:
        raise SpecError(
            "params", f"unknown parameter(s) {', '.join(unknown)}; declared: {', '.join(declared) or 'none'}"
        )
    out = {k: str(v) for k, v in supplied.items()}
    missing = [p.name for p in spec.parameters if p.required and p.default is None and p.name not in out]
    if missing:
        raise SpecError("params", f"missing required parameter(s) {', '.join(missing)}")
    return out


def started_rows(draft: RunDraft, now: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """Return the rows of the draft's run once started at `now`, as `RunStore._start` leaves them.

    The run becomes running (deadline set from its timeout) and the tasks the core's
    `ready_at_start` picks are queued (what `ready_to_queue` picks among a new run's tasks, all
    pending: those with no upstream). None when starting would do more than that (nothing is
    ready, so the run would end at once): such a run goes through `RunStore.create_in`.
    """
    check_run_transition(RunState(draft.run["state"]), RunState.RUNNING)
    ready = core.ready_at_start(draft.dag) if draft.ready is None else draft.ready
    if not ready or ready & draft.sliced:  # a sliced task starts by making its slices (R15)
        return None
    timeout = draft.run["timeout"]
    run = {
        **draft.run,
        "state": RunState.RUNNING.value,
        "started_at": now,
        "updated_at": now,
        "deadline_at": now + timedelta(seconds=timeout) if timeout else None,
        "message": "",
        "token_hash": None,
        "ended_at": None,
    }
    # the same keys for every row (one array per column): a task the start queues has its state and time
    queued = {**_UNSET, "state": _QUEUED_TASK, "queued_at": now}
    tasks = [{**t, **(queued if t["task_name"] in ready else _STILL_PENDING)} for t in draft.tasks]
    return run, tasks


_QUEUED_TASK = TaskState.QUEUED.value
_UNSET = {"message": "", "started_at": None, "ended_at": None, "next_try_at": None}
_STILL_PENDING = {**_UNSET, "state": _PENDING, "queued_at": None}  # read only: merged into each row


def insert_started(
    s: Session,
    started: Sequence[tuple[dict[str, Any], list[dict[str, Any]]]],
) -> list[tuple[int, list[int]]]:
    """Insert started runs and their task instances in two statements; return (run id, queued ids) each."""
    if not started:
        return []
    conn = s.connection()
    run_ids = [run_id for (run_id,) in insert_rows(conn, _RUNS, [run for run, _ in started], returning=("id",))]
    rows = []
    for run_id, (_, tasks) in zip(run_ids, started, strict=True):
        for task in tasks:
            task["run_id"] = run_id  # the rows are this call's own (started_rows' copies)
            rows.append(task)
    ti_ids = [ti_id for (ti_id,) in insert_rows(conn, _TASK_INSTANCES, rows, returning=("id",))]
    queued: dict[int, list[int]] = {run_id: [] for run_id in run_ids}
    for row, ti_id in zip(rows, ti_ids, strict=True):
        if row["state"] == TaskState.QUEUED.value:
            queued[row["run_id"]].append(ti_id)
    return [(run_id, queued[run_id]) for run_id in run_ids]
