"""AttemptStore's claim and finish transactions racing each other and operator actions (no worker).

The messages are captured instead of sent, so each test decides who claims and finishes what, when.
A contract suite: every test runs on each backend of tests/integration/backends.py -- SQLite and
MariaDB (the generic path) in the SQLite suite; PostgreSQL's one-statement claim/finish and, on the
same server, the generic path (sql_fast_paths=false) in the PostgreSQL suite.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from myapp.core.values import AttemptContext, AttemptResult
from myapp.db.tables import Run, TaskAttempt, TaskInstance
from tests.integration.backends import store_services  # noqa: F401  (the `services` fixture, per backend)
from tests.integration.engine_helpers import save, start

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

OK = AttemptResult(succeeded=True, exit_code=0)


def fanout(services: Any, name: str, leaves: int, retries: int = 0) -> int:
    lines = [f"name: {name}", "tasks:", "  - {name: root, image: local, command: ['true']}"]
    lines += [
        f"  - {{name: leaf{i}, image: local, command: ['true'], depends_on: [root], retries: {retries}}}"
        for i in range(leaves)
    ]
    return save(services, "\n".join(lines) + "\n")


def claim(services: Any, ti_id: int) -> AttemptContext | None:
    return services.attempts.claim(ti_id, f"w{threading.get_ident()}", services.clock.now())


def started_leaves(services: Any, sent: list[int], name: str, leaves: int) -> tuple[int, list[int]]:
    """Start a fan-out run and finish its root; return (run id, the queued leaves)."""
    run_id = start(services, fanout(services, name, leaves))
    root = claim(services, sent.pop())
    assert root is not None
    services.attempts.finish(root.attempt_id, OK, services.clock.now())
    queued = list(sent)
    sent.clear()
    assert len(queued) == leaves
    return run_id, queued


def together(works: list[Callable[[], object]]) -> list[object]:
    """Run each of `works` in a thread of its own, all released at once; return the results."""
    barrier = threading.Barrier(len(works))
    results: list[object] = []

    def go(work: Callable[[], object]) -> None:
        barrier.wait()
        results.append(work())

    threads = [threading.Thread(target=go, args=(work,)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def states(services: Any, run_id: int) -> tuple[str, dict[str, str], list[str]]:
    """Return (run state, task states by name, attempt states)."""
    with services.db.read() as s:
        run = s.get(Run, run_id)
        assert run is not None
        tasks = {
            name: state
            for name, state in s.execute(
                select(TaskInstance.task_name, TaskInstance.state).where(TaskInstance.run_id == run_id)
            )
        }
        attempts = list(s.scalars(select(TaskAttempt.state).join(TaskInstance).where(TaskInstance.run_id == run_id)))
    return run.state, tasks, attempts


def test_claims_racing_a_stop_leave_nothing_running(services: Any, sent: list[int]) -> None:
    run_id, queued = started_leaves(services, sent, "claims-vs-stop", 8)
    stop: Callable[[], object] = lambda: services.runs.stop_run(run_id, services.clock.now(), by="tester")  # noqa: E731
    together([stop, *(lambda ti_id=ti_id: claim(services, ti_id) for ti_id in queued)])
    run, tasks, attempts = states(services, run_id)
    assert run == "stopped"
    assert all(state == "stopped" for name, state in tasks.items() if name != "root"), tasks
    assert attempts.count("running") == 0, attempts  # a claim either lost the race or was stopped


def test_a_claim_waiting_for_a_stop_holding_the_run_starts_nothing(services: Any, sent: list[int]) -> None:
    # The stop locks the run first; the claim comes while the stop is still in its transaction, so
    # it has to wait, and must then see the stopped run (not the queued task it read before).
    from myapp.core.states import RunState

    run_id, queued = started_leaves(services, sent, "claim-waits-for-stop", 1)
    locked, claimed = threading.Event(), []

    def stop() -> None:
        with services.db.write() as s:
            run = services.runs.lock_run(s, run_id)
            locked.set()
            time.sleep(0.5)  # the claim below is sent meanwhile and waits for this lock
            services.runs.halt_in(s, run, services.clock.now(), RunState.STOPPED, "stopped by tester")

    stopper = threading.Thread(target=stop)
    stopper.start()
    assert locked.wait(10)
    began = time.monotonic()
    claimed.append(claim(services, queued[0]))
    waited = time.monotonic() - began
    stopper.join()
    assert waited > 0.2, "the claim did not wait for the run's lock"
    assert claimed == [None]
    run, tasks, attempts = states(services, run_id)
    assert run == "stopped" and tasks["leaf0"] == "stopped" and attempts == ["succeeded"]  # the root's


def test_a_connection_lost_while_a_claim_reads_the_attempts_context_leaves_no_orphan(
    services: Any, sent: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker repeats a claim whose connection dropped (retry_on_disconnect). On PostgreSQL the
    # claim commits in its first statement; repeating all of it would find the task running and
    # leave that attempt without a process. What must be repeated is only what follows.
    from sqlalchemy.exc import OperationalError

    class AdminShutdown(Exception):
        pass

    AdminShutdown.__module__ = "psycopg.errors"
    run_id, queued = started_leaves(services, sent, "claim-context-drop", 1)
    real, calls = services.attempts._pipeline_names, []

    def drops_once(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("SELECT", {}, AdminShutdown("terminating connection due to administrator command"))
        return real(*args)

    monkeypatch.setattr(services.attempts, "_pipeline_names", drops_once)
    ctx = services.db.retry_on_disconnect(lambda: claim(services, queued[0]), sleep=lambda _: None)
    assert ctx is not None and ctx.try_number == 1 and len(calls) == 2
    run, tasks, attempts = states(services, run_id)
    assert tasks["leaf0"] == "running" and attempts.count("running") == 1
    with services.db.read() as s:
        attempt = s.get(TaskAttempt, ctx.attempt_id)
        assert attempt is not None and attempt.state == "running"


def test_a_claim_whose_commit_reply_is_lost_goes_on_with_the_attempt_it_made(
    services: Any, sent: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The claim committed, then the connection dropped before its reply: the worker must not
    # claim again (it would find the task running and leave the attempt without a process).
    from sqlalchemy.exc import OperationalError

    class AdminShutdown(Exception):
        pass

    AdminShutdown.__module__ = "psycopg.errors"
    run_id, queued = started_leaves(services, sent, "claim-reply-lost", 2)
    real = services.attempts._claim

    def committed_then_dropped(*args: Any) -> Any:
        real(*args)
        raise OperationalError("COMMIT", {}, AdminShutdown("server closed the connection unexpectedly"))

    monkeypatch.setattr(services.attempts, "_claim", committed_then_dropped)
    ctx = claim(services, queued[0])
    assert ctx is not None and ctx.try_number == 1 and ctx.task.name == "leaf0"
    run, tasks, attempts = states(services, run_id)
    assert tasks["leaf0"] == "running" and attempts.count("running") == 1
    # A claim that did not commit (the task is still queued) raises: the caller claims again.
    monkeypatch.setattr(
        services.attempts,
        "_claim",
        lambda *args: (_ for _ in ()).throw(
            OperationalError("SELECT", {}, AdminShutdown("server closed the connection unexpectedly"))
        ),
    )
    with pytest.raises(OperationalError):
        claim(services, queued[1])
    assert states(services, run_id)[1]["leaf1"] == "queued"
    services.runs.stop_run(run_id, services.clock.now())  # leaves nothing queued for the reconciler tests


def chain(services: Any, name: str, tasks: int) -> int:
    lines = [f"name: {name}", "tasks:"]
    lines += [
        f"  - {{name: t{i}, image: local, command: ['true']{f', depends_on: [t{i - 1}]' if i else ''}}}"
        for i in range(tasks)
    ]
    return save(services, "\n".join(lines) + "\n")


def xmins(services: Any, attempt_ids: list[int]) -> set[str]:
    """The transactions that last wrote these attempts' rows (PostgreSQL)."""
    from sqlalchemy import text

    with services.db.read() as s:
        found = s.execute(text("SELECT xmin::text FROM task_attempts WHERE id = ANY(:ids)"), {"ids": attempt_ids})
        return set(found.scalars())


def test_a_chains_next_task_is_claimed_with_the_finish_that_queued_it(services: Any, sent: list[int]) -> None:
    # A worker keeps the task its success queued (keep_one) and claims it: on PostgreSQL's one-statement
    # path in the same round trip and transaction as the finish, elsewhere right after it.
    worker = f"w{threading.get_ident()}"
    run_id = start(services, chain(services, "kept-claim", 3))
    ctx = claim(services, sent.pop())
    assert ctx is not None
    for name in ("t1", "t2"):
        kept = services.attempts.finish(ctx.attempt_id, OK, services.clock.now(), keep_one=True, claim_as=worker)
        assert kept is not None and sent == []
        if services.attempts._in_one:  # running already, committed together with the finish
            assert states(services, run_id)[1][name] == "running"
        nxt = claim(services, kept)
        assert nxt is not None and (nxt.task.name, nxt.try_number) == (name, 1)
        if services.attempts._in_one:
            assert len(xmins(services, [ctx.attempt_id, nxt.attempt_id])) == 1
        assert claim(services, kept) is None  # a duplicate message finds it running
        ctx = nxt
    assert services.attempts.finish(ctx.attempt_id, OK, services.clock.now(), keep_one=True, claim_as=worker) is None
    run, tasks, attempts = states(services, run_id)
    assert run == "succeeded" and attempts == ["succeeded"] * 3 and sent == []


def test_a_finish_whose_reply_is_lost_goes_on_with_the_task_its_claim_took(
    services: Any, sent: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The finish and the kept task's claim committed together, then the connection dropped before the
    # reply: the repeated finish must find that claim and keep its task (no attempt without a process).
    from sqlalchemy.exc import OperationalError

    class AdminShutdown(Exception):
        pass

    AdminShutdown.__module__ = "psycopg.errors"
    worker = f"w{threading.get_ident()}"
    run_id = start(services, chain(services, "kept-reply-lost", 2))
    ctx = claim(services, sent.pop())
    assert ctx is not None
    real, calls = services.db.run_prebuilts, []

    def committed_then_dropped(statements: Any) -> Any:
        real(statements)
        calls.append(len(statements))
        raise OperationalError("COMMIT", {}, AdminShutdown("server closed the connection unexpectedly"))

    monkeypatch.setattr(services.db, "run_prebuilts", committed_then_dropped)
    kept = services.db.retry_on_disconnect(
        lambda: services.attempts.finish(ctx.attempt_id, OK, services.clock.now(), keep_one=True, claim_as=worker),
        sleep=lambda _: None,
    )
    monkeypatch.undo()
    assert kept is not None and sent == [] and calls == ([2] if services.attempts._in_one else [])
    nxt = claim(services, kept)
    assert nxt is not None and (nxt.task.name, nxt.try_number) == ("t1", 1)
    run, tasks, attempts = states(services, run_id)
    assert tasks == {"t0": "succeeded", "t1": "running"} and sorted(attempts) == ["running", "succeeded"]
    services.runs.stop_run(run_id, services.clock.now())  # leaves nothing queued for the reconciler tests


def test_a_claim_records_the_attempt_deadline_of_a_task_timeout(services: Any, sent: list[int]) -> None:
    from datetime import timedelta

    run_id = start(
        services,
        save(
            services, "name: claim-deadline\ntasks:\n  - {name: slow, image: local, command: ['true'], timeout: 30}\n"
        ),
    )
    now = services.clock.now()
    ctx = services.attempts.claim(sent.pop(), "w", now)
    assert ctx is not None and ctx.deadline_at == now + timedelta(seconds=30)
    with services.db.read() as s:
        attempt = s.get(TaskAttempt, ctx.attempt_id)
        assert attempt is not None and attempt.deadline_at == now + timedelta(seconds=30)
        assert (attempt.state, attempt.worker, attempt.try_number) == ("running", "w", 1)
    assert states(services, run_id)[1] == {"slow": "running"}


def test_a_finish_after_a_stop_keeps_the_attempt_stopped(services: Any, sent: list[int]) -> None:
    run_id, queued = started_leaves(services, sent, "finish-after-stop", 2)
    ctx = claim(services, queued[0])
    assert ctx is not None
    services.runs.stop_run(run_id, services.clock.now(), by="tester")
    services.attempts.finish(
        ctx.attempt_id, AttemptResult(succeeded=True, exit_code=0, message="done"), services.clock.now()
    )
    run, tasks, _ = states(services, run_id)
    with services.db.read() as s:
        attempt = s.get(TaskAttempt, ctx.attempt_id)
        assert attempt is not None
        assert (attempt.state, attempt.exit_code) == ("stopped", 0)
        assert attempt.message == "stopped by tester; done" and attempt.ended_at is not None
    assert run == "stopped" and tasks["leaf0"] == "stopped" and sent == []


def test_duplicate_claims_of_every_leaf_start_one_attempt_each(services: Any, sent: list[int]) -> None:
    run_id, queued = started_leaves(services, sent, "duplicate-claims", 6)
    # each leaf's message three times, all claimed at once
    results = together([lambda ti_id=ti_id: claim(services, ti_id) for ti_id in queued * 3])
    won = [r for r in results if isinstance(r, AttemptContext)]
    assert sorted(ctx.task_instance_id for ctx in won) == sorted(queued)
    assert all(ctx.try_number == 1 for ctx in won)
    _, tasks, attempts = states(services, run_id)
    assert attempts.count("running") == 6 and len(attempts) == 7


def test_leaves_finishing_together_end_the_run_once(services: Any, sent: list[int]) -> None:
    run_id, queued = started_leaves(services, sent, "finishing-together", 12)

    def finish(ctx: AttemptContext | None) -> object:
        assert ctx is not None
        failed = ctx.task.name == "leaf5"
        result = AttemptResult(succeeded=not failed, exit_code=int(failed), message="exit code 1" if failed else "")
        services.attempts.finish(ctx.attempt_id, result, services.clock.now())
        return None

    together([lambda ctx=claim(services, ti_id): finish(ctx) for ti_id in queued])
    run, tasks, attempts = states(services, run_id)
    assert run == "failed" and tasks["leaf5"] == "failed"
    assert sorted(attempts) == ["failed"] + ["succeeded"] * 12 and sent == []
    with services.db.read() as s:
        ended = s.get(Run, run_id)
        assert ended is not None and ended.ended_at is not None and ended.message == "a task failed"


def test_successes_finishing_together_end_the_run_once_and_release_the_join_once(
    services: Any, sent: list[int]
) -> None:
    # On PostgreSQL each of these successes is one statement in autocommit (AttemptStore._finish_in_one)
    # until the last two, which must see each other end: the run ends once, the join is queued once.
    lines = ["name: join-together", "tasks:", "  - {name: root, image: local, command: ['true']}"]
    lines += [f"  - {{name: leaf{i}, image: local, command: ['true'], depends_on: [root]}}" for i in range(10)]
    lines += [
        "  - {name: join, image: local, command: ['true'], depends_on: ["
        + ", ".join(f"leaf{i}" for i in range(10))
        + "]}"
    ]
    run_id = start(services, save(services, "\n".join(lines) + "\n"))
    root = claim(services, sent.pop())
    assert root is not None
    services.attempts.finish(root.attempt_id, OK, services.clock.now())
    leaves = [claim(services, ti_id) for ti_id in sent]
    sent.clear()
    together(
        [lambda ctx=ctx: services.attempts.finish(ctx.attempt_id, OK, services.clock.now()) for ctx in leaves if ctx]
    )
    assert len(sent) == 1, "the join is sent once"
    join = claim(services, sent.pop())
    assert join is not None and join.task.name == "join"
    _, tasks, _ = states(services, run_id)
    assert {name for name, state in tasks.items() if state != "succeeded"} == {"join"}
    for _round in range(2):  # plain leaves, all at once: the last success ends the run, once
        run2 = start(services, fanout(services, f"together-{_round}", 8))
        first = claim(services, sent.pop())
        assert first is not None
        services.attempts.finish(first.attempt_id, OK, services.clock.now())
        ctxs = [claim(services, ti_id) for ti_id in sent]
        sent.clear()
        together(
            [lambda ctx=ctx: services.attempts.finish(ctx.attempt_id, OK, services.clock.now()) for ctx in ctxs if ctx]
        )
        assert states(services, run2)[0] == "succeeded" and sent == []
    services.attempts.finish(join.attempt_id, OK, services.clock.now())
    assert states(services, run_id)[0] == "succeeded"


def test_a_success_that_the_run_goes_on_after_is_one_statement_on_postgresql(services: Any, sent: list[int]) -> None:
    # a releases b (queued) and e (still waiting for b): one statement on PostgreSQL. b releases c,
    # whose rule (one_failed) a success settles otherwise than by queueing it, and e: the
    # transaction decides. e is the last unfinished task: the transaction ends the run.
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    lines = ["name: one-statement", "tasks:", "  - {name: a, image: local, command: ['true']}"]
    lines += ["  - {name: b, image: local, command: ['true'], depends_on: [a]}"]
    lines += ["  - {name: c, image: local, command: ['true'], depends_on: [b], trigger_rule: one_failed}"]
    lines += ["  - {name: e, image: local, command: ['true'], depends_on: [a, b]}"]
    run_id = start(services, save(services, "\n".join(lines) + "\n"))
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    def finish_counted(ti_id: int) -> int:
        ctx = claim(services, ti_id)
        assert ctx is not None
        statements.clear()
        event.listen(Engine, "before_cursor_execute", count)
        try:
            services.attempts.finish(ctx.attempt_id, OK, services.clock.now())
        finally:
            event.remove(Engine, "before_cursor_execute", count)
        return len(statements)

    one = services.attempts._in_one
    assert finish_counted(sent.pop()) == 1 or not one
    assert states(services, run_id)[1] == {"a": "succeeded", "b": "queued", "c": "pending", "e": "pending"}
    assert finish_counted(sent.pop()) > 1
    assert states(services, run_id)[1] == {"a": "succeeded", "b": "succeeded", "c": "skipped", "e": "queued"}
    assert finish_counted(sent.pop()) > 1 and sent == []
    run, tasks, attempts = states(services, run_id)
    assert run == "succeeded" and tasks["e"] == "succeeded" and attempts == ["succeeded"] * 3


def test_a_leaf_up_for_retry_keeps_the_run_going(services: Any, sent: list[int]) -> None:
    run_id = start(services, fanout(services, "leaf-retry", 2, retries=1))
    root = claim(services, sent.pop())
    assert root is not None
    services.attempts.finish(root.attempt_id, OK, services.clock.now())
    first, second = (claim(services, ti_id) for ti_id in list(sent))
    sent.clear()
    assert first is not None and second is not None
    services.attempts.finish(first.attempt_id, OK, services.clock.now())
    services.attempts.finish(
        second.attempt_id, AttemptResult(succeeded=False, exit_code=1, message="exit code 1"), services.clock.now()
    )
    run, tasks, _ = states(services, run_id)  # no retry delay: queued again at once
    assert run == "running" and tasks == {"root": "succeeded", "leaf0": "succeeded", "leaf1": "queued"}
    again = claim(services, sent.pop())
    assert again is not None and again.try_number == 2
    services.attempts.finish(again.attempt_id, OK, services.clock.now())
    assert states(services, run_id)[:2] == (
        "succeeded",
        {"root": "succeeded", "leaf0": "succeeded", "leaf1": "succeeded"},
    )


def test_a_success_records_outputs_and_the_inputs_shown(services: Any, sent: list[int]) -> None:
    run_id, queued = started_leaves(services, sent, "inputs-shown", 2)
    shown = {"x": {"type": "str", "value": "1"}}
    for ti_id, inputs in zip(queued, (shown, {}), strict=True):
        ctx = claim(services, ti_id)
        assert ctx is not None
        services.attempts.finish(
            ctx.attempt_id,
            AttemptResult(succeeded=True, exit_code=0, outputs={"out": "v"}, inputs=inputs),
            services.clock.now(),
        )
    with services.db.read() as s:
        rows = {ti.task_name: ti for ti in s.scalars(select(TaskInstance).where(TaskInstance.run_id == run_id))}
        assert (rows["leaf0"].inputs, rows["leaf0"].outputs) == (shown, {"out": "v"})
        assert (rows["leaf1"].inputs, rows["leaf1"].outputs) == ({}, {"out": "v"})
        assert all(ti.state == "succeeded" and ti.ended_at is not None for ti in rows.values())
    assert states(services, run_id)[0] == "succeeded"


def test_a_waiting_message_is_resent_with_backoff_not_every_pass(services: Any, sent: list[int]) -> None:
    from datetime import timedelta

    start(services, fanout(services, "resend-backoff", 0))
    assert len(sent) == 1
    ti_id = sent[0]
    with services.db.read() as s:
        queued_at = s.scalar(select(TaskInstance.queued_at).where(TaskInstance.id == ti_id))

    def resend_at(seconds: float) -> int:
        sent.clear()
        counts = services.attempts.reconcile(
            queued_at + timedelta(seconds=seconds), heartbeat_timeout=60, requeue_after=10
        )
        assert sent == ([ti_id] if counts["requeued"] else [])
        return int(counts["requeued"])

    # Waited 11 s: re-sent; then not again until it has waited as long again (22 s), then 44 s...
    assert [resend_at(t) for t in (5, 11, 12, 21, 23, 30, 45, 47)] == [0, 1, 0, 0, 1, 0, 0, 1]
    with services.db.read() as s:
        state, still_queued_at = s.execute(
            select(TaskInstance.state, TaskInstance.queued_at).where(TaskInstance.id == ti_id)
        ).one()
    assert (state, still_queued_at) == ("queued", queued_at)  # when it was really queued is kept
    assert services.attempts.claim(ti_id, "w", queued_at + timedelta(seconds=50)) is not None


def test_no_resend_while_the_broker_queue_holds_a_message_for_every_queued_task(services: Any, sent: list[int]) -> None:
    from datetime import timedelta

    from sqlalchemy import func

    ids = []
    for i in range(3):
        start(services, fanout(services, f"resend-backlog-{i}", 0))
        ids.append(sent.pop())
    with services.db.read() as s:
        latest = s.scalar(select(func.max(TaskInstance.queued_at)).where(TaskInstance.id.in_(ids)))
        queued = s.scalar(select(func.count()).select_from(TaskInstance).where(TaskInstance.state == "queued"))
    later = latest + timedelta(seconds=11)

    def resent(backlog: int | None) -> list[int]:
        sent.clear()
        counts = services.attempts.reconcile(later, heartbeat_timeout=60, requeue_after=10, broker_backlog=backlog)
        assert counts["requeued"] == len(sent)
        return list(sent)

    assert resent(queued) == [] and resent(queued + 5) == []  # a message waits for each: none is lost for sure
    first = resent(queued - 1)  # one is missing: one (the oldest stale) goes again
    assert len(first) == 1
    rest = resent(None)  # the broker cannot say: by age, as before
    assert set(ids) - set(first) <= set(rest) and not set(first) & set(rest)


def test_a_lost_batch_is_resent_once_the_broker_queue_has_drained(
    services: Any, sent: list[int], broker_url: str
) -> None:
    # Real messages of several ids each in Redis: one is lost. While the queue could still carry
    # every queued task instance (messages x MAX_BATCH), nothing is resent; once it has drained,
    # exactly the lost message's ids are.
    import dataclasses
    from datetime import timedelta

    from sqlalchemy import func

    from myapp.queue.celery_app import QUEUE, celery_dispatch, create_celery, queue_capacity

    app, _ = create_celery(dataclasses.replace(services.settings, broker_url=broker_url))
    with services.db.read() as s:  # earlier tests' queued task instances have no message: out of the count
        others = s.scalars(select(TaskInstance.run_id).where(TaskInstance.state == "queued").distinct()).all()
    for run_id in others:
        services.runs.stop_run(run_id, services.clock.now(), by="tester")
    _, leaves = started_leaves(services, sent, "lost-batch", 64)
    celery_dispatch(app)(leaves)  # 16 messages of 4 ids

    def take() -> list[int]:
        with app.connection_for_write() as conn:
            message = conn.default_channel.basic_get(QUEUE, no_ack=True)
        return [] if message is None else list(message.decode()[0][0])

    lost = take()
    assert len(lost) == 4
    with services.db.read() as s:
        later = s.scalar(select(func.max(TaskInstance.queued_at)).where(TaskInstance.id.in_(leaves))) + timedelta(
            seconds=11
        )

    def resent() -> list[int]:
        sent.clear()
        services.attempts.reconcile(later, heartbeat_timeout=60, requeue_after=10, broker_backlog=queue_capacity(app))
        return list(sent)

    while batch := take():  # a worker takes each message and runs its task instances
        for ti_id in batch:
            ctx = claim(services, ti_id)
            assert ctx is not None
            services.attempts.finish(ctx.attempt_id, OK, services.clock.now())
        if queue_capacity(app):
            assert resent() == [], "resent while the queue could still hold a message for each queued task instance"
    assert sorted(resent()) == sorted(lost)  # drained: the lost message's ids, and only those
