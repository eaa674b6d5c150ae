"""The Kubernetes watcher's database side: the running attempts a worker group owns, bulk
heartbeats, and pod status / events kept for the run page. executor/kubernetes/pod_attempts.py
turns the rows into the watcher's TrackedAttempt (myapp.k8s.tracked.AttemptBook).

Ending attempts goes through AttemptStore.finish like every executor; this module adds only the
bulk reads and writes one watcher needs for thousands of attempts.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from myapp.core.states import ATTEMPT
from myapp.db.guards import unfinished
from myapp.db.session import Database
from myapp.db.tables import TaskAttempt, TaskInstance

_RUNNING = unfinished(TaskAttempt.state, ATTEMPT)

# id, run_id, task_name, try_number, started_at, deadline_at, container
AttemptRow = tuple[int, int, str, int, datetime, datetime | None, Any]

CHUNK = 500  # ids per IN (...) list: well under SQLite's variable limit


class WatcherAttempts:
    """Attempts owned by one worker group (TaskAttempt.worker == `worker`)."""

    def __init__(self, db: Database, worker: str) -> None:
        self.db = db
        self.worker = worker

    def running_ids(self) -> set[int]:
        """Return the ids of the group's running attempts."""
        with self.db.read() as s:
            return set(s.scalars(select(TaskAttempt.id).where(_RUNNING, TaskAttempt.worker == self.worker)).all())

    def newest_id(self) -> int:
        """Return the highest attempt id of the group (0 when none)."""
        with self.db.read() as s:
            return int(s.scalar(select(func.max(TaskAttempt.id)).where(TaskAttempt.worker == self.worker)) or 0)

    def ended_after(self, after_id: int) -> set[int]:
        """Return ids of the group's ended attempts above `after_id` (a primary-key range scan)."""
        with self.db.read() as s:
            return set(
                s.scalars(
                    select(TaskAttempt.id).where(
                        TaskAttempt.id > after_id, TaskAttempt.worker == self.worker, ~_RUNNING
                    )
                ).all()
            )

    def rows(self, ids: Collection[int]) -> list[AttemptRow]:
        """Return the attempts among `ids` (in any state): id, run_id, task_name, try_number, started_at,
        deadline_at, container."""
        out: list[AttemptRow] = []
        with self.db.read() as s:
            for chunk in _chunks(ids):
                out.extend(
                    tuple(row)
                    for row in s.execute(
                        select(
                            TaskAttempt.id,
                            TaskInstance.run_id,
                            TaskInstance.task_name,
                            TaskAttempt.try_number,
                            TaskAttempt.started_at,
                            TaskAttempt.deadline_at,
                            TaskAttempt.container,
                        )
                        .join(TaskInstance, TaskInstance.id == TaskAttempt.task_instance_id)
                        .where(TaskAttempt.id.in_(chunk))
                    ).all()
                )
        return out

    def heartbeat(self, ids: Collection[int], now: datetime) -> None:
        """Refresh the heartbeat of every running attempt in `ids` in one transaction."""
        if not ids:
            return
        with self.db.write() as s:
            for chunk in _chunks(ids):
                s.execute(
                    update(TaskAttempt)
                    .where(TaskAttempt.id.in_(chunk), _RUNNING)
                    .values(heartbeat_at=now)
                    .execution_options(synchronize_session=False)
                )

    def save_status(self, updates: Mapping[int, tuple[Mapping[str, Any], Sequence[Any]]]) -> None:
        """Store pod status (TaskAttempt.container) and events of several attempts."""
        with self.db.write() as s:
            for attempt_id, (container, events) in updates.items():
                s.execute(
                    update(TaskAttempt)
                    .where(TaskAttempt.id == attempt_id)
                    .values(container=dict(container), events=list(events))
                    .execution_options(synchronize_session=False)
                )


def _chunks(ids: Collection[int]) -> Iterator[list[int]]:
    items = sorted(ids)
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]
