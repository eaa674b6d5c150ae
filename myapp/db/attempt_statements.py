"""The attempt store's prebuilt statements (myapp/db/attempt_store.py): claim, finish and their guards.

Built once at import, SQLAlchemy Core on the session's connection (no unit of work, no identity
map); each row change is an UPDATE guarded by the state it leaves (derived from core/states.py
through db/guards.py), with RETURNING where the dialect has it (`_changed` reads back otherwise).
PostgreSQL's one-statement claim and finish (data-modifying WITH) are here too (decisions/0007).
The names keep their leading underscore: only attempt_store.py uses them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    String,
    TypeDecorator,
    any_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    null,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import aliased

from myapp.core.states import (
    ATTEMPT,
    TASK,
    TASK_UNFINISHED,
    AttemptState,
    RunState,
    TaskState,
)
from myapp.db.guards import moving_to, unfinished
from myapp.db.prebuilt import Prebuilt
from myapp.db.run_store import RELEASED_COLUMNS
from myapp.db.tables import Run, TaskAttempt, TaskInstance
from myapp.db.types import UTCDateTime

# An attempt still running: the only state an attempt ends from (core/states.py ATTEMPT); every
# end of an attempt is guarded by it, so a stop or a lost-worker verdict is never overwritten.
_ATTEMPT_RUNNING = unfinished(TaskAttempt.state, ATTEMPT)

# What a claim reads of the run (ClaimContext), in every claim statement's order.
_CLAIM_RUN_COLUMNS = (
    Run.id,
    Run.state,
    Run.version_id,
    Run.pipeline_id,
    Run.trigger,
    Run.execution_date_text,
    Run.params,
    Run.runner,
    Run.created_by,
    Run.debug_task,
    Run.deadline_at,
)

# The claim and finish statements, built once: SQLAlchemy Core on the session's connection (no unit
# of work, no identity map), each row change an UPDATE guarded by the state it leaves, with RETURNING.
_CLAIM_READ = (
    select(
        *_CLAIM_RUN_COLUMNS,
        TaskInstance.task_name,
        TaskInstance.state.label("ti_state"),
        TaskInstance.inputs,
        TaskInstance.slice_item,
    )
    .join_from(Run, TaskInstance, TaskInstance.run_id == Run.id)
    .where(TaskInstance.id == bindparam("ti_id"))
)
# MySQL/MariaDB cannot lock one table of a join (no FOR SHARE OF): the run is locked first on its
# own, by id; a shared lock on the joined task instance row too made a claim and a stop deadlock.
_RUN_OF_TASK = select(TaskInstance.run_id).where(TaskInstance.id == bindparam("ti_id"))
_LOCK_RUN_SHARED = select(Run.id).where(Run.id == bindparam("run_id")).with_for_update(read=True)
_CLAIM_START_PLAIN = (
    update(TaskInstance)
    .where(TaskInstance.id == bindparam("ti_id"), moving_to(TaskInstance.state, TASK, TaskState.RUNNING))
    .values(
        state=TaskState.RUNNING.value,
        try_number=TaskInstance.try_number + 1,
        started_at=func.coalesce(TaskInstance.started_at, bindparam("now", type_=UTCDateTime())),
    )
)
_CLAIM_START = _CLAIM_START_PLAIN.returning(TaskInstance.try_number)
_TRY_NUMBER = select(TaskInstance.try_number).where(TaskInstance.id == bindparam("ti_id"))
_INSERT_ATTEMPT_PLAIN = insert(TaskAttempt)
_INSERT_ATTEMPT = _INSERT_ATTEMPT_PLAIN.returning(TaskAttempt.id)
_RUN_OF_ATTEMPT = (
    select(TaskInstance.run_id)
    .join(TaskAttempt, TaskAttempt.task_instance_id == TaskInstance.id)
    .where(TaskAttempt.id == bindparam("attempt_id"))
    .scalar_subquery()
)
_TASK_OF_ATTEMPT = (
    select(TaskInstance.task_name)
    .join(TaskAttempt, TaskAttempt.task_instance_id == TaskInstance.id)
    .where(TaskAttempt.id == bindparam("attempt_id"))
    .scalar_subquery()
)
# The run's head (locked) and the attempt's task name: what a success releases is known before it is written.
_FINISH_LOCK = select(Run.id, Run.state, Run.version_id, Run.debug_task, Run.deadline_at, _TASK_OF_ATTEMPT).where(
    Run.id == _RUN_OF_ATTEMPT
)
_END_RUNNING_ATTEMPT_PLAIN = update(TaskAttempt).where(TaskAttempt.id == bindparam("attempt_id"), _ATTEMPT_RUNNING)
_END_RUNNING_ATTEMPT = _END_RUNNING_ATTEMPT_PLAIN.returning(TaskAttempt.task_instance_id)
_TASK_INSTANCE_OF_ATTEMPT = select(TaskAttempt.task_instance_id).where(TaskAttempt.id == bindparam("attempt_id"))
_ATTEMPT_END = select(TaskAttempt.message, TaskAttempt.ended_at).where(TaskAttempt.id == bindparam("attempt_id"))
_END_ATTEMPT = update(TaskAttempt).where(TaskAttempt.id == bindparam("attempt_id"))
_TASK_TRIES = select(
    TaskInstance.task_name, TaskInstance.try_number, TaskInstance.max_tries, TaskInstance.next_try_at
).where(TaskInstance.id == bindparam("ti_id"))
_SET_TASK = update(TaskInstance).where(TaskInstance.id == bindparam("ti_id"))
_OTHER = aliased(TaskInstance)
_OTHERS_UNFINISHED = exists().where(
    _OTHER.run_id == bindparam("of_run"),
    _OTHER.id != TaskInstance.id,
    _OTHER.state.in_(sorted(t.value for t in TASK_UNFINISHED)),
)

# PostgreSQL runs two dependent row changes as one statement (a data-modifying WITH), a round trip less.
_NOW = bindparam("now", type_=UTCDateTime())


# A success's two row changes, shared by the transaction's one-statement finish (_SUCCEED*) and the
# autocommit one (_fast_success): the attempt ends SUCCEEDED where `guards` hold (returning its task
# instance), and that task instance succeeds with the attempt's outputs (its inputs kept unless given).
def _attempt_succeeded(*guards: Any) -> Any:
    return (
        update(TaskAttempt)
        .where(*guards)
        .values(
            state=AttemptState.SUCCEEDED.value,
            exit_code=bindparam("a_exit"),
            ended_at=_NOW,
            message=bindparam("a_message"),
        )
        .returning(TaskAttempt.task_instance_id)
    )


def _task_succeeded(task_instance_id: Any) -> Any:
    return (
        update(TaskInstance)
        .where(TaskInstance.id == task_instance_id)
        .values(
            state=TaskState.SUCCEEDED.value,
            outputs=bindparam("t_outputs", type_=JSON()),
            message="",
            ended_at=_NOW,
            inputs=func.coalesce(bindparam("t_inputs", type_=JSON(none_as_null=True)), TaskInstance.inputs),
        )
    )


_ENDED = _attempt_succeeded(TaskAttempt.id == bindparam("attempt_id"), _ATTEMPT_RUNNING).cte("ended")
_SUCCEED = _task_succeeded(_ENDED.c.task_instance_id)
_SUCCEED_IN_ONE = _SUCCEED.returning(TaskInstance.task_name, _OTHERS_UNFINISHED)
# ... and, for a task with downstream tasks, a third: the counts of waiting upstreams they share go
# down by one (`released`: the counting tasks, one per distinct upstream set, core.counts_released_by;
# their rows come back joined to the succeeded one; no row at all if the attempt was no longer
# running, and then nothing is released).
_DONE = _SUCCEED.returning(TaskInstance.task_name.label("done_name"), _OTHERS_UNFINISHED.label("others")).cte("done")
_RELEASED = (
    update(TaskInstance)
    .where(
        TaskInstance.run_id == bindparam("of_run"),
        TaskInstance.task_name == any_(bindparam("released", type_=ARRAY(String()))),
        exists(select(literal(1)).select_from(_DONE)),
    )
    .values(upstream_waiting=TaskInstance.upstream_waiting - 1)
    .returning(*RELEASED_COLUMNS)
    .cte("released")
)
_SUCCEED_AND_RELEASE = select(_DONE.c.done_name, _DONE.c.others, *_RELEASED.c).select_from(
    _DONE.outerjoin(_RELEASED, true())
)


# PostgreSQL claims in one statement run in autocommit (no BEGIN and COMMIT round trips): lock the
# run shared if it is running and not past its deadline, start the task instance if it is still
# queued, insert its attempt, and return what the claim reads. The lock is taken before the task
# instance is changed (the UPDATE joins the locked row), so a stop, timeout or finish holding the run
# exclusively is waited for; one that committed meanwhile is seen: the locked row is read anew
# and the UPDATE re-checks a task instance that changed.
def _claim_in_one(ti_id: Any, *, with_id: bool = False) -> Any:
    """The one-statement claim of the task instance whose id is the expression `ti_id`; `with_id`:
    its id is returned too (`claimed_ti`)."""
    run_to_claim = (
        select(
            *_CLAIM_RUN_COLUMNS,
        )
        .join_from(Run, TaskInstance, TaskInstance.run_id == Run.id)
        .where(
            TaskInstance.id == ti_id,
            Run.state == RunState.RUNNING.value,
            Run.deadline_at.is_(None) | (Run.deadline_at > _NOW),
        )  # D8: no attempt starts after the run deadline
        .with_for_update(of=Run, read=True)
        .cte("claimed_run")
    )
    claim_task = (
        update(TaskInstance)
        .where(
            TaskInstance.id == ti_id,
            TaskInstance.run_id == run_to_claim.c.id,
            moving_to(TaskInstance.state, TASK, TaskState.RUNNING),
        )
        .values(
            state=TaskState.RUNNING.value,
            try_number=TaskInstance.try_number + 1,
            started_at=func.coalesce(TaskInstance.started_at, _NOW),
        )
        .returning(
            TaskInstance.id,
            TaskInstance.run_id,
            TaskInstance.try_number,
            TaskInstance.task_name,
            TaskInstance.inputs,
            TaskInstance.slice_item,  # a slice's item (R15), NULL for another task: no read after the claim
        )
        .cte("claimed_task")
    )
    claim_attempt = (
        insert(TaskAttempt)
        .from_select(
            [
                "task_instance_id",
                "try_number",
                "state",
                "worker",
                "started_at",
                "heartbeat_at",
                "pod_names",
                "container",
                "events",
                "message",
            ],
            select(
                claim_task.c.id,
                claim_task.c.try_number,
                literal(ATTEMPT.initial.value),
                bindparam("worker"),
                _NOW,
                _NOW,
                literal([], JSON()),
                literal({}, JSON()),
                literal([], JSON()),
                literal(""),
            ),
        )
        .returning(TaskAttempt.id, TaskAttempt.task_instance_id)
        .cte("claimed_attempt")
    )
    return (
        select(
            claim_attempt.c.id.label("attempt_id"),
            claim_task.c.try_number,
            claim_task.c.task_name,
            claim_task.c.inputs,
            claim_task.c.slice_item,
            *run_to_claim.c,
            *([claim_task.c.id.label("claimed_ti")] if with_id else []),
        )
        .select_from(claim_attempt)
        .join(claim_task, claim_task.c.id == claim_attempt.c.task_instance_id)
        .join(run_to_claim, run_to_claim.c.id == claim_task.c.run_id)
    )


_CLAIM_IN_ONE = _claim_in_one(bindparam("ti_id"))
# The claim of the task a success queued and its worker keeps (AttemptStore.finish with `claim_as`),
# named by its run and task name: sent with the finish in one round trip and committed with it
# (Database.run_prebuilts), it sees what the finish changed. Nothing queued under that name: no row.
_TASK_INSTANCE_NAMED = select(TaskInstance.id).where(
    TaskInstance.run_id == bindparam("of_run"), TaskInstance.task_name == bindparam("kept_name")
)
_CLAIM_KEPT = _claim_in_one(_TASK_INSTANCE_NAMED.scalar_subquery(), with_id=True)
# The attempt a claim made, found again after its connection was lost (AttemptStore.claim): the
# same columns as _CLAIM_IN_ONE returns.
_OWN_CLAIM = (
    select(
        TaskAttempt.id.label("attempt_id"),
        TaskAttempt.try_number,
        TaskInstance.task_name,
        TaskInstance.inputs,
        TaskInstance.slice_item,
        *_CLAIM_RUN_COLUMNS,
    )
    .join_from(TaskAttempt, TaskInstance, TaskInstance.id == TaskAttempt.task_instance_id)
    .join(Run, Run.id == TaskInstance.run_id)
    .where(
        TaskAttempt.task_instance_id == bindparam("ti_id"),
        TaskAttempt.worker == bindparam("worker"),
        TaskAttempt.started_at == _NOW,
        _ATTEMPT_RUNNING,
        TaskAttempt.try_number == TaskInstance.try_number,
    )
)
_SET_ATTEMPT_DEADLINE = (
    update(TaskAttempt)
    .where(TaskAttempt.id == bindparam("attempt_id"))
    .values(deadline_at=bindparam("deadline", type_=UTCDateTime()))
)
# A success returns the task's name and whether another task instance of the run is unfinished,
# in the same round trip (the run lock keeps the others as they are).
_OTHERS_OF_RUN_UNFINISHED = exists().where(
    _OTHER.run_id == bindparam("of_run"),
    _OTHER.id != bindparam("ti_id"),
    _OTHER.state.in_(sorted(t.value for t in TASK_UNFINISHED)),
)
_SET_TASK_SUCCEEDED = _SET_TASK.returning(TaskInstance.task_name, _OTHERS_OF_RUN_UNFINISHED)
_SUCCEEDED_TASK = select(TaskInstance.task_name, _OTHERS_OF_RUN_UNFINISHED).where(TaskInstance.id == bindparam("ti_id"))


def _changed(
    conn: Connection,
    returning: Any,
    plain: Any,
    read_back: Any,
    params: dict[str, Any],
    read_params: dict[str, Any] | None = None,
) -> Any:
    """Run a guarded UPDATE and return its RETURNING row (a Row), or None when the guard matched nothing.

    MySQL and MariaDB have no UPDATE ... RETURNING: there the plain UPDATE runs, then `read_back`
    reads the row in the same transaction (the UPDATE's row lock keeps it as written).
    `read_params` are the parameters only the RETURNING clause (and `read_back`) use.
    """
    if conn.dialect.update_returning:
        return conn.execute(returning, {**params, **(read_params or {})}).first()
    if conn.execute(plain, params).rowcount == 0:
        return None
    return conn.execute(read_back, {**params, **(read_params or {})}).first()


# PostgreSQL finishes a success in one statement run in autocommit (1 round trip instead of 4: BEGIN,
# the run lock, the change, COMMIT) when it needs no decision the locked rows cannot show: the run
# is running and goes on (another task instance of it is unfinished), and each task the success
# releases either keeps waiting or is queued by its trigger rule once its count reaches zero
# (AttemptStore._finish_in_one passes the names of each kind, decided by core). Otherwise the
# statement changes nothing and returns no row, and the transaction of finish_in decides.
#
# Order of the locks: the run first (FOR UPDATE, as every finish, stop and timeout; claims take it
# FOR SHARE), since every other part reads the locked run's id. "Another task instance is
# unfinished" is the row of one, locked FOR SHARE: a row a concurrent finish ended is re-checked
# against its committed version and passed over (READ COMMITTED), and the one found cannot end
# before this statement commits. A task instance the statement's snapshot does not show as
# unfinished only makes it answer "none" (the transaction then decides). The released rows are
# locked FOR UPDATE and judged on their committed versions before anything changes.
class _NameArray(TypeDecorator[Any]):
    """varchar[] bound from a text array literal ('{"a","b"}', rendered once per plan by AttemptStore):
    psycopg dumps a Python list element by element (~1 ms for the lists of a 100-wide layer's task).
    Sent as an untyped parameter under the ::VARCHAR[] cast, the server parses it once per statement."""

    impl = ARRAY(String())
    cache_ok = True

    def bind_processor(self, dialect: Any) -> None:
        return None


def _names(key: str) -> Any:
    return bindparam(key, type_=_NameArray())


_FAST_RUN = (
    select(Run.id)
    .where(
        Run.id == bindparam("of_run"),
        Run.version_id == bindparam("version_id"),
        Run.debug_task.is_(None),
        Run.state == RunState.RUNNING.value,
    )
    .with_for_update(of=Run)
    .cte("locked_run")
)
_FAST_RUN_ID = select(_FAST_RUN.c.id).scalar_subquery()
_LIVE_OTHER = (
    select(_OTHER.id)
    .where(
        _OTHER.run_id == _FAST_RUN_ID,
        _OTHER.id != bindparam("ti_id"),
        _OTHER.state.in_(sorted(t.value for t in TASK_UNFINISHED)),
    )
    .limit(1)
    .with_for_update(of=_OTHER, read=True)
    .cte("live_other")
)
_FAST_RELEASED = (
    select(TaskInstance.id, TaskInstance.task_name, TaskInstance.state, TaskInstance.upstream_waiting)
    .where(
        TaskInstance.run_id == _FAST_RUN_ID,
        TaskInstance.task_name == any_(_names("released")),
    )
    .with_for_update(of=TaskInstance)
    .cte("to_release")
)
# Every released row (a counting task, core.SuccessRelease) must be pending with a known count, and
# either still waiting after this end (count > 1, a name of `wait`: for a shared count, no task
# sharing it is decided, whatever its state, so only the counting row changes) or queued by it
# (count 1, a name of `queue`: only tasks counting for themselves).
_RELEASE_DECIDED = select(func.count()).select_from(_FAST_RELEASED).where(
    _FAST_RELEASED.c.state == TaskState.PENDING.value,
    ((_FAST_RELEASED.c.upstream_waiting > 1) & (_FAST_RELEASED.c.task_name == any_(_names("wait"))))
    | ((_FAST_RELEASED.c.upstream_waiting == 1) & (_FAST_RELEASED.c.task_name == any_(_names("queue")))),
).scalar_subquery() == bindparam("n_released")
# A shared count that this end brings to 0 (the plan's one count, core.SuccessRelease.sharers): the
# other tasks sharing it, locked FOR UPDATE, read only then (a one-time filter), and all of them
# must be pending to be queued with it; an end that leaves the count waiting reads none of them.
_AT_ZERO_NOW = exists(select(literal(1)).select_from(_FAST_RELEASED).where(_FAST_RELEASED.c.upstream_waiting == 1))
_FAST_SHARERS = (
    select(TaskInstance.id, TaskInstance.state)
    .where(
        TaskInstance.run_id == _FAST_RUN_ID,
        TaskInstance.task_name == any_(_names("sharers")),
        _AT_ZERO_NOW,
    )
    .with_for_update(of=TaskInstance)
    .cte("to_share")
)
_SHARERS_DECIDED = select(func.count()).select_from(_FAST_SHARERS).where(
    _FAST_SHARERS.c.state == TaskState.PENDING.value
).scalar_subquery() == case((_AT_ZERO_NOW, bindparam("n_sharers")), else_=0)


def _fast_success(*, releases: bool, shares: bool = False) -> Any:
    guards = [
        TaskAttempt.id == bindparam("attempt_id"),
        TaskAttempt.task_instance_id == bindparam("ti_id"),
        _ATTEMPT_RUNNING,
        exists(select(literal(1)).select_from(_LIVE_OTHER)),
    ]
    if releases:
        guards.append(_RELEASE_DECIDED)
    if shares:
        guards.append(_SHARERS_DECIDED)
    ended = _attempt_succeeded(*guards).cte("fast_ended")
    done = _task_succeeded(ended.c.task_instance_id).returning(TaskInstance.id).cte("fast_done")
    if not releases:
        return select(done.c.id.label("done_id"), literal(None).label("released_id"), literal(None).label("state"))
    at_zero = TaskInstance.upstream_waiting == 1
    released = (
        update(TaskInstance)
        .where(
            TaskInstance.id.in_(select(_FAST_RELEASED.c.id)),
            exists(select(literal(1)).select_from(done)),
        )
        .values(
            upstream_waiting=TaskInstance.upstream_waiting - 1,
            state=case((at_zero, TaskState.QUEUED.value), else_=TaskInstance.state),
            queued_at=case((at_zero, _NOW), else_=TaskInstance.queued_at),
            next_try_at=case((at_zero, null()), else_=TaskInstance.next_try_at),
        )
        .returning(TaskInstance.id, TaskInstance.state)
        .cte("fast_released")
    )
    queued = select(done.c.id.label("done_id"), released.c.id.label("released_id"), released.c.state).select_from(
        done.outerjoin(released, released.c.state == TaskState.QUEUED.value)  # the queued ones only
    )
    if not shares:
        return queued
    shared = (
        update(TaskInstance)
        .where(TaskInstance.id.in_(select(_FAST_SHARERS.c.id)), exists(select(literal(1)).select_from(done)))
        .values(state=TaskState.QUEUED.value, queued_at=_NOW, next_try_at=null())
        .returning(TaskInstance.id, TaskInstance.state)
        .cte("fast_shared")
    )
    return union_all(queued, select(done.c.id, shared.c.id, shared.c.state).select_from(done.join(shared, true())))


_SUCCEED_LEAF_FAST = _fast_success(releases=False)
_SUCCEED_RELEASE_FAST = _fast_success(releases=True)
_SUCCEED_SHARE_FAST = _fast_success(releases=True, shares=True)  # a shared count that may reach 0 here


# A slice's success (R15) in one statement in autocommit, when it is not the last slice of its
# sliced task and the task has no parallelism cap (AttemptStore._finish_slice_in_one): the attempt
# ends, the slice succeeds with its outputs and the sliced task's count of slices not ended yet
# (slices_left) goes down by one. The last slice (or a capped one, which queues the next pending
# slice) changes nothing here and ends in the transaction (slice_store.slice_ended), which gathers
# the outputs, ends the sliced task and releases its downstream tasks.
#
# Order of the locks, as the transaction's: the run (FOR UPDATE, running, same version, no debug
# task), then the attempt (FOR UPDATE: its latest version must be running, since the statement's
# snapshot may predate a stop, timeout or lost-worker end that committed while the run lock was
# waited for), then the sliced task's row. The counter's UPDATE ... RETURNING is the arbiter: it
# changes the row only while the sliced task is running with more than one slice left, re-checked on
# the row's latest version, so of two slices ending at once (serialized by the run lock) one counts
# 2 -> 1 here and the other finds 1 and goes to the transaction as the last; neither both nor none.
# The attempt and the slice change only if the count did.
_SLICE_ATTEMPT = (
    select(TaskAttempt.id)
    .where(
        TaskAttempt.id == bindparam("attempt_id"),
        TaskAttempt.task_instance_id == bindparam("ti_id"),
        _ATTEMPT_RUNNING,
        exists(select(literal(1)).select_from(_FAST_RUN)),  # a one-time filter: the run is locked first
    )
    .with_for_update(of=TaskAttempt)
    .cte("slice_attempt")
)
_SLICE_COUNTED = (
    update(TaskInstance)
    .where(
        TaskInstance.run_id == _FAST_RUN_ID,
        TaskInstance.task_name == bindparam("sliced"),
        TaskInstance.state == TaskState.RUNNING.value,
        TaskInstance.slices_left > 1,
        exists(select(literal(1)).select_from(_SLICE_ATTEMPT)),
    )
    .values(slices_left=TaskInstance.slices_left - 1)
    .returning(TaskInstance.slices_left)
    .cte("slice_counted")
)
_SLICE_ENDED = _attempt_succeeded(
    TaskAttempt.id == bindparam("attempt_id"),
    _ATTEMPT_RUNNING,
    exists(select(literal(1)).select_from(_SLICE_COUNTED)),
).cte("slice_ended")
_SLICE_DONE = _task_succeeded(_SLICE_ENDED.c.task_instance_id).returning(TaskInstance.id).cte("slice_done")
_SUCCEED_SLICE_FAST = select(_SLICE_COUNTED.c.slices_left, _SLICE_DONE.c.id.label("done_id")).select_from(
    _SLICE_COUNTED.outerjoin(_SLICE_DONE, true())
)

# The one-statement claim and finishes as AttemptStore runs them: compiled once, on the DBAPI
# connection (Database.run_prebuilt, db/prebuilt.py).
_CLAIM_PREBUILT = Prebuilt(_CLAIM_IN_ONE)
_CLAIM_KEPT_PREBUILT = Prebuilt(_CLAIM_KEPT)
_SUCCEED_LEAF_PREBUILT = Prebuilt(_SUCCEED_LEAF_FAST)
_SUCCEED_RELEASE_PREBUILT = Prebuilt(_SUCCEED_RELEASE_FAST)
_SUCCEED_SHARE_PREBUILT = Prebuilt(_SUCCEED_SHARE_FAST)
_SUCCEED_SLICE_PREBUILT = Prebuilt(_SUCCEED_SLICE_FAST)
