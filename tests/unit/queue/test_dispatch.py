"""celery_dispatch (myapp/queue/celery_app.py): a dispatch of several ids sends the messages one send would
(one per id below 2 x SPREAD ids, several ids per message above)."""

from __future__ import annotations

from typing import Any

from celery import Celery

from myapp.queue.celery_app import EXECUTE, EXECUTE_BATCH, MAX_BATCH, QUEUE, celery_dispatch, message_batches

# Differ between any two messages (a new task id each) or name the sending process.
_PER_MESSAGE = {"id", "root_id", "origin"}


def _received(app: Celery) -> list[Any]:
    messages = []
    with app.connection_for_write() as conn:
        while (message := conn.default_channel.basic_get(QUEUE, no_ack=True)) is not None:
            messages.append(message)
    return messages


def test_a_batch_sends_what_one_send_does_for_each_id() -> None:
    app = Celery("dispatch-test", broker="memory://")
    dispatch = celery_dispatch(app)
    dispatch([8, 9, 10])  # a batch: the queue declared once, the reprs given
    dispatch([7])  # one id: Celery's own send, the queue declared with the message
    *batch, one = _received(app)
    assert [m.decode()[0] for m in [*batch, one]] == [[8], [9], [10], [7]]
    for message, ti_id in zip(batch, (8, 9, 10), strict=True):
        assert message.headers["task"] == EXECUTE
        assert message.headers["argsrepr"] == one.headers["argsrepr"].replace("7", str(ti_id))
        assert {k: v for k, v in message.headers.items() if k not in _PER_MESSAGE | {"argsrepr"}} == {
            k: v for k, v in one.headers.items() if k not in _PER_MESSAGE | {"argsrepr"}
        }
        assert message.decode()[1:] == one.decode()[1:]  # kwargs and embed
        assert message.delivery_info["routing_key"] == one.delivery_info["routing_key"] == QUEUE
    assert len({m.headers["id"] for m in [one, *batch]}) == 4


def test_a_small_dispatch_sends_one_id_per_message_and_a_large_one_several() -> None:
    assert message_batches(list(range(31))) == [[i] for i in range(31)]  # spreads over every process
    assert [len(b) for b in message_batches(list(range(32)))] == [2] * 16
    assert [len(b) for b in message_batches(list(range(100)))] == [6] * 16 + [4]
    big = message_batches(list(range(999)))
    assert [len(b) for b in big] == [MAX_BATCH] * 124 + [7] and sum(big, []) == list(range(999))  # in order


def test_a_message_of_several_ids_names_the_batch_task() -> None:
    app = Celery("dispatch-test", broker="memory://")
    celery_dispatch(app)(list(range(100, 133)))  # 33 ids: 16 of two, one of one
    messages = _received(app)
    assert [m.decode()[0] for m in messages] == [[[100 + k, 101 + k]] for k in range(0, 32, 2)] + [[132]]
    assert {m.headers["task"] for m in messages[:-1]} == {EXECUTE_BATCH} and messages[-1].headers["task"] == EXECUTE
    assert messages[0].headers["argsrepr"] == "[[100, 101]]"


def test_the_worker_log_drops_the_succeeded_line_of_both_execute_tasks_only() -> None:
    import logging

    from myapp.queue.celery_app import QuietExecuteLog

    def line(name: str, level: int = logging.INFO) -> logging.LogRecord:
        record = logging.LogRecord("celery.app.trace", level, __file__, 1, "Task %(name)s succeeded", None, None)
        record.data = {"name": name}
        return record

    keep = QuietExecuteLog().filter
    assert not keep(line(EXECUTE)) and not keep(line(EXECUTE_BATCH))
    assert keep(line("myapp.reconcile")) and keep(line(EXECUTE_BATCH, logging.WARNING))
