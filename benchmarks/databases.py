"""A throwaway database per benchmark run: created next to a PostgreSQL server's, dropped afterwards."""

from __future__ import annotations

import uuid
from pathlib import Path


def fresh_database(server: str, home: Path | None = None) -> str:
    """Create an empty PostgreSQL database beside `server`'s and return its URL.

    A non-PostgreSQL `server` is returned as is, or, with `home`, replaced by a SQLite file there.
    """
    if not server.startswith("postgresql"):
        return f"sqlite:///{home / 'myapp.db'}" if home is not None else server
    import psycopg

    name = f"myapp_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.rsplit("/", 1)[0] + "/" + name


def drop_database(server: str, url: str) -> None:
    """Drop a database made by `fresh_database` (nothing for SQLite or the server's own database)."""
    if url.startswith("postgresql") and url != server:
        import psycopg

        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
