"""Alembic environment: our tables and Flask-AppBuilder's in one metadata, one history.

myapp's tables (myapp/db/base.py) and Flask-AppBuilder's live in two metadatas so that db/ loads
without Flask; the schema is both, merged here (FAB's full ab_user replaces the reference in db/).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData, pool

import myapp.db.auth_tables
import myapp.db.schedule_tables
import myapp.db.tables
from myapp.db.base import metadata as myapp_metadata
from myapp.db.session import make_engine

config = context.config


def full_metadata() -> MetaData:
    """Return the whole schema: Flask-AppBuilder's tables, then myapp's (without its ab_user reference)."""
    from flask_appbuilder.models.sqla import Model
    from flask_appbuilder.security.sqla import models as _fab_models  # noqa: F401  registers the ab_* tables

    assert myapp.db.tables and myapp.db.schedule_tables and myapp.db.auth_tables  # every table module loaded
    merged = MetaData()
    for table in Model.metadata.sorted_tables:
        table.to_metadata(merged)
    for name, table in myapp_metadata.tables.items():
        if name not in merged.tables:
            table.to_metadata(merged)
    return merged


def run_migrations_online() -> None:
    """Run migrations on the URL (or connection) handed over by myapp.db.migrate."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)


def _run(connection: object) -> None:
    context.configure(connection=connection, target_metadata=full_metadata(), render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
