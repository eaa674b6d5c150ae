"""A cron run that ends asks for a scheduler pass over its pipeline at once (RunStore.wake), so a
depends_on_past backfill goes on run after run instead of one run per beat (every minute); a save
that makes a schedule due (enable, import, start_time change) does too (PipelineStore.wake), so a
backfill starts right after the enable."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from myapp.core.errors import SpecError
from myapp.core.states import RunState, Trigger
from myapp.core.values import NewRun
from myapp.scheduling.scheduler import run_pass, run_pass_for
from tests.conftest import WorkerProcess, worker_env
from tests.integration.engine_helpers import poll, wait_finished
from tests.integration.test_scheduler import pipeline_yaml, records, save_at, ts

pytestmark = pytest.mark.integration


def test_an_ending_cron_run_wakes_its_pipeline_after_commit_only(services: Any) -> None:
    woken: list[list[int]] = []
    services.runs.wake = lambda ids: woken.append(list(ids))
    try:
        pid = save_at(services, pipeline_yaml("wake-me", "0 * * * *", dop=True, exp=0), "2025-12-31T00:00Z")
        report = run_pass(services, ts("2026-01-01T02:00Z"))
        (run_id,) = report.launched
        manual = services.runs.create_run(
            NewRun(pid, Trigger.MANUAL, ts("2026-01-01T02:00Z"), {}), ts("2026-01-01T02:00Z")
        )
        services.runs.stop_run(manual, ts("2026-01-01T02:01Z"))
        assert woken == []  # a manual run never wakes the scheduler
        services.runs.stop_run(run_id, ts("2026-01-01T02:01Z"))
        assert woken == [[pid]]  # once, after COMMIT
        services.runs.mark_run(run_id, RunState.SUCCEEDED, ts("2026-01-01T02:02Z"))
        assert woken == [[pid], [pid]]
        with pytest.raises(RuntimeError), services.db.write() as s:  # rolled back: nothing is sent
            run = services.runs.lock_run(s, run_id)
            services.runs._wake_in(s, run)
            raise RuntimeError("rollback")
        assert woken == [[pid], [pid]]
        # The woken pipeline's pass launches the next record at once (its predecessor succeeded).
        after = run_pass_for(services, ts("2026-01-01T02:02Z"), [pid])
        assert len(after.launched) == 1
        assert [r[1] for r in records(services, pid)][:2] == ["launched", "launched"]
    finally:
        services.runs.wake = lambda ids: None


def test_a_save_that_makes_a_schedule_due_wakes_it_after_commit_only(services: Any) -> None:
    woken: list[list[int]] = []
    services.pipelines.wake = lambda ids: woken.append(list(ids))
    try:
        yaml = pipeline_yaml("wake-on-save", "0 * * * *", enabled=False)
        pid = save_at(services, yaml, "2026-01-01T00:00Z")
        assert woken == []  # disabled: no pass looks at it
        save_at(services, yaml.replace("enabled: false", "enabled: true"), "2026-01-01T00:01Z")
        assert woken == [[pid]]  # enabled: once, after COMMIT
        save_at(services, yaml.replace("enabled: false", "enabled: true"), "2026-01-01T00:02Z")
        assert woken == [[pid]]  # unchanged: nothing saved, nothing asked
        moved = yaml.replace("enabled: false", "enabled: true").replace("2026-01-01T00:00:00", "2025-12-31T00:00:00")
        save_at(services, moved, "2026-01-01T00:03Z")
        assert woken == [[pid], [pid]]  # a start_time change makes it due again
        save_at(services, moved.replace("enabled: true", "enabled: false"), "2026-01-01T00:04Z")
        assert woken == [[pid], [pid]]  # disabling asks for nothing
        with pytest.raises(SpecError):  # a refused save asks for nothing
            save_at(services, moved.replace("0 * * * *", "61 * * * *"), "2026-01-01T00:05Z")
        assert woken == [[pid], [pid]]
    finally:
        services.pipelines.wake = lambda ids: None


@pytest.fixture(scope="module")
def worker_without_beat(services: Any, broker_url: str) -> Iterator[Any]:
    """A real worker with no beat: only wake-ups can launch cron runs after the test's one pass."""
    from myapp.queue.celery_app import create_celery, use_celery

    settings = dataclasses.replace(services.settings, broker_url=broker_url)
    app, _ = create_celery(settings)
    use_celery(services, app)
    worker = WorkerProcess(worker_env(settings, broker_url), beat=False)
    worker.start()
    services.worker = worker  # its log: what it received in which order; and in a failure's report
    yield services
    worker.stop()


def test_a_depends_on_past_backfill_runs_back_to_back_without_waiting_for_the_beat(worker_without_beat: Any) -> None:
    services = worker_without_beat
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = (now.replace(minute=0) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S")  # 4 fire times, ever
    pid = save_at(
        services,
        pipeline_yaml("backfill-chain", "0 * * * *", start=start, dop=True, exp=0, mar=1, script="echo $MYAPP_RUN_ID"),
        now.isoformat(),
    )
    report = run_pass_for(services, now, [pid])
    assert report.created == 4 and len(report.launched) == 1  # 4 hourly fire times; dop launches the oldest

    # No beat runs in this worker: the second to fourth runs can only come from wake-ups.
    def all_succeeded() -> list[tuple[str, str, str | None]] | None:
        rows = records(services, pid)
        return rows if [state for _, _, state in rows] == ["succeeded"] * 4 else None

    done = poll(all_succeeded, what="the four backfill runs to succeed one after the other", timeout=120)
    assert [status for _, status, _ in done] == ["launched"] * 4
    for run_id in report.launched:
        assert wait_finished(services, run_id)["state"] == "succeeded"


def test_enabling_a_schedule_starts_its_backfill_without_waiting_for_the_beat(worker_without_beat: Any) -> None:
    services = worker_without_beat
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = (now.replace(minute=0) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")  # 3 fire times, ever
    yaml = pipeline_yaml("enable-me", "0 * * * *", start=start, exp=0, mar=3, enabled=False, script="true")
    pid = save_at(services, yaml, now.isoformat())
    assert records(services, pid) == []
    # No beat runs in this worker, and nothing else asks for a pass: only the enabling save's wake can.
    save_at(services, yaml.replace("enabled: false", "enabled: true"), datetime.now(UTC).isoformat())
    done = poll(
        lambda: (rows := records(services, pid)) and all(state == "succeeded" for _, _, state in rows) and rows,
        what="the three backfill runs launched by the enabling save to succeed",
        timeout=60,
    )
    assert [status for _, status, _ in done] == ["launched"] * 3


def test_a_backlog_of_task_messages_does_not_hold_back_the_pass_an_enable_asks_for(
    worker_without_beat: Any, broker_url: str
) -> None:
    """Wakes (and beat passes, the reconciler, alerts) travel on the control queue, which the worker
    polls in turn with the execute queue: thousands of execute messages waiting (a burst of runs, or
    the duplicates a reconciler re-sent) no longer delay the enable's pass by the time they take."""
    from myapp.queue.celery_app import EXECUTE, QUEUE, create_celery, queue_depth

    services = worker_without_beat
    app, _ = create_celery(dataclasses.replace(services.settings, broker_url=broker_url))
    backlog = 2000
    # The worker is stopped while the backlog and then the wake are queued: a running worker drained
    # 2,000 no-op messages as fast as this process sent them and saved the pipeline, so on a loaded
    # machine the wake could be sent after the backlog was gone, and the order proved nothing.
    services.worker.stop()
    offset = len(services.worker.log.read_bytes())
    with app.producer_or_acquire() as producer:
        for i in range(backlog):  # ids of no task instance: each is taken, claims nothing, and is gone
            app.send_task(EXECUTE, args=[10**9 + i], queue=QUEUE, producer=producer)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = (now.replace(minute=0) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    yaml = pipeline_yaml("enable-behind-backlog", "0 * * * *", start=start, exp=0, mar=2, enabled=False, script="true")
    pid = save_at(services, yaml, now.isoformat())
    save_at(services, yaml.replace("enabled: false", "enabled: true"), datetime.now(UTC).isoformat())
    assert (queue_depth(app) or 0) >= backlog, "the backlog was not waiting when the wake was sent"
    services.worker.start()
    poll(lambda: len(records(services, pid)) == 2, what="the enable's pass to create its two records", timeout=120)
    # The order the worker took them in, from its log: the wake came before the backlog was gone.
    # (Not the queue's depth once the test sees the records: on a loaded machine the worker could
    # drain the backlog before this process got to look, though it took the wake in time.)
    taken = services.worker.log.read_bytes()[offset:]
    wake = taken.find(b"myapp.schedule_pipelines[")
    assert wake >= 0, "the worker never received the enable's wake"
    before_wake = taken[:wake].count(b"myapp.execute_task_instance[")
    assert before_wake < backlog, "the pass ran only after the whole backlog of execute messages had been taken"
    poll(lambda: (queue_depth(app) or 0) == 0, what="the backlog to drain", timeout=300)
    done = poll(
        lambda: (rows := records(services, pid)) and all(state == "succeeded" for _, _, state in rows) and rows,
        what="the two backfill runs to succeed",
        timeout=120,
    )
    assert [status for _, status, _ in done] == ["launched"] * 2
