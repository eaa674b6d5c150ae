"""Retention rules (`myapp db clean`, the `retention_days` policy): what is old enough to delete.

Pure: the cutoff instant, the kinds of rows counted, and when an attempt's leftover private /tmp
may go (myapp/executor/private_tmp.py). What a schedule still needs (kept whatever
its age) is decided by myapp/db/retention_store.py, next to the snapshot query it mirrors.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from myapp.core.states import AttemptState

# workdirs: deleted runs' working directories (WORKFLOW_SPACE/RUN) on this machine
KINDS = ("runs", "task_instances", "attempts", "logs", "workdirs", "records", "skips", "outbox")


def cutoff(now: datetime, days: int) -> datetime:
    """Return the instant before which finished things are deleted; ValueError unless days >= 1."""
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now.isoformat()}")
    if days < 1:
        raise ValueError(f"--older-than must be at least 1 day, got {days}")
    return now - timedelta(days=days)


# A stopped or lost attempt ends in the database before its process does: its worker kills the
# process group at its next heartbeat (heartbeat_interval, 2 s by default), SIGTERM, kill_grace
# (5 s), SIGKILL. Its private /tmp is left alone this long after the attempt's end.
PRIVATE_TMP_GRACE = timedelta(minutes=10)


def private_tmp_sweepable(attempt: tuple[str, datetime | None] | None, now: datetime) -> bool:
    """Whether an attempt's private /tmp may be removed: its attempt is unknown (never was, or its
    run was deleted) or ended more than PRIVATE_TMP_GRACE before `now`; never while it runs."""
    if attempt is None:
        return True
    state, ended_at = attempt
    if state == AttemptState.RUNNING.value or ended_at is None:
        return False
    return ended_at <= now - PRIVATE_TMP_GRACE
