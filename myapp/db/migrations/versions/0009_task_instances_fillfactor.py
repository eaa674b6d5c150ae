"""PostgreSQL: task_instances keeps free room on each page (fillfactor 70) so counter updates are HOT

Revision ID: 0009_ti_fillfactor
Revises: 0008_slices
Create Date: 2026-12-07 09:50:00

A finish in a layered pipeline takes one off `upstream_waiting` of every downstream task instance
(100 rows per finish in a 10 x 100 layer shape). That column is in no index, so PostgreSQL can
write the new row version as a heap-only tuple (HOT: no new entry in any of the table's five
indexes) when the row's page has room for it; with the default fillfactor (100) a page of freshly
created task instances has none, and each decrement was a full update touching every index.
ALTER TABLE ... SET (fillfactor) applies to pages written from now on (existing rows keep their
pages until they are rewritten). Other backends: nothing to do.
"""
from __future__ import annotations

from alembic import op

revision = '0009_ti_fillfactor'
down_revision = '0008_slices'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE task_instances SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE task_instances RESET (fillfactor)")
