"""web security: revoked logins; the publication scope of templates

Revision ID: 0005_web_security
Revises: 0004_upstream_waiting
Create Date: 2026-12-06 18:00:00

Templates published before this revision were visible to every project: they keep scope `all`.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import myapp.db.types

revision = '0005_web_security'
down_revision = '0004_upstream_waiting'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'revoked_logins',
        sa.Column('lid', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('revoked_at', myapp.db.types.UTCDateTime(), nullable=False),
        sa.Column('expires_at', myapp.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('lid'),
    )
    with op.batch_alter_table('revoked_logins', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_revoked_logins_expires_at'), ['expires_at'], unique=False)
    with op.batch_alter_table('task_templates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('publish_scope', sa.String(length=16), nullable=True))
    op.execute("UPDATE task_templates SET publish_scope = 'all' WHERE status = 'published'")


def downgrade() -> None:
    with op.batch_alter_table('task_templates', schema=None) as batch_op:
        batch_op.drop_column('publish_scope')
    with op.batch_alter_table('revoked_logins', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_revoked_logins_expires_at'))
    op.drop_table('revoked_logins')
