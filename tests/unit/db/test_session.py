"""myapp/db/session.py: which errors a transaction is repeated for, and how long; session names."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from myapp.db.session import Database, application_name, is_transient


class AdminShutdown(Exception):
    """Stands in for psycopg's error class (only its module is looked at)."""


AdminShutdown.__module__ = "psycopg.errors"


class SqliteLocked(Exception):
    pass


SqliteLocked.__module__ = "sqlite3"


def dropped() -> OperationalError:
    return OperationalError("SELECT 1", {}, AdminShutdown("terminating connection due to administrator command"))


def test_transient_errors() -> None:
    assert is_transient(dropped())
    assert not is_transient(OperationalError("SELECT 1", {}, SqliteLocked("database is locked")))
    assert not is_transient(IntegrityError("INSERT", {}, AdminShutdown("duplicate key")))
    assert not is_transient(ValueError("no"))


def test_retry_repeats_the_work_until_it_succeeds() -> None:
    calls, sleeps = [], []

    def work() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise dropped()
        return "done"

    db = Database.__new__(Database)  # no engine needed
    assert db.retry_on_disconnect(work, sleep=sleeps.append) == "done"
    assert len(calls) == 4 and sleeps == [0.1, 0.2, 0.4]


def test_retry_gives_up_after_its_budget_and_never_retries_other_errors() -> None:
    db: Any = Database.__new__(Database)

    def down() -> None:
        raise dropped()

    with pytest.raises(OperationalError):
        db.retry_on_disconnect(down, within=0.0, sleep=lambda _: None)
    calls = []

    def conflict() -> None:
        calls.append(1)
        raise IntegrityError("INSERT", {}, AdminShutdown("duplicate key"))

    with pytest.raises(IntegrityError):
        db.retry_on_disconnect(conflict, sleep=lambda _: None)
    assert calls == [1]


def test_application_name_names_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGAPPNAME", raising=False)
    assert application_name(["/usr/local/bin/myapp", "worker", "--beat"]) == "myapp-worker"
    assert application_name(["/src/myapp/__main__.py", "schedule", "tick"]) == "myapp-schedule"
    assert application_name(["/x/gunicorn/__main__.py", "-w", "2"]) == "myapp"
    monkeypatch.setenv("PGAPPNAME", "custom")
    assert application_name(["/usr/local/bin/myapp", "worker"]) == "custom"


def test_after_commit_hooks_run_after_a_commit_only_and_never_undo_it(tmp_path: Any) -> None:
    from sqlalchemy import text

    db = Database.from_url(f"sqlite:///{tmp_path / 'hooks.db'}")
    with db.write() as s:
        s.execute(text("CREATE TABLE t (x INTEGER)"))
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("broker down")

    with db.write() as s:  # a hook that raises is logged; the commit stands, the next hook still runs
        s.execute(text("INSERT INTO t VALUES (1)"))
        s.info.setdefault("after_commit", []).extend([broken, lambda: ran.append("committed")])
    with pytest.raises(ValueError), db.write() as s:
        s.execute(text("INSERT INTO t VALUES (2)"))
        s.info.setdefault("after_commit", []).append(lambda: ran.append("rolled back"))
        raise ValueError("abort")
    with db.read() as s:
        assert list(s.scalars(text("SELECT x FROM t"))) == [1]
    assert ran == ["committed"]
    db.dispose()


class FakePgConnection:
    """A DBAPI connection over one end of a socket pair; the test plays the server on the other."""

    def __init__(self, sock: Any, fails: bool = False) -> None:
        self.sock, self.fails, self.statements = sock, fails, []

    def fileno(self) -> int:
        return int(self.sock.fileno())

    def execute(self, sql: str) -> None:
        self.statements.append(sql)
        if self.fails:
            raise OSError("server closed the connection unexpectedly")

    def rollback(self) -> None:
        self.statements.append("ROLLBACK")


def test_a_pooled_connection_is_pinged_only_when_the_server_spoke_while_it_was_idle() -> None:
    import socket

    from sqlalchemy.exc import DisconnectionError

    from myapp.db.session import _ping_if_spoken_to

    client, server = socket.socketpair()
    try:
        quiet = FakePgConnection(client)
        _ping_if_spoken_to(quiet, None, None)
        assert quiet.statements == [], "a connection with nothing to read needs no round trip"
        server.sendall(b"E")  # e.g. FATAL: terminating connection due to administrator command
        alive = FakePgConnection(client)
        _ping_if_spoken_to(alive, None, None)
        assert alive.statements == ["SELECT 1", "ROLLBACK"]
        server.close()  # and then the socket's end
        with pytest.raises(DisconnectionError):
            _ping_if_spoken_to(FakePgConnection(client, fails=True), None, None)
    finally:
        client.close()
        server.close()


@pytest.mark.skipif(not os.environ.get("MYAPP_TEST_DATABASE_URL"), reason="needs PostgreSQL")
def test_a_terminated_postgresql_backend_is_replaced_when_taken_from_the_pool() -> None:
    from sqlalchemy import text

    from myapp.db.session import make_engine

    url = os.environ["MYAPP_TEST_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        _terminate_backend(url, first)
        with engine.connect() as conn:  # no error: the dead connection is swapped for a new one
            second = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        assert second != first
        with engine.connect() as conn:  # and the live one is reused
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == second
    finally:
        engine.dispose()


@pytest.mark.skipif(not os.environ.get("MYAPP_TEST_DATABASE_URL"), reason="needs PostgreSQL")
def test_a_prebuilt_statement_runs_alone_and_leaves_the_pooled_connection_as_it_found_it() -> None:
    # Database.run_prebuilt (the claim and fast finish): its rows are named and processed as a
    # Connection's; an error comes up as SQLAlchemy's, and a lost connection as one to repeat.
    from sqlalchemy import JSON, Integer, bindparam, cast, literal, select, text
    from sqlalchemy.exc import DBAPIError

    from myapp.db.prebuilt import Prebuilt
    from myapp.db.session import make_engine

    url = os.environ["MYAPP_TEST_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    db = Database(make_engine(url))  # used one statement at a time: the pool holds one connection
    statement = Prebuilt(
        select(
            (bindparam("n", type_=Integer()) + 1).label("next"),
            bindparam("doc", type_=JSON()).label("doc"),
            literal("x").in_(["x", "y"]).label("known"),
            literal(0).label("zero"),
        )
    )
    try:
        rows = db.run_prebuilt(statement, {"n": 41, "doc": {"a": [1]}})
        assert [(row.next, row.doc, row.known, row.zero) for row in rows] == [(42, {"a": [1]}, True, 0)]
        with db.engine.connect() as conn:  # the one pooled connection: in a transaction again, not autocommit
            assert conn.connection.driver_connection.autocommit is False
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        failing = Prebuilt(select(cast(bindparam("n", type_=Integer()), Integer) / 0))
        with pytest.raises(DBAPIError) as raised:
            db.run_prebuilt(failing, {"n": 1})
        assert not is_transient(raised.value)
        with db.engine.connect() as conn:  # a statement that failed does not cost the connection
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == first
            assert conn.connection.driver_connection.autocommit is False
        _terminate_backend(url, first)
        # The pool's check on checkout replaces the dead connection: the statement runs.
        assert db.run_prebuilt(statement, {"n": 1, "doc": None})[0].next == 2
    finally:
        db.dispose()


def _terminate_backend(url: str, pid: Any) -> None:
    """Terminate PostgreSQL backend `pid` and wait until it is gone (a deadline, not a count of polls:
    a slow machine takes longer, and a backend that never goes fails here, not later)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 30
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, f"backend {pid} still there 30 s after pg_terminate_backend"
            time.sleep(0.02)
