"""The scheduler pass through the real database (docs/rules.md P3, docs/rules.md R1-R9, D1-D14).

Time travel: every pass gets an explicit `now`; each test uses pipelines of its own, and the
scheduler's state is per pipeline, so tests in this module don't disturb each other.
"""

from __future__ import annotations

import dataclasses
import textwrap
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update

from myapp.cli.schedule import parse_instant
from myapp.core.cron import count_fire_times
from myapp.core.pipeline_spec import parse_pipeline
from myapp.core.states import RunState, Trigger
from myapp.core.values import NewRun
from myapp.db.pipeline_store import SpecErrors
from myapp.db.run_store import RunStore
from myapp.db.schedule_store import record_rows, skip_rows
from myapp.db.schedule_tables import LaunchTemplate
from myapp.db.tables import Pipeline, PipelineVersion, Run, ScheduleRecord, TaskInstance
from myapp.scheduling.scheduler import PassReport, preview_pipeline, run_pass
from myapp.yaml_io import load_yaml

pytestmark = pytest.mark.integration


def ts(text: str) -> datetime:
    """Parse an instant the way `myapp schedule tick --now` does (naive = UTC)."""
    return parse_instant(text)


def pipeline_yaml(
    name: str,
    cron: str,
    *,
    tz: str = "UTC",
    start: str | None = "2026-01-01T00:00:00",
    exp: int = 1,
    mar: int = 1,
    dop: bool = False,
    enabled: bool = True,
    description: str = "",
    params: str = "",
    script: str = "echo hi",
) -> str:
    start_line = f'  start_time: "{start}"\n' if start else ""
    return (
        f"name: {name}\ndescription: '{description}'\n{params}"
        f'schedule:\n  type: crontab\n  cron: "{cron}"\n  timezone: {tz}\n{start_line}'
        f"  expired_limit: {exp}\n  max_active_runs: {mar}\n  depends_on_past: {str(dop).lower()}\n"
        f"  enabled: {str(enabled).lower()}\n"
        f"tasks:\n  - name: a\n    template: shell\n    args: {{script: '{script}'}}\n"
    )


def save_at(services: Any, text: str, at: str) -> int:
    """Save a pipeline from YAML as if at instant `at`; return its id."""
    spec = parse_pipeline(load_yaml(textwrap.dedent(text)))
    return services.pipelines.save(spec, ts(at)).pipeline_id


def tick(services: Any, at: str) -> PassReport:
    return run_pass(services, ts(at))


def records(services: Any, pid: int) -> list[tuple[str, str, str | None]]:
    """Return (instant UTC ISO, status, run state) oldest first."""
    with services.db.read() as s:
        rows = s.execute(
            select(ScheduleRecord.execution_date, ScheduleRecord.status, Run.state)
            .outerjoin(Run, Run.id == ScheduleRecord.run_id)
            .where(ScheduleRecord.pipeline_id == pid)
            .order_by(ScheduleRecord.execution_date)
        ).all()
    return [(at.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ"), status, state) for at, status, state in rows]


def by_status(services: Any, pid: int, status: str) -> list[str]:
    return [at for at, st, _ in records(services, pid) if st == status]


def cron_runs(services: Any, pid: int) -> list[Run]:
    with services.db.read() as s:
        return list(s.scalars(select(Run).where(Run.pipeline_id == pid, Run.trigger == "cron").order_by(Run.id)))


def pipeline_row(services: Any, pid: int) -> Pipeline:
    with services.db.read() as s:
        row = s.get(Pipeline, pid)
        assert row is not None
        return row


def state_of(services: Any, pid: int) -> tuple[Any, ...]:
    """Everything a pass may change for one pipeline, to compare passes."""
    with services.db.read() as s:
        runs = s.execute(
            select(Run.id, Run.state, Run.execution_date).where(Run.pipeline_id == pid).order_by(Run.id)
        ).all()
    return tuple(records(services, pid)), tuple(runs)


# ----- materialize, expire, launch (R1-R5) -------------------------------------------------------
def test_a_pass_materializes_expires_and_launches_the_newest(services: Any) -> None:
    pid = save_at(services, pipeline_yaml("daily-sh", "0 2 * * *", tz="Asia/Shanghai"), "2025-12-01T00:00Z")
    report = tick(services, "2026-01-03T03:00:00+08:00")
    assert (report.created, report.expired, len(report.launched)) == (3, 2, 1)
    assert records(services, pid) == [
        ("2025-12-31T18:00Z", "expired", None),
        ("2026-01-01T18:00Z", "expired", None),
        ("2026-01-02T18:00Z", "launched", "running"),
    ]
    (run,) = cron_runs(services, pid)
    assert run.execution_date == ts("2026-01-02T18:00Z")  # the fire instant itself (R2)
    assert run.execution_date_text == "2026-01-03 02:00:00"  # rendered in the pipeline's zone
    with services.db.read() as s:
        rec = s.scalar(select(ScheduleRecord).where(ScheduleRecord.run_id == run.id))
        current = s.scalar(select(Pipeline.current_version_id).where(Pipeline.id == pid))
    assert rec is not None and rec.execution_date_text == run.execution_date_text
    assert run.version_id == current and run.trigger == Trigger.CRON.value
    assert pipeline_row(services, pid).next_fire_at == ts("2026-01-03T18:00Z")


def test_start_time_is_inclusive_and_a_wall_time_in_the_zone(services: Any) -> None:
    pid = save_at(
        services,
        pipeline_yaml("incl", "0 * * * *", tz="Europe/Berlin", start="2026-01-01T05:00:00"),
        "2025-12-01T00:00Z",
    )
    assert pipeline_row(services, pid).start_time == ts("2026-01-01T04:00Z")
    tick(services, "2026-01-01T04:00Z")
    assert records(services, pid) == [("2026-01-01T04:00Z", "launched", "running")]


def test_start_time_in_a_dst_gap_means_the_first_instant_after_it(services: Any) -> None:
    pid = save_at(
        services,
        pipeline_yaml("gap-start", "0 * * * *", tz="Europe/Berlin", start="2026-03-29T02:30:00"),
        "2026-03-01T00:00Z",
    )
    assert pipeline_row(services, pid).start_time == ts("2026-03-29T01:00Z")  # 03:00+02:00


def test_two_passes_at_the_same_instant_equal_one(services: Any) -> None:
    pid = save_at(services, pipeline_yaml("idem", "*/10 * * * *", exp=0, mar=2), "2025-12-01T00:00Z")
    tick(services, "2026-01-01T01:00Z")
    first = state_of(services, pid)
    again = tick(services, "2026-01-01T01:00Z")
    assert state_of(services, pid) == first
    assert (again.created, again.launched) == (0, [])


def test_a_clock_stepping_back_changes_nothing(services: Any) -> None:
    pid = save_at(services, pipeline_yaml("back", "*/10 * * * *", exp=0, mar=5), "2025-12-01T00:00Z")
    tick(services, "2026-01-01T00:30Z")
    before = state_of(services, pid)
    services.runs.stop_run(cron_runs(services, pid)[0].id, ts("2026-01-01T00:31Z"))  # frees a slot, wakes it
    before = state_of(services, pid)
    report = tick(services, "2026-01-01T00:20Z")
    assert state_of(services, pid) == before and report.pipelines == 0
    assert pipeline_row(services, pid).last_tick_at == ts("2026-01-01T00:30Z")


def test_max_active_runs_holds_and_a_finished_run_frees_a_slot(services: Any) -> None:
    pid = save_at(services, pipeline_yaml("slots", "*/10 * * * *", exp=0, mar=2), "2025-12-01T00:00Z")
    tick(services, "2026-01-01T00:50Z")
    assert len(cron_runs(services, pid)) == 2 and len(by_status(services, pid, "waiting")) == 4
    with services.db.read() as s:
        reasons = set(
            s.scalars(
                select(ScheduleRecord.message).where(
                    ScheduleRecord.pipeline_id == pid, ScheduleRecord.status == "waiting"
                )
            )
        )
    assert reasons == {"max_active_runs 2 reached (2 active)"}
    # manual runs never count and never create records
    services.runs.create_run(NewRun(pid, Trigger.MANUAL, ts("2026-01-01T00:51Z"), {}), ts("2026-01-01T00:51Z"))
    tick(services, "2026-01-01T00:52Z")
    assert len(cron_runs(services, pid)) == 2
    services.runs.stop_run(cron_runs(services, pid)[0].id, ts("2026-01-01T00:53Z"))
    assert pipeline_row(services, pid).next_fire_at is None  # the run's end woke the scheduler
    report = tick(services, "2026-01-01T00:54Z")
    assert len(report.launched) == 1
    assert by_status(services, pid, "launched") == ["2026-01-01T00:00Z", "2026-01-01T00:10Z", "2026-01-01T00:20Z"]


def test_only_due_pipelines_are_read(services: Any) -> None:
    pid = save_at(services, pipeline_yaml("due-only", "0 3 * * *"), "2025-12-01T00:00Z")
    tick(services, "2026-01-01T03:00Z")
    assert pipeline_row(services, pid).next_fire_at == ts("2026-01-02T03:00Z")
    report = tick(services, "2026-01-01T12:00Z")
    assert pid not in [e["pipeline_id"] for e in report.errors]
    assert pipeline_row(services, pid).last_tick_at == ts("2026-01-01T03:00Z")  # not due: not even read


# ----- outages, backfill (R3, R4, D12) ------------------------------------------------------------
def test_three_year_outage_is_one_short_pass_with_a_skipped_span(services: Any) -> None:
    pid = save_at(
        services, pipeline_yaml("outage", "* * * * *", exp=5, start="2023-01-01T00:00:00"), "2022-12-01T00:00Z"
    )
    started = time.perf_counter()
    report = tick(services, "2025-12-31T23:59Z")
    elapsed = time.perf_counter() - started
    # Walking the outage minute by minute takes ~30 s (1.6 million fire times); the bound holds on a
    # machine ten times slower than a quiet one and still tells the two apart. Figures: benchmarks/.
    assert elapsed < 10.0, elapsed
    total = count_fire_times("* * * * *", "UTC", ts("2022-12-31T23:59:59Z"), ts("2025-12-31T23:59Z"))
    assert report.skipped == total - 5 and report.created == 5
    assert by_status(services, pid, "launched") == ["2025-12-31T23:55Z"]
    assert len(by_status(services, pid, "waiting")) == 4
    with services.db.read() as s:
        (skip,) = skip_rows(s, pipeline_id=pid)
    assert skip["count"] == total - 5 == 1_578_235
    assert skip["first"] == "2023-01-01 00:00:00 +00:00" and skip["last"] == "2025-12-31 23:54:00 +00:00"
    assert "1,578,235 fire times from 2023-01-01 00:00:00 +00:00" in skip["text"]
    tick(services, "2026-01-01T00:00Z")  # R3: passed-over instants never come back
    assert len(records(services, pid)) == 6


def test_expired_limit_zero_backfills_in_chunks_oldest_first(services: Any) -> None:
    small = dataclasses.replace(services, settings=dataclasses.replace(services.settings, backfill_chunk=5))
    pid = save_at(services, pipeline_yaml("backfill", "*/10 * * * *", exp=0, mar=1), "2025-12-01T00:00Z")
    tick(small, "2026-01-01T03:00Z")
    assert [at for at, _, _ in records(services, pid)][-1] == "2026-01-01T00:40Z"
    assert by_status(services, pid, "launched") == ["2026-01-01T00:00Z"]
    assert pipeline_row(services, pid).next_fire_at == ts("2026-01-01T00:50Z")  # still due
    for _ in range(3):
        tick(small, "2026-01-01T03:00Z")
    assert len(records(services, pid)) == 19 and not by_status(services, pid, "expired")
    assert pipeline_row(services, pid).next_fire_at == ts("2026-01-01T03:10Z")


def test_a_short_overflow_is_materialized_as_expired(services: Any) -> None:
    pid = save_at(services, pipeline_yaml("short-outage", "* * * * *", exp=1), "2025-12-01T00:00Z")
    tick(services, "2026-01-01T00:09Z")
    assert len(by_status(services, pid, "expired")) == 9 and by_status(services, pid, "launched") == [
        "2026-01-01T00:09Z"
    ]


# ----- time: zones, DST, aliases, month end, leap day (R1, R2) --------------------------------------
def test_spring_gap_fires_once_at_the_first_instant_after_it(services: Any) -> None:
    pid = save_at(
        services,
        pipeline_yaml("berlin-spring", "30 2 * * *", tz="Europe/Berlin", exp=0, mar=9, start="2026-03-27T00:00:00"),
        "2026-03-01T00:00Z",
    )
    tick(services, "2026-03-30T12:00Z")
    assert [at for at, _, _ in records(services, pid)] == [
        "2026-03-27T01:30Z",
        "2026-03-28T01:30Z",
        "2026-03-29T01:00Z",
        "2026-03-30T00:30Z",
    ]


def test_fall_back_fixed_time_once_and_wildcard_twice(services: Any) -> None:
    fixed = save_at(
        services,
        pipeline_yaml("berlin-fall-fixed", "30 2 * * *", tz="Europe/Berlin", exp=0, mar=9, start="2026-10-25T00:00:00"),
        "2026-10-01T00:00Z",
    )
    wild = save_at(
        services,
        pipeline_yaml(
            "berlin-fall-wild", "*/30 * * * *", tz="Europe/Berlin", exp=0, mar=99, start="2026-10-25T01:30:00"
        ),
        "2026-10-01T00:00Z",
    )
    tick(services, "2026-10-25T02:00Z")
    assert [at for at, _, _ in records(services, fixed)] == ["2026-10-25T00:30Z"]
    assert [at for at, _, _ in records(services, wild)] == [
        "2026-10-24T23:30Z",
        "2026-10-25T00:00Z",
        "2026-10-25T00:30Z",
        "2026-10-25T01:00Z",
        "2026-10-25T01:30Z",
        "2026-10-25T02:00Z",
    ]
    with services.db.read() as s:
        rows = record_rows(s, pipeline_id=wild)
    local = sorted(r["execution_local"] for r in rows if r["execution_date"].startswith("2026-10-25 02:"))
    assert local == [
        "2026-10-25 02:00:00 +01:00",
        "2026-10-25 02:00:00 +02:00",
        "2026-10-25 02:30:00 +01:00",
        "2026-10-25 02:30:00 +02:00",
    ]


def test_aliases_month_end_and_leap_day(services: Any) -> None:
    daily = save_at(
        services,
        pipeline_yaml("alias-daily", "@daily", tz="Europe/Berlin", exp=0, mar=9, start="2026-03-28T00:00:00"),
        "2026-03-01T00:00Z",
    )
    month_end = save_at(services, pipeline_yaml("month-end", "0 0 31 * *", exp=0, mar=9), "2025-12-01T00:00Z")
    leap = save_at(services, pipeline_yaml("leap-day", "0 0 29 2 *", exp=0, mar=9), "2025-12-01T00:00Z")
    tick(services, "2026-03-30T12:00Z")
    tick(services, "2026-06-01T00:00Z")
    assert [at for at, _, _ in records(services, daily)][:3] == [
        "2026-03-27T23:00Z",
        "2026-03-28T23:00Z",
        "2026-03-29T22:00Z",
    ]
    assert [at for at, _, _ in records(services, month_end)] == [
        "2026-01-31T00:00Z",
        "2026-03-31T00:00Z",
        "2026-05-31T00:00Z",
    ]
    assert records(services, leap) == [] and pipeline_row(services, leap).next_fire_at == ts("2028-02-29T00:00Z")
    tick(services, "2028-02-29T00:00Z")
    assert [at for at, _, _ in records(services, leap)] == ["2028-02-29T00:00Z"]


# ----- depends_on_past (R5) -------------------------------------------------------------------------
def test_depends_on_past_blocks_on_failure_until_marked_succeeded(services: Any) -> None:
    pid = save_at(services, pipeline_yaml("dop", "0 * * * *", exp=0, mar=3, dop=True), "2025-12-01T00:00Z")
    tick(services, "2026-01-01T02:00Z")
    assert by_status(services, pid, "launched") == ["2026-01-01T00:00Z"]  # one candidate at a time
    first = cron_runs(services, pid)[0].id
    tick(services, "2026-01-01T02:01Z")
    assert len(cron_runs(services, pid)) == 1
    services.runs.stop_run(first, ts("2026-01-01T02:02Z"))
    tick(services, "2026-01-01T02:03Z")
    with services.db.read() as s:
        reason = s.scalar(
            select(ScheduleRecord.message).where(
                ScheduleRecord.pipeline_id == pid, ScheduleRecord.execution_date == ts("2026-01-01T01:00Z")
            )
        )
    assert reason == "depends_on_past: previous run 2026-01-01 00:00:00 was stopped"
    services.runs.mark_run(first, RunState.SUCCEEDED, ts("2026-01-01T02:04Z"))
    assert pipeline_row(services, pid).next_fire_at is None  # marking woke the scheduler
    tick(services, "2026-01-01T02:05Z")
    assert by_status(services, pid, "launched") == ["2026-01-01T00:00Z", "2026-01-01T01:00Z"]


# ----- schedule epochs (R7, D6, D7, D10) and enable/disable (R8) --------------------------------------
def test_cron_change_starts_a_new_epoch_and_expires_waiting_records(services: Any) -> None:
    text = pipeline_yaml("epoch", "*/10 * * * *", exp=0, mar=1)
    pid = save_at(services, text, "2025-12-01T00:00Z")
    tick(services, "2026-01-01T00:30Z")
    running = cron_runs(services, pid)[0].id
    save_at(services, text.replace("*/10 * * * *", "*/15 * * * *"), "2026-01-01T00:35Z")
    row = pipeline_row(services, pid)
    assert row.start_time == ts("2026-01-01T00:35Z") and row.next_fire_at is None
    assert by_status(services, pid, "waiting") == [] and len(by_status(services, pid, "expired")) == 3
    assert cron_runs(services, pid)[0].state == "running"  # launched runs continue
    services.runs.stop_run(running, ts("2026-01-01T00:40Z"))
    tick(services, "2026-01-01T01:00Z")
    assert by_status(services, pid, "launched")[-1] == "2026-01-01T00:45Z"  # new epoch from the save instant


def test_explicit_start_time_in_the_same_save_wins_and_survives_later_saves(services: Any) -> None:
    text = pipeline_yaml("epoch-d7", "0 * * * *", start="2026-01-01T00:00:00")
    pid = save_at(services, text, "2025-12-01T00:00Z")
    changed = text.replace("0 * * * *", "30 * * * *")
    save_at(services, changed, "2026-02-01T00:00Z")  # same start_time in the YAML: not explicit -> reset
    assert pipeline_row(services, pid).start_time == ts("2026-02-01T00:00Z")
    save_at(services, changed.replace("description: ''", "description: 'docs only'"), "2026-02-02T00:00Z")
    assert pipeline_row(services, pid).start_time == ts("2026-02-01T00:00Z")  # other edits: untouched
    save_at(
        services,
        changed.replace("30 * * * *", "45 * * * *").replace("2026-01-01T00:00:00", "2026-03-01T08:00:00"),
        "2026-02-03T00:00Z",
    )
    assert pipeline_row(services, pid).start_time == ts("2026-03-01T08:00Z")  # explicit value wins (D7)


def test_timezone_change_resets_the_epoch(services: Any) -> None:
    text = pipeline_yaml("epoch-tz", "0 2 * * *", tz="UTC")
    pid = save_at(services, text, "2025-12-01T00:00Z")
    save_at(services, text.replace("timezone: UTC", "timezone: Asia/Tokyo"), "2026-01-05T00:00Z")
    assert pipeline_row(services, pid).start_time == ts("2026-01-05T00:00Z")


def test_other_edits_keep_the_schedule_and_waiting_records_run_the_current_version(services: Any) -> None:
    text = pipeline_yaml("d10", "*/10 * * * *", exp=0, mar=1)
    pid = save_at(services, text, "2025-12-01T00:00Z")
    tick(services, "2026-01-01T00:20Z")
    save_at(services, text.replace("echo hi", "echo v2"), "2026-01-01T00:21Z")
    assert pipeline_row(services, pid).start_time == ts("2026-01-01T00:00Z")
    assert len(by_status(services, pid, "waiting")) == 2
    services.runs.stop_run(cron_runs(services, pid)[0].id, ts("2026-01-01T00:22Z"))
    tick(services, "2026-01-01T00:23Z")
    first, second = cron_runs(services, pid)
    with services.db.read() as s:
        numbers = {v.id: v.number for v in s.scalars(select(PipelineVersion).where(PipelineVersion.pipeline_id == pid))}
    assert (numbers[first.version_id], numbers[second.version_id]) == (1, 2)


def test_disabled_pipelines_are_left_alone_and_reenabling_catches_up(services: Any) -> None:
    text = pipeline_yaml("toggle", "*/10 * * * *", exp=2, mar=1)
    pid = save_at(services, text, "2025-12-01T00:00Z")
    tick(services, "2026-01-01T00:20Z")
    before = state_of(services, pid)
    save_at(services, text.replace("enabled: true", "enabled: false"), "2026-01-01T00:25Z")
    tick(services, "2026-01-01T05:00Z")
    assert state_of(services, pid) == before  # nothing materialized, expired or launched
    save_at(services, text, "2026-01-01T05:01Z")
    assert pipeline_row(services, pid).start_time == ts("2026-01-01T00:00Z")  # D5
    tick(services, "2026-01-01T05:02Z")
    assert len(by_status(services, pid, "waiting")) == 2  # caught up, bounded by expired_limit


# ----- validation and broken pipelines (R12, D14) -----------------------------------------------------
@pytest.mark.parametrize("cron", ["0 0 L * *", "* * * * * *", "@reboot", "0 0 30 2 *"])
def test_a_bad_cron_is_refused_at_save_with_a_message_quoting_it(services: Any, cron: str) -> None:
    with pytest.raises(SpecErrors) as info:
        save_at(services, pipeline_yaml("refused", cron), "2025-12-01T00:00Z")
    assert f'"{cron}"' in str(info.value) and info.value.errors[0].field.startswith("schedule")
    assert not [p for p in services.pipelines.summaries() if p["name"] == "refused"]


def test_one_broken_pipeline_never_stops_a_pass(services: Any) -> None:
    broken = save_at(services, pipeline_yaml("broken-cron", "0 * * * *"), "2025-12-01T00:00Z")
    params = "parameters:\n  - {name: day, required: true}\n"
    unlaunchable = save_at(services, pipeline_yaml("broken-launch", "0 * * * *", params=params), "2025-12-01T00:00Z")
    fine = save_at(services, pipeline_yaml("fine", "0 * * * *"), "2025-12-01T00:00Z")
    with services.db.write() as s:
        s.execute(update(Pipeline).where(Pipeline.id == broken).values(cron="0 0 L * *"))
    report = tick(services, "2026-01-01T00:00Z")
    errors = {e["pipeline_id"]: e["error"] for e in report.errors}
    assert 'cron "0 0 L * *"' in errors[broken]
    assert "missing required parameter(s) day" in errors[unlaunchable]
    assert by_status(services, fine, "launched") == ["2026-01-01T00:00Z"]
    assert by_status(services, unlaunchable, "waiting") == ["2026-01-01T00:00Z"]
    listed = {p["id"]: p["schedule_error"] for p in services.pipelines.summaries()}
    assert 'cron "0 0 L * *"' in listed[broken] and listed[fine] is None


# ----- preview -------------------------------------------------------------------------------------------
def test_preview_explains_each_fire_time_in_words(services: Any) -> None:
    pid = save_at(
        services, pipeline_yaml("preview", "0 2 * * *", tz="Asia/Shanghai", mar=1, exp=1), "2025-12-01T00:00Z"
    )
    tick(services, "2026-01-01T02:00:00+08:00")
    data = preview_pipeline(services, pid, ts("2026-01-01T03:00:00+08:00"), 2)
    assert "1 cron run active" in data["summary"]
    first, second = data["fire_times"]
    assert first["local"] == "2026-01-02 02:00:00 +08:00" and first["action"] == "wait"
    assert first["reason"].startswith("waits: max_active_runs 1 reached (1 active)")
    assert "expires 1 older waiting record" in second["reason"]


# ----- launching a whole batch at once -------------------------------------------------------------------
def test_a_run_created_with_its_batch_equals_a_run_created_alone(services: Any) -> None:
    params = "parameters:\n  - {name: day, required: true}\n  - {name: mode, default: fast}\n"
    text = pipeline_yaml("batch-equal", "0 2 * * *", tz="Asia/Shanghai", params=params).replace(
        "tasks:\n", "timeout: 600\ntasks:\n"
    ) + (
        "  - {name: b, template: shell, args: {script: 'echo b'}, retries: 2}\n"
        "  - {name: c, template: shell, args: {script: 'echo c'}, depends_on: [a, b]}\n"
    )
    pid = save_at(services, text, "2025-12-01T00:00Z")
    now, at = ts("2026-01-03T00:00Z"), ts("2026-01-02T18:00Z")
    new = NewRun(pid, Trigger.CRON, at, {"day": "2026-01-03"}, runner="scheduler")
    with services.db.write() as s:
        alone, alone_queued = services.runs.create_in(s, new, now)
        drafts = services.runs.draft_many_in(s, [new, new], now)
        (batched, batched_queued), _ = services.runs.create_drafts_in(s, drafts, now)
    with services.db.read() as s:
        rows = {r.id: r for r in s.scalars(select(Run).where(Run.id.in_([alone, batched])))}
        tis = {
            run_id: {t.task_name: t for t in s.scalars(select(TaskInstance).where(TaskInstance.run_id == run_id))}
            for run_id in (alone, batched)
        }
        queued = {
            t.id: t.task_name
            for t in s.scalars(select(TaskInstance).where(TaskInstance.id.in_(alone_queued + batched_queued)))
        }
    assert columns(rows[batched], "id") == columns(rows[alone], "id")
    assert rows[alone].execution_date_text == "2026-01-03 02:00:00" and rows[alone].state == "running"
    assert rows[alone].deadline_at == ts("2026-01-03T00:10Z") and rows[alone].params == {"day": "2026-01-03"}
    assert {name: columns(ti, "id", "run_id") for name, ti in tis[batched].items()} == {
        name: columns(ti, "id", "run_id") for name, ti in tis[alone].items()
    }
    assert [queued[i] for i in alone_queued] == [queued[i] for i in batched_queued] == ["a", "b"]
    assert (tis[alone]["b"].max_tries, tis[alone]["c"].state) == (3, "pending")


def columns(row: Any, *leave_out: str) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key not in leave_out}


def test_drafting_refuses_a_run_as_creating_it_alone_would(services: Any) -> None:
    params = "parameters:\n  - {name: day, required: true}\n"
    pid = save_at(services, pipeline_yaml("batch-refused", "0 2 * * *", params=params), "2025-12-01T00:00Z")
    now = ts("2026-01-03T00:00Z")
    news = [
        NewRun(pid, Trigger.CRON, now, {}),
        NewRun(pid, Trigger.CRON, now, {"day": "x"}),
        NewRun(999_999, Trigger.CRON, now, {}),
    ]
    with services.db.write() as s:
        missing, fine, unknown = services.runs.draft_many_in(s, news, now)
        with pytest.raises(Exception) as alone:
            services.runs.create_in(s, news[0], now)
    assert str(missing) == str(alone.value) == "params: missing required parameter(s) day"
    assert str(unknown) == "pipeline 999999 not found" and fine.run["params"] == {"day": "x"}


def forget_launch_templates(services: Any, pipeline_id: int) -> None:
    """Delete the launch templates of a pipeline's versions: its runs are drafted, as before migration 0010."""
    with services.db.write() as s:
        versions = select(PipelineVersion.id).where(PipelineVersion.pipeline_id == pipeline_id)
        s.execute(delete(LaunchTemplate).where(LaunchTemplate.version_id.in_(versions)))


class RefusingRuns(RunStore):
    """The run store, except that the database refuses every run of one pipeline (a broken row)."""

    def __init__(self, runs: RunStore, refused: int) -> None:
        self.__dict__.update(runs.__dict__)
        self.refused = refused

    def create_drafts_in(self, s: Any, drafts: Any, now: datetime) -> Any:
        if any(draft.run["pipeline_id"] == self.refused for draft in drafts):
            s.execute(text("SELECT * FROM no_such_table"))  # aborts the transaction on PostgreSQL
        return super().create_drafts_in(s, drafts, now)

    def create_in(self, s: Any, new: NewRun, now: datetime) -> Any:
        if new.pipeline_id == self.refused:
            s.execute(text("SELECT * FROM no_such_table"))
        return super().create_in(s, new, now)


def test_a_run_the_database_refuses_inside_a_launching_batch_is_isolated(services: Any) -> None:
    first, broken, last = (
        save_at(services, pipeline_yaml(f"batch-isolated-{i}", "0 * * * *", exp=0, mar=2), "2025-12-01T00:00Z")
        for i in range(3)
    )
    forget_launch_templates(services, broken)  # drafted (as a version saved before migration 0010): refusable
    report = run_pass(dataclasses.replace(services, runs=RefusingRuns(services.runs, broken)), ts("2026-01-01T01:00Z"))
    errors = {e["pipeline_id"]: e["error"] for e in report.errors if e["pipeline_id"] in (first, broken, last)}
    assert set(errors) == {broken} and "launch of 2026-01-01 00:00:00 failed" in errors[broken]
    for pid in (first, last):  # the batch failed as a whole; redone one by one, they launched
        assert by_status(services, pid, "launched") == ["2026-01-01T00:00Z", "2026-01-01T01:00Z"]
        assert len(cron_runs(services, pid)) == 2
    assert by_status(services, broken, "waiting") == ["2026-01-01T00:00Z", "2026-01-01T01:00Z"]
    assert cron_runs(services, broken) == [] and pipeline_row(services, broken).schedule_error == errors[broken]
