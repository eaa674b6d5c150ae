"""The backfill guard's adapter: the schedule a save or an enable would leave, and its catch-up.

`myapp pipeline import|create|enable` and the REST API (`POST /pipelines/`, the list's toggle)
call `check_save` / `check_enable` before they write; above `settings.backfill_confirm` runs
they refuse with `BackfillUnconfirmed` (exit 1 naming `--yes`; HTTP 409 with the numbers) unless
confirmed. The rule that decides is `myapp/core/backfill.py`; the epoch rules it mirrors are
R7/R8 as `apply_schedule` applies them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from myapp.core.backfill import Backfill, catch_up
from myapp.core.cron import wall_time_to_instant
from myapp.core.errors import Conflict
from myapp.core.model import PipelineSpec
from myapp.core.pipeline_spec import stored_schedule
from myapp.core.schedule import Schedule
from myapp.db.pipeline_store import pipeline_and_spec
from myapp.db.schedule_store import load_snapshots, schedule_of
from myapp.db.tables import Pipeline


class BackfillUnconfirmed(Conflict):
    """A change would start more backfill runs than the threshold, and nobody confirmed it."""

    def __init__(self, backfill: Backfill, threshold: int, how: str) -> None:
        super().__init__(f"{backfill.describe()}, more than backfill_confirm ({threshold}); {how}")
        self.details = {
            "backfill": {
                "runs": backfill.runs,
                "fire_times": backfill.fire_times,
                "first": backfill.first.isoformat() if backfill.first else None,
                "last": backfill.last.isoformat() if backfill.last else None,
                "threshold": threshold,
            }
        }


def _start(wall: datetime, tz: str) -> datetime:
    return wall.astimezone(UTC) if wall.tzinfo is not None else wall_time_to_instant(wall, tz)


def save_backfill(services: Any, spec: PipelineSpec, now: datetime) -> Backfill:
    """Return the catch-up that saving `spec` would start (none if it leaves a running catch-up as is)."""
    sch = spec.schedule
    if sch.type != "crontab" or not sch.enabled or sch.cron is None:
        return Backfill(0, 0)
    with services.db.read() as s:
        pipeline, stored = pipeline_and_spec(s, spec.project, spec.name)
        previous = stored_schedule(stored) if stored else None
        explicit = _start(sch.start_time, sch.timezone) if sch.start_time else None
        changed = pipeline is None or (pipeline.schedule_type, pipeline.cron, pipeline.timezone) != (
            sch.type,
            sch.cron,
            sch.timezone,
        )
        sets_start = explicit is not None and (previous is None or previous.start_time != sch.start_time)
        if pipeline is not None and pipeline.schedule_enabled and not changed and not sets_start:
            return Backfill(0, 0)  # the catch-up already runs; this save does not start one
        start: datetime = (
            explicit
            if sets_start and explicit is not None
            else now
            if changed or pipeline is None
            else pipeline.start_time or now
        )
        same_epoch = pipeline is not None and start == pipeline.start_time
        records = (
            list(load_snapshots(s, [pipeline.id])[pipeline.id].records.values()) if same_epoch and pipeline else []
        )
    schedule = Schedule(
        pipeline_id=pipeline.id if pipeline else 0,
        cron=sch.cron,
        timezone=sch.timezone,
        start_time=start,
        depends_on_past=sch.depends_on_past,
        expired_limit=sch.expired_limit,
        max_active_runs=sch.max_active_runs,
        enabled=True,
    )
    return catch_up(schedule, records, now)


def enable_backfill(services: Any, pipeline_id: int, now: datetime) -> Backfill:
    """Return the catch-up that enabling the pipeline's schedule would start (D5: start_time kept)."""
    with services.db.read() as s:
        pipeline = s.get(Pipeline, pipeline_id)
        if pipeline is None or pipeline.schedule_type != "crontab" or pipeline.schedule_enabled:
            return Backfill(0, 0)
        try:
            schedule = replace(schedule_of(pipeline), enabled=True)
        except ValueError:
            return Backfill(0, 0)
        records = list(load_snapshots(s, [pipeline_id])[pipeline_id].records.values())
    return catch_up(schedule, records, now)


def guard(backfill: Backfill, threshold: int, confirmed: bool, how: str) -> None:
    """Raise BackfillUnconfirmed when the catch-up is above `threshold` and not confirmed."""
    if backfill.needs_confirmation(threshold) and not confirmed:
        raise BackfillUnconfirmed(backfill, threshold, how)


def set_enabled(
    services: Any, pipeline_id: int, enabled: bool, now: datetime, *, user_id: int | None, confirmed: bool, how: str
) -> tuple[int, bool, Backfill]:
    """Enable or disable a pipeline's schedule as a new version; return (version, changed, backfill)."""
    spec, _ = services.pipelines.spec(pipeline_id)
    if spec.schedule.type != "crontab":
        raise Conflict(f"pipeline {spec.name!r} has no cron schedule to {'enable' if enabled else 'disable'}")
    backfill = enable_backfill(services, pipeline_id, now) if enabled else Backfill(0, 0)
    guard(backfill, services.settings.backfill_confirm, confirmed, how)
    changed = replace(spec, schedule=replace(spec.schedule, enabled=enabled))
    res = services.pipelines.save(
        changed, now, user_id=user_id, message=f"schedule {'enabled' if enabled else 'disabled'}"
    )
    return res.version, res.created_version, backfill
