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
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session, object_session

from myapp.core import engine as core
from myapp.core.dag import Dag
from myapp.core.errors import Conflict, MyappError, NotFound
from myapp.core.params import MASK
from myapp.core.ports import Dispatch as Dispatch  # re-exported for older imports
from myapp.core.slices import parent_of
from myapp.core.states import (
    ATTEMPT,
    RUN_MARK_TARGETS,
    RUN_MARKABLE,
    RUN_RETRYABLE,
    RUN_TERMINAL,
    TASK_RETRYABLE,
    TASK_UNFINISHED,
    AttemptState,
    RunState,
    TaskState,
    Trigger,
    check_run_transition,
)
from myapp.core.trigger_rules import DEFAULT_RULE, QUEUE, Outcome, TriggerRule
from myapp.core.values import NewRun as NewRun
from myapp.db.alert_outbox import enqueue_in
from myapp.db.bulk import is_in, update_rows
from myapp.db.guards import unfinished
from myapp.db.run_drafts import (
    PipelineRow,
    RunDraft,
    draft_run,
    insert_started,
    started_rows,
    version_of,
)
from myapp.db.schedule_store import Wake, no_wake, wake_after_commit, wake_in
from myapp.db.sealed import open_tree
from myapp.db.session import Database
from myapp.db.slice_store import retry_budgets, slice_ended, sliced_names, start_sliced
from myapp.db.specs import VersionSpecs
from myapp.db.tables import Pipeline, Run, TaskAttempt, TaskInstance

log = logging.getLogger(__name__)


def _no_create(run_ids: Sequence[int]) -> None:
    """Ask nobody: without a queue, `creating` runs wait for an explicit finish_creation."""


class RunStore:
    """Transactional operations on runs and their task instances."""

    def __init__(self, db: Database, specs: VersionSpecs, dispatch: Dispatch, *, secret: str) -> None:
        self.db = db
        self.specs = specs
        self.dispatch = dispatch
        self.wake: Wake = no_wake  # ask for a scheduler pass (queue.celery_app.use_celery)
        # ask a worker to create `creating` runs (db/run_creation.py; queue.celery_app.use_celery);
        # without a queue they wait for whoever calls finish_creation (tests, the reconciler's resend)
        self.create: Dispatch = _no_create
        self.dialect = db.engine.dialect.name
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
        pipeline = (
            None if row is None else PipelineRow(row.id, row.name, row.project_id, row.current_version_id, row.timezone)
        )
        version_id = version_of(new, pipeline)
        assert pipeline is not None  # version_of raised otherwise
        spec, dag = self.specs.get(s, version_id)
        # the batch path (two INSERTs whatever the number of tasks) when the start only queues tasks
        return self.create_drafts_in(s, [draft_run(new, pipeline, version_id, spec, dag, now)], now)[0]

    def draft_many_in(
        self,
        s: Session,
        news: Sequence[NewRun],
        now: datetime,
        pipelines: Mapping[int, PipelineRow] | None = None,
    ) -> list[RunDraft | MyappError]:
        """Check many new runs as `create_in` does, writing nothing: a draft, or the refusal, for each.

        Two statements for the whole batch (the pipelines, the versions not cached yet); one when the
        caller gives the `pipelines` rows it read (and locked) in its transaction (the scheduler's claim).
        """
        if pipelines is None:
            ids = sorted({new.pipeline_id for new in news})
            pipelines = (
                {
                    row.id: PipelineRow(*row)
                    for row in s.execute(
                        select(
                            Pipeline.id,
                            Pipeline.name,
                            Pipeline.project_id,
                            Pipeline.current_version_id,
                            Pipeline.timezone,
                        ).where(is_in(Pipeline.id, ids, s.get_bind().dialect.name))
                    )
                }
                if ids
                else {}
            )
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
        return [
            next(bulk) if rows is not None else self._insert_draft(s, draft, now)
            for draft, rows in zip(drafts, started, strict=True)
        ]

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

    def advance_in(self, s: Session, run: RunHead, now: datetime, candidates: Iterable[str] | None = None) -> list[int]:
        """Queue what is ready, propagate failures, finish the run if nothing can run any more.

        With `candidates` only those task instances are read, and each is ready by its count of
        upstream tasks still waiting (the event-driven path: a task up for retry); without, the
        whole run, counted again from its states (start, retry, the reconciler). The run must be
        locked by the caller.
        """
        if RunState(run.state) is not RunState.RUNNING:
            return []
        s.flush()  # the reads below go straight to the connection: they must see the caller's changes
        dag = self.dag_of(s, run)
        if candidates is None:
            return self._advance_all(s, run, dag, now)
        names = sorted(set(candidates))
        if not names:
            self.finish_if_done(s, run, now)
            return []
        rows = (
            s.connection()
            .execute(
                _TASK_VIEWS.where(TaskInstance.run_id == run.id, is_in(TaskInstance.task_name, names, self.dialect))
            )
            .all()
        )
        return self._queue_ready(s, run, dag, self._counted(s, run.id, dag, rows), now)

    def release_in(self, s: Session, run: RunHead, now: datetime, succeeded: str, others_unfinished: bool) -> list[int]:
        """After `succeeded` succeeded: release its downstream tasks (`end_in`)."""
        return self.end_in(s, run, now, succeeded, Outcome.SUCCESS, others_unfinished)

    def end_in(
        self, s: Session, run: RunHead, now: datetime, ended: str, outcome: Outcome, others_unfinished: bool = True
    ) -> list[int]:
        """After `ended` ended with `outcome`: take one off the count of each of its downstream tasks,
        let their trigger rules decide them (R13), and end the run if nothing is left. Reads and
        writes the downstream task instances only (O(own downstream edges)), however many upstreams
        they have; a task this skips or upstream-fails releases its own downstream tasks in turn.

        `others_unfinished`: whether another task instance of the run was unfinished, as read
        with the end. The run must be locked by the caller.
        """
        owner = parent_of(ended)
        if owner is not None:  # a slice (R15): its sliced task counts it, and ends after the last one
            return slice_ended(self, s, run, now, ended, owner[0])
        dag = self.dag_of(s, run)
        downstream = core.released_by(dag, ended)
        if not downstream:
            if not others_unfinished:
                self.finish_if_done(s, run, now)
            return []
        return self._settle(
            s,
            run,
            dag,
            self._release(s, run, dag, downstream, outcome),
            outcome,
            now,
            finish=not others_unfinished,
            ended=(ended,),
        )

    def queue_released(
        self,
        s: Session,
        run: RunHead,
        now: datetime,
        rows: Sequence[Any],
        others_unfinished: bool = True,
        succeeded: str = "",
    ) -> list[int]:
        """Decide the downstream tasks of `succeeded` whose counts its success took one off (`rows`:
        the counting task instances, `_TASK_VIEWS` rows, `counts_released_by`): queue those that are
        ready; end the run when none is and nothing else was unfinished."""
        dag = self.dag_of(s, run)
        return self._settle(
            s,
            run,
            dag,
            self._sharing(s, run, dag, rows, Outcome.SUCCESS),
            Outcome.SUCCESS,
            now,
            finish=not others_unfinished,
            ended=(succeeded,) if succeeded else (),
        )

    def _release(
        self, s: Session, run: RunHead, dag: Dag, names: Sequence[str], cause: Outcome, by: int = 1
    ) -> list[_Released]:
        """Take `by` off the counts `names` (whole groups sharing counts) wait on; return the task
        instances the end may decide, each with its count (`_sharing`)."""
        counters = list(dict.fromkeys(dag.counted_by.get(name, name) for name in names))
        return self._sharing(s, run, dag, self._take_off(s, run.id, counters, by), cause)

    def _sharing(self, s: Session, run: RunHead, dag: Dag, rows: Sequence[Any], cause: Outcome) -> list[_Released]:
        """Return the task instances that share the counts of the counting rows (`_TASK_VIEWS` rows,
        counts already taken off), each with that count, for an upstream end with `cause` to decide.

        A count known to be NULL is counted again from the upstream states (a run from before
        counts were kept). The tasks sharing a count are read (one SELECT for all) unless the end
        decides none of them whatever their states (`core.leaves_waiting`): an end that leaves a
        100-wide layer waiting changes one row and reads no other.
        """
        counts: dict[str, int | None] = {r.task_name: r.upstream_waiting for r in rows}
        unknown = [name for name, n in counts.items() if n is None]
        if unknown:
            counts.update(self._recount(s, run.id, dag, unknown))
        released: list[_Released] = []
        wanted: list[str] = []
        for row in rows:
            sharing = dag.sharing.get(row.task_name, (row.task_name,))
            count = counts[row.task_name]
            if len(sharing) == 1:
                released.append(_released(row, count))
            elif count is None or not core.leaves_waiting(self._rules_of(s, run, sharing), cause, count):
                wanted += sharing
        if wanted:
            rows = (
                s.connection()
                .execute(
                    _TASK_VIEWS.where(
                        TaskInstance.run_id == run.id, is_in(TaskInstance.task_name, wanted, self.dialect)
                    )
                )
                .all()
            )
            released += [_released(row, counts[dag.counted_by[row.task_name]]) for row in rows]
        return released

    def _counted(self, s: Session, run_id: int, dag: Dag, rows: Sequence[Any]) -> list[_Released]:
        """Return task instances (`_TASK_VIEWS` rows) each with the count it shares (`Dag.counted_by`);
        only a pending task's count decides anything (R13), so only those are looked up."""
        counter = {
            r.task_name: dag.counted_by.get(r.task_name, r.task_name)
            for r in rows
            if r.state == TaskState.PENDING.value
        }
        counts: dict[str, int | None] = {
            r.task_name: r.upstream_waiting for r in rows if counter.get(r.task_name) == r.task_name
        }
        others = sorted(set(counter.values()) - set(counts))
        if others:
            shared = select(TaskInstance.task_name, TaskInstance.upstream_waiting).where(
                TaskInstance.run_id == run_id, is_in(TaskInstance.task_name, others, self.dialect)
            )
            counts.update({name: n for name, n in s.connection().execute(shared)})
        unknown = sorted({name for name in counter.values() if counts.get(name) is None})
        if unknown:
            counts.update(self._recount(s, run_id, dag, unknown))
        return [
            _released(r, counts[counter[r.task_name]] if r.task_name in counter else r.upstream_waiting) for r in rows
        ]

    def _take_off(self, s: Session, run_id: int, names: Sequence[str], by: int) -> Sequence[Any]:
        conn = s.connection()
        where = (TaskInstance.run_id == run_id, is_in(TaskInstance.task_name, list(names), self.dialect))
        release = update(TaskInstance).where(*where).values(upstream_waiting=TaskInstance.upstream_waiting - by)
        if self.db.engine.dialect.update_returning:
            return conn.execute(release.returning(*RELEASED_COLUMNS)).all()
        conn.execute(release)  # MySQL: no UPDATE ... RETURNING; the run lock keeps the rows as written
        return conn.execute(_TASK_VIEWS.where(*where)).all()

    def _queue_ready(
        self, s: Session, run: RunHead, dag: Dag, rows: Sequence[Any], now: datetime, *, finish: bool = True
    ) -> list[int]:
        return self._settle(s, run, dag, rows, None, now, finish=finish)

    def _settle(
        self,
        s: Session,
        run: RunHead,
        dag: Dag,
        rows: Sequence[Any],
        outcome: Outcome | None,
        now: datetime,
        *,
        finish: bool,
        ended: Sequence[str] = (),
    ) -> list[int]:
        """Apply what the end of `ended` (`outcome`; None: none ended) decides for the released rows.

        Those it skips or upstream-fails (R13) end too: their downstream tasks are released in
        turn, once per ending upstream (a task two of them feed is taken down by two in one UPDATE).
        """
        queued: list[int] = []
        settled_any = False
        todo: list[tuple[Sequence[Any], Outcome | None, Sequence[str]]] = [(rows, outcome, ended)]
        while todo:
            batch, cause, by_whom = todo.pop()
            views = [_row_view(r) for r in batch]
            decided = core.on_release(views, cause, now, self._rules(s, run, [v.name for v in views]))
            queued += self._queue_ready_rows(s, run, [r for r in batch if decided.get(r.task_name) is QUEUE], now)
            for target, result in ((TaskState.SKIPPED, Outcome.SKIPPED), (TaskState.UPSTREAM_FAILED, Outcome.FAILED)):
                names = [v.name for v in views if decided.get(v.name) is target]
                if names:
                    settled_any = True
                    self._set_states(s, run.id, names, target, now, message=_settled_message(target, by_whom))
                    todo += [
                        (self._release(s, run, dag, below, result, by), result, _feeding(dag, names, below))
                        for by, below in _by_count(dag, names).items()
                    ]
        if not queued and (finish or settled_any):  # else the run goes on: what was just queued is unfinished
            self.finish_if_done(s, run, now)
        return queued

    def _rules(self, s: Session, run: RunHead, names: Iterable[str]) -> dict[str, TriggerRule]:
        """Return the trigger rules of `names` (R13) that are not the default; a debug run has none."""
        if run.debug_task:
            return {}
        spec, _ = self.specs.get(s, run.version_id)
        return {
            name: TriggerRule(rule)
            for name in names
            if parent_of(name) is None and (rule := spec.task(name).trigger_rule) != DEFAULT_RULE.value
        }

    def _rules_of(self, s: Session, run: RunHead, names: Sequence[str]) -> set[TriggerRule]:
        """Return the trigger rules `names` have between them (R13)."""
        rules = self._rules(s, run, names)
        return {rules.get(name, DEFAULT_RULE) for name in names}

    def _recount(self, s: Session, run_id: int, dag: Dag, unknown: Sequence[str]) -> dict[str, int]:
        """Count `unknown`'s waiting upstream tasks from their states, and store the counts."""
        ups = sorted({u for name in unknown for u in dag.upstream.get(name, ())})
        states = (
            {
                name: TaskState(state)
                for name, state in s.connection().execute(
                    select(TaskInstance.task_name, TaskInstance.state).where(
                        TaskInstance.run_id == run_id, is_in(TaskInstance.task_name, ups, self.dialect)
                    )
                )
            }
            if ups
            else {}
        )
        counts = core.count_waiting(dag, states, unknown)
        self._store_counts(s, run_id, counts)
        return counts

    def _store_counts(self, s: Session, run_id: int, counts: Mapping[str, int]) -> None:
        if counts:
            update_rows(
                s.connection(),
                _TI_TABLE,
                [{"run_id": run_id, "task_name": name, "upstream_waiting": n} for name, n in sorted(counts.items())],
                keys=("run_id", "task_name"),
            )

    def _advance_all(self, s: Session, run: RunHead, dag: Dag, now: datetime) -> list[int]:
        """Advance the whole run from its states, and store any count that disagrees with them."""
        rows = s.connection().execute(_TASK_VIEWS.where(TaskInstance.run_id == run.id)).all()
        views = {r.task_name: _row_view(r) for r in rows}
        states = {name: v.state for name, v in views.items()}
        settled = core.settle_pending(dag, states, self._rules(s, run, views))
        for target in (TaskState.SKIPPED, TaskState.UPSTREAM_FAILED):
            names = [name for name, t in settled.items() if t is target]
            if names:
                self._set_states(s, run.id, names, target, now, message=_SETTLED_MESSAGE[target])
                states.update(dict.fromkeys(names, target))
        # The counts pending tasks wait on (shared by tasks with the same upstream tasks, kept by
        # the first of them whatever its own state), as the states say.
        counters = sorted({dag.counted_by[name] for name in dag.names if states.get(name) is TaskState.PENDING})
        counts = core.count_waiting(dag, states, counters)
        self._store_counts(
            s, run.id, {name: n for name, n in counts.items() if name in views and views[name].waiting != n}
        )
        ready = {name for name, t in settled.items() if t is QUEUE} | {
            v.name for v in views.values() if v.state is TaskState.UP_FOR_RETRY and core.is_ready(v, now)
        }
        queued = self._queue_ready_rows(s, run, [r for r in rows if r.task_name in ready], now)
        if not queued:  # else the run goes on: what was just queued is unfinished
            self.finish_if_done(s, run, now)
        return queued

    def _queue_ready_rows(self, s: Session, run: RunHead, rows: Sequence[Any], now: datetime) -> list[int]:
        """Queue the task instances (rows with `id`, `task_name`) that are ready; a sliced task
        instead makes its slices and queues them (R15, db/slice_store.py)."""
        sliced = sliced_names(self, s, run) if rows else frozenset()
        queued = self._queue(s, [r.id for r in rows if r.task_name not in sliced], now)
        for r in rows:
            if r.task_name in sliced:
                queued += start_sliced(self, s, run, r.id, r.task_name, now)
        return queued

    def _queue(self, s: Session, ids: Sequence[int], now: datetime) -> list[int]:
        if ids:  # one UPDATE; "evaluate" keeps task instances loaded in this session up to date
            s.execute(
                update(TaskInstance)
                .where(TaskInstance.id.in_(ids))
                .values(state=TaskState.QUEUED.value, queued_at=now, next_try_at=None),
                execution_options={"synchronize_session": "evaluate"},
            )
        return list(ids)

    def _set_states(
        self,
        s: Session,
        run_id: int,
        names: Iterable[str],
        target: TaskState,
        now: datetime,
        *,
        message: str = "",
        only_from: Iterable[TaskState] = (TaskState.PENDING,),
    ) -> None:
        s.execute(
            update(TaskInstance)
            .where(
                TaskInstance.run_id == run_id,
                TaskInstance.task_name.in_(list(names)),
                TaskInstance.state.in_([st.value for st in only_from]),
            )
            .values(state=target.value, ended_at=now, message=message)
            .execution_options(synchronize_session=False)
        )

    def finish_if_done(self, s: Session, run: RunHead, now: datetime) -> None:
        """End the run when no task instance is unfinished any more."""
        if s.connection().execute(_UNFINISHED, {"run_id": run.id}).first() is not None:
            return
        leaves = self.dag_of(s, run).leaves()  # R13: the outcome is read from the leaf tasks
        counts = dict(
            s.execute(
                select(TaskInstance.state, func.count())
                .where(TaskInstance.run_id == run.id, is_in(TaskInstance.task_name, list(leaves), self.dialect))
                .group_by(TaskInstance.state)
            ).all()
        )
        outcome = core.run_outcome(TaskState(k) for k in counts)
        if outcome is not None:
            ended = s.get(Run, run.id)  # the caller's object if it holds one; locked by the caller either way
            assert ended is not None
            if RunState(ended.state) in RUN_TERMINAL:  # ended already in this transaction (a sliced task
                return  # that ended as it started, R15, released its downstream tasks and ended the run)
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
        wake_after_commit(s, run.pipeline_id, self.wake)

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
        rows = s.scalars(
            select(TaskInstance).where(
                TaskInstance.run_id == run.id, TaskInstance.state.in_([t.value for t in TASK_UNFINISHED])
            )
        ).all()
        states = {r.task_name: TaskState(r.state) for r in rows}
        targets = core.on_stop(states) if state is RunState.STOPPED else core.on_run_timeout(states)
        for row in rows:
            row.state = targets[row.task_name].value
            row.ended_at = now
            row.message = message
        s.execute(
            update(TaskAttempt)
            .where(TaskAttempt.task_instance_id.in_([r.id for r in rows]), unfinished(TaskAttempt.state, ATTEMPT))
            .values(
                state=(AttemptState.STOPPED if state is RunState.STOPPED else AttemptState.FAILED).value,
                kill_requested=state.value,
                ended_at=now,
                message=message,
            )
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
            if not rows:  # stopped or failed while `creating` (db/run_creation.py): nothing to retry
                raise Conflict(f"run {run_id} ended before its tasks were created; copy it to run it again")
            budgets = core.to_retry(
                {r.task_name: _view(r) for r in rows},
                retry_budgets([r.task_name for r in rows], {t.name: t.retries for t in spec.tasks}),
            )
            # A slice runs again only with its sliced task: a task that succeeded under success_ratio
            # or continue_on_failed keeps its end, and a slice made pending under it would never run (R15).
            budgets = {n: b for n, b in budgets.items() if (owner := parent_of(n)) is None or owner[0] in budgets}
            for row in rows:
                if row.task_name in budgets:
                    row.state = TaskState.PENDING.value
                    row.max_tries = budgets[row.task_name]
                    row.message, row.ended_at, row.next_try_at = "", None, None
            run.state, run.ended_at, run.message = RunState.QUEUED.value, None, ""
            queued = self._start(s, run, now)
        self.dispatch(queued)

    def retry_slice(self, run_id: int, name: str, now: datetime) -> None:
        """Send one failed slice of a finished run back to pending, with its sliced task and what
        that task's end held back (its downstream tasks that are failed, upstream_failed or
        stopped, and their slices); every other task keeps its state (R15, D11 for the budget)."""
        owner = parent_of(name)
        with self.db.write() as s:
            run = self.lock_run(s, run_id)
            if owner is None:
                raise Conflict(f"{name!r} is not a slice (NAME[i]); retry the run instead")
            if RunState(run.state) not in RUN_RETRYABLE:
                raise Conflict(f"run {run_id} is {run.state}; a slice of a failed or stopped run can be retried")
            spec, dag = self.specs.get(s, run.version_id)
            rows = {r.task_name: r for r in s.scalars(select(TaskInstance).where(TaskInstance.run_id == run.id))}
            row, parent = rows.get(name), rows.get(owner[0])
            if row is None or parent is None:
                raise NotFound(f"slice {name!r} not found in run {run_id}")
            if TaskState(row.state) not in TASK_RETRYABLE:
                raise Conflict(f"slice {name!r} is {row.state}; only a failed, upstream_failed or stopped slice")
            if TaskState(parent.state) not in TASK_RETRYABLE:
                raise Conflict(
                    f"task {owner[0]!r} is {parent.state}: its end stands (retry the run to re-run its failures)"
                )
            below = dag.descendants(owner[0])
            chosen = [name, owner[0]] + [
                n
                for n, r in rows.items()
                if (n in below or (parent_of(n) or ("",))[0] in below) and TaskState(r.state) in TASK_RETRYABLE
            ]
            views = {n: _view(rows[n]) for n in chosen}
            budgets = core.to_retry(views, retry_budgets(chosen, {t.name: t.retries for t in spec.tasks}))
            for n in chosen:
                rows[n].state = TaskState.PENDING.value
                rows[n].max_tries = budgets[n]
                rows[n].message, rows[n].ended_at, rows[n].next_try_at = "", None, None
            run.state, run.ended_at, run.message = RunState.QUEUED.value, None, ""
            queued = self._start(s, run, now)
        self.dispatch(queued)

    def copy_run(
        self,
        run_id: int,
        now: datetime,
        params: Mapping[str, str] | None = None,
        user_id: int | None = None,
        runner: str = "",
    ) -> int:
        """Start a new manual run of the same version with the same (or edited) parameters."""
        with self.db.read() as s:
            src = s.get(Run, run_id)
            if src is None:
                raise NotFound(f"run {run_id} not found")
            # A secret shown masked and sent back unchanged keeps the source run's value.
            merged = {**open_tree(dict(src.params or {})), **{k: v for k, v in (params or {}).items() if v != MASK}}
            new = NewRun(
                pipeline_id=src.pipeline_id,
                version_id=src.version_id,
                trigger=Trigger.MANUAL,
                execution_date=src.execution_date,
                params=merged,
                user_id=user_id,
                runner=runner,
                copied_from=src.id,
                debug_task=src.debug_task,
                debug_inputs=self._debug_inputs(s, src),
            )
        return self.create_run(new, now)

    def _debug_inputs(self, s: Session, run: Run) -> dict[str, Any] | None:
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


RELEASED_COLUMNS = (
    TaskInstance.id,
    TaskInstance.task_name,
    TaskInstance.state,
    TaskInstance.try_number,
    TaskInstance.max_tries,
    TaskInstance.next_try_at,
    TaskInstance.upstream_waiting,
)
_TASK_VIEWS = select(*RELEASED_COLUMNS)


class _Released(NamedTuple):
    """A task instance an upstream end may decide, with the count it shares (`Dag.counted_by`)."""

    id: int
    task_name: str
    state: str
    try_number: int
    max_tries: int
    next_try_at: datetime | None
    upstream_waiting: int | None


_TI_TABLE = TaskInstance.__table__
_UNFINISHED = (
    select(TaskInstance.id)
    .where(TaskInstance.run_id == bindparam("run_id"), TaskInstance.state.in_(sorted(t.value for t in TASK_UNFINISHED)))
    .limit(1)
)


_SETTLED_MESSAGE = {
    TaskState.SKIPPED: "skipped by its trigger rule (R13)",
    TaskState.UPSTREAM_FAILED: "an upstream task did not succeed",
}


def _feeding(dag: Dag, ended: Sequence[str], below: Sequence[str]) -> list[str]:
    """Return those of `ended` that feed at least one of `below` (for the messages)."""
    wanted = set(below)
    return [name for name in ended if wanted.intersection(dag.downstream.get(name, ()))]


def _settled_message(target: TaskState, ended: Sequence[str]) -> str:
    """Say which upstream end settled a task (R13): the first of `ended`, and how many more."""
    if not ended:
        return _SETTLED_MESSAGE[target]
    who = f"{ended[0]!r}" + (f" and {len(ended) - 1} more" if len(ended) > 1 else "")
    if target is TaskState.UPSTREAM_FAILED:
        return f"upstream task {who} did not succeed"
    return f"skipped by its trigger rule (R13) when upstream task {who} ended"


def _by_count(dag: Dag, ended: Iterable[str]) -> dict[int, list[str]]:
    """Group the downstream tasks of `ended` by how many of them feed each: {count: names}."""
    feeds = Counter(d for name in ended for d in dag.downstream.get(name, ()))
    grouped: dict[int, list[str]] = {}
    for name, n in sorted(feeds.items()):
        grouped.setdefault(n, []).append(name)
    return grouped


def _released(row: Any, count: int | None) -> _Released:
    """Return a task instance (a row with RELEASED_COLUMNS' names, among others) with the count it shares."""
    return _Released(row.id, row.task_name, row.state, row.try_number, row.max_tries, row.next_try_at, count)


def _row_view(row: Any) -> core.TaskView:
    return core.TaskView(
        row.task_name, TaskState(row.state), row.try_number, row.max_tries, row.next_try_at, row.upstream_waiting
    )


def _view(row: TaskInstance) -> core.TaskView:
    return core.TaskView(row.task_name, TaskState(row.state), row.try_number, row.max_tries, row.next_try_at)
