"""MySQL/MariaDB: every UTC datetime column of myapp's tables keeps microseconds (DATETIME(6))

Revision ID: 0007_mysql_microseconds
Revises: 0006_current_version_fk
Create Date: 2026-12-06 19:40:00

MySQL's DATETIME rounds to whole seconds, so an instant written and compared again (the attempt a
worker claimed at `now`, an attempt's deadline, when a task was queued) did not match on MySQL and
MariaDB; the claim/finish contract suite (tests/integration/test_attempt_store.py) showed it.
myapp/db/types.py's UTCDateTime asks for DATETIME(6) there now. Other backends: nothing to do.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0007_mysql_microseconds'
down_revision = '0006_current_version_fk'
branch_labels = None
depends_on = None

# The UTCDateTime columns as of this revision (Flask-AppBuilder's ab_* tables are not ours).
COLUMNS = {
    "projects": ["created_at"],
    "task_templates": ["created_at", "updated_at"],
    "template_reviews": ["at"],
    "pipelines": None, "pipeline_versions": None, "runs": None, "task_instances": None, "task_attempts": None,
    "schedule_records": None, "schedule_skips": None, "alert_outbox": None, "revoked_logins": None,
}


def _datetime_columns(table: str) -> list[dict[str, object]]:
    return [c for c in sa.inspect(op.get_bind()).get_columns(table) if isinstance(c["type"], sa.DateTime)]


def _retype(fsp: int | None) -> None:
    if op.get_bind().dialect.name not in ("mysql", "mariadb"):
        return
    for table, names in COLUMNS.items():
        for column in _datetime_columns(table):
            if names is None or column["name"] in names:
                op.alter_column(table, str(column["name"]), type_=mysql.DATETIME(fsp=fsp),
                                existing_nullable=bool(column["nullable"]))


def upgrade() -> None:
    _retype(6)


def downgrade() -> None:
    _retype(None)
