"""Counts of waiting upstream tasks are shared by tasks with the same upstream tasks: forget the counts
that in-flight runs may hold stale in rows that now keep a shared count

Revision ID: 0012_shared_counts
Revises: 0011_sqlite_autoincrement
Create Date: 2026-12-07 16:30:00

From this revision on, tasks with the same set of upstream tasks share one `upstream_waiting`, kept
in the row of the first of them whatever its own state (core.dag.Dag.counted_by; issue 14 item 2).
Before it, each row kept its own count, and an operator retry counted again the pending rows only:
in a run retried before this upgrade and still unfinished, a row that kept its end (succeeded or
skipped) may hold a count lower than its upstream tasks' states say, and that row may now keep the
count a pending task shares. Its count is set to NULL ("not known"), which the engine counts again
from the states the first time it is needed (as for rows from before migration 0004). Only rows
that are not pending, of runs not finished: a pending row's count was kept true, a finished run's
counts are counted again by its retry, and no other row's count is ever read.

Downgrade: the previous revision's engine keeps a count in every row, and rows that shared a count
here were never written (only the first row of each upstream set was): every count of a run not
finished is set to NULL, which that engine too counts again from the states when it needs one.
"""
from __future__ import annotations

from alembic import op

revision = '0012_shared_counts'
down_revision = '0011_sqlite_autoincrement'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE task_instances SET upstream_waiting = NULL"
        " WHERE state <> 'pending' AND upstream_waiting IS NOT NULL"
        " AND run_id IN (SELECT id FROM runs WHERE state IN ('creating', 'queued', 'running'))"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE task_instances SET upstream_waiting = NULL"
        " WHERE upstream_waiting IS NOT NULL"
        " AND run_id IN (SELECT id FROM runs WHERE state IN ('creating', 'queued', 'running'))"
    )
