"""Pure parts of the scheduler's edges: alert events and backoff, and `--now` parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from myapp.alerts.delivery import MAX_DELAY, alert_event, backoff, is_wanted
from myapp.cli.schedule import parse_instant
from myapp.core.errors import SpecError
from myapp.core.states import RunState


def test_a_run_timeout_is_its_own_event() -> None:
    assert alert_event(RunState.FAILED, "run timed out after 60 s") == "timeout"
    assert alert_event(RunState.FAILED, "a task failed") == "failed"
    assert alert_event(RunState.SUCCEEDED, "") == "succeeded"
    assert alert_event(RunState.STOPPED, "stopped by bob") == "stopped"


def test_listening_to_failed_includes_timeouts() -> None:
    assert is_wanted(["failed"], "timeout") and is_wanted(["timeout"], "timeout")
    assert not is_wanted(["timeout"], "failed") and not is_wanted(["failed"], "succeeded")


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert backoff(50) == MAX_DELAY == timedelta(hours=1)


def test_now_is_iso_8601_with_offset_or_z_and_naive_means_utc() -> None:
    assert parse_instant("2026-01-01T08:00:00+08:00") == datetime(2026, 1, 1, tzinfo=UTC)
    assert (
        parse_instant("2026-01-01T00:00:00Z") == parse_instant("2026-01-01T00:00") == datetime(2026, 1, 1, tzinfo=UTC)
    )
    with pytest.raises(SpecError, match="ISO 8601"):
        parse_instant("tomorrow")
