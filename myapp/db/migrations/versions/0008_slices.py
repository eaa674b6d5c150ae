"""task instances: slices (docs/rules.md R15) -- which task a slice belongs to, its index and item,
and a sliced task's count of slices not ended yet

Revision ID: 0008_slices
Revises: 0007_mysql_microseconds
Create Date: 2026-12-07 02:00:00

All NULL for existing rows: they are neither slices nor sliced tasks. The index finds a sliced
task's next pending slice (parallelism) and gathers its slices in order without reading the run.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008_slices'
down_revision = '0007_mysql_microseconds'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('task_instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('slice_of', sa.String(length=63), nullable=True))
        batch_op.add_column(sa.Column('slice_index', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('slice_item', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('slices_left', sa.Integer(), nullable=True))
        batch_op.create_index('ix_ti_slices', ['run_id', 'slice_of', 'state', 'slice_index'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('task_instances', schema=None) as batch_op:
        batch_op.drop_index('ix_ti_slices')
        batch_op.drop_column('slices_left')
        batch_op.drop_column('slice_item')
        batch_op.drop_column('slice_index')
        batch_op.drop_column('slice_of')
