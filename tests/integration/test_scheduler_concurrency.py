"""Two schedulers at once (R6): real `myapp schedule tick` processes racing over the same passes.

Run with MYAPP_TEST_DATABASE_URL=postgresql://... to exercise FOR UPDATE SKIP LOCKED; on SQLite
the writer lock serializes the two processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from myapp.core.states import RunState
from myapp.db.tables import Pipeline, Run, ScheduleRecord
from tests.conftest import NO_TASK_ACCOUNTS
from tests.integration.test_scheduler import pipeline_yaml, save_at, ts

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
T0 = ts("2026-01-01T00:00Z")
ROUNDS, PASSES, PIPELINES = 6, 5, 50
# (cron, expired_limit, max_active_runs, depends_on_past)
KINDS = [
    ("*/5 * * * *", 0, 1, False),
    ("* * * * *", 3, 2, False),
    ("*/2 * * * *", 0, 3, True),
    ("*/3 * * * *", 1, 1, False),
    ("* * * * *", 0, 4, False),
]


def env_of(services: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYAPP_")} | NO_TASK_ACCOUNTS
    env.update(
        {
            "MYAPP_HOME": str(services.settings.home),
            "MYAPP_SECRET_KEY": "test-secret",
            "MYAPP_DATABASE_URL": services.settings.effective_database_url,
            "PYTHONPATH": str(REPO),
        }
    )
    return env


def tick_processes(services: Any, passes: list[str]) -> list[int]:
    """Run two `myapp schedule tick` processes on the same instants at once; return pipelines each ticked."""
    argv = [sys.executable, "-m", "myapp", "schedule", "tick", "--batch", "5", "--json"]
    for now in passes:
        argv += ["--now", now]
    procs = [
        subprocess.Popen(
            argv, env=env_of(services), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    ticked = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        ticked.append(sum(report["pipelines"] for report in json.loads(out)))
    return ticked


def cron_runs_by_pipeline(services: Any) -> dict[int, list[int]]:
    with services.db.read() as s:
        rows = s.execute(select(Run.pipeline_id, Run.id).where(Run.trigger == "cron")).all()
    out: dict[int, list[int]] = {}
    for pid, run_id in rows:
        out.setdefault(pid, []).append(run_id)
    return out


def test_two_concurrent_schedulers_never_duplicate_records_or_runs(services: Any) -> None:
    limits = {}
    for i in range(PIPELINES):
        cron, exp, mar, dop = KINDS[i % len(KINDS)]
        pid = save_at(services, pipeline_yaml(f"race-{i}", cron, exp=exp, mar=mar, dop=dop), "2025-12-01T00:00Z")
        limits[pid] = 1 if dop else mar
    seen: dict[int, list[int]] = {}
    work = [0, 0]
    for round_ in range(ROUNDS):
        passes = [(T0 + timedelta(minutes=round_ * PASSES + i)).isoformat() for i in range(PASSES)]
        work = [a + b for a, b in zip(work, tick_processes(services, passes), strict=True)]
        now_runs = cron_runs_by_pipeline(services)
        for pid, limit in limits.items():
            new = set(now_runs.get(pid, [])) - set(seen.get(pid, []))
            assert len(new) <= limit, f"pipeline {pid}: {len(new)} cron runs launched in one round, limit {limit}"
        seen = now_runs
        stop_all_active(services)
    assert sum(len(v) for v in seen.values()) >= PIPELINES * 2  # the race did real work ...
    assert min(work) > 0, work  # ... in both processes
    assert_no_duplicates(services)


def stop_all_active(services: Any) -> None:
    """End every active cron run, so each round starts with free slots (and wakes its pipeline)."""
    with services.db.read() as s:
        ids = list(
            s.scalars(
                select(Run.id).where(
                    Run.trigger == "cron", Run.state.in_([RunState.QUEUED.value, RunState.RUNNING.value])
                )
            )
        )
    for run_id in ids:
        services.runs.stop_run(run_id, services.clock.now())


def assert_no_duplicates(services: Any) -> None:
    with services.db.read() as s:
        dup_records = s.execute(
            select(ScheduleRecord.pipeline_id, ScheduleRecord.execution_date, func.count())
            .group_by(ScheduleRecord.pipeline_id, ScheduleRecord.execution_date)
            .having(func.count() > 1)
        ).all()
        dup_runs = s.execute(
            select(Run.pipeline_id, Run.execution_date, func.count())
            .where(Run.trigger == "cron")
            .group_by(Run.pipeline_id, Run.execution_date)
            .having(func.count() > 1)
        ).all()
        runs = set(s.scalars(select(Run.id).where(Run.trigger == "cron")))
        linked = list(s.scalars(select(ScheduleRecord.run_id).where(ScheduleRecord.run_id.is_not(None))))
        launched_without_run = s.scalar(
            select(func.count())
            .select_from(ScheduleRecord)
            .where(ScheduleRecord.status == "launched", ScheduleRecord.run_id.is_(None))
        )
        errors = list(s.scalars(select(Pipeline.schedule_error).where(Pipeline.schedule_error.is_not(None))))
    assert dup_records == [] and dup_runs == []
    assert sorted(linked) == sorted(runs)  # every cron run belongs to exactly one record, and back
    assert launched_without_run == 0 and errors == []
