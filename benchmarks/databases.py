"""A throwaway database per benchmark run: created next to a PostgreSQL server's, dropped afterwards."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterable
from pathlib import Path


def fresh_database(server: str, home: Path | None = None) -> str:
    """Create an empty PostgreSQL database beside `server`'s and return its URL.

    A non-PostgreSQL `server` is returned as is, or, with `home`, replaced by a SQLite file there.
    """
    if not server.startswith("postgresql"):
        return f"sqlite:///{home / 'myapp.db'}" if home is not None else server
    import psycopg

    name = f"myapp_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'myapp\\_bench\\_%'").fetchall()
        for left in orphaned(row[0] for row in rows):  # a killed benchmark's
            conn.execute(f'DROP DATABASE IF EXISTS "{left}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.rsplit("/", 1)[0] + "/" + name


def orphaned(names: Iterable[str]) -> list[str]:
    """The names among `names` made by `fresh_database` in a process that no longer runs (a benchmark
    killed before its `drop_database`); a database of a benchmark still running is never one."""
    found = []
    for name in names:
        match = re.fullmatch(r"myapp_bench_([0-9]+)_[0-9a-f]{8}", name)
        if match and not _alive(int(match[1])):
            found.append(name)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def drop_database(server: str, url: str) -> None:
    """Drop a database made by `fresh_database` (nothing for SQLite or the server's own database)."""
    if url.startswith("postgresql") and url != server:
        import psycopg

        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
