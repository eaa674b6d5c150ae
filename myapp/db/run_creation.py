"""Large runs created by a worker, not by the web request that asked for them (issue 13 B15).

Writing 10,000 task instances took seconds inside a web request. A run whose version has more
tasks than `run_inline_tasks` is created in two steps instead:

1. `request_run` (the web request): one small transaction inserts the run row alone, state
   `creating`, its parameter values all sealed (which are secret is decided in step 2), and after
   COMMIT asks a worker to create it (`RunStore.create`, a Celery message on the control queue).
2. `finish_creation` (the worker): one transaction locks the run, checks it as `create_in` would
   (parameters, version), writes every task instance in one statement and starts the run (or
   fails it, the reason in its message). Either all of it commits or none: a crash in the middle
   leaves the run `creating` with no task instance, and the reconciler asks again
   (`resend_creating`). A run stopped while creating stays stopped; a duplicate message finds
   nothing to do.

Must not import Celery, Flask or kubernetes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update

from myapp.core.errors import MyappError
from myapp.core.states import RunState, TaskState, Trigger, check_run_transition
from myapp.core.values import NewRun
from myapp.db.bulk import insert_rows
from myapp.db.run_drafts import PipelineRow, draft_run, format_execution_date, started_rows, version_of
from myapp.db.sealed import open_tree, seal
from myapp.db.tables import Pipeline, PipelineTask, Run, TaskInstance

if TYPE_CHECKING:
    from myapp.db.run_store import RunStore

CREATING = RunState.CREATING.value


def version_task_count(runs: RunStore, new: NewRun) -> int:
    """Return how many tasks the run `new` asks for would execute (one for a debug run)."""
    if new.debug_task:
        return 1
    with runs.db.read() as s:
        version_id = new.version_id or s.scalar(
            select(Pipeline.current_version_id).where(Pipeline.id == new.pipeline_id)
        )
        if version_id is None:
            return 0
        return int(
            s.scalar(select(func.count()).select_from(PipelineTask).where(PipelineTask.version_id == version_id)) or 0
        )


def request_run(runs: RunStore, new: NewRun, now: datetime, tasks: int) -> int:
    """Insert the run `new` alone as `creating` and ask a worker to create it; return its id."""
    with runs.db.write() as s:
        row = s.get(Pipeline, new.pipeline_id)
        pipeline = (
            None if row is None else PipelineRow(row.id, row.name, row.project_id, row.current_version_id, row.timezone)
        )
        version_id = version_of(new, pipeline)  # NotFound / Conflict before anything is written
        assert pipeline is not None
        run = Run(
            pipeline_id=pipeline.id,
            version_id=version_id,
            project_id=pipeline.project_id,
            trigger=str(new.trigger),
            state=CREATING,
            params={str(k): seal(str(v)) for k, v in new.params.items()},  # B6: nothing plain at rest
            execution_date=new.execution_date,
            execution_date_text=format_execution_date(new.execution_date, pipeline.timezone),
            debug_task=new.debug_task,
            copied_from_id=new.copied_from,
            created_by=new.user_id,
            runner=new.runner,
            message=f"creating {tasks:,} task instances",
            created_at=now,
            updated_at=now,
        )
        s.add(run)
        s.flush()
        run_id = run.id
    runs.create([run_id])
    return run_id


def finish_creation(runs: RunStore, run_id: int, now: datetime) -> bool:
    """Write the task instances of a `creating` run and start it, or fail it; False if it was not creating."""
    with runs.db.write() as s:
        run = runs.lock_run(s, run_id)
        if run.state != CREATING:
            return False  # stopped meanwhile, or created by an earlier message
        try:
            row = s.get(Pipeline, run.pipeline_id)
            assert row is not None  # runs go with their pipeline (ON DELETE CASCADE)
            pipeline = PipelineRow(row.id, row.name, row.project_id, row.current_version_id, row.timezone)
            spec, dag = runs.specs.get(s, run.version_id)
            new = NewRun(
                pipeline_id=run.pipeline_id,
                trigger=Trigger(run.trigger),
                execution_date=run.execution_date,
                params=open_tree(dict(run.params or {})),
                user_id=run.created_by,
                runner=run.runner,
                version_id=run.version_id,
                copied_from=run.copied_from_id,
            )
            draft = draft_run(new, pipeline, run.version_id, spec, dag, now)
        except MyappError as exc:  # what create_in would have answered with a 4xx: shown on the run
            runs._end_run(run, RunState.FAILED, now, f"could not create the run: {exc}")
            return True
        started = started_rows(draft, now)
        if started is None:  # nothing ready at the start: the ORM path ends it as create_in would
            for task in draft.tasks:
                s.add(TaskInstance(run_id=run.id, **task))
            run.params, run.timeout = dict(draft.run["params"]), draft.run["timeout"]
            run.state = check_run_transition(RunState.CREATING, RunState.QUEUED).value
            s.flush()
            queued = runs._start(s, run, now)
        else:
            fields, tasks = started
            ids = insert_rows(
                s.connection(),
                TaskInstance.__table__,
                [{**task, "run_id": run.id} for task in tasks],
                returning=("id",),
            )  # one statement for every task instance
            check_run_transition(RunState.CREATING, RunState(fields["state"]))
            for key in ("params", "timeout", "state", "started_at", "deadline_at", "message"):
                setattr(run, key, fields[key])
            run.updated_at = now
            queued = [
                ti_id for (ti_id,), task in zip(ids, tasks, strict=True) if task["state"] == TaskState.QUEUED.value
            ]
    runs.dispatch(queued)
    return True


def resend_creating(runs: RunStore, now: datetime, after: float) -> int:
    """Ask again for the creation of runs `creating` for longer than `after` seconds (a lost message, a
    worker that died mid-creation: its transaction rolled back); return how many."""
    limit = now - timedelta(seconds=after)
    with runs.db.write() as s:
        ids = list(
            s.scalars(
                select(Run.id)
                .where(Run.state == CREATING, Run.updated_at < limit)
                .with_for_update(**runs.db.lock_options(skip_locked=True))
            )
        )
        if ids:  # asked again no sooner than `after` from now
            s.execute(
                update(Run).where(Run.id.in_(ids)).values(updated_at=now).execution_options(synchronize_session=False)
            )
    if ids:
        runs.create(ids)
    return len(ids)


def creating_runs(runs: RunStore) -> list[int]:
    """Return the ids of runs still `creating`, oldest first (the burst worker creates them itself)."""
    with runs.db.read() as s:
        return list(s.scalars(select(Run.id).where(Run.state == CREATING).order_by(Run.id)))
