"""scheduler: the alert outbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 00:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import myapp.db.types

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'alert_outbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('pipeline_id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('event', sa.String(length=16), nullable=False),
        sa.Column('url', sa.String(length=2048), nullable=False),
        sa.Column('payload', sa.JSON().with_variant(sa.JSON(), 'postgresql'), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', myapp.db.types.UTCDateTime(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=False),
        sa.Column('created_at', myapp.db.types.UTCDateTime(), nullable=False),
        sa.Column('sent_at', myapp.db.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['pipeline_id'], ['pipelines.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('alert_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_alert_outbox_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_alert_outbox_run_id'), ['run_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('alert_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_outbox_run_id'))
        batch_op.drop_index('ix_alert_outbox_due')
    op.drop_table('alert_outbox')
