"""task instances: count of direct upstream tasks not succeeded yet (fan-in in O(downstream))

Revision ID: 0004_upstream_waiting
Revises: 0003_runs_list
Create Date: 2026-12-06 16:00:00

Rows of runs created before this revision get NULL ("not known"): the engine counts those from
the upstream tasks' states the first time it needs them (myapp/db/run_store.py), so runs in
flight during the upgrade go on unchanged.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004_upstream_waiting'
down_revision = '0003_runs_list'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('task_instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('upstream_waiting', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('task_instances', schema=None) as batch_op:
        batch_op.drop_column('upstream_waiting')
