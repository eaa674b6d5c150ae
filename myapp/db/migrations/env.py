"""Alembic environment: our tables and Flask-AppBuilder's in one metadata, one history."""

from __future__ import annotations

from alembic import context
from sqlalchemy import pool

from myapp.db.session import make_engine
from myapp.db.tables import metadata

config = context.config


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
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
