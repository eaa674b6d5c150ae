"""PostgreSQL restarts in the middle of scheduler passes (a private cluster: `pg_ctl restart -m fast`,
then kill -9 of the postmaster and crash recovery) while one long-lived scheduler process runs a
pass per minute of backfill over 200 cron pipelines.

The product's answer: a failed pass is just a failed pass, as under Celery beat the next one runs
in the same process and reconnects. Asserted: later passes succeed, no schedule record or cron run
is duplicated, every fire time up to the last pass is materialized, no pipeline is left with a
schedule error or pushed back by the outage, and every launched record has its one run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from myapp.core.states import Trigger
from myapp.db.tables import Pipeline, Run, ScheduleRecord
from tests.conftest import NO_TASK_ACCOUNTS, make_settings
from tests.faults.servers import PrivatePostgres
from tests.integration.test_scheduler import pipeline_yaml, save_at, ts

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not os.environ.get("MYAPP_TEST_DATABASE_URL", "").startswith("postgresql"),
        reason="PostgreSQL fault test: set MYAPP_TEST_DATABASE_URL to run the suite on PostgreSQL",
    ),
]
REPO = Path(__file__).resolve().parents[2]
FIRST = ts("2026-03-01T12:00Z")  # the first pass
START = FIRST - timedelta(hours=2)  # 121 fire times are due at the first pass
PIPELINES, PASSES, CHUNK, PAUSE = 200, 16, 25, 0.5


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()  # skips when the server binaries are missing
    server.init()
    yield server
    server.destroy()


@pytest.fixture(scope="module")
def pg_services(tmp_path_factory: pytest.TempPathFactory, private_pg: PrivatePostgres) -> Iterator[Any]:
    from myapp.cli.process import init_database
    from myapp.services import build_services

    settings = make_settings(tmp_path_factory.mktemp("pg-home"), private_pg.url, backfill_chunk=CHUNK)
    services = build_services(settings)
    init_database(services, admin_user="admin", admin_password="admin-pass", admin_email="a@b.c", quiet=True)
    yield services
    services.db.dispose()


class SchedulerProcess:
    """tests/faults/scheduler_process.py in a subprocess; its JSON lines are collected as they come."""

    def __init__(self, services: Any) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MYAPP_")} | NO_TASK_ACCOUNTS
        env.update(
            {
                "MYAPP_HOME": str(services.settings.home),
                "MYAPP_SECRET_KEY": services.settings.secret_key,
                "MYAPP_DATABASE_URL": services.settings.effective_database_url,
                "MYAPP_BACKFILL_CHUNK": str(CHUNK),
                "PYTHONPATH": str(REPO),
            }
        )
        self.stderr = services.settings.home / "scheduler.err"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.scheduler_process", FIRST.isoformat(), str(PASSES), str(PAUSE)],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=self.stderr.open("w"),
            text=True,
        )
        self.events: list[dict[str, Any]] = []
        self.other: list[str] = []
        self.started = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if not line.startswith('{"event"'):
                self.other.append(line)  # anything else the pass printed
                continue
            with self.started:
                self.events.append(json.loads(line))
                self.started.notify_all()

    def wait_for_start(self, n: int, timeout: float = 60) -> None:
        """Wait until the n-th pass (1-based) has started."""
        with self.started:
            if not self.started.wait_for(lambda: sum(e["event"] == "start" for e in self.events) >= n, timeout):
                raise AssertionError(f"pass {n} did not start: {self.events}")

    def wait(self, timeout: float) -> int:
        """Wait for the process to end; return its exit code."""
        code = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return code

    def passes(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "pass"]


def test_scheduler_passes_survive_postgres_restarts(pg_services: Any, private_pg: PrivatePostgres) -> None:
    services = pg_services
    for i in range(PIPELINES):
        save_at(
            services,
            pipeline_yaml(f"pg-restart-{i}", "* * * * *", start=f"{START:%Y-%m-%dT%H:%M:%S}", exp=0, mar=1),
            (START - timedelta(hours=1)).isoformat(),
        )
    services.db.dispose()  # the test's own pool must not hold connections across the restarts
    scheduler = SchedulerProcess(services)
    scheduler.wait_for_start(3)
    private_pg.restart()  # fast shutdown: the pass in flight loses its connection
    scheduler.wait_for_start(7)
    private_pg.crash()  # kill -9 of the postmaster, crash recovery
    assert scheduler.wait(timeout=120) == 0, scheduler.stderr.read_text()[-3000:]

    passes = scheduler.passes()
    assert len(passes) == PASSES, passes
    assert any(not p["ok"] for p in passes), f"no pass was hit by a restart: {passes}"
    assert all(p["ok"] for p in passes[-4:]), f"the scheduler did not recover: {passes}"
    assert all(not p.get("errors") for p in passes), f"a pipeline error was reported: {passes}"
    last = ts(passes[-1]["now"])
    want = {START + timedelta(minutes=m) for m in range(int((last - START).total_seconds() // 60) + 1)}
    check_schedule(services, want)


def check_schedule(services: Any, want: set[Any]) -> None:
    with services.db.read() as s:
        dup_records = s.execute(
            select(ScheduleRecord.pipeline_id, ScheduleRecord.execution_date)
            .group_by(ScheduleRecord.pipeline_id, ScheduleRecord.execution_date)
            .having(func.count() > 1)
        ).all()
        dup_runs = s.execute(
            select(Run.pipeline_id, Run.execution_date)
            .where(Run.trigger == Trigger.CRON.value)
            .group_by(Run.pipeline_id, Run.execution_date)
            .having(func.count() > 1)
        ).all()
        records: dict[int, set[Any]] = {}
        for pid, instant in s.execute(select(ScheduleRecord.pipeline_id, ScheduleRecord.execution_date)):
            records.setdefault(pid, set()).add(instant)
        errors = s.execute(
            select(Pipeline.name, Pipeline.schedule_error, Pipeline.next_fire_at).where(
                Pipeline.schedule_error.is_not(None)
            )
        ).all()
        launched = s.execute(
            select(ScheduleRecord.pipeline_id, ScheduleRecord.execution_date, Run.pipeline_id, Run.execution_date)
            .join(Run, Run.id == ScheduleRecord.run_id, isouter=True)
            .where(ScheduleRecord.status != "waiting", ScheduleRecord.status != "expired")
        ).all()
        cron_runs = s.scalar(select(func.count()).select_from(Run).where(Run.trigger == Trigger.CRON.value))
    assert not dup_records and not dup_runs, (dup_records, dup_runs)
    assert not errors, f"pipelines left with a schedule error by the outage: {errors[:5]}"
    assert len(records) == PIPELINES
    missing = {pid: sorted(want - got)[:3] for pid, got in records.items() if got != want}
    assert not missing, (
        f"{len(missing)} pipelines miss fire times (or have extra ones): {dict(list(missing.items())[:3])}"
    )
    assert all(rp == pid and rd == at for pid, at, rp, rd in launched), "a launched record points at another run"
    assert cron_runs == len(launched) == PIPELINES, (cron_runs, len(launched))
