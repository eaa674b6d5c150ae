"""Cron runs created from their version's launch template (myapp/db/launch_templates.py, PostgreSQL) equal
runs drafted from the parsed version (RunStore.draft_many_in / create_drafts_in): every column of the run
and of each task instance. Versions saved before migration 0010 get their template from the first pass
that launches them; a version edit gives new launches the new template.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from sqlalchemy import select

from myapp.core.dag import Dag
from myapp.core.pipeline_spec import parse_pipeline
from myapp.db import launch_templates
from myapp.db.launch_templates import template_rows
from myapp.db.run_store import RunStore
from myapp.db.schedule_tables import LaunchTemplate
from myapp.db.tables import Pipeline, PipelineVersion, Run, ScheduleRecord, TaskInstance
from myapp.scheduling.scheduler import run_pass
from tests.integration.test_scheduler import columns, forget_launch_templates, pipeline_yaml, save_at, ts

pytestmark = pytest.mark.integration

TASK = "image: local, command: ['true']"
SHAPES = {
    "params": (
        "parameters:\n  - {name: day, default: '2026'}\n  - {name: mode, default: fast, secret: true}\n",
        [f"  - {{name: b, {TASK}, depends_on: [a], when: \"{{{{ params.mode == 'fast' }}}}\"}}"],
    ),
    "retries-timeout": (
        "timeout: 600\n",
        [
            f"  - {{name: b, {TASK}, retries: 2}}",
            f"  - {{name: c, {TASK}, depends_on: [a, b], retries: 1, trigger_rule: all_done}}",
            f"  - {{name: d, {TASK}, depends_on: [c], trigger_rule: one_failed}}",
        ],
    ),
    "slices-downstream": (
        "",
        [f"  - {{name: train, {TASK}, depends_on: [a], inputs: {{x: [1, 2]}}, slices: {{inputs: [x]}}}}"],
    ),
}


def spec_text(name: str, shape: str, *, dop: bool = False) -> str:
    head, tasks = SHAPES[shape]
    text = pipeline_yaml(name, "0 * * * *", tz="Asia/Shanghai", params=head if "parameters" in head else "", dop=dop)
    if "timeout" in head:
        text = text.replace("tasks:\n", f"{head}tasks:\n")
    return text + "".join(line + "\n" for line in tasks)


class Drafting(RunStore):
    """The run store, noting which pipelines' runs were drafted (not created from a template)."""

    def __init__(self, runs: RunStore) -> None:
        self.__dict__.update(runs.__dict__)
        self.drafted: list[int] = []

    def draft_many_in(self, s: Any, news: Any, now: Any, pipelines: Any = None) -> Any:
        self.drafted += [new.pipeline_id for new in news]
        return super().draft_many_in(s, news, now, pipelines)


def templates(services: Any, pipeline_id: int) -> list[dict[str, Any]]:
    with services.db.read() as s:
        rows = s.scalars(
            select(LaunchTemplate)
            .join(PipelineVersion, PipelineVersion.id == LaunchTemplate.version_id)
            .where(PipelineVersion.pipeline_id == pipeline_id)
            .order_by(LaunchTemplate.version_id, LaunchTemplate.position)
        )
        return [columns(row) for row in rows]


def records(services: Any, pipeline_id: int) -> list[dict[str, Any]]:
    with services.db.read() as s:
        rows = s.scalars(
            select(ScheduleRecord)
            .where(ScheduleRecord.pipeline_id == pipeline_id)
            .order_by(ScheduleRecord.execution_date)
        )
        return [columns(row, "id", "pipeline_id", "run_id") for row in rows]


def run_and_tasks(services: Any, pipeline_id: int) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    with services.db.read() as s:
        (run,) = s.scalars(select(Run).where(Run.pipeline_id == pipeline_id))
        tis = s.scalars(select(TaskInstance).where(TaskInstance.run_id == run.id).order_by(TaskInstance.id))
        return columns(run, "id", "pipeline_id", "version_id"), {t.task_name: columns(t, "id", "run_id") for t in tis}


@pytest.mark.parametrize("dop", [False, True])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_run_created_from_its_template_equals_a_drafted_run(services: Any, shape: str, dop: bool) -> None:
    name = f"tmpl-{shape}-{'dop' if dop else 'nodop'}"
    templated = save_at(services, spec_text(f"{name}-t", shape, dop=dop), "2025-12-01T00:00Z")
    drafted = save_at(services, spec_text(f"{name}-d", shape, dop=dop), "2025-12-01T00:00Z")
    saved = templates(services, drafted)
    assert saved, "saving a version writes its launch template"
    forget_launch_templates(services, drafted)  # as a version saved before migration 0010
    runs = Drafting(services.runs)
    report = run_pass(dataclasses.replace(services, runs=runs), ts("2026-01-01T00:30Z"))
    assert not report.errors and len(report.launched) >= 2
    postgres = services.db.engine.dialect.name == "postgresql"
    assert drafted in runs.drafted and (templated not in runs.drafted) == postgres
    run_t, tasks_t = run_and_tasks(services, templated)
    run_d, tasks_d = run_and_tasks(services, drafted)
    assert run_t == run_d and run_t["state"] == "running" and run_t["execution_date_text"] == "2026-01-01 08:00:00"
    assert tasks_t == tasks_d and [t["state"] for t in tasks_t.values()].count("queued") >= 1
    assert records(services, templated) == records(services, drafted)  # launched, with the run's text (R2)
    assert records(services, templated)[-1]["status"] == "launched"
    if postgres:  # the pass that drafted the old version stored its template, equal to the one saving writes
        assert [dict(row, version_id=0) for row in templates(services, drafted)] == [
            dict(row, version_id=0) for row in saved
        ]


def test_a_version_edit_gives_new_launches_the_new_template(services: Any) -> None:
    pid = save_at(services, pipeline_yaml("tmpl-edit", "0 * * * *", mar=5, exp=0), "2025-12-01T00:00Z")
    first = run_pass(services, ts("2026-01-01T00:30Z"))
    assert len(first.launched) == 1
    edited = (
        pipeline_yaml("tmpl-edit", "0 * * * *", mar=5, exp=0)
        + f"  - {{name: b, {TASK}, depends_on: [a], retries: 3}}\n"
    )
    save_at(services, edited, "2026-01-01T00:40Z")
    second = run_pass(services, ts("2026-01-01T01:30Z"))
    assert len(second.launched) == 1
    with services.db.read() as s:
        current = s.scalar(select(Pipeline.current_version_id).where(Pipeline.id == pid))
        old, new = (s.get(Run, run_id) for run_id in first.launched + second.launched)
        assert old is not None and new is not None and new.version_id == current != old.version_id
        tis = {t.task_name: t for t in s.scalars(select(TaskInstance).where(TaskInstance.run_id == new.id))}
    assert sorted(tis) == ["a", "b"] and (tis["a"].state, tis["b"].state) == ("queued", "pending")
    assert (tis["b"].max_tries, tis["b"].upstream_waiting) == (4, 1)


def test_a_version_a_template_cannot_express_is_drafted(services: Any) -> None:
    required = "parameters:\n  - {name: day, required: true}\n"
    refused = save_at(services, pipeline_yaml("tmpl-required", "0 * * * *", params=required), "2025-12-01T00:00Z")
    sliced = pipeline_yaml("tmpl-sliced", "0 * * * *").replace(
        "tasks:\n  - name: a\n", "tasks:\n  - name: a\n    inputs: {x: [1, 2]}\n    slices: {inputs: [x]}\n"
    )
    started_sliced = save_at(services, sliced, "2025-12-01T00:00Z")
    assert templates(services, refused) == [] and templates(services, started_sliced) == []
    report = run_pass(services, ts("2026-01-01T00:30Z"))
    errors = {e["pipeline_id"]: e["error"] for e in report.errors}
    assert "missing required parameter(s) day" in errors[refused] and started_sliced not in errors
    with services.db.read() as s:
        run = s.scalar(select(Run).where(Run.pipeline_id == started_sliced))
        assert run is not None and run.state == "running"
        names = set(s.scalars(select(TaskInstance.task_name).where(TaskInstance.run_id == run.id)))
    assert names == {"a", "a[0]", "a[1]"}, names  # the drafting path's start made the slices (R15)
    assert templates(services, started_sliced) == []


def test_template_rows_follow_the_dag() -> None:
    spec = parse_pipeline(
        {
            "name": "rows",
            "timeout": 60,
            "tasks": [
                {"name": "a", "image": "local", "command": ["true"], "retries": 1},
                {"name": "b", "image": "local", "command": ["true"], "depends_on": ["a"]},
            ],
        }
    )
    rows = template_rows(7, spec, Dag.from_spec(spec))
    assert rows == [
        {
            "version_id": 7,
            "position": 0,
            "task_name": "a",
            "max_tries": 2,
            "upstream_waiting": 0,
            "queued": True,
            "run_timeout": 60,
        },
        {
            "version_id": 7,
            "position": 1,
            "task_name": "b",
            "max_tries": 1,
            "upstream_waiting": 1,
            "queued": False,
            "run_timeout": 60,
        },
    ]


def test_several_launches_of_one_pipeline_get_their_own_instants(services: Any) -> None:
    twins = [
        save_at(
            services,
            pipeline_yaml(f"tmpl-catchup-{i}", "0 * * * *", tz="Asia/Kolkata", mar=3, exp=0),
            "2025-12-01T00:00Z",
        )
        for i in range(2)
    ]
    forget_launch_templates(services, twins[1])
    report = run_pass(services, ts("2026-01-01T02:30Z"))
    assert not [e for e in report.errors if e["pipeline_id"] in twins]
    with services.db.read() as s:
        rows = s.execute(
            select(
                ScheduleRecord.pipeline_id, ScheduleRecord.execution_date, Run.execution_date, Run.execution_date_text
            )
            .join(Run, Run.id == ScheduleRecord.run_id)
            .where(ScheduleRecord.pipeline_id.in_(twins))
            .order_by(ScheduleRecord.pipeline_id, ScheduleRecord.execution_date)
        ).all()
    texts = ["2026-01-01 00:00:00", "2026-01-01 01:00:00", "2026-01-01 02:00:00"]  # start_time is local (R1)
    assert [(pid, text) for pid, _, _, text in rows] == [(pid, text) for pid in twins for text in texts]
    assert all(record_at == run_at for _, record_at, run_at, _ in rows)


def test_a_large_version_gets_its_template_from_its_first_launch(
    services: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(launch_templates, "SAVE_UP_TO_TASKS", 1)  # "large": more than one task
    text = pipeline_yaml("tmpl-large", "0 * * * *") + f"  - {{name: b, {TASK}, depends_on: [a]}}\n"
    pid = save_at(services, text, "2025-12-01T00:00Z")
    assert templates(services, pid) == []  # the save did not write it
    report = run_pass(services, ts("2026-01-01T00:30Z"))
    assert not [e for e in report.errors if e["pipeline_id"] == pid]
    filled = [(row["task_name"], row["queued"]) for row in templates(services, pid)]
    assert filled == ([("a", True), ("b", False)] if services.db.engine.dialect.name == "postgresql" else [])


def test_a_launched_record_another_scheduler_made_first_redoes_the_batch_one_by_one(
    services: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The statement that creates a batch's runs inserts their new records "on conflict do nothing": a
    record that exists by then (another scheduler's) is not inserted, the batch rolls back (nothing of
    it stays) and its pipelines are redone one by one, each launching once (R6)."""
    from myapp.scheduling import batch

    pids = [save_at(services, pipeline_yaml(f"tmpl-race-{i}", "0 * * * *"), "2025-12-01T00:00Z") for i in range(3)]
    create = batch.create_from_templates
    raced: list[Any] = []

    def first_made_elsewhere(s: Any, launches: Any, runner: str, now: Any) -> Any:
        if not raced:  # the other scheduler's record, as if committed between our snapshot and our INSERT
            raced.append(launches[0])
            s.execute(
                ScheduleRecord.__table__.insert().values(
                    pipeline_id=launches[0].pipeline_id,
                    execution_date=launches[0].instant,
                    execution_date_text=launches[0].text,
                    status="waiting",
                    message="",
                    created_at=now,
                    updated_at=now,
                )
            )
        return create(s, launches, runner, now)

    monkeypatch.setattr(batch, "create_from_templates", first_made_elsewhere)
    report = run_pass(services, ts("2026-01-01T00:30Z"))
    assert raced and not report.errors
    assert "a record launched by this batch was created or launched by another scheduler" in caplog.text
    with services.db.read() as s:
        rows = s.execute(
            select(ScheduleRecord.pipeline_id, ScheduleRecord.status, Run.id)
            .outerjoin(Run, Run.id == ScheduleRecord.run_id)
            .where(ScheduleRecord.pipeline_id.in_(pids))
            .order_by(ScheduleRecord.pipeline_id)
        ).all()
        runs = s.scalars(select(Run.pipeline_id).where(Run.pipeline_id.in_(pids)).order_by(Run.pipeline_id)).all()
    assert [(pid, status) for pid, status, _ in rows] == [(pid, "launched") for pid in pids]
    assert all(run_id is not None for _, _, run_id in rows) and list(runs) == pids  # one run each, no duplicate
    assert sorted(report.launched) == sorted(run_id for _, _, run_id in rows)
