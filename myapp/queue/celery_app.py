"""The Celery application of myapp, built from settings (no module-level app, no config at import).

Tasks take ids and call one use-case each. Dependencies are built lazily once per worker process
(after the prefork fork, so no database connection is shared between processes).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import timedelta
from typing import Any

from celery import Celery
from celery.schedules import crontab
from celery.signals import worker_process_init

from myapp.services import Services, build_services
from myapp.settings import Settings

log = logging.getLogger(__name__)
EXECUTE = "myapp.execute_task_instance"  # one id; still taken, for messages sent before batches
EXECUTE_BATCH = "myapp.execute_task_instances"  # several ids, run one after the other (myapp/executor/batch.py)
RECONCILE = "myapp.reconcile"
SCHEDULE = "make_timerun_config"
ALERTS = "myapp.deliver_alerts"
WAKE = "myapp.schedule_pipelines"  # a pass for pipelines whose cron run just ended
CLEAN = "myapp.clean"  # the daily retention policy (settings.retention_days)
CREATE = "myapp.create_run"  # write the task instances of a large run (db/run_creation.py)
QUEUE = "myapp"  # execute messages: each carries one queued task instance, or up to MAX_BATCH
MAX_BATCH = 8  # task instance ids in one execute message at most
SPREAD = 16  # a dispatch is cut into at least this many messages: below 2 x SPREAD ids, one id each
# Scheduler passes, wakes, the reconciler, alerts and retention: a queue of their own, which the
# worker polls in turn with QUEUE (kombu rotates the queues it polls), so a backlog of thousands of
# execute messages does not hold back a pass that an enable or a cron run's end asked for.
CONTROL_QUEUE = "myapp.control"


class LazyServices:
    """Builds Services on first use in each process; reset after fork.

    The threads pool's threads share them (one engine and its connection pool per process): the
    first use is locked so that two threads starting at once do not each build a set.
    """

    def __init__(self, settings: Settings, app: Celery) -> None:
        self.settings = settings
        self.app = app
        self._services: Services | None = None
        self._lock = threading.Lock()

    def get(self) -> Services:
        services = self._services
        if services is not None:
            return services
        with self._lock:
            if self._services is None:
                built = build_services(self.settings)
                use_celery(built, self.app)
                self._services = built
            return self._services

    def reset(self) -> None:
        self._services = None
        self._lock = threading.Lock()  # a lock held by a thread the fork did not copy stays held


def message_batches(ids: Sequence[int]) -> list[list[int]]:
    """Cut a dispatch's ids into the id lists of its messages, in order.

    One id per message below 2 x SPREAD ids, so a small fan-out spreads over every worker process;
    above, up to MAX_BATCH per message, always at least SPREAD messages.
    """
    size = max(1, min(MAX_BATCH, len(ids) // SPREAD))
    return [[int(i) for i in ids[k : k + size]] for k in range(0, len(ids), size)]


def celery_dispatch(app: Celery) -> Any:
    """Return a dispatch function that sends the queued task instances' ids in execute messages.

    A large dispatch carries several ids per message (`message_batches`, run by
    `myapp.execute_task_instances`): the worker's main process, Celery's trace and this publish
    then cost once per message, not once per task instance (docs/benchmarks.md). A message of one
    id keeps the older task name, `myapp.execute_task_instance`.

    Several messages share one producer and, where kombu batches publishes (Redis, kombu 5.7),
    one pipelined round trip: half the CPU per message of a fan-out. A batch is sent once, without
    kombu's publish retry, so a failed one is sent again message by message (a duplicate claims nothing).

    In a batch the queue is declared once (kombu remembers it per connection) instead of once per
    message, and the args' repr is given: Celery's per-message declare copies and binds the queue
    entity and its saferepr walks the args, 40% of a send's CPU (10,000 messages, the burst of an
    all-due scheduler pass: 1.6-1.7 s of CPU before, 1.0-1.2 s after; benchmarks/bench_dispatch.py).
    The headers and body are the same; the properties carry the two reprs once more (Celery passes
    its options on to them).
    """

    def message(batch: list[int]) -> tuple[str, list[Any]]:
        return (EXECUTE, [batch[0]]) if len(batch) == 1 else (EXECUTE_BATCH, [batch])

    def send_each(batches: list[list[int]]) -> None:
        for batch in batches:
            name, args = message(batch)
            app.send_task(name, args=args, queue=QUEUE)

    def dispatch(ids: Sequence[int]) -> None:
        batches = message_batches(ids)
        if len(batches) < 2:
            send_each(batches)
            return
        try:
            with app.producer_or_acquire() as producer, getattr(producer, "batch", nullcontext)():
                producer.maybe_declare(app.amqp.queues[QUEUE])
                for batch in batches:
                    name, args = message(batch)
                    app.send_task(
                        name,
                        args=args,
                        queue=QUEUE,
                        producer=producer,
                        declare=[],  # declared above
                        argsrepr=repr(args),  # what saferepr gives for a few ints
                        kwargsrepr="{}",
                    )
        except Exception:  # noqa: BLE001  delivery uncertain: resend each with kombu's retry
            log.warning("batched dispatch of %d task instances failed; sending one by one", len(ids), exc_info=True)
            send_each(batches)

    return dispatch


def celery_wake(app: Celery) -> Any:
    """Return a function asking a worker for a scheduler pass over some pipelines (RunStore.wake)."""

    def wake(pipeline_ids: Sequence[int]) -> None:
        app.send_task(WAKE, args=[[int(i) for i in pipeline_ids]], queue=CONTROL_QUEUE)

    return wake


def celery_create(app: Celery) -> Any:
    """Return a function asking a worker to create `creating` runs (RunStore.create), on the control queue."""

    def create(run_ids: Sequence[int]) -> None:
        for run_id in run_ids:
            app.send_task(CREATE, args=[int(run_id)], queue=CONTROL_QUEUE)

    return create


def queue_depth(app: Celery) -> int | None:
    """Return how many messages wait in the task queue, or None when the broker cannot say.

    A passive queue declare: kombu's Redis and folder transports count the queue's list or files
    (every priority level); an empty Redis queue does not exist, which reads as None too (the
    reconciler then re-sends by age, which for an empty queue is right).
    """
    try:
        with app.connection_for_write() as conn:
            return int(conn.default_channel.queue_declare(queue=QUEUE, passive=True).message_count)
    except Exception:  # noqa: BLE001  unknown: the reconciler re-sends by age alone, as before
        log.debug("could not read the depth of queue %s", QUEUE, exc_info=True)
        return None


def queue_capacity(app: Celery) -> int | None:
    """Return how many task instances the messages waiting in the task queue may carry at most (None: unknown).

    Each message carries up to MAX_BATCH ids. The reconciler re-sends a queued task instance's
    message only when there are more queued task instances than that (AttemptStore._requeue_stale):
    while the queue could still hold a message for each, a re-send would only add a duplicate.
    """
    depth = queue_depth(app)
    return None if depth is None else depth * MAX_BATCH


def use_celery(services: Services, app: Celery) -> None:
    """Send what a commit makes ready through `app`: queued task instances, and woken pipelines
    (a cron run's end, a save that makes a schedule due)."""
    services.set_dispatch(celery_dispatch(app))
    services.runs.wake = services.pipelines.wake = celery_wake(app)
    services.runs.create = celery_create(app)


def broker_options(settings: Settings) -> dict[str, Any]:
    """Return transport options; the folder broker keeps its folders in MYAPP_HOME.

    Redis without ack emulation: a message is a hint (the database says what is queued, a duplicate
    claims nothing, the reconciler resends what is lost), so the transport keeps no unacked copies.
    With them, kombu 5.7 closing a connection lost while polling tries to restore the unacked copies
    through a transport it has already detached (AttributeError on `hostname`), which Celery treats
    as unrecoverable: the worker stopped after a broker restart (docs/reliability.md).
    """
    url = settings.effective_broker_url
    if url.startswith(("redis://", "rediss://")):
        # A broker that vanishes without closing the connection must not hang a publish forever
        # (socket_timeout), and kombu drops a BRPOP connection whose reply is overdue
        # (health_check_interval; kombu 5.7): the consumer reconnects within ~15 s. What else
        # stops a consumer is caught by the worker's liveness probe (myapp/queue/liveness.py).
        return {
            "ack_emulation": False,
            "socket_timeout": 30,
            "socket_connect_timeout": 10,
            "socket_keepalive": True,
            "health_check_interval": 5,
        }
    if url != "filesystem://":
        return {"visibility_timeout": 3600}
    base = settings.home / "broker"
    for sub in ("queue", "processed", "control"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(base / "queue"),
        "data_folder_out": str(base / "queue"),
        "processed_folder": str(base / "processed"),
        "store_processed": False,
        "control_folder": str(base / "control"),
        "polling_interval": 0.05,
    }


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Return the beat's periodic tasks: passes, reconciler, alerts, and retention when retention_days > 0."""
    entries: dict[str, dict[str, Any]] = {
        SCHEDULE: {"task": SCHEDULE, "schedule": timedelta(seconds=settings.schedule_interval)},
        RECONCILE: {"task": RECONCILE, "schedule": timedelta(seconds=settings.reconcile_interval)},
        ALERTS: {"task": ALERTS, "schedule": timedelta(seconds=settings.reconcile_interval)},
    }
    if settings.retention_days > 0:
        # A fixed time of day, not "every 24 h": a beat restarted daily would otherwise never get there.
        entries[CLEAN] = {"task": CLEAN, "schedule": crontab(minute=30, hour=3)}
    for entry in entries.values():
        entry["options"] = {"queue": CONTROL_QUEUE}
    return entries


def create_celery(settings: Settings) -> tuple[Celery, LazyServices]:
    """Create the Celery app with its tasks and beat schedule."""
    app = Celery("myapp", broker=settings.effective_broker_url, set_as_current=False)
    if settings.effective_broker_url == "filesystem://":  # kombu's, with whole-file writes
        app.conf.broker_transport = "myapp.queue.folder_transport:Transport"
    app.conf.update(
        broker_transport_options=broker_options(settings),
        task_ignore_result=True,
        task_default_queue=QUEUE,
        worker_prefetch_multiplier=1,
        task_acks_late=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker never gives up
        worker_hijack_root_logger=False,
        timezone="UTC",
        enable_utc=True,
        worker_send_task_events=False,
        beat_schedule=beat_schedule(settings),
    )
    deps = LazyServices(settings, app)
    _register_tasks(app, deps)
    worker_process_init.connect(lambda **_: deps.reset(), weak=False)
    trace = logging.getLogger("celery.app.trace")  # where each task's "succeeded in" line comes from
    if not any(isinstance(f, QuietExecuteLog) for f in trace.filters):
        trace.addFilter(QuietExecuteLog())
    return app, deps


class QuietExecuteLog(logging.Filter):
    """Drops Celery's INFO line "Task myapp.execute_task_instance(s)[...] succeeded in ...s: None".

    At a few hundred attempts a second it floods the worker log and costs ~0.15 ms of CPU per
    attempt; the database and the attempt's own log record how each attempt ended. The "received"
    line stays (tests and operators follow it), and so does every warning and error.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        data = getattr(record, "data", None)
        return (
            record.levelno > logging.INFO
            or not isinstance(data, dict)
            or data.get("name") not in (EXECUTE, EXECUTE_BATCH)
        )


def _register_tasks(app: Celery, deps: LazyServices) -> None:
    # shared=False: Celery adds a shared task to every app created later in the process, and the
    # first registered under a name wins there, so a second app (tests, benchmarks) would run the
    # first app's closure, with its settings and database.
    from myapp.alerts.delivery import register_tasks as register_alert_tasks
    from myapp.executor.batch import run_task_instances
    from myapp.executor.worker import run_task_instance

    register_alert_tasks(app, deps)

    @app.task(name=EXECUTE, shared=False)
    def execute(ti_id: int) -> None:
        run_task_instance(ti_id, deps.get())

    @app.task(name=EXECUTE_BATCH, shared=False)
    def execute_batch(ti_ids: list[int]) -> None:
        services = deps.get()
        run_task_instances(ti_ids, services, services.runs.dispatch)

    @app.task(name=CREATE, shared=False)
    def create_run(run_id: int) -> None:
        from myapp.db.run_creation import finish_creation

        services = deps.get()
        finish_creation(services.runs, run_id, services.clock.now())

    @app.task(name=RECONCILE, shared=False)
    def reconcile() -> None:
        from myapp.db.run_creation import resend_creating

        services = deps.get()
        s = services.settings
        counts = services.attempts.reconcile(
            services.clock.now(),
            heartbeat_timeout=s.heartbeat_timeout,
            watcher_timeout=s.k8s_watcher_timeout,
            requeue_after=s.requeue_after,
            broker_backlog=queue_capacity(app),
        )
        counts["creating_runs"] = resend_creating(services.runs, services.clock.now(), s.requeue_after)
        if any(counts.values()):
            log.info("reconciled %s", counts)
        # This machine's leftover private /tmp directories (killed workers'), at most hourly per process.
        from myapp.executor.private_tmp import sweep_when_due

        sweep_when_due(services, services.clock.now())

    @app.task(name=SCHEDULE, shared=False)
    def make_timerun_config() -> None:
        from myapp.scheduling.scheduler import run_pass

        services = deps.get()
        run_pass(services, services.clock.now())

    @app.task(name=CLEAN, shared=False)
    def clean() -> None:
        from myapp.executor.private_tmp import run_dir_remover
        from myapp.retention.clean import clean as run_clean

        services = deps.get()
        # This machine's directories of the deleted runs go now, other machines' at their sweep.
        if services.settings.retention_days > 0:
            run_clean(
                services,
                services.clock.now(),
                services.settings.retention_days,
                remove_workdirs=run_dir_remover(services),
            )

    @app.task(name=WAKE, shared=False)
    def schedule_pipelines(pipeline_ids: list[int]) -> None:
        from myapp.scheduling.scheduler import run_pass_for

        services = deps.get()
        run_pass_for(services, services.clock.now(), pipeline_ids)
