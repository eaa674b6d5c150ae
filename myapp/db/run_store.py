"""Runs in the database: create, advance, stop, retry, copy, mark — each one transaction.

Every method locks the run row first (FOR UPDATE on PostgreSQL/MySQL, the writer lock on
SQLite), loads what the core needs, applies the core's decision, and only after COMMIT hands the
task instances it queued to `dispatch` (a Celery send, or a local queue). A lost message is
repaired by `reconcile` in attempt_store.py; the database is the source of truth.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session, object_session

from myapp.alerts import enqueue_in
from myapp.core import engine as core
from myapp.core.dag import Dag
from myapp.core.errors import Conflict, MyappError, NotFound
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
from myapp.db.bulk import is_in
from myapp.db.run_drafts import (
    PipelineRow,
    RunDraft,
    draft_run,
    insert_started,
    started_rows,
    version_of,
)
from myapp.db.schedule_store import wake_in
from myapp.db.session import Database
from myapp.db.specs import VersionSpecs
from myapp.db.tables import Pipeline, Run, TaskAttempt, TaskInstance

Dispatch = Callable[[Sequence[int]], None]

log = logging.getLogger(__name__)


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


def _no_wake(pipeline_ids: Sequence[int]) -> None:
    """Without a broker the next beat pass (or `myapp schedule tick`) looks at woken pipelines."""


class RunStore:
    """Transactional operations on runs and their task instances."""

    def __init__(self, db: Database, specs: VersionSpecs, dispatch: Dispatch, *, secret: str) -> None:
        self.db = db
        self.specs = specs
        self.dispatch = dispatch
        self.wake: Callable[[Sequence[int]], None] = _no_wake   # ask for a scheduler pass (queue.celery_app.use_celery)
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
        row = s.get(Pipeline, new.pipeline_id)
        pipeline = None if row is None else PipelineRow(row.id, row.name, row.project_id, row.current_version_id,
                                                        row.timezone)
        version_id = version_of(new, pipeline)
        assert pipeline is not None  # version_of raised otherwise
        spec, dag = self.specs.get(s, version_id)
        # the batch path (two INSERTs whatever the number of tasks) when the start only queues tasks
        return self.create_drafts_in(s, [draft_run(new, pipeline, version_id, spec, dag, now)], now)[0]

    def draft_many_in(self, s: Session, news: Sequence[NewRun], now: datetime) -> list[RunDraft | MyappError]:
        """Check many new runs as `create_in` does, writing nothing: a draft, or the refusal, for each.

        Two statements for the whole batch (the pipelines, the versions not cached yet).
        """
        ids = sorted({new.pipeline_id for new in news})
        pipelines = {row.id: PipelineRow(*row) for row in s.execute(
            select(Pipeline.id, Pipeline.name, Pipeline.project_id, Pipeline.current_version_id, Pipeline.timezone)
            .where(is_in(Pipeline.id, ids, s.get_bind().dialect.name)))} if ids else {}
        versions: list[int | MyappError] = []
        for new in news:
            try:
                versions.append(version_of(new, pipelines.get(new.pipeline_id)))
            except MyappError as exc:
                versions.append(exc)
        specs = self.specs.get_many(s, {v for v in versions if isinstance(v, int)})
        drafts: list[RunDraft | MyappError] = []
        for new, version in zip(news, versions, strict=True):
            try:
                if isinstance(version, MyappError):
                    raise version
                if version not in specs:
                    raise NotFound(f"pipeline version {version} not found")
                drafts.append(draft_run(new, pipelines[new.pipeline_id], version, *specs[version], now))
            except MyappError as exc:
                drafts.append(exc)
        return drafts

    def create_drafts_in(self, s: Session, drafts: Sequence[RunDraft], now: datetime) -> list[tuple[int, list[int]]]:
        """Create and start drafted runs in the caller's transaction; return (id, queued ti ids) for each.

        Runs whose start only queues their ready tasks (every cron run) are inserted already
        started, in two statements for all of them; any other goes through `create_in`'s path.
        """
        started = [started_rows(draft, now) for draft in drafts]
        bulk = iter(insert_started(s, [rows for rows in started if rows is not None]))
        return [next(bulk) if rows is not None else self._insert_draft(s, draft, now)
                for draft, rows in zip(drafts, started, strict=True)]

    def _insert_draft(self, s: Session, draft: RunDraft, now: datetime) -> tuple[int, list[int]]:
        run = Run(**draft.run)
        s.add(run)
        s.flush()
        for task in draft.tasks:
            s.add(TaskInstance(run_id=run.id, **task))
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

    def dag_of(self, s: Session, run: RunHead) -> Dag:
        """Return the DAG a run executes (one node for a debug run)."""
        spec, dag = self.specs.get(s, run.version_id)
        if run.debug_task:
            return Dag((run.debug_task,), {run.debug_task: ()})
        return dag

    def advance_in(
        self, s: Session, run: RunHead, now: datetime, candidates: Iterable[str] | None = None
    ) -> list[int]:
        """Queue what is ready, propagate failures, finish the run if nothing can run any more.

        With `candidates` only those tasks (and their upstreams) are examined — the
        event-driven path after one task finishes; without, the whole run (reconciler, retry).
        The run must be locked by the caller.
        """
        if RunState(run.state) is not RunState.RUNNING:
            return []
        s.flush()  # the reads below go straight to the connection: they must see the caller's changes
        dag = self.dag_of(s, run)
        names = set(dag.names) if candidates is None else set(candidates)
        if not names:
            self.finish_if_done(s, run, now)
            return []
        needed = names | {u for n in names for u in dag.upstream.get(n, ())}
        query = _TASK_VIEWS.where(TaskInstance.run_id == run.id)
        if candidates is not None:
            query = query.where(TaskInstance.task_name.in_(needed))
        rows = s.connection().execute(query).all()
        views = {r.task_name: core.TaskView(r.task_name, TaskState(r.state), r.try_number, r.max_tries,
                                            r.next_try_at) for r in rows}
        blocked = core.blocked_by_failure(dag, views, names)
        if blocked:
            self._set_states(s, run.id, blocked, TaskState.UPSTREAM_FAILED, now,
                             message="an upstream task did not succeed")
        ready = core.ready_to_queue(dag, views, names, now)
        queued = self._queue(s, [r.id for r in rows if r.task_name in ready], now)
        if not queued:  # else the run goes on: what was just queued is unfinished
            self.finish_if_done(s, run, now)
        return queued

    def _queue(self, s: Session, ids: Sequence[int], now: datetime) -> list[int]:
        if ids:  # one UPDATE; "evaluate" keeps task instances loaded in this session up to date
            s.execute(update(TaskInstance).where(TaskInstance.id.in_(ids))
                      .values(state=TaskState.QUEUED.value, queued_at=now, next_try_at=None),
                      execution_options={"synchronize_session": "evaluate"})
        return list(ids)

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

    def finish_if_done(self, s: Session, run: RunHead, now: datetime) -> None:
        """End the run when no task instance is unfinished any more."""
        if s.connection().execute(_UNFINISHED, {"run_id": run.id}).first() is not None:
            return
        counts = dict(s.execute(
            select(TaskInstance.state, func.count()).where(TaskInstance.run_id == run.id)
            .group_by(TaskInstance.state)).all())
        outcome = core.run_outcome(TaskState(k) for k in counts)
        if outcome is not None:
            ended = s.get(Run, run.id)  # the caller's object if it holds one; locked by the caller either way
            assert ended is not None
            self._end_run(ended, outcome, now, "" if outcome is RunState.SUCCEEDED else "a task failed")

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
            self._wake_in(s, run)

    def _wake_in(self, s: Session, run: Run) -> None:
        """A cron run ended (or was marked): its pipeline is due at once, and after COMMIT a scheduler
        pass for it is asked for (`wake`), so a backfill under depends_on_past or max_active_runs
        goes on as soon as a run ends instead of at the next beat."""
        if run.trigger != Trigger.CRON.value:
            return
        wake_in(s, run)
        woken: set[int] | None = s.info.get("woken_pipelines")
        if woken is None:
            woken = s.info["woken_pipelines"] = set()
            s.info.setdefault("after_commit", []).append(lambda: self._send_wake(sorted(woken)))
        woken.add(run.pipeline_id)

    def _send_wake(self, pipeline_ids: Sequence[int]) -> None:
        try:
            self.wake(pipeline_ids)
        except Exception:  # noqa: BLE001  the next beat pass sees them due anyway
            log.warning("asking for a scheduler pass for pipelines %s failed; the next beat does it",
                        pipeline_ids, exc_info=True)

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
            self._wake_in(s, run)  # a depends_on_past successor may launch now


class RunHead(Protocol):
    """The run columns advancing reads: an ORM `Run`, or a `LockedRun` read with the run lock."""

    @property
    def id(self) -> int: ...
    @property
    def state(self) -> str: ...
    @property
    def version_id(self) -> int: ...
    @property
    def debug_task(self) -> str | None: ...


@dataclass(frozen=True)
class LockedRun:
    """A run's head, read by a statement that locked its row (the attempt store's finish)."""

    id: int
    state: str
    version_id: int
    debug_task: str | None
    deadline_at: datetime | None


_TASK_VIEWS = select(TaskInstance.id, TaskInstance.task_name, TaskInstance.state, TaskInstance.try_number,
                     TaskInstance.max_tries, TaskInstance.next_try_at)
_UNFINISHED = (select(TaskInstance.id)
               .where(TaskInstance.run_id == bindparam("run_id"),
                      TaskInstance.state.in_(sorted(t.value for t in TASK_UNFINISHED)))
               .limit(1))


def _view(row: TaskInstance) -> core.TaskView:
    return core.TaskView(row.task_name, TaskState(row.state), row.try_number, row.max_tries, row.next_try_at)

