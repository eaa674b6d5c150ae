"""How many cron runs a schedule's catch-up would start: the backfill guard (README "Backfill").

Enabling a schedule, or saving one whose `start_time` lies in the past, makes the next passes
create a record for every fire time since `start_time` (R1, R3) and run them (R5), bounded only
by `expired_limit` (R4; 0 keeps them all). Above a threshold (the setting `backfill_confirm`)
the CLI asks for `--yes` and the pages for a confirmation, saying how many runs and which span.
Pure: the adapter passes the schedule as it would be after the change, and its records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from myapp.core.cron import count_fire_times, fire_times, newest_fire_times
from myapp.core.schedule import Record, Schedule
from myapp.core.states import RecordStatus

_JUST_BEFORE = timedelta(microseconds=1)  # start_time is inclusive (R1)


@dataclass(frozen=True)
class Backfill:
    """The catch-up of a schedule at `now`: runs it would start, of how many fire times, from/to when."""

    runs: int
    fire_times: int
    first: datetime | None = None  # the oldest fire time that would run
    last: datetime | None = None  # the newest

    def needs_confirmation(self, threshold: int) -> bool:
        """Return whether the catch-up is larger than `threshold` runs."""
        return self.runs > threshold

    def describe(self) -> str:
        """Say it in words (no time zone: the caller adds it)."""
        if not self.runs:
            return "no backfill: nothing before now would run"
        span = (
            f" from {self.first:%Y-%m-%d %H:%M} to {self.last:%Y-%m-%d %H:%M} UTC" if self.first and self.last else ""
        )
        kept = (
            ""
            if self.runs == self.fire_times
            else f" (of {self.fire_times} fire times; expired_limit keeps the newest)"
        )
        return f"the schedule would start {self.runs} backfill run{'s' * (self.runs != 1)}{span}{kept}"


def catch_up(schedule: Schedule, records: Sequence[Record], now: datetime) -> Backfill:
    """Return the runs the passes from `now` on would start for fire times up to `now`."""
    epoch = sorted((r for r in records if r.instant >= schedule.start_time), key=lambda r: r.instant)
    after = epoch[-1].instant if epoch else schedule.start_time - _JUST_BEFORE
    pending = count_fire_times(schedule.cron, schedule.timezone, after, now) if now > after else 0
    waiting = [r.instant for r in epoch if r.status == RecordStatus.WAITING]
    total = pending + len(waiting)
    keep = schedule.expired_limit
    runs = min(total, keep) if keep > 0 else total
    if not runs:
        return Backfill(0, total)
    newest = newest_fire_times(schedule.cron, schedule.timezone, after, now, 1) if pending else []
    last = newest[-1] if newest else waiting[-1]
    if keep > 0 and total > keep:  # the newest `keep` run: the oldest of them is the first
        tail = newest_fire_times(schedule.cron, schedule.timezone, after, now, min(keep, pending)) if pending else []
        first = (waiting[-(keep - len(tail)) :] + tail)[0] if keep > len(tail) else tail[0]
    else:
        first = waiting[0] if waiting else fire_times(schedule.cron, schedule.timezone, after, now, limit=1)[0]
    return Backfill(runs, total, first, last)
