"""Attempts in the database: claim, heartbeat, finish, and the reconciler that repairs lost work.

Two workers can never run the same attempt: a claim locks the run row, requires the task
instance to be `queued`, and inserts the attempt under a unique (task instance, try number).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Row,
    and_,
    bindparam,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from myapp.core import engine as core
from myapp.core.conditions import referenced_tasks
from myapp.core.model import PipelineSpec, TaskSpec
from myapp.core.slices import parent_of, slice_task, task_for
from myapp.core.states import (
    ATTEMPT,
    RUN,
    TASK,
    AttemptState,
    RunState,
    TaskState,
    check_task_transition,
)
from myapp.core.trigger_rules import Outcome, TriggerRule
from myapp.core.values import AttemptContext as AttemptContext  # re-exported for older imports
from myapp.core.values import AttemptResult as AttemptResult
from myapp.db.attempt_statements import (
    _ATTEMPT_END,
    _ATTEMPT_RUNNING,
    _CLAIM_KEPT_PREBUILT,
    _CLAIM_PREBUILT,
    _CLAIM_READ,
    _CLAIM_START,
    _CLAIM_START_PLAIN,
    _END_ATTEMPT,
    _END_RUNNING_ATTEMPT,
    _END_RUNNING_ATTEMPT_PLAIN,
    _FINISH_LOCK,
    _INSERT_ATTEMPT,
    _INSERT_ATTEMPT_PLAIN,
    _LOCK_RUN_SHARED,
    _OWN_CLAIM,
    _RUN_OF_TASK,
    _SET_ATTEMPT_DEADLINE,
    _SET_TASK,
    _SET_TASK_SUCCEEDED,
    _SUCCEED_AND_RELEASE,
    _SUCCEED_IN_ONE,
    _SUCCEED_LEAF_PREBUILT,
    _SUCCEED_RELEASE_PREBUILT,
    _SUCCEED_SHARE_PREBUILT,
    _SUCCEED_SLICE_PREBUILT,
    _SUCCEEDED_TASK,
    _TASK_INSTANCE_NAMED,
    _TASK_INSTANCE_OF_ATTEMPT,
    _TASK_TRIES,
    _TRY_NUMBER,
    _changed,
)
from myapp.db.guards import unfinished
from myapp.db.run_store import LockedRun, RunStore
from myapp.db.sealed import open_tree
from myapp.db.session import is_transient
from myapp.db.tables import USERS, Pipeline, Run, TaskAttempt, TaskInstance

MAX_RESEND_GAP = timedelta(hours=1)  # the longest wait between two re-sends of a queued task instance
WATCHER_PREFIX = (
    "k8s:"  # TaskAttempt.worker of attempts a Kubernetes watcher owns (myapp/executor/kubernetes/launch.py)
)
ACTIVE_TASK_STATES = [TaskState.QUEUED.value, TaskState.RUNNING.value, TaskState.UP_FOR_RETRY.value]


class _Claimed(NamedTuple):
    """What the claim of an attempt knew: its task instance, run, pipeline version and task name."""

    ti_id: int
    run_id: int
    version_id: int
    task_name: str


class _Kept(NamedTuple):
    """A task instance claimed together with the finish that queued it (AttemptStore.finish, `claim_as`):
    the claim's row and instant, for this store's `claim` of it."""

    row: Any
    now: datetime


class AttemptStore:
    """Transactional operations on attempts; shares the run store's locking and advancing."""

    def __init__(self, runs: RunStore, *, fast_path: bool = True) -> None:
        self.runs = runs
        self.db = runs.db
        self._names: dict[int, tuple[str, str, int]] = {}
        # (version id, task name) -> what its success releases: (all, those left waiting, those queued at zero)
        self._releases: dict[tuple[int, str], core.SuccessRelease] = {}
        self._release_params: dict[
            tuple[int, str], dict[str, Any]
        ] = {}  # the plan's, as _SUCCEED_RELEASE_FAST binds them
        self._rules: dict[int, dict[str, TriggerRule]] = {}  # version id -> each task's trigger rule
        self._uncapped_slices: dict[tuple[int, str], bool] = {}  # (version id, sliced task) -> no parallelism cap
        # PostgreSQL: the attempts this store claimed and has not finished yet, for `_finish_in_one`
        self._claims: dict[int, _Claimed] = {}
        # PostgreSQL: task instances claimed with the finish that queued them, by task instance id, and
        # by the finished attempt's id; and the kept claims whose reply was lost (outcome unknown)
        self._kept: dict[int, _Kept] = {}
        self._kept_by: dict[int, int] = {}
        self._unsure: dict[int, dict[str, Any]] = {}
        self._next_names: dict[tuple[int, str], str | None] = {}  # (version id, task name) -> `_next_to_claim`
        # Claims share the run lock (FOR SHARE OF runs: the task instance row is only read, the
        # guarded UPDATE locks it); finishing takes it exclusively. SQLite: the writer lock.
        self._claim_read, self._finish_lock = _CLAIM_READ, _FINISH_LOCK
        # fast_path=False (setting sql_fast_paths) takes the generic path on PostgreSQL too: the
        # contract suite runs both implementations of claim and finish on the same server.
        self._in_one = fast_path and self.db.engine.dialect.name == "postgresql"
        self._lock_run_first = self.db.engine.dialect.name in ("mysql", "mariadb")
        if not self.db.is_sqlite and not self._lock_run_first:
            self._claim_read = _CLAIM_READ.with_for_update(of=Run, **self.db.lock_options(shared=True))
        if not self.db.is_sqlite:
            self._finish_lock = _FINISH_LOCK.with_for_update(**self.db.lock_options())

    def claim(self, ti_id: int, worker: str, now: datetime) -> AttemptContext | None:
        """Start the next attempt of a queued task instance, or return None if not claimable.

        A connection lost while the claim commits leaves its outcome unknown: the claim looks for
        the attempt it may have made (this worker's, started at this `now`, still running) and goes
        on with it; only if there is none does the error go up, for the caller to claim again.
        Without this, the repeated claim found the task running and returned None, and the attempt
        waited without a process until the reconciler declared it lost.

        A task instance this store claimed already, with the finish that queued it (`finish` with
        `claim_as`), is not claimed again: its attempt goes on (the claim's `worker` and `now` stand).
        """
        kept = self._kept.pop(ti_id, None)
        if kept is not None:
            return self.db.retry_on_disconnect(lambda: self._claimed(kept.row, ti_id, kept.now))
        try:
            return self._claim(ti_id, worker, now)
        except DBAPIError as exc:
            if not is_transient(exc):
                raise
            mine = self.db.retry_on_disconnect(lambda: self._claimed_by(ti_id, worker, now))
            if mine is None:
                raise
            return mine

    def _claimed_by(self, ti_id: int, worker: str, now: datetime) -> AttemptContext | None:
        """Return the context of the attempt `worker` claimed at `now`, if that claim was committed."""
        row = self._claimed_row(ti_id, worker, now)
        return None if row is None else self._claimed(row, ti_id, now)

    def _claimed_row(self, ti_id: int, worker: str, now: datetime) -> Row[Any] | None:
        with self.db.read() as s:
            return s.connection().execute(_OWN_CLAIM, {"ti_id": ti_id, "worker": worker, "now": now}).first()

    def _claim(self, ti_id: int, worker: str, now: datetime) -> AttemptContext | None:
        if self._in_one:
            return self._claim_in_one(ti_id, worker, now)
        with self.db.write() as s:
            conn = s.connection()
            # A shared lock on the run: claims of one run do not wait for each other, while
            # stop, timeout and finish (exclusive) are serialized against them.
            if self._lock_run_first:
                run_id = conn.execute(_RUN_OF_TASK, {"ti_id": ti_id}).scalar()
                if run_id is None:
                    return None
                conn.execute(_LOCK_RUN_SHARED, {"run_id": run_id})
            row = conn.execute(self._claim_read, {"ti_id": ti_id}).first()
            if (
                row is None
                or TaskState(row.ti_state) not in TASK.sources(TaskState.RUNNING)
                or row.state != RunState.RUNNING.value
            ):
                return None
            if row.deadline_at is not None and now >= row.deadline_at:
                return None  # D8: no attempt starts after the run deadline
            spec, _ = self.runs.specs.get(s, row.version_id)
            task = task_for(spec, row.task_name)
            deadline = now + timedelta(seconds=task.timeout) if task.timeout else None
            started = self._start_attempt(conn, ti_id, worker, now, deadline)
            if started is None:
                return None
            return self._context(s, row, ti_id, started, spec, task, deadline)

    def _claim_in_one(self, ti_id: int, worker: str, now: datetime) -> AttemptContext | None:
        """PostgreSQL: claim with one statement (_CLAIM_IN_ONE); 1 round trip instead of 4 (BEGIN,
        read, start, COMMIT). What is read afterwards does not change once the claim is made: the
        version's spec, the pipeline's name, the outputs of succeeded upstream tasks."""
        rows = self.db.run_prebuilt(_CLAIM_PREBUILT, {"ti_id": ti_id, "now": now, "worker": worker})
        if not rows:
            return None
        row = rows[0]
        if len(self._claims) > 10_000:  # attempts claimed here and never finished here (a test's, a crash's)
            self._claims.clear()
        self._claims[row.attempt_id] = _Claimed(ti_id, row.id, row.version_id, row.task_name)
        # The claim is committed: a connection lost from here on must repeat the reads below, not the
        # claim (which would find the task running, return None and leave the attempt orphaned).
        return self.db.retry_on_disconnect(lambda: self._claimed(row, ti_id, now))

    def _claimed(self, row: Row[Any], ti_id: int, now: datetime) -> AttemptContext:
        """Read what a claimed attempt needs (and record its deadline): safe to repeat."""
        # Each statement commits alone; the session takes a connection only for one (a deadline, a
        # spec or a pipeline name not cached yet, upstream outputs): a no-op leaf's claim needs none.
        with self.db.autocommit_session() as s:
            spec, _ = self.runs.specs.get(s, row.version_id)
            task = task_for(spec, row.task_name)
            deadline = now + timedelta(seconds=task.timeout) if task.timeout else None
            if deadline is not None:
                # Written before the executor starts anything: the Kubernetes watcher reads an
                # attempt again until its launch is recorded, so it never keeps a deadline-less copy.
                s.connection().execute(_SET_ATTEMPT_DEADLINE, {"attempt_id": row.attempt_id, "deadline": deadline})
            return self._context(s, row, ti_id, (row.attempt_id, row.try_number), spec, task, deadline)

    def _start_attempt(
        self, conn: Connection, ti_id: int, worker: str, now: datetime, deadline: datetime | None
    ) -> tuple[int, int] | None:
        """Mark the task instance running and insert its attempt; return (attempt id, try number).

        Guarded by state = queued: of two claims racing for one task instance, the second waits
        for the first's row lock, then finds it running and changes nothing (None).
        """
        started = _changed(conn, _CLAIM_START, _CLAIM_START_PLAIN, _TRY_NUMBER, {"ti_id": ti_id, "now": now})
        if started is None:
            return None
        try_number = started[0]
        values = {
            "task_instance_id": ti_id,
            "try_number": try_number,
            "state": ATTEMPT.initial.value,
            "worker": worker,
            "started_at": now,
            "heartbeat_at": now,
            "deadline_at": deadline,
        }
        if conn.dialect.insert_returning:
            attempt_id = conn.execute(_INSERT_ATTEMPT, values).scalar_one()
        else:  # MySQL
            key = conn.execute(_INSERT_ATTEMPT_PLAIN, values).inserted_primary_key
            assert key is not None
            attempt_id = int(key[0])
        return attempt_id, try_number

    def _context(
        self,
        s: Session,
        run: Row[Any],
        ti_id: int,
        started: tuple[int, int],
        spec: PipelineSpec,
        task: TaskSpec,
        deadline: datetime | None,
    ) -> AttemptContext:
        attempt_id, try_number = started
        pipeline_name, creator, project_id = self._pipeline_names(s, run.pipeline_id)
        items: dict[str, dict[str, Any]] = {}
        owner = parent_of(run.task_name)
        if owner is not None:  # a slice (R15): the task's spec with its sliced inputs bound to its item (claimed)
            task, items = slice_task(task, owner[1], dict(run.slice_item or {}))
        return AttemptContext(
            attempt_id=attempt_id,
            task_instance_id=ti_id,
            try_number=try_number,
            run_id=run.id,
            pipeline_id=run.pipeline_id,
            pipeline_name=pipeline_name,
            spec=spec,
            task=task,
            trigger=run.trigger,
            execution_date=run.execution_date_text,
            params=open_tree(dict(run.params or {})),
            creator=creator,
            runner=run.runner,
            user_id=run.created_by,
            token=self.runs.run_token(run.id),
            upstream_outputs={**self._upstream_outputs(s, run, task), **items},
            debug_inputs=dict(run.inputs or {}) if run.debug_task else None,
            deadline_at=deadline,
            project_id=project_id,
        )

    def _pipeline_names(self, s: Session, pipeline_id: int) -> tuple[str, str, int]:
        # A pipeline's name, creator and project never change, so each worker process looks them up once.
        hit = self._names.get(pipeline_id)
        if hit is None:
            pipeline = s.get(Pipeline, pipeline_id)
            assert pipeline is not None
            hit = (pipeline.name, _username(s, pipeline.created_by), pipeline.project_id)
            if len(self._names) > 10_000:
                self._names.clear()
            self._names[pipeline_id] = hit
        return hit

    def _upstream_outputs(self, s: Session, run: Row[Any], task: TaskSpec) -> dict[str, dict[str, Any]]:
        names = {b.task for b in task.inputs if b.source == "task" and b.task} | set(referenced_tasks(task.when))
        if not names or run.debug_task:
            return {}
        query = select(TaskInstance.task_name, TaskInstance.outputs).where(
            TaskInstance.run_id == run.id, TaskInstance.task_name.in_(names)
        )
        rows = s.connection().execute(query).all()
        return {name: dict(outputs or {}) for name, outputs in rows}

    def record_process(
        self,
        attempt_id: int,
        *,
        pid: int | None = None,
        pod_names: Sequence[str] | None = None,
        container: Mapping[str, Any] | None = None,
    ) -> None:
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

    def heartbeat(
        self, attempt_id: int, now: datetime, *, pid: int | None = None, container: Mapping[str, Any] | None = None
    ) -> bool:
        """Refresh an attempt's heartbeat (and where it runs); return False when it must be killed."""
        values: dict[str, Any] = {"heartbeat_at": now}
        if pid is not None:
            values["pid"] = pid
        if container is not None:
            values["container"] = dict(container)
        with self.db.write() as s:
            self.db.relax_durability(s)
            result = s.execute(
                update(TaskAttempt)
                .where(TaskAttempt.id == attempt_id, _ATTEMPT_RUNNING)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0))

    def finish(
        self,
        attempt_id: int,
        result: AttemptResult,
        now: datetime,
        *,
        keep_one: bool = False,
        claim_as: str | None = None,
    ) -> int | None:
        """Record how an attempt ended, move its task on, and dispatch what became ready.

        With `keep_one`, the first task instance that became ready is not dispatched but returned:
        the caller runs it next itself (it is queued in the database like the others). A success of
        an attempt this store claimed may be recorded in one statement (`_finish_in_one`);
        otherwise, or when that statement cannot decide, in a transaction.

        With `keep_one` and `claim_as` (the worker's name), that one-statement finish and the claim of
        a task it queues go in one round trip and commit together (`_run_finish`): the task returned
        is then claimed already, as `claim_as` at `now`, and this store's `claim` of it goes on with
        that attempt. The claim is still the arbiter: it takes only a task instance that is queued.
        """
        queued = None
        claimed = self._claims.pop(attempt_id, None)
        if claimed is not None and result.succeeded and not result.skipped:
            queued = self._finish_in_one(attempt_id, claimed, result, now, claim_as=claim_as if keep_one else None)
        if queued is None:
            with self.db.write() as s:
                queued = self.finish_in(s, attempt_id, result, now)
        unsure = self._unsure.pop(attempt_id, None)
        if unsure is not None:  # a finish repeated after its reply was lost: did its kept claim commit?
            self._find_kept(attempt_id, unsure)
        kept = self._kept_by.pop(attempt_id, None)
        if kept is None and keep_one and queued:
            kept = queued[0]
        self.runs.dispatch([ti for ti in queued if ti != kept])
        return kept

    def _run_finish(
        self, attempt_id: int, claimed: _Claimed, statement: Any, params: dict[str, Any], claim_as: str | None
    ) -> list[Any]:
        """Run a one-statement finish; with `claim_as`, claim the task it surely queues (`_next_to_claim`)
        in the same round trip and transaction (Database.run_prebuilts): a chain's link then waits for
        one commit, not two (issue 14). Nothing queued under that name: no claim."""
        name = None if claim_as is None else self._next_to_claim(claimed.version_id, claimed.task_name)
        if name is None:
            return self.db.run_prebuilt(statement, params)
        claim = {"of_run": params["of_run"], "kept_name": name, "now": params["now"], "worker": claim_as}
        self._unsure[attempt_id] = claim  # until the reply is read: a lost reply leaves the claim unknown
        try:
            rows, claims = self.db.run_prebuilts(((statement, params), (_CLAIM_KEPT_PREBUILT, claim)))
        except DBAPIError as exc:
            if not is_transient(exc):
                del self._unsure[attempt_id]
            raise
        del self._unsure[attempt_id]
        if claims:
            self._keep(attempt_id, claims[0].claimed_ti, claims[0], params["now"])
        return rows

    def _next_to_claim(self, version_id: int, task_name: str) -> str | None:
        """The first task a success of `task_name` queues whose only upstream it is (None: none): a chain's
        next link, a fan-out's first leaf. A join is not claimed with the finish: most of its upstreams'
        finishes leave it waiting, and a claim sent with each of them would find nothing."""
        key = (version_id, task_name)
        if key not in self._next_names:
            known, plan = self.runs.specs.cached(version_id), self._releases.get(key)
            if known is None or plan is None:
                return None
            dag = known[1]
            if len(self._next_names) > 10_000:
                self._next_names.clear()
            self._next_names[key] = next((n for n in plan.queue if len(dag.upstream.get(n, ())) == 1), None)
        return self._next_names[key]

    def _keep(self, attempt_id: int, ti_id: int, row: Row[Any] | Any, now: datetime) -> None:
        if len(self._kept) > 1_000:  # claimed and never asked for (a caller that died between)
            self._kept.clear()
            self._kept_by.clear()
        self._claims[row.attempt_id] = _Claimed(ti_id, row.id, row.version_id, row.task_name)
        self._kept[ti_id] = _Kept(row, now)
        self._kept_by[attempt_id] = ti_id

    def _find_kept(self, attempt_id: int, claim: dict[str, Any]) -> None:
        """After a lost reply: keep the task instance the lost round trip claimed, if its commit happened."""
        named = {"of_run": claim["of_run"], "kept_name": claim["kept_name"]}
        with self.db.read() as s:
            ti_id = s.connection().execute(_TASK_INSTANCE_NAMED, named).scalar()
        if ti_id is None:
            return
        mine = self._claimed_row(ti_id, claim["worker"], claim["now"])
        if mine is not None:
            self._keep(attempt_id, ti_id, mine, claim["now"])

    def _finish_in_one(
        self, attempt_id: int, claimed: _Claimed, result: AttemptResult, now: datetime, *, claim_as: str | None = None
    ) -> list[int] | None:
        """PostgreSQL: record a success in one statement in autocommit (_SUCCEED_LEAF_FAST,
        _SUCCEED_RELEASE_FAST, _SUCCEED_SHARE_FAST): 1 round trip instead of 4. Only when the run
        goes on and each count it takes off leaves its tasks waiting or queues them; returns the
        task instances it queued, or None when it changed nothing (then `finish_in` decides in a
        transaction). A slice (R15) of a task without a parallelism cap that is not its last counts
        itself down (_SUCCEED_SLICE_FAST)."""
        ti_id, run_id, version_id, task_name = claimed
        owner = parent_of(task_name)
        if owner is not None and not self._uncapped(version_id, owner[0]):
            return None  # a capped slice queues the next pending one: the transaction (slice_ended)
        params: dict[str, Any] = {
            "attempt_id": attempt_id,
            "ti_id": ti_id,
            "of_run": run_id,
            "version_id": version_id,
            "a_exit": result.exit_code,
            "a_message": result.message,
            "now": now,
            "t_outputs": dict(result.outputs),
            "t_inputs": dict(result.inputs) if result.inputs else None,
        }
        if owner is not None:  # a slice (R15) that is not its sliced task's last: it counts it down
            counted = self.db.run_prebuilt(_SUCCEED_SLICE_PREBUILT, {**params, "sliced": owner[0]})
            if counted and counted[0].done_id is None:  # cannot be: the attempt row is locked
                raise RuntimeError(f"slice {task_name} was counted but its attempt {attempt_id} did not end")
            return [] if counted else None
        plan = self._release_plan(version_id, task_name)
        statement = _SUCCEED_LEAF_PREBUILT
        if plan.released:
            statement = _SUCCEED_SHARE_PREBUILT if plan.sharers else _SUCCEED_RELEASE_PREBUILT
            params.update(self._release_params[(version_id, task_name)])
        rows = self._run_finish(attempt_id, claimed, statement, params, claim_as)
        if not rows:
            return None
        # The statement returns the queued task instances (or one row without any when none was).
        return sorted(row.released_id for row in rows if row.state == TaskState.QUEUED.value)

    def _uncapped(self, version_id: int, sliced: str) -> bool:
        """Whether the sliced task has no parallelism cap (its slices were all queued at its start)."""
        key = (version_id, sliced)
        hit = self._uncapped_slices.get(key)
        if hit is None:
            with self.db.read() as s:
                spec, _ = self.runs.specs.get(s, version_id)
            cap = spec.task(sliced).slices
            hit = cap is not None and cap.parallelism <= 0
            if len(self._uncapped_slices) > 10_000:
                self._uncapped_slices.clear()
            self._uncapped_slices[key] = hit
        return hit

    def _release_plan(self, version_id: int, task_name: str) -> core.SuccessRelease:
        """What a success of `task_name` releases, with its statement parameters, computed once per
        process: O(its downstream tasks), which in a layer of 100 is every finish's own plan."""
        key = (version_id, task_name)
        plan = self._releases.get(key)
        if plan is None:
            known = self.runs.specs.cached(version_id)  # the claim read it: no transaction for nothing
            if known is None:
                with self.db.read() as s:
                    known = self.runs.specs.get(s, version_id)
            spec, dag = known
            rules = self._rules.get(version_id)
            if rules is None:  # every task's rule, once per version (not 100 enum lookups per finish)
                rules = {task.name: TriggerRule(task.trigger_rule) for task in spec.tasks}
                if len(self._rules) > 1_000:
                    self._rules.clear()
                self._rules[version_id] = rules
            plan = core.success_release(dag, task_name, rules)
            # A sliced task that becomes ready makes its slices (start_sliced): the transaction does that.
            plan = replace(plan, queue=tuple(name for name in plan.queue if name not in spec.sliced))
            if plan.sharers and (plan.queue == () or any(name in spec.sliced for name in plan.sharers)):
                plan = replace(plan, queue=(), sharers=())  # the sliced ones start in the transaction
            if len(self._releases) > 10_000:
                self._releases.clear()
                self._release_params.clear()
            self._releases[key] = plan
            released = _text_array(plan.released)  # wait and queue are mostly all of them (all_success)
            self._release_params[key] = {
                "released": released,
                "wait": released if plan.wait == plan.released else _text_array(plan.wait),
                "queue": released if plan.queue == plan.released else _text_array(plan.queue),
                "n_released": len(plan.released),
                **({"sharers": _text_array(plan.sharers), "n_sharers": len(plan.sharers)} if plan.sharers else {}),
            }
        return plan

    def finish_in(self, s: Session, attempt_id: int, result: AttemptResult, now: datetime) -> list[int]:
        """Apply an attempt's end inside the caller's transaction; return task ids to dispatch."""
        conn = s.connection()
        head = conn.execute(self._finish_lock, {"attempt_id": attempt_id}).first()
        if head is None:
            return []
        run, task_name = LockedRun(*head[:5]), head[5]
        if result.succeeded and not result.skipped and self._in_one:
            return self._succeed_in_one(s, run, attempt_id, task_name, result, now)
        # A new statement after the lock: it sees what a stop or timeout committed while we waited.
        ended = _changed(
            conn,
            _END_RUNNING_ATTEMPT,
            _END_RUNNING_ATTEMPT_PLAIN,
            _TASK_INSTANCE_OF_ATTEMPT,
            {
                "attempt_id": attempt_id,
                "state": (AttemptState.SUCCEEDED if result.succeeded else AttemptState.FAILED).value,
                "exit_code": result.exit_code,
                "ended_at": now,
                "message": result.message,
            },
        )
        ti_id = None if ended is None else ended[0]
        if ti_id is None:
            return self._end_taken_attempt(conn, attempt_id, result, now)
        inputs = {"inputs": dict(result.inputs)} if result.inputs else {}
        if result.skipped:  # R14: its condition was false; its downstream tasks decide by their rules (R13)
            check_task_transition(TaskState.RUNNING, TaskState.SKIPPED)
            conn.execute(
                _SET_TASK,
                {"ti_id": ti_id, "state": TaskState.SKIPPED.value, "message": result.message, "ended_at": now},
            )
            return self.runs.end_in(s, run, now, task_name, Outcome.SKIPPED, others_unfinished=False)
        if result.succeeded:
            done = _changed(
                conn,
                _SET_TASK_SUCCEEDED,
                _SET_TASK,
                _SUCCEEDED_TASK,
                {
                    "ti_id": ti_id,
                    "state": TaskState.SUCCEEDED.value,
                    "outputs": dict(result.outputs),
                    "message": "",
                    "ended_at": now,
                    **inputs,
                },
                {"of_run": run.id},
            )
            assert done is not None  # the attempt was running, so its task instance is (the run is locked)
            name, others_unfinished = done[0], bool(done[1])
            return self._after_success(s, run, name, others_unfinished, now)
        return self._fail_task(s, run, ti_id, result, now, inputs)

    def _succeed_in_one(
        self, s: Session, run: LockedRun, attempt_id: int, task_name: str, result: AttemptResult, now: datetime
    ) -> list[int]:
        """PostgreSQL: end the attempt, the task instance and (if any) release its downstream tasks in one statement."""
        conn = s.connection()
        params = {
            "attempt_id": attempt_id,
            "a_exit": result.exit_code,
            "a_message": result.message,
            "now": now,
            "t_outputs": dict(result.outputs),
            "t_inputs": dict(result.inputs) if result.inputs else None,
            "of_run": run.id,
        }
        # the counts its downstream tasks wait on: one per distinct set of upstream tasks (Dag.counted_by)
        downstream = core.counts_released_by(self.runs.dag_of(s, run), task_name)
        if not downstream:
            done = conn.execute(_SUCCEED_IN_ONE, params).first()
            if done is None:
                return self._end_taken_attempt(conn, attempt_id, result, now)
            return self._after_success(s, run, done[0], done[1], now)
        rows = conn.execute(_SUCCEED_AND_RELEASE, {**params, "released": list(downstream)}).all()
        if not rows:
            return self._end_taken_attempt(conn, attempt_id, result, now)
        released = [row for row in rows if row.id is not None]
        return self.runs.queue_released(s, run, now, released, others_unfinished=rows[0].others, succeeded=task_name)

    def _after_success(
        self, s: Session, run: LockedRun, name: str, others_unfinished: bool, now: datetime
    ) -> list[int]:
        return self.runs.release_in(s, run, now, name, others_unfinished)

    def _end_taken_attempt(self, conn: Connection, attempt_id: int, result: AttemptResult, now: datetime) -> list[int]:
        # Stopped, timed out by the run, or declared lost meanwhile: the attempt keeps that end.
        message, ended_at = conn.execute(_ATTEMPT_END, {"attempt_id": attempt_id}).one()
        conn.execute(
            _END_ATTEMPT,
            {
                "attempt_id": attempt_id,
                "exit_code": result.exit_code,
                "ended_at": ended_at or now,
                "message": (message + "; " if message else "") + result.message,
            },
        )
        return []

    def _fail_task(
        self, s: Session, run: LockedRun, ti_id: int, result: AttemptResult, now: datetime, inputs: dict[str, Any]
    ) -> list[int]:
        conn = s.connection()
        ti = conn.execute(_TASK_TRIES, {"ti_id": ti_id}).one()
        spec, _ = self.runs.specs.get(s, run.version_id)
        view = core.TaskView(ti.task_name, TaskState.RUNNING, ti.try_number, ti.max_tries, ti.next_try_at)
        state, next_try = core.after_failed_attempt(
            view, now, task_for(spec, ti.task_name).retry_delay, run.deadline_at
        )
        check_task_transition(TaskState.RUNNING, state)
        ended = {"ended_at": now} if state is TaskState.FAILED else {}
        conn.execute(
            _SET_TASK,
            {
                "ti_id": ti_id,
                "state": state.value,
                "next_try_at": next_try,
                "message": result.message,
                **ended,
                **inputs,
            },
        )
        if state is TaskState.FAILED:
            # Its downstream tasks decide by their trigger rules (R13): upstream-failed by default,
            # and so on down; an all_done or one_failed task runs. Not known whether others are
            # unfinished: the run's end is checked (one indexed read).
            return self.runs.end_in(s, run, now, ti.task_name, Outcome.FAILED, others_unfinished=False)
        return self.runs.advance_in(s, run, now, (ti.task_name,))

    # ----- the reconciler ---------------------------------------------------------------
    def reconcile(
        self,
        now: datetime,
        *,
        heartbeat_timeout: float,
        requeue_after: float,
        watcher_timeout: float | None = None,
        broker_backlog: int | None = None,
    ) -> dict[str, int]:
        """Repair what lost messages or dead workers left behind; return counts per repair.

        Attempts owned by a Kubernetes watcher (worker `k8s:GROUP`) are lost only after
        `watcher_timeout` (when longer): their pods run on without it, and a restarted or
        failed-over watcher (a new Lease holder) adopts them. `broker_backlog`, when the broker
        can tell, is how many queued task instances the execute messages waiting in its queue may
        carry at most: their count times the most ids one message carries (see `_requeue_stale`).
        """
        counts = {
            "timed_out_runs": self._time_out_runs(now),
            "lost_attempts": self._fail_lost_attempts(
                now, heartbeat_timeout, max(watcher_timeout or 0, heartbeat_timeout)
            ),
            "requeued": self._requeue_stale(now, requeue_after, broker_backlog),
            "advanced_runs": self._advance_idle_runs(now),
        }
        return counts

    def _time_out_runs(self, now: datetime) -> int:
        with self.db.read() as s:
            ids = s.scalars(
                select(Run.id).where(unfinished(Run.state, RUN), Run.deadline_at.is_not(None), Run.deadline_at <= now)
            ).all()
        for run_id in ids:
            with self.db.write() as s:
                run = self.runs.lock_run(s, run_id)
                if run.state in (RunState.RUNNING.value, RunState.QUEUED.value):
                    self.runs.halt_in(s, run, now, RunState.FAILED, f"run timed out after {run.timeout} s")
        return len(ids)

    def _fail_lost_attempts(self, now: datetime, heartbeat_timeout: float, watcher_timeout: float) -> int:
        limit = now - timedelta(seconds=heartbeat_timeout)
        watched = func.coalesce(TaskAttempt.worker, "").startswith(WATCHER_PREFIX, autoescape=True)
        with self.db.read() as s:
            rows = s.execute(
                select(TaskAttempt.id, TaskAttempt.worker, TaskAttempt.heartbeat_at).where(
                    _ATTEMPT_RUNNING,
                    TaskAttempt.heartbeat_at < limit,
                    ~watched | (TaskAttempt.heartbeat_at < now - timedelta(seconds=watcher_timeout)),
                )
            ).all()
        for attempt_id, worker, beat in rows:
            msg = f"worker {worker or '?'} lost: no heartbeat since {beat:%Y-%m-%d %H:%M:%S} UTC"
            self.finish(attempt_id, AttemptResult(succeeded=False, message=msg), now)
        return len(rows)

    def _requeue_stale(self, now: datetime, requeue_after: float, backlog: int | None = None) -> int:
        """Re-send queued task instances whose message may be lost, backing off per task instance.

        A message waiting `requeue_after` is re-sent; then again only once it has waited as long
        again (after 2x, 4x, 8x ... capped at MAX_RESEND_GAP), the next re-send time kept in
        `next_try_at` (unused while queued). A long backlog therefore costs a few re-sends per task
        instance, not one every reconciler interval: those duplicates would lengthen the backlog
        they react to. `queued_at` keeps when the task was really queued.

        With `backlog` (how many task instances the messages waiting in the broker's queue may
        carry at most: several ids travel in one message), at most as many are re-sent as there are
        queued task instances beyond that: while the queue could still hold a message for every
        queued task instance, none of them is lost for sure and a re-send would only add a duplicate
        behind it (1,000 concurrent runs left thousands of them, which delayed a backfill's first run
        by 20-40 s). A lost message is re-sent once the queue has drained below that.
        """
        limit = now - timedelta(seconds=requeue_after)
        with self.db.write() as s:
            query = select(TaskInstance.id, TaskInstance.queued_at).where(
                TaskInstance.state == TaskState.QUEUED.value,
                TaskInstance.queued_at < limit,
                (TaskInstance.next_try_at.is_(None)) | (TaskInstance.next_try_at <= now),
            )
            if backlog is not None:
                queued = int(
                    s.scalar(
                        select(func.count())
                        .select_from(TaskInstance)
                        .where(TaskInstance.state == TaskState.QUEUED.value)
                    )
                    or 0
                )
                if queued <= backlog:
                    return 0
                query = query.order_by(TaskInstance.queued_at).limit(queued - backlog)
            rows = s.execute(query).all()
            if rows:
                table = TaskInstance.__table__
                s.connection().execute(
                    update(table).where(table.c.id == bindparam("ti_id")).values(next_try_at=bindparam("next_at")),
                    [
                        {"ti_id": ti_id, "next_at": now + min(now - (queued_at or now), MAX_RESEND_GAP)}
                        for ti_id, queued_at in rows
                    ],
                )
        ids = [ti_id for ti_id, _ in rows]
        self.runs.dispatch(ids)
        return len(ids)

    def _advance_idle_runs(self, now: datetime) -> int:
        """Advance runs with retries due, runs never started, and running runs with nothing active."""
        busy = exists().where(
            and_(
                TaskInstance.run_id == Run.id, TaskInstance.state.in_([TaskState.QUEUED.value, TaskState.RUNNING.value])
            )
        )
        retry_due = exists().where(
            and_(
                TaskInstance.run_id == Run.id,
                TaskInstance.state == TaskState.UP_FOR_RETRY.value,
                TaskInstance.next_try_at <= now,
            )
        )
        with self.db.read() as s:
            ids = s.scalars(
                select(Run.id).where(
                    (Run.state == RunState.QUEUED.value) | ((Run.state == RunState.RUNNING.value) & (~busy | retry_due))
                )
            ).all()
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

    def claimable(self, limit: int | None = 100) -> list[int]:
        """Return ids of queued task instances (all with limit=None), oldest first."""
        with self.db.read() as s:
            return list(
                s.scalars(
                    select(TaskInstance.id)
                    .where(TaskInstance.state == TaskState.QUEUED.value)
                    .order_by(TaskInstance.queued_at, TaskInstance.id)
                    .limit(limit)
                ).all()
            )

    def has_pending_work(self, now: datetime) -> bool:
        """Return True while some task is queued, running or up for retry in an active run."""
        with self.db.read() as s:
            return bool(s.scalar(select(exists().where(TaskInstance.state.in_(ACTIVE_TASK_STATES)))))


def _text_array(names: Sequence[str]) -> str:
    """Return `names` as a PostgreSQL array literal: '{"a","b"}' (each quoted, \\ and " escaped)."""
    joined = '","'.join(names)
    if "\\" in joined or '"' in joined:  # rare: escape each name
        joined = '","'.join(name.replace("\\", "\\\\").replace('"', '\\"') for name in names)
    return '{"' + joined + '"}' if names else "{}"


def _username(s: Session, user_id: int | None) -> str:
    if user_id is None:
        return ""
    return s.scalar(select(USERS.c.username).where(USERS.c.id == user_id)) or ""
