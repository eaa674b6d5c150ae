"""Runs in the database: create, advance, stop, retry, copy, mark — each one transaction.

Every method locks the run row first (FOR UPDATE on PostgreSQL/MySQL, the writer lock on
SQLite), loads what the core needs, applies the core's decision, and only after COMMIT hands the
task instances it queued to `dispatch` (a Celery send, or a local queue). A lost message is
repaired by `reconcile` in attempt_store.py; the database is the source of truth.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, object_session

from myapp.alerts import enqueue_in
from myapp.core import engine as core
from myapp.core.dag import Dag
from myapp.core.errors import Conflict, NotFound, SpecError
from myapp.core.model import PipelineSpec
from myapp.core.states import (
    RUN_MARK_TARGETS,
    RUN_MARKABLE,
    RUN_RETRYABLE,
    RUN_TERMINAL,
    TASK_UNFINISHED,
    RunState,
    TaskState,
    Trigger,
    check_run_transition,
)
from myapp.db.schedule_store import wake_in
from myapp.db.session import Database
from myapp.db.specs import VersionSpecs
from myapp.db.tables import Pipeline, Run, TaskAttempt, TaskInstance

Dispatch = Callable[[Sequence[int]], None]


@dataclass(frozen=True)
class NewRun:
    """What a caller asks for when starting a run."""

    pipeline_id: int
    trigger: Trigger
    execution_date: datetime
    params: Mapping[str, str]
    user_id: int | None = None
    runner: str = ""
    version_id: int | None = None
    debug_task: str | None = None
    debug_inputs: Mapping[str, str] | None = None
    copied_from: int | None = None


def format_execution_date(instant: datetime, timezone: str) -> str:
    """Render an instant as `%Y-%m-%d %H:%M:%S` in the pipeline's zone (R2)."""
    return instant.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S")


class RunStore:
    """Transactional operations on runs and their task instances."""

    def __init__(self, db: Database, specs: VersionSpecs, dispatch: Dispatch, *, secret: str) -> None:
        self.db = db
        self.specs = specs
        self.dispatch = dispatch
        self._secret = secret.encode()

    # ----- tokens ------------------------------------------------------------------------
    def run_token(self, run_id: int) -> str:
        """Return the run-scoped token handed to tasks as MYAPP_TOKEN."""
        mac = hmac.new(self._secret, f"run:{run_id}".encode(), hashlib.sha256).hexdigest()[:40]
        return f"run-{run_id}.{mac}"

    def check_token(self, token: str) -> int | None:
        """Return the run id a token belongs to while that run is unfinished, else None."""
        head, _, _mac = token.partition(".")
        if not head.startswith("run-") or not head[4:].isdigit():
            return None
        run_id = int(head[4:])
        if not hmac.compare_digest(self.run_token(run_id), token):
            return None
        with self.db.read() as s:
            state = s.scalar(select(Run.state).where(Run.id == run_id))
        return run_id if state is not None and RunState(state) not in RUN_TERMINAL else None

    # ----- creation ----------------------------------------------------------------------
    def create_run(self, new: NewRun, now: datetime) -> int:
        """Create a run (queued), start it, and dispatch its first tasks; return its id."""
        with self.db.write() as s:
            run_id, queued = self.create_in(s, new, now)
        self.dispatch(queued)
        return run_id

    def create_in(self, s: Session, new: NewRun, now: datetime) -> tuple[int, list[int]]:
        """Create and start a run inside the caller's transaction; return (id, queued ti ids)."""
        pipeline = s.get(Pipeline, new.pipeline_id)
        if pipeline is None:
            raise NotFound(f"pipeline {new.pipeline_id} not found")
        version_id = new.version_id or pipeline.current_version_id
        if version_id is None:
            raise Conflict(f"pipeline {pipeline.name!r} has no version yet")
        spec, dag = self.specs.get(s, version_id)
        params = check_params(spec, new.params)
        names = [new.debug_task] if new.debug_task else list(dag.names)
        if new.debug_task and new.debug_task not in dag.names:
            raise NotFound(f"task {new.debug_task!r} not found in pipeline {spec.name!r}")
        run = Run(
            pipeline_id=pipeline.id, version_id=version_id, project_id=pipeline.project_id,
            trigger=str(new.trigger), state=RunState.QUEUED.value, params=params,
            execution_date=new.execution_date,
            execution_date_text=format_execution_date(new.execution_date, pipeline.timezone),
            debug_task=new.debug_task, copied_from_id=new.copied_from, created_by=new.user_id,
            runner=new.runner, timeout=spec.timeout, created_at=now, updated_at=now,
        )
        s.add(run)
        s.flush()
        for name in names:
            task = spec.task(name)
            s.add(TaskInstance(
                run_id=run.id, task_name=name, state=TaskState.PENDING.value, try_number=0,
                max_tries=task.retries + 1,
                inputs=dict(new.debug_inputs or {}) if new.debug_task else {},
                outputs={},
            ))
        s.flush()
        return run.id, self._start(s, run, now)

    def _start(self, s: Session, run: Run, now: datetime) -> list[int]:
        check_run_transition(RunState(run.state), RunState.RUNNING)
        run.state = RunState.RUNNING.value
        run.started_at = run.started_at or now
        run.updated_at = now
        if run.timeout:
            run.deadline_at = now + timedelta(seconds=run.timeout)
        return self.advance_in(s, run, now)

    # ----- advancing ---------------------------------------------------------------------
    def lock_run(self, s: Session, run_id: int) -> Run:
        """Return the run row, locked for this transaction."""
        run: Run | None = s.scalar(select(Run).where(Run.id == run_id).with_for_update(**self.db.lock_options()))
        if run is None:
            raise NotFound(f"run {run_id} not found")
        return run

    def dag_of(self, s: Session, run: Run) -> Dag:
        """Return the DAG a run executes (one node for a debug run)."""
        spec, dag = self.specs.get(s, run.version_id)
        if run.debug_task:
            return Dag((run.debug_task,), {run.debug_task: ()})
        return dag

    def advance_in(
        self, s: Session, run: Run, now: datetime, candidates: Iterable[str] | None = None
    ) -> list[int]:
        """Queue what is ready, propagate failures, finish the run if nothing can run any more.

        With `candidates` only those tasks (and their upstreams) are examined — the
        event-driven path after one task finishes; without, the whole run (reconciler, retry).
        """
        if RunState(run.state) is not RunState.RUNNING:
            return []
        dag = self.dag_of(s, run)
        names = set(dag.names) if candidates is None else set(candidates)
        if not names:
            self.finish_if_done(s, run, now)
            return []
        needed = names | {u for n in names for u in dag.upstream.get(n, ())}
        query = select(TaskInstance).where(TaskInstance.run_id == run.id)
        if candidates is not None:
            query = query.where(TaskInstance.task_name.in_(needed))
        rows = s.scalars(query).all()
        views = {r.task_name: _view(r) for r in rows}
        blocked = core.blocked_by_failure(dag, views, names)
        if blocked:
            self._set_states(s, run.id, blocked, TaskState.UPSTREAM_FAILED, now,
                             message="an upstream task did not succeed")
        ready = core.ready_to_queue(dag, views, names, now)
        queued = self._queue(s, [r for r in rows if r.task_name in ready], now)
        self.finish_if_done(s, run, now)
        return queued

    def _queue(self, s: Session, rows: Sequence[TaskInstance], now: datetime) -> list[int]:
        for row in rows:
            row.state = TaskState.QUEUED.value
            row.queued_at = now
            row.next_try_at = None
        return [row.id for row in rows]

    def _set_states(
        self, s: Session, run_id: int, names: Iterable[str], target: TaskState, now: datetime, *,
        message: str = "", only_from: Iterable[TaskState] = (TaskState.PENDING,),
    ) -> None:
        s.execute(
            update(TaskInstance)
            .where(TaskInstance.run_id == run_id, TaskInstance.task_name.in_(list(names)),
                   TaskInstance.state.in_([st.value for st in only_from]))
            .values(state=target.value, ended_at=now, message=message)
            .execution_options(synchronize_session=False)
        )

    def finish_if_done(self, s: Session, run: Run, now: datetime) -> None:
        """End the run when no task instance is unfinished any more."""
        unfinished = select(TaskInstance.id).where(
            TaskInstance.run_id == run.id, TaskInstance.state.in_([t.value for t in TASK_UNFINISHED])).limit(1)
        if s.scalar(unfinished) is not None:
            return
        counts = dict(s.execute(
            select(TaskInstance.state, func.count()).where(TaskInstance.run_id == run.id)
            .group_by(TaskInstance.state)).all())
        outcome = core.run_outcome(TaskState(k) for k in counts)
        if outcome is not None:
            self._end_run(run, outcome, now, "" if outcome is RunState.SUCCEEDED else "a task failed")

    def _end_run(self, run: Run, state: RunState, now: datetime, message: str) -> None:
        check_run_transition(RunState(run.state), state)
        run.state = state.value
        run.ended_at = now
        run.updated_at = now
        if message:
            run.message = message
        s = object_session(run)
        if s is not None:  # same transaction: an alert outbox row, and a scheduler wake-up for cron runs
            enqueue_in(s, run, state, now)
            wake_in(s, run)

    # ----- operator actions --------------------------------------------------------------
    def stop_run(self, run_id: int, now: datetime, by: str = "") -> None:
        """Stop a run: kill running attempts, every unfinished task becomes stopped (R10)."""
        with self.db.write() as s:
            run = self.lock_run(s, run_id)
            if RunState(run.state) in RUN_TERMINAL:
                raise Conflict(f"run {run_id} is already {run.state}")
            self.halt_in(s, run, now, RunState.STOPPED, f"stopped by {by}" if by else "stopped")

    def halt_in(self, s: Session, run: Run, now: datetime, state: RunState, message: str) -> None:
        """End an active run as stopped or failed(timeout), killing its running attempts."""
        rows = s.scalars(select(TaskInstance).where(
            TaskInstance.run_id == run.id, TaskInstance.state.in_([t.value for t in TASK_UNFINISHED]))).all()
        states = {r.task_name: TaskState(r.state) for r in rows}
        targets = core.on_stop(states) if state is RunState.STOPPED else core.on_run_timeout(states)
        for row in rows:
            row.state = targets[row.task_name].value
            row.ended_at = now
            row.message = message
        s.execute(
            update(TaskAttempt)
            .where(TaskAttempt.task_instance_id.in_([r.id for r in rows]), TaskAttempt.state == "running")
            .values(state="stopped" if state is RunState.STOPPED else "failed",
                    kill_requested=state.value, ended_at=now, message=message)
            .execution_options(synchronize_session=False)
        )
        self._end_run(run, state, now, message)

    def retry_run(self, run_id: int, now: datetime) -> None:
        """Send failed, upstream_failed and stopped tasks of a finished run back to pending."""
        with self.db.write() as s:
            run = self.lock_run(s, run_id)
            if RunState(run.state) not in RUN_RETRYABLE:
                raise Conflict(f"run {run_id} is {run.state}; only failed or stopped runs can be retried")
            spec, _ = self.specs.get(s, run.version_id)
            rows = s.scalars(select(TaskInstance).where(TaskInstance.run_id == run.id)).all()
            budgets = core.to_retry({r.task_name: _view(r) for r in rows},
                                    {t.name: t.retries for t in spec.tasks})
            for row in rows:
                if row.task_name in budgets:
                    row.state = TaskState.PENDING.value
                    row.max_tries = budgets[row.task_name]
                    row.message, row.ended_at, row.next_try_at = "", None, None
            run.state, run.ended_at, run.message = RunState.QUEUED.value, None, ""
            queued = self._start(s, run, now)
        self.dispatch(queued)

    def copy_run(self, run_id: int, now: datetime, params: Mapping[str, str] | None = None,
                 user_id: int | None = None, runner: str = "") -> int:
        """Start a new manual run of the same version with the same (or edited) parameters."""
        with self.db.read() as s:
            src = s.get(Run, run_id)
            if src is None:
                raise NotFound(f"run {run_id} not found")
            merged = {**src.params, **(params or {})}
            new = NewRun(
                pipeline_id=src.pipeline_id, version_id=src.version_id, trigger=Trigger.MANUAL,
                execution_date=src.execution_date, params=merged, user_id=user_id, runner=runner,
                copied_from=src.id, debug_task=src.debug_task,
                debug_inputs=self._debug_inputs(s, src),
            )
        return self.create_run(new, now)

    def _debug_inputs(self, s: Session, run: Run) -> dict[str, str] | None:
        if not run.debug_task:
            return None
        ti = s.scalar(select(TaskInstance).where(TaskInstance.run_id == run.id))
        return dict(ti.inputs) if ti else None

    def mark_run(self, run_id: int, state: RunState, now: datetime, by: str = "") -> None:
        """Overwrite a finished run's outcome (an operator's mark)."""
        if state not in RUN_MARK_TARGETS:
            raise Conflict(f"a run can only be marked {' or '.join(sorted(RUN_MARK_TARGETS))}")
        with self.db.write() as s:
            run = self.lock_run(s, run_id)
            if RunState(run.state) not in RUN_MARKABLE:
                raise Conflict(f"run {run_id} is {run.state}; only finished runs can be marked")
            run.message = f"marked {state.value} by {by or 'operator'} (was {run.state})"
            run.state = state.value
            run.updated_at = now
            wake_in(s, run)  # a depends_on_past successor may launch now


def _view(row: TaskInstance) -> core.TaskView:
    return core.TaskView(row.task_name, TaskState(row.state), row.try_number, row.max_tries, row.next_try_at)


def check_params(spec: PipelineSpec, supplied: Mapping[str, Any]) -> dict[str, str]:
    """Return the run's parameters: declared ones only, required ones present."""
    declared = {p.name: p for p in spec.parameters}
    unknown = sorted(set(supplied) - set(declared))
    if unknown:
        raise SpecError("params", f"unknown parameter(s) {', '.join(unknown)}; "
                        f"declared: {', '.join(declared) or 'none'}")
    out = {k: str(v) for k, v in supplied.items()}
    missing = [p.name for p in spec.parameters if p.required and p.default is None and p.name not in out]
    if missing:
        raise SpecError("params", f"missing required parameter(s) {', '.join(missing)}")
    return out
