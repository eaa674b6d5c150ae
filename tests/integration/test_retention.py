"""Retention (`myapp db clean --older-than DAYS [--dry-run]`, issue 14 item 7) on the real database.

One history built by time travel: a depends_on_past pipeline whose newest launched record's run
was stopped (so its next instant waits on it), old and recent manual runs with attempts, archived
logs, live-log keys, file outputs and alerts, an unfinished old run, skipped spans. The clean must
delete exactly the old finished things and keep what the scheduler reads: after it, the next
passes decide as they would have without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from myapp.core.states import RunState, Trigger
from myapp.core.values import LogKey, NewRun
from myapp.db.schedule_tables import AlertOutbox
from myapp.db.tables import Run, ScheduleRecord, ScheduleSkip, TaskAttempt, TaskInstance
from myapp.executor.private_tmp import run_dir_remover
from myapp.retention.clean import clean
from tests.integration.test_scheduler import by_status, cron_runs, pipeline_yaml, save_at, tick, ts

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
CLEAN_AT = ts("2026-03-01T00:00Z")  # with --older-than 30: everything before 2026-01-30 is old


def _attempt(services: Any, run_id: int, at: datetime) -> LogKey:
    """Give the run's task `a` a finished attempt with an archived log, a live-log key and a file output."""
    with services.db.write() as s:
        ti = s.scalar(select(TaskInstance.id).where(TaskInstance.run_id == run_id, TaskInstance.task_name == "a"))
        s.execute(
            insert(TaskAttempt.__table__).values(
                task_instance_id=ti,
                try_number=1,
                state="failed",
                worker="w",
                pod_names=[],
                message="",
                started_at=at,
                heartbeat_at=at,
                ended_at=at,
                container={},
                events=[],
            )
        )
    key = LogKey(run_id, "a", 1)
    path = key.path(services.settings.logs_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("2026-01-01T00:00:00.000Z out hi\n")
    workdir = services.settings.workflow_space / str(run_id) / "a" / "1"  # its working directory
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "input.csv").write_text("x")
    output = services.settings.artifacts_dir / str(run_id) / "a" / "1" / "out.txt"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("x")
    services.redis.rpush(key.redis_key, "line")
    return key


def _outbox(services: Any, pipeline_id: int, run_id: int, at: datetime, status: str = "sent") -> None:
    with services.db.write() as s:
        s.execute(
            insert(AlertOutbox.__table__).values(
                pipeline_id=pipeline_id,
                run_id=run_id,
                event="failed",
                url="http://example.invalid/hook",
                payload={},
                status=status,
                attempts=1,
                next_attempt_at=at,
                last_error="",
                created_at=at,
                sent_at=at,
            )
        )


def _manual(services: Any, pid: int, at: datetime, *, stop: bool = True) -> int:
    run_id = services.runs.create_run(NewRun(pid, Trigger.MANUAL, at, {}), at)
    if stop:
        services.runs.stop_run(run_id, at + timedelta(minutes=1))
    return run_id


def _exists(services: Any, model: Any, **where: Any) -> bool:
    with services.db.read() as s:
        return bool(s.scalar(select(func.count()).select_from(model).filter_by(**where)))


def _count(services: Any, model: Any) -> int:
    with services.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture(scope="module")
def history(services: Any) -> dict[str, Any]:
    pid = save_at(services, pipeline_yaml("ret-dop", "0 0 * * *", exp=0, mar=1, dop=True), "2025-12-01T00:00Z")
    tick(services, "2026-01-05T00:00Z")  # 01..05 materialized, 01 launched
    first = cron_runs(services, pid)[0].id
    services.runs.stop_run(first, ts("2026-01-05T00:01Z"))
    services.runs.mark_run(first, RunState.SUCCEEDED, ts("2026-01-05T00:01Z"))
    tick(services, "2026-01-05T00:02Z")  # 02 launched
    second = cron_runs(services, pid)[1].id
    services.runs.stop_run(second, ts("2026-01-05T00:03Z"))
    tick(services, "2026-01-05T00:04Z")  # 03 waits: its predecessor was stopped
    other = save_at(services, pipeline_yaml("ret-manual", "0 0 * * *", enabled=False), "2025-12-01T00:00Z")
    old = _manual(services, other, ts("2026-01-02T00:00Z"))
    recent = _manual(services, other, ts("2026-02-20T00:00Z"))
    unfinished = _manual(services, other, ts("2026-01-03T00:00Z"), stop=False)
    keys = {
        "old": _attempt(services, old, ts("2026-01-02T00:00Z")),
        "first": _attempt(services, first, ts("2026-01-05T00:00Z")),
        "recent": _attempt(services, recent, ts("2026-02-20T00:00Z")),
    }
    _outbox(services, other, old, ts("2026-01-02T00:02Z"))
    _outbox(services, pid, second, ts("2026-01-05T00:03Z"))  # delivered: goes, its run stays
    _outbox(services, pid, second, ts("2026-01-05T00:03Z"), "pending")  # still to deliver: stays
    with services.db.write() as s:
        s.execute(
            insert(ScheduleSkip.__table__).values(
                pipeline_id=pid,
                first_instant=ts("2025-01-01T00:00Z"),
                last_instant=ts("2025-06-01T00:00Z"),
                count=5,
                created_at=ts("2026-01-05T00:00Z"),
            )
        )
    return {
        "pid": pid,
        "unfinished_pipeline": other,
        "first": first,
        "second": second,
        "old": old,
        "recent": recent,
        "unfinished": unfinished,
        "keys": keys,
    }


def test_a_dry_run_counts_per_kind_and_deletes_nothing(services: Any, history: dict[str, Any]) -> None:
    before = {m: _count(services, m) for m in (Run, TaskInstance, TaskAttempt, ScheduleRecord, AlertOutbox)}
    lines: list[str] = []
    report = clean(
        services, CLEAN_AT, 30, dry_run=True, batch=1, progress=lines.append, remove_workdirs=run_dir_remover(services)
    )
    # runs: the old manual one and the first cron run (its record is neither the newest nor the
    # newest launched one); the stopped cron run is the depends_on_past predecessor of 03: kept
    assert report.counts == {
        "runs": 2,
        "task_instances": 2,
        "attempts": 2,
        "logs": 2,
        "workdirs": 2,
        "records": 1,
        "skips": 1,
        "outbox": 2,
    }, report.counts
    assert report.kept_runs == 1 and report.kept_records == 1
    assert any(line.startswith("runs: 1 to delete so far") for line in lines), lines  # one line per batch
    assert lines[-1].startswith("would delete 2 runs, 2 task instances, 2 attempts, 2 logs, 2 workdirs, 1 records"), (
        lines
    )
    assert before == {m: _count(services, m) for m in before}
    assert history["keys"]["old"].path(services.settings.logs_dir).exists()
    assert (services.settings.workflow_space / str(history["old"]) / "a" / "1" / "input.csv").exists()


def test_clean_deletes_old_finished_things_and_keeps_what_a_schedule_reads(
    services: Any, history: dict[str, Any]
) -> None:
    pid, logs = history["pid"], services.settings.logs_dir
    report = clean(
        services, CLEAN_AT, 30, batch=1, progress=lambda line: None, remove_workdirs=run_dir_remover(services)
    )
    assert report.counts == {
        "runs": 2,
        "task_instances": 2,
        "attempts": 2,
        "logs": 2,
        "workdirs": 2,
        "records": 1,
        "skips": 1,
        "outbox": 2,
    }, report.counts
    for gone in ("old", "first"):
        run_id, key = history[gone], history["keys"][gone]
        assert not _exists(services, Run, id=run_id) and not _exists(services, TaskInstance, run_id=run_id)
        assert not key.path(logs).exists() and not (services.settings.artifacts_dir / str(run_id)).exists()
        assert not (services.settings.workflow_space / str(run_id)).exists()  # its working directory too
        assert not services.redis.exists(key.redis_key)
    for kept in ("second", "recent", "unfinished"):
        assert _exists(services, Run, id=history[kept]), kept
    recent = history["keys"]["recent"]
    assert recent.path(logs).exists() and services.redis.exists(recent.redis_key)
    assert (services.settings.workflow_space / str(history["recent"]) / "a" / "1" / "input.csv").exists()
    assert _exists(services, AlertOutbox, run_id=history["second"], status="pending")
    assert not _exists(services, AlertOutbox, run_id=history["second"], status="sent")
    assert _count(services, ScheduleSkip) == 0
    # the schedule goes on as if nothing was deleted: 03 still waits on the stopped 02 ...
    assert by_status(services, pid, "launched") == ["2026-01-02T00:00Z"]
    assert by_status(services, pid, "waiting") == [f"2026-01-0{d}T00:00Z" for d in (3, 4, 5)]
    assert not tick(services, "2026-01-05T00:10Z").launched
    with services.db.read() as s:
        reason = s.scalar(
            select(ScheduleRecord.message).where(
                ScheduleRecord.pipeline_id == pid, ScheduleRecord.execution_date == ts("2026-01-03T00:00Z")
            )
        )
    assert reason == "depends_on_past: previous run 2026-01-02 00:00:00 was stopped"
    # ... and runs once it is marked succeeded; no fire time is materialized twice
    services.runs.mark_run(history["second"], RunState.SUCCEEDED, ts("2026-01-05T00:11Z"))
    assert len(tick(services, "2026-01-05T00:12Z").launched) == 1
    assert by_status(services, pid, "launched") == ["2026-01-02T00:00Z", "2026-01-03T00:00Z"]
    # 02 is no longer the newest launched record: the next clean takes its run (and its alert) too
    again = clean(services, CLEAN_AT, 30, progress=lambda line: None)
    assert again.counts == {
        "runs": 1,
        "task_instances": 1,
        "attempts": 0,
        "logs": 0,
        "workdirs": 0,
        "records": 1,
        "skips": 0,
        "outbox": 1,
    }, again.counts
    assert not _exists(services, Run, id=history["second"])
    assert not any(clean(services, CLEAN_AT, 30, progress=lambda line: None).counts.values())


def myapp_cli(services: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `myapp ARGS` in a subprocess on the test's home, database and workflow space."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYAPP_")}
    env.update(
        {
            "MYAPP_HOME": str(services.settings.home),
            "MYAPP_SECRET_KEY": "test-secret",
            "MYAPP_DATABASE_URL": services.settings.effective_database_url,
            "MYAPP_WORKFLOW_SPACE": str(services.settings.workflow_space),
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "myapp", *args], env=env, capture_output=True, text=True, timeout=120, cwd=REPO
    )


def test_the_cli_prints_progress_and_refuses_less_than_a_day(services: Any, history: dict[str, Any]) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return myapp_cli(services, "db", "clean", *args)

    refused = cli("--older-than", "0")
    assert refused.returncode == 2 and "at least 1 day" in refused.stderr
    recent = history["recent"]
    out = cli("--older-than", "1", "--now", "2026-02-22T00:00Z", "--dry-run", "--json")
    assert out.returncode == 0, out.stderr
    counts = json.loads(out.stdout)
    assert counts["dry_run"] is True and counts["runs"] >= 1 and _exists(services, Run, id=recent)
    out = cli("--older-than", "1", "--now", "2026-02-22T00:00Z")
    assert out.returncode == 0, out.stderr
    assert "runs: " in out.stdout and f"deleted {counts['runs']} runs" in out.stdout, out.stdout
    assert not _exists(services, Run, id=recent) and _exists(services, Run, id=history["unfinished"])
    assert not (services.settings.workflow_space / str(recent)).exists()  # with its working directory


def test_the_daily_policy_is_a_beat_entry_that_cleans_with_retention_days(
    services: Any, history: dict[str, Any]
) -> None:
    from dataclasses import replace

    from myapp.queue.celery_app import CLEAN, beat_schedule, create_celery

    assert CLEAN not in beat_schedule(services.settings)
    settings = replace(services.settings, retention_days=30)
    daily = beat_schedule(settings)[CLEAN]
    assert daily["task"] == CLEAN and daily["schedule"].hour == {3} and daily["schedule"].minute == {30}
    finished = _manual(services, history["unfinished_pipeline"], ts("2026-06-01T00:00Z"))
    workdir = settings.workflow_space / str(finished)
    (workdir / "t" / "work").mkdir(parents=True)
    app, deps = create_celery(settings)
    try:
        app.tasks[CLEAN].run()  # the real clock: every run of this module ended long enough ago
    finally:
        if deps._services is not None:
            deps._services.db.dispose()
    assert not _exists(services, Run, id=finished) and _exists(services, Run, id=history["unfinished"])
    assert not workdir.exists()  # this machine's directory of a deleted run goes with it, not at the next sweep
