"""A dropped database connection during a batch is nobody's schedule error: the pass fails, the next redoes it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from myapp.scheduling import scheduler


def _dropped() -> OperationalError:
    exc = OperationalError("UPDATE pipelines ...", {}, Exception("terminating connection"))
    exc.connection_invalidated = True
    return exc


def test_a_batch_that_loses_the_database_is_not_isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    isolated: list[Any] = []

    def batch(services: Any, now: datetime, claim: Any, **_: Any) -> Any:
        claim.ids += [1, 2, 3]
        raise _dropped()

    monkeypatch.setattr(scheduler, "_run_batch", batch)
    monkeypatch.setattr(scheduler, "_isolate", lambda *a: isolated.append(a))
    with pytest.raises(OperationalError):
        scheduler._claimed_batch(object(), datetime(2026, 1, 1, tzinfo=UTC), scheduler._Claim(), 0, 500)
    assert isolated == []


def test_isolation_stops_instead_of_blaming_pipelines_when_the_database_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    blamed: list[int] = []

    def batch(services: Any, now: datetime, claim: Any, **_: Any) -> Any:
        raise _dropped()

    monkeypatch.setattr(scheduler, "_run_batch", batch)
    monkeypatch.setattr(scheduler, "_record_error", lambda services, pid, now, message: blamed.append(pid))
    with pytest.raises(OperationalError):
        scheduler._isolate(object(), datetime(2026, 1, 1, tzinfo=UTC), [1, 2, 3])
    assert blamed == []


def test_a_broken_pipeline_is_still_isolated_and_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    blamed: list[int] = []

    def batch(services: Any, now: datetime, claim: Any, ids: Any = None, **_: Any) -> Any:
        if ids == [2]:
            raise ValueError("bad schedule")
        return scheduler.PassReport(now), []

    monkeypatch.setattr(scheduler, "_run_batch", batch)
    monkeypatch.setattr(scheduler, "_record_error", lambda services, pid, now, message: blamed.append(pid))
    report, _ = scheduler._isolate(object(), datetime(2026, 1, 1, tzinfo=UTC), [1, 2, 3])
    assert blamed == [2] and [e["pipeline_id"] for e in report.errors] == [2]
