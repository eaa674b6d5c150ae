"""A disable is honoured by every scheduler pass that commits after it (issue 14: "`myapp pipeline
disable` returned, then a pass still launched runs of daily-etl").

The two interleavings, forced with events: a pass that claimed the pipeline before the disable
makes the disable wait for its COMMIT (the pipeline row lock), so its runs are committed before
the disable returns; a disable that holds the row while a pass runs makes the pass pass it over
(`SKIP LOCKED`; SQLite: the pass waits for the writer lock, then reads it disabled). Either way,
no run is created by a pass that commits after the disable. Run with
MYAPP_TEST_DATABASE_URL=postgresql://... for the row locks; SQLite serializes the writers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, text

import myapp.db.pipeline_store as pipeline_store
import myapp.scheduling.batch as schedule_batch
from myapp.db.tables import Pipeline, Run
from myapp.scheduling.backfill_guard import set_enabled
from myapp.scheduling.scheduler import PassReport, run_pass
from tests.integration.test_scheduler import pipeline_yaml, save_at, ts

pytestmark = pytest.mark.integration


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _disable(services: Any, pid: int, at: str) -> None:
    set_enabled(services, pid, False, ts(at), user_id=None, confirmed=True, how="")


def _cron_runs(services: Any, pid: int) -> list[tuple[int, str]]:
    with services.db.read() as s:
        return [
            (r.id, r.execution_date.strftime("%H:%M"))
            for r in s.scalars(select(Run).where(Run.pipeline_id == pid, Run.trigger == "cron").order_by(Run.id))
        ]


class Thread(threading.Thread):
    """A thread that keeps its target's result or exception for the test to check."""

    def __init__(self, target: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.work, self.result, self.error = target, None, None

    def run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as exc:  # noqa: BLE001  re-raised by the test
            self.error = exc

    def outcome(self) -> Any:
        self.join(120)
        assert not self.is_alive(), "the thread did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def test_a_disable_waits_for_a_pass_that_claimed_the_pipeline_and_later_passes_launch_nothing(
    services: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if services.db.is_sqlite:
        pytest.skip(
            "SQLite: the disable cannot start its write while the pass holds the writer lock "
            "(the next test covers the order where the disable writes first)"
        )
    pid = save_at(services, pipeline_yaml("race-claimed", "0 * * * *", mar=5), "2025-12-01T00:00Z")
    run_pass(services, ts("2026-01-01T00:00Z"))
    claimed, release = threading.Event(), threading.Event()
    real = schedule_batch.load_snapshots

    def paused(s: Any, ids: Any) -> Any:
        if pid in ids:
            claimed.set()
            assert release.wait(120)
        return real(s, ids)

    monkeypatch.setattr(schedule_batch, "load_snapshots", paused)
    passing = Thread(lambda: run_pass(services, ts("2026-01-01T01:00Z")))
    passing.start()
    assert claimed.wait(120)
    disabling = Thread(lambda: _disable(services, pid, "2026-01-01T01:00:01Z"))
    disabling.start()

    def disable_waits_on_a_lock() -> bool:
        with services.db.read() as s:
            return bool(
                s.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'"
                    )
                )
            )

    _wait_for(disable_waits_on_a_lock, "the disable to wait for the pass's row lock")
    assert disabling.is_alive()
    release.set()
    report: PassReport = passing.outcome()
    disabling.outcome()
    assert len(report.launched) == 1  # committed before the disable could: its run is legitimate
    monkeypatch.setattr(schedule_batch, "load_snapshots", real)
    for at in ("2026-01-01T02:00Z", "2026-01-01T03:00Z"):
        assert not run_pass(services, ts(at)).launched
    assert [at for _, at in _cron_runs(services, pid)] == ["00:00", "01:00"]


def test_a_pass_running_while_a_disable_holds_the_pipeline_launches_nothing(
    services: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = save_at(services, pipeline_yaml("race-held", "0 * * * *", mar=5), "2025-12-01T00:00Z")
    run_pass(services, ts("2026-01-01T00:00Z"))
    holding, release = threading.Event(), threading.Event()
    real = pipeline_store.apply_schedule

    def paused(s: Any, pipeline: Pipeline, *args: Any, **kwargs: Any) -> Any:
        if pipeline.id == pid:
            holding.set()
            assert release.wait(120)
        return real(s, pipeline, *args, **kwargs)

    monkeypatch.setattr(pipeline_store, "apply_schedule", paused)
    disabling = Thread(lambda: _disable(services, pid, "2026-01-01T01:00Z"))
    disabling.start()
    assert holding.wait(120)  # the disable's transaction holds the pipeline's row (or SQLite's writer lock)
    passing = Thread(lambda: run_pass(services, ts("2026-01-01T01:00:30Z")))
    passing.start()
    if not services.db.is_sqlite:
        passing.outcome()  # PostgreSQL: the locked pipeline is skipped, the pass does not wait
    release.set()
    disabling.outcome()
    report: PassReport = passing.outcome()
    assert pid not in [e["pipeline_id"] for e in report.errors] and not report.launched
    for at in ("2026-01-01T01:01Z", "2026-01-01T02:00Z"):
        assert not run_pass(services, ts(at)).launched
    assert [at for _, at in _cron_runs(services, pid)] == ["00:00"]
