"""Which attempts a run has, by task and try, oldest first (what `myapp run logs` shows). Holds no business rule."""

from __future__ import annotations

from sqlalchemy import select

from myapp.core.errors import NotFound
from myapp.core.states import RUN_TERMINAL, RunState
from myapp.db.session import Database
from myapp.db.tables import Run, TaskAttempt, TaskInstance


def attempts_of(
    db: Database, run_id: int, task: str | None = None, try_number: int | None = None
) -> tuple[list[tuple[str, int]], bool]:
    """Return the run's (task name, try number) pairs, oldest first, and whether the run is still active.

    NotFound when the run, or `task` in it, does not exist.
    """
    with db.read() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise NotFound(f"run {run_id} not found")
        q = (
            select(TaskInstance.task_name, TaskAttempt.try_number)
            .join(TaskAttempt, TaskAttempt.task_instance_id == TaskInstance.id)
            .where(TaskInstance.run_id == run_id)
            .order_by(TaskAttempt.started_at, TaskAttempt.id)
        )
        if task:
            if (
                s.scalar(select(TaskInstance.id).where(TaskInstance.run_id == run_id, TaskInstance.task_name == task))
                is None
            ):
                raise NotFound(f"task {task!r} not found in run {run_id}")
            q = q.where(TaskInstance.task_name == task)
        if try_number:
            q = q.where(TaskAttempt.try_number == try_number)
        pairs = [(str(name), int(n)) for name, n in s.execute(q).all()]
        return pairs, RunState(run.state) not in RUN_TERMINAL
