"""Retention rules (`myapp db clean`, the `retention_days` policy): what is old enough to delete.

Pure: the cutoff instant and the kinds of rows counted. What a schedule still needs (kept whatever
its age) is decided by myapp/db/retention_store.py, next to the snapshot query it mirrors.
"""

from __future__ import annotations

from datetime import datetime, timedelta

KINDS = ("runs", "task_instances", "attempts", "logs", "records", "skips", "outbox")


def cutoff(now: datetime, days: int) -> datetime:
    """Return the instant before which finished things are deleted; ValueError unless days >= 1."""
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now.isoformat()}")
    if days < 1:
        raise ValueError(f"--older-than must be at least 1 day, got {days}")
    return now - timedelta(days=days)
