"""SQLite: runs, task_instances and task_attempts never give a deleted row's id to a new row (AUTOINCREMENT)

Revision ID: 0011_sqlite_autoincrement
Revises: 0010_launch_templates
Create Date: 2026-12-07 13:10:00

Without AUTOINCREMENT, SQLite gives a new row max(id) + 1: once the newest run was deleted (`myapp
db clean`), the next run got its id back, and with it the old run's working directory in the
workflow space (WORKFLOW_SPACE/RUN/...), its archived logs, artifacts and live-log keys. The same
holds for a task instance (its id is the Celery message) and an attempt (its id names its pods).
With AUTOINCREMENT, SQLite keeps the largest id ever given in sqlite_sequence. SQLite cannot add it
to a table: each of the three is rebuilt (batch mode, recreate="always": a copy of every row, then
the indexes, unique constraints and foreign keys as reflected). The sequence starts at the largest
id present: an id deleted before this migration can still be given once more.

The rebuild drops the old tables, which with foreign keys enforced would delete the rows that
refer to them (ON DELETE CASCADE): it runs with enforcement off (a pragma that only changes between
transactions, so what the upgrade did before this migration is committed first), and PRAGMA
foreign_key_check must find after it exactly what it found before.

PostgreSQL (sequences) and MariaDB >= 10.2.4 (AUTO_INCREMENT persisted by InnoDB; MySQL from 8.0)
never give an id back: nothing to do there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import op

revision = "0011_sqlite_autoincrement"
down_revision = "0010_launch_templates"
branch_labels = None
depends_on = None

TABLES = ("task_attempts", "task_instances", "runs")


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)


def _rebuild(*, autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with _foreign_keys_off():
        for table in TABLES:
            with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
                pass


@contextmanager
def _foreign_keys_off() -> Iterator[None]:
    bind = op.get_bind()
    raw = bind.connection.dbapi_connection
    assert raw is not None
    if not bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        yield
        return
    was_open = raw.in_transaction
    if was_open:
        raw.execute("COMMIT")
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        raw.execute("BEGIN IMMEDIATE")
        before = sorted(map(tuple, raw.execute("PRAGMA foreign_key_check").fetchall()))
        yield
        after = sorted(map(tuple, raw.execute("PRAGMA foreign_key_check").fetchall()))
        if after != before:
            raise RuntimeError(f"rebuilding {', '.join(TABLES)} broke foreign keys: {after[:10]}")
        raw.execute("COMMIT")
    except BaseException:
        if raw.in_transaction:
            raw.execute("ROLLBACK")
        raise
    finally:
        raw.execute("PRAGMA foreign_keys=ON")
        if was_open:
            raw.execute("BEGIN")
