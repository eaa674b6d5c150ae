"""runs list: indexes for the newest-first list filtered by pipeline, state or project

Revision ID: 0003_runs_list
Revises: 0002
Create Date: 2026-11-24 12:00:00
"""
from __future__ import annotations

from alembic import op

revision = '0003_runs_list'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index('ix_runs_list_pipeline', ['pipeline_id', 'id'], unique=False)
        batch_op.create_index('ix_runs_list_state', ['state', 'id'], unique=False)
        batch_op.create_index('ix_runs_list_project', ['project_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index('ix_runs_list_project')
        batch_op.drop_index('ix_runs_list_state')
        batch_op.drop_index('ix_runs_list_pipeline')
