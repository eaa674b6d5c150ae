"""runs: drop ix_runs_state, a prefix of ix_runs_list_state (state, id)

Revision ID: 0013_drop_ix_runs_state
Revises: 0012_shared_counts
Create Date: 2026-12-07 16:30:00

Every query that filtered runs by state alone (the reconciler's queued and running runs, the
creating-run sweep, retention's terminal runs, the runs list by state) is served as well by
ix_runs_list_state (state, id), whose first column is the same: ix_runs_state was an eighth index
kept up to date by every run created and by every change of a run's state, for nothing (issue 14
item 4: the scheduler's INSERT INTO runs of 10,000 runs spends most of its time in index and
foreign-key maintenance). A plain DROP INDEX on every backend (no table rebuild on SQLite).
"""

from __future__ import annotations

from alembic import op

revision = "0013_drop_ix_runs_state"
down_revision = "0012_shared_counts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_runs_state", table_name="runs")


def downgrade() -> None:
    op.create_index("ix_runs_state", "runs", ["state"], unique=False)
