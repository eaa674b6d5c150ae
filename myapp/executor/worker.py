"""The worker's use-case: claim a queued task instance, run the attempt, record its end.

Called by the Celery task and by the burst worker; idempotent (a duplicate message finds the
task no longer queued and does nothing).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from typing import Any

from myapp.core.errors import MyappError
from myapp.core.output_paths import parse_roots
from myapp.core.values import AttemptResult
from myapp.executor.condition import condition_result
from myapp.executor.local import LocalConfig, LocalExecutor
from myapp.executor.outputs import Confinement
from myapp.executor.ports import ExecutorPorts
from myapp.executor.task_user import SINGLE, Isolation, TaskAccounts, decide, secure_home
from myapp.logs.attempt_logs import AttemptLog, LogKey, Stream
from myapp.settings import Settings

log = logging.getLogger(__name__)
CONTINUE_FOR = 30.0  # seconds a worker process goes on with the tasks its successes made ready


def worker_name() -> str:
    """Return a name identifying this worker process."""
    return f"{socket.gethostname()}:{os.getpid()}"


_ACCOUNTS: dict[tuple[str, int], TaskAccounts] = {}  # per process: accounts already made


def local_executor(services: ExecutorPorts) -> LocalExecutor:
    """Build the local executor from settings (MyappError if task_isolation cannot be given)."""
    s = services.settings
    iso = decide(s.task_isolation, os.geteuid())
    accounts = (
        _ACCOUNTS.setdefault((s.task_user, s.task_uid_base), TaskAccounts(s.task_user, s.task_uid_base))
        if iso.switches_users
        else None
    )
    return LocalExecutor(
        LocalConfig(
            workflow_space=s.workflow_space,
            artifacts_dir=s.artifacts_dir,
            cluster_name=s.cluster_name,
            heartbeat_interval=s.heartbeat_interval,
            kill_grace=s.kill_grace,
            render_timeout=s.render_timeout,
            confinement=Confinement(parse_roots(s.output_roots), (s.home, s.workflow_space)),
            accounts=accounts,
            private_tmp=s.task_tmp == "private",
            single_project_home=s.home if iso.mode == SINGLE else None,
            artifacts=services.artifacts,
        ),
        services.templates,
    )


def prepare_task_isolation(settings: Settings) -> Isolation:
    """At worker start: decide how tasks are kept apart, say it plainly, and lock the worker's files away.

    Raises MyappError when task_isolation: users cannot be given (the worker must not start).
    """
    iso = decide(settings.task_isolation, os.geteuid())
    if iso.switches_users:
        settings.home.mkdir(parents=True, exist_ok=True)
        secure_home(settings.home)
        settings.workflow_space.mkdir(parents=True, exist_ok=True)
        if settings.workflow_space.stat().st_uid == os.geteuid():
            settings.workflow_space.chmod(0o711)  # tasks pass through to their own directory only
        closed = next(
            (p for p in (settings.workflow_space, *settings.workflow_space.parents) if not p.stat().st_mode & 0o001),
            None,
        )
        if closed is not None:
            raise MyappError(
                f"MYAPP_WORKFLOW_SPACE: {settings.workflow_space} is out of reach of the task accounts "
                f"({closed} is mode {closed.stat().st_mode & 0o777:o}); choose a workflow space every "
                "user may pass through, or set MYAPP_TASK_ISOLATION=none"
            )
        log.info("task isolation: %s", iso.message)
    return iso  # without user switching the caller says so, once (cli/process.py announce_task_isolation)


def run_task_instance(ti_id: int, services: ExecutorPorts) -> int:
    """Run the next attempt of `ti_id` on the executor chosen by settings.executor; return attempts run."""
    if services.settings.executor == "kubernetes":  # claim + create pods; the k8s watcher ends it
        from myapp.executor.kubernetes.launch import launch_with_own_client

        return int(launch_with_own_client(ti_id, services))
    return execute_task_instance(ti_id, services, local_executor(services))


def execute_task_instance(ti_id: int, services: ExecutorPorts, executor: LocalExecutor) -> int:
    """Run the next attempt of task instance `ti_id` if it is still queued, then go on with what it
    made ready; return how many attempts ran.

    When a success queues downstream tasks, this process keeps the first one and runs it next
    instead of sending it through the broker (the others are sent as usual): a chain hops from
    task to task without a broker round trip, a message hand-off and a claim of another process,
    as Airflow's "mini scheduler" does after a task. The kept task instance is queued in the
    database like any other, so a process that dies before claiming it leaves it to the
    reconciler's re-send; the claim stays the one arbiter of who runs it. After CONTINUE_FOR
    seconds the next task goes through the broker again, so a long chain never keeps a worker
    from a warm shutdown (which waits for the running Celery task) for longer than one attempt.
    """
    ran, next_id, until = 0, ti_id, time.monotonic() + CONTINUE_FOR
    while True:
        kept, started = _execute_one(next_id, services, executor, keep_one=time.monotonic() < until)
        ran += started
        if kept is None:
            return ran
        next_id = kept


def _execute_one(
    ti_id: int, services: ExecutorPorts, executor: LocalExecutor, *, keep_one: bool
) -> tuple[int | None, bool]:
    """Claim and run one attempt; return (the task instance kept to run next, whether this one ran)."""
    clock, attempts, retry = services.clock, services.attempts, services.db.retry_on_disconnect
    # Each store call is whole transactions: one whose connection dropped is repeated (a lost
    # finish would lose the result; a heartbeat raising would leave the task process unkilled).
    ctx = retry(lambda: attempts.claim(ti_id, worker_name(), clock.now()))
    if ctx is None:
        return None, False
    # Buffered: the executor flushes the lines of a running attempt every FLUSH_AFTER seconds, and a
    # short attempt's lines go out once, at close.
    log = AttemptLog(
        LogKey(ctx.run_id, ctx.task.name, ctx.try_number),
        services.settings.logs_dir,
        services.redis,
        buffered=True,
        clock=clock.now,
    )
    process: dict[str, Any] = {}

    def heartbeat() -> bool:
        # Where the attempt runs is written with its first heartbeat: a task shorter than one
        # heartbeat interval costs no extra transaction.
        fresh = process.pop("new", None)
        try:
            return retry(
                lambda: attempts.heartbeat(ctx.attempt_id, clock.now(), pid=fresh and fresh["pid"], container=fresh)
            )
        except Exception as exc:  # noqa: BLE001  the database stayed away: the attempt will be declared lost
            log.write(f"heartbeat failed, stopping the attempt: {str(exc).splitlines()[0]}", Stream.SYS)
            return False

    try:
        early = condition_result(ctx, executor.config.cluster_name)  # R14: a false `when` runs nothing
        if early is not None:
            log.write(early.message, Stream.SYS)
        result = early or executor.run(
            ctx,
            log,
            heartbeat=heartbeat,
            now=clock.now,
            on_start=lambda pid: process.update(new={"kind": "process", "pid": pid, "worker": worker_name()}),
        )
    except Exception as exc:  # noqa: BLE001  an executor bug must still end the attempt
        log.write("internal error:\n" + traceback.format_exc(), Stream.SYS)
        result = AttemptResult(succeeded=False, message=f"internal error: {exc}")
    finally:
        log.close()
    # The kept task instance is claimed with the finish where the store can (one round trip, one commit).
    me = worker_name()
    return retry(lambda: attempts.finish(ctx.attempt_id, result, clock.now(), keep_one=keep_one, claim_as=me)), True
