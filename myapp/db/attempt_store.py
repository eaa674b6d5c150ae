"""Attempts in the database: claim, heartbeat, finish, and the reconciler that repairs lost work.

Two workers can never run the same attempt: a claim locks the run row, requires the task
instance to be `queued`, and inserts the attempt under a unique (task instance, try number).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import Session

from myapp.core import engine as core
from myapp.core.model import PipelineSpec, TaskSpec
from myapp.core.states import RunState, TaskState, check_task_transition
from myapp.db.run_store import RunStore, _view
from myapp.db.tables import Pipeline, Run, TaskAttempt, TaskInstance

ACTIVE_TASK_STATES = [TaskState.QUEUED.value, TaskState.RUNNING.value, TaskState.UP_FOR_RETRY.value]


@dataclass(frozen=True)
class AttemptContext:
    """Everything an executor needs to run one attempt, read in the claim transaction."""

    attempt_id: int
    task_instance_id: int
    try_number: int
    run_id: int
    pipeline_id: int
    pipeline_name: str
    spec: PipelineSpec
    task: TaskSpec
    trigger: str
    execution_date: str
    params: Mapping[str, str]
    creator: str
    runner: str
    user_id: int | None
    token: str
    upstream_outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    debug_inputs: Mapping[str, str] | None = None
    deadline_at: datetime | None = None


@dataclass(frozen=True)
class AttemptResult:
    """How an attempt ended, as the executor saw it."""

    succeeded: bool
    exit_code: int | None = None
    message: str = ""
    outputs: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Any] = field(default_factory=dict)


class AttemptStore:
    """Transactional operations on attempts; shares the run store's locking and advancing."""

    def __init__(self, runs: RunStore) -> None:
        self.runs = runs
        self.db = runs.db
        self._names: dict[int, tuple[str, str]] = {}

    def claim(self, ti_id: int, worker: str, now: datetime) -> AttemptContext | None:
        """Start the next attempt of a queued task instance, or return None if not claimable."""
        with self.db.write() as s:
            # A shared lock on the run: claims of one run do not wait for each other, while
            # stop, timeout and finish (exclusive) are serialized against them.
            owner = select(TaskInstance.run_id).where(TaskInstance.id == ti_id).scalar_subquery()
            run = s.scalar(select(Run).where(Run.id == owner).with_for_update(**self.db.lock_options(shared=True)))
            if run is None:
                return None
            ti = s.scalar(select(TaskInstance).where(TaskInstance.id == ti_id)
                          .with_for_update(**self.db.lock_options()))
            if ti is None or ti.state != TaskState.QUEUED.value or run.state != RunState.RUNNING.value:
                return None
            if run.deadline_at is not None and now >= run.deadline_at:
                return None  # D8: no attempt starts after the run deadline
            return self._start_attempt(s, run, ti, worker, now)

    def _start_attempt(self, s: Session, run: Run, ti: TaskInstance, worker: str, now: datetime) -> AttemptContext:
        spec, _ = self.runs.specs.get(s, run.version_id)
        task = spec.task(ti.task_name)
        check_task_transition(TaskState(ti.state), TaskState.RUNNING)
        ti.state = TaskState.RUNNING.value
        ti.try_number += 1
        ti.started_at = ti.started_at or now
        deadline = now + timedelta(seconds=task.timeout) if task.timeout else None
        attempt = TaskAttempt(
            task_instance_id=ti.id, try_number=ti.try_number, state="running", worker=worker,
            started_at=now, heartbeat_at=now, deadline_at=deadline, pod_names=[], container={}, events=[],
        )
        s.add(attempt)
        s.flush()
        pipeline_name, creator = self._pipeline_names(s, run.pipeline_id)
        return AttemptContext(
            attempt_id=attempt.id, task_instance_id=ti.id, try_number=ti.try_number, run_id=run.id,
            pipeline_id=run.pipeline_id, pipeline_name=pipeline_name, spec=spec, task=task,
            trigger=run.trigger, execution_date=run.execution_date_text, params=dict(run.params),
            creator=creator, runner=run.runner, user_id=run.created_by,
            token=self.runs.run_token(run.id), upstream_outputs=self._upstream_outputs(s, run, task),
            debug_inputs=dict(ti.inputs) if run.debug_task else None, deadline_at=deadline,
        )

    def _pipeline_names(self, s: Session, pipeline_id: int) -> tuple[str, str]:
        # A pipeline's name and creator never change, so each worker process looks them up once.
        hit = self._names.get(pipeline_id)
        if hit is None:
            pipeline = s.get(Pipeline, pipeline_id)
            assert pipeline is not None
            hit = (pipeline.name, _username(s, pipeline.created_by))
            if len(self._names) > 10_000:
                self._names.clear()
            self._names[pipeline_id] = hit
        return hit

    def _upstream_outputs(self, s: Session, run: Run, task: TaskSpec) -> dict[str, dict[str, Any]]:
        names = {b.task for b in task.inputs if b.source == "task" and b.task}
        if not names or run.debug_task:
            return {}
        rows = s.execute(select(TaskInstance.task_name, TaskInstance.outputs).where(
            TaskInstance.run_id == run.id, TaskInstance.task_name.in_(names))).all()
        return {name: dict(outputs or {}) for name, outputs in rows}

    def record_process(self, attempt_id: int, *, pid: int | None = None,
                       pod_names: Sequence[str] | None = None, container: Mapping[str, Any] | None = None) -> None:
        """Remember where an attempt runs (process id or pods) for the run page."""
        values: dict[str, Any] = {}
        if pid is not None:
            values["pid"] = pid
        if pod_names is not None:
            values["pod_names"] = list(pod_names)
        if container is not None:
            values["container"] = dict(container)
        if values:
            with self.db.write() as s:
                self.db.relax_durability(s)
                s.execute(update(TaskAttempt).where(TaskAttempt.id == attempt_id).values(**values))

    def heartbeat(self, attempt_id: int, now: datetime, *, pid: int | None = None,
                  container: Mapping[str, Any] | None = None) -> bool:
        """Refresh an attempt's heartbeat (and where it runs); return False when it must be killed."""
        values: dict[str, Any] = {"heartbeat_at": now}
        if pid is not None:
            values["pid"] = pid
        if container is not None:
            values["container"] = dict(container)
        with self.db.write() as s:
            self.db.relax_durability(s)
            result = s.execute(
                update(TaskAttempt).where(TaskAttempt.id == attempt_id, TaskAttempt.state == "running")
                .values(**values).execution_options(synchronize_session=False))
            return bool(getattr(result, "rowcount", 0))

    def finish(self, attempt_id: int, result: AttemptResult, now: datetime) -> None:
        """Record how an attempt ended, move its task on, and dispatch what became ready."""
        with self.db.write() as s:
            queued = self.finish_in(s, attempt_id, result, now)
        self.runs.dispatch(queued)

    def finish_in(self, s: Session, attempt_id: int, result: AttemptResult, now: datetime) -> list[int]:
        """Apply an attempt's end inside the caller's transaction; return task ids to dispatch."""
        owner = (select(TaskInstance.run_id)
                 .join(TaskAttempt, TaskAttempt.task_instance_id == TaskInstance.id)
                 .where(TaskAttempt.id == attempt_id).scalar_subquery())
        run = s.scalar(select(Run).where(Run.id == owner).with_for_update(**self.db.lock_options()))
        if run is None:
            return []
        found = s.execute(select(TaskAttempt, TaskInstance)
                          .join(TaskInstance, TaskInstance.id == TaskAttempt.task_instance_id)
                          .where(TaskAttempt.id == attempt_id)
                          .execution_options(populate_existing=True)).first()
        assert found is not None
        attempt, ti = found
        attempt.exit_code = result.exit_code
        attempt.ended_at = attempt.ended_at or now
        if attempt.state != "running":  # stopped, timed out by the run, or declared lost meanwhile
            attempt.message = (attempt.message + "; " if attempt.message else "") + result.message
            return []
        attempt.state = "succeeded" if result.succeeded else "failed"
        attempt.message = result.message
        if result.inputs:
            ti.inputs = dict(result.inputs)
        return self._advance_task(s, run, ti, result, now)

    def _advance_task(self, s: Session, run: Run, ti: TaskInstance, result: AttemptResult, now: datetime) -> list[int]:
        spec, _ = self.runs.specs.get(s, run.version_id)
        dag = self.runs.dag_of(s, run)
        if result.succeeded:
            ti.state, ti.outputs, ti.message, ti.ended_at = TaskState.SUCCEEDED.value, dict(result.outputs), "", now
            return self.runs.advance_in(s, run, now, dag.downstream.get(ti.task_name, ()))
        task = spec.task(ti.task_name)
        state, next_try = core.after_failed_attempt(_view(ti), now, task.retry_delay, run.deadline_at)
        ti.state, ti.next_try_at, ti.message = state.value, next_try, result.message
        if state is TaskState.FAILED:
            ti.ended_at = now
            self.runs._set_states(s, run.id, dag.descendants(ti.task_name), TaskState.UPSTREAM_FAILED, now,
                                  message=f"upstream task {ti.task_name!r} failed")
            return self.runs.advance_in(s, run, now, ())
        return self.runs.advance_in(s, run, now, (ti.task_name,))

    # ----- the reconciler ---------------------------------------------------------------
    def reconcile(self, now: datetime, *, heartbeat_timeout: float, requeue_after: float) -> dict[str, int]:
        """Repair what lost messages or dead workers left behind; return counts per repair."""
        counts = {
            "timed_out_runs": self._time_out_runs(now),
            "lost_attempts": self._fail_lost_attempts(now, heartbeat_timeout),
            "requeued": self._requeue_stale(now, requeue_after),
            "advanced_runs": self._advance_idle_runs(now),
        }
        return counts

    def _time_out_runs(self, now: datetime) -> int:
        with self.db.read() as s:
            ids = s.scalars(select(Run.id).where(
                Run.state.in_([RunState.RUNNING.value, RunState.QUEUED.value]),
                Run.deadline_at.is_not(None), Run.deadline_at <= now)).all()
        for run_id in ids:
            with self.db.write() as s:
                run = self.runs.lock_run(s, run_id)
                if run.state in (RunState.RUNNING.value, RunState.QUEUED.value):
                    self.runs.halt_in(s, run, now, RunState.FAILED, f"run timed out after {run.timeout} s")
        return len(ids)

    def _fail_lost_attempts(self, now: datetime, heartbeat_timeout: float) -> int:
        limit = now - timedelta(seconds=heartbeat_timeout)
        with self.db.read() as s:
            rows = s.execute(select(TaskAttempt.id, TaskAttempt.worker, TaskAttempt.heartbeat_at).where(
                TaskAttempt.state == "running", TaskAttempt.heartbeat_at < limit)).all()
        for attempt_id, worker, beat in rows:
            msg = f"worker {worker or '?'} lost: no heartbeat since {beat:%Y-%m-%d %H:%M:%S} UTC"
            self.finish(attempt_id, AttemptResult(succeeded=False, message=msg), now)
        return len(rows)

    def _requeue_stale(self, now: datetime, requeue_after: float) -> int:
        limit = now - timedelta(seconds=requeue_after)
        with self.db.write() as s:
            ids = s.scalars(select(TaskInstance.id).where(
                TaskInstance.state == TaskState.QUEUED.value, TaskInstance.queued_at < limit)).all()
            if ids:
                s.execute(update(TaskInstance).where(TaskInstance.id.in_(ids)).values(queued_at=now)
                          .execution_options(synchronize_session=False))
        self.runs.dispatch(list(ids))
        return len(ids)

    def _advance_idle_runs(self, now: datetime) -> int:
        """Advance runs with retries due, runs never started, and running runs with nothing active."""
        busy = exists().where(and_(TaskInstance.run_id == Run.id, TaskInstance.state.in_(
            [TaskState.QUEUED.value, TaskState.RUNNING.value])))
        retry_due = exists().where(and_(TaskInstance.run_id == Run.id,
                                        TaskInstance.state == TaskState.UP_FOR_RETRY.value,
                                        TaskInstance.next_try_at <= now))
        with self.db.read() as s:
            ids = s.scalars(select(Run.id).where(
                (Run.state == RunState.QUEUED.value)
                | ((Run.state == RunState.RUNNING.value) & (~busy | retry_due)))).all()
        queued: list[int] = []
        for run_id in ids:
            with self.db.write() as s:
                run = self.runs.lock_run(s, run_id)
                if run.state == RunState.QUEUED.value:
                    queued += self.runs._start(s, run, now)
                else:
                    queued += self.runs.advance_in(s, run, now)
        self.runs.dispatch(queued)
        return len(ids)

    def claimable(self, limit: int = 100) -> list[int]:
        """Return ids of queued task instances (for the burst worker), oldest first."""
        with self.db.read() as s:
            return list(s.scalars(select(TaskInstance.id).where(TaskInstance.state == TaskState.QUEUED.value)
                                  .order_by(TaskInstance.queued_at, TaskInstance.id).limit(limit)).all())

    def has_pending_work(self, now: datetime) -> bool:
        """Return True while some task is queued, running or up for retry in an active run."""
        with self.db.read() as s:
            return bool(s.scalar(select(exists().where(TaskInstance.state.in_(ACTIVE_TASK_STATES)))))


def _username(s: Session, user_id: int | None) -> str:
    if user_id is None:
        return ""
    from flask_appbuilder.security.sqla.models import User

    user = s.get(User, user_id)
    return user.username if user is not None else ""
