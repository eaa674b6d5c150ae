"""launch_templates: what a cron run of each version starts with, so the scheduler creates runs by
INSERT ... SELECT instead of parsing versions and building rows in Python (issue 14 item 4)

Revision ID: 0010_launch_templates
Revises: 0009_ti_fillfactor
Create Date: 2026-12-07 13:00:00

Empty at first: versions saved before this migration get their template from the first scheduler
pass that launches them (myapp/db/launch_templates.py); until then they go the drafting path.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010_launch_templates'
down_revision = '0009_ti_fillfactor'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('launch_templates',
    sa.Column('version_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('task_name', sa.String(length=63), nullable=False),
    sa.Column('max_tries', sa.Integer(), nullable=False),
    sa.Column('upstream_waiting', sa.Integer(), nullable=False),
    sa.Column('queued', sa.Boolean(), nullable=False),
    sa.Column('run_timeout', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['pipeline_versions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('version_id', 'position')
    )


def downgrade() -> None:
    op.drop_table('launch_templates')
