"""The runs that started or ended since the last look (standalone's quiet console, cli/process.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from myapp.db.tables import Pipeline, Run

_COLUMNS = (Run.id, Pipeline.name, Run.trigger, Run.state, Run.message, Run.started_at, Run.ended_at, Run.debug_task)


def newest_run_id(s: Session) -> int:
    """Return the highest run id (0 when there is no run)."""
    return int(s.scalar(select(func.max(Run.id))) or 0)


def runs_since(s: Session, seen: int, active: Iterable[int], limit: int = 200) -> Sequence[Any]:
    """Return the runs after id `seen` and those in `active` (id, name, trigger, state, message, times, debug_task)."""
    rows: Sequence[Any] = s.execute(
        select(*_COLUMNS)
        .join(Pipeline, Pipeline.id == Run.pipeline_id)
        .where(or_(Run.id > seen, Run.id.in_(list(active))))
        .order_by(Run.id)
        .limit(limit)
    ).all()
    return rows
