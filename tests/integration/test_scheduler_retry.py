"""Retrying a cron run never waits for a slot (R9, D9), so depends_on_past + max_active_runs 1 +
retry cannot deadlock. Runs really execute (the in-process burst worker, local executor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from myapp.cli.process import run_burst
from myapp.db.tables import ScheduleRecord
from tests.integration.test_scheduler import by_status, cron_runs, pipeline_yaml, save_at, tick, ts

pytestmark = pytest.mark.integration


def flaky(mark: Path) -> str:
    """A script that fails the first time and succeeds from then on."""
    return f"test -f {mark} || {{ touch {mark}; exit 1; }}"


def reason(services: Any, pid: int, at: str) -> str | None:
    with services.db.read() as s:
        return s.scalar(
            select(ScheduleRecord.message).where(
                ScheduleRecord.pipeline_id == pid, ScheduleRecord.execution_date == ts(at)
            )
        )


def test_depends_on_past_with_one_slot_and_a_retry_does_not_deadlock(services: Any, tmp_path: Path) -> None:
    pid = save_at(
        services,
        pipeline_yaml("dop-retry", "0 * * * *", exp=0, mar=1, dop=True, script=flaky(tmp_path / "dop")),
        "2025-12-01T00:00Z",
    )
    tick(services, "2026-01-01T00:00Z")
    run_burst(services, 1)
    (first,) = cron_runs(services, pid)
    assert first.state == "failed"
    tick(services, "2026-01-01T01:00Z")
    assert reason(services, pid, "2026-01-01T01:00Z") == "depends_on_past: previous run 2026-01-01 00:00:00 failed"
    services.runs.retry_run(first.id, ts("2026-01-01T01:01Z"))  # starts at once: it holds the only slot
    assert cron_runs(services, pid)[0].state == "running"
    tick(services, "2026-01-01T01:02Z")
    assert by_status(services, pid, "waiting") == ["2026-01-01T01:00Z"]
    run_burst(services, 1)
    assert cron_runs(services, pid)[0].state == "succeeded"
    tick(services, "2026-01-01T01:03Z")  # the run's end woke the pipeline
    assert by_status(services, pid, "launched") == ["2026-01-01T00:00Z", "2026-01-01T01:00Z"]
    run_burst(services, 1)
    assert [r.state for r in cron_runs(services, pid)] == ["succeeded", "succeeded"]


def test_a_retry_starts_even_when_max_active_runs_is_reached(services: Any, tmp_path: Path) -> None:
    pid = save_at(
        services,
        pipeline_yaml("slot-retry", "0 * * * *", exp=0, mar=1, script=flaky(tmp_path / "slot")),
        "2025-12-01T00:00Z",
    )
    tick(services, "2026-01-01T00:00Z")
    run_burst(services, 1)
    tick(services, "2026-01-01T01:00Z")  # the failed run freed the slot: the next one launches
    failed, running = cron_runs(services, pid)
    assert (failed.state, running.state) == ("failed", "running")
    services.runs.retry_run(failed.id, ts("2026-01-01T01:01Z"))
    assert cron_runs(services, pid)[0].state == "running"  # did not wait for a slot (D9)
    tick(services, "2026-01-01T02:00Z")
    assert len(cron_runs(services, pid)) == 2  # and while it runs it counts as active
    assert reason(services, pid, "2026-01-01T02:00Z") == "max_active_runs 1 reached (2 active)"
