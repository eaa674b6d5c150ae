"""the foreign key pipelines.current_version_id -> pipeline_versions.id where 0001 left it out

Revision ID: 0006_current_version_fk
Revises: 0005_web_security
Create Date: 2026-12-06 19:50:00

0001 declares the constraint with use_alter inside create_table: SQLite gets it inline, but on
PostgreSQL and MySQL/MariaDB create_table leaves a use_alter constraint to a later ALTER that never
came, so `alembic check` reported it missing there. SQLite already has it.
"""
from __future__ import annotations

from alembic import op

revision = '0006_current_version_fk'
down_revision = '0005_web_security'
branch_labels = None
depends_on = None


def _has_it() -> bool:
    import sqlalchemy as sa

    bind = op.get_bind()
    return bind.dialect.name == "sqlite" or any(
        fk.get("name") == "fk_pipelines_current_version" for fk in sa.inspect(bind).get_foreign_keys("pipelines"))


def upgrade() -> None:
    if not _has_it():
        op.create_foreign_key("fk_pipelines_current_version", "pipelines", "pipeline_versions",
                              ["current_version_id"], ["id"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_pipelines_current_version", "pipelines", type_="foreignkey")
