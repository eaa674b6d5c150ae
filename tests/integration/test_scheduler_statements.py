"""A scheduler pass costs a fixed number of SQL statements per batch, however many pipelines the batch
holds and however many runs it launches (batched run creation; docs/benchmarks.md, Scheduler).

A module of its own: its database holds only the pipelines these passes look at.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, select

from myapp.db.tables import Run, ScheduleRecord, TaskInstance
from myapp.scheduling.scheduler import run_pass
from tests.integration.test_scheduler import pipeline_yaml, save_at, ts

pytestmark = pytest.mark.integration


def counted_pass(services: Any, at: str) -> tuple[int, Any]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(services.db.engine, "before_cursor_execute", count)
    try:
        report = run_pass(services, ts(at))
    finally:
        event.remove(services.db.engine, "before_cursor_execute", count)
    return len(statements), report


def test_a_pass_launching_many_runs_sends_as_many_statements_as_one_launching_two(services: Any) -> None:
    daily = "0 0 * * *"
    first = [
        save_at(services, pipeline_yaml(f"few-{i}", daily, start="2026-01-01T00:00:00"), "2025-12-31T00:00Z")
        for i in range(2)
    ]
    few, report = counted_pass(services, "2026-01-01T00:30Z")
    assert report.pipelines == 2 and len(report.launched) == 2 and report.created == 2
    for run_id in report.launched:  # their slots free again: the next pass launches them too
        services.runs.stop_run(run_id, ts("2026-01-01T00:31Z"))
    later = [
        save_at(services, pipeline_yaml(f"many-{i}", daily, start="2026-01-02T00:00:00"), "2026-01-01T01:00Z")
        for i in range(40)
    ]
    many, report = counted_pass(services, "2026-01-02T00:30Z")
    assert report.pipelines == len(first) + len(later) and len(report.launched) == 42 and report.created == 42
    assert many == few, f"{few} statements for 2 launches, {many} for 42: a statement per pipeline crept in"
    assert few <= 12, few
    # Rows inserted together still belong together: each record's run is of its pipeline, with its task.
    with services.db.read() as s:
        rows = s.execute(
            select(
                ScheduleRecord.pipeline_id,
                Run.pipeline_id,
                TaskInstance.task_name,
                Run.execution_date,
                ScheduleRecord.execution_date,
            )
            .join(Run, Run.id == ScheduleRecord.run_id)
            .join(TaskInstance, TaskInstance.run_id == Run.id)
            .where(Run.id.in_(report.launched))
        ).all()
    assert len(rows) == 42 and all(a == b and name == "a" and r == e for a, b, name, r, e in rows), rows
