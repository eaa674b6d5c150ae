"""Engine and transaction setup for SQLite, PostgreSQL and MySQL.

SQLite gets WAL, a busy timeout, foreign keys, and `BEGIN IMMEDIATE` for write transactions
(a single-writer lock, our substitute for row locks there); server databases use row locks
(`SELECT ... FOR UPDATE [SKIP LOCKED]`) taken by the stores.

Connections are checked before use, so one dropped while idle in the pool is replaced unnoticed
(on PostgreSQL without a round trip, `_ping_if_spoken_to`; elsewhere `pool_pre_ping`); a
transaction whose connection drops midway is repeated whole by `Database.retry_on_disconnect`.
PostgreSQL sessions are named after the command (`myapp-worker`) so `pg_stat_activity` tells the
processes apart.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import select
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session as Session  # re-exported: the transaction handle db.read()/write() yield
from sqlalchemy.orm import sessionmaker

from myapp.db.prebuilt import Prebuilt

log = logging.getLogger(__name__)
T = TypeVar("T")


# What callers outside db/ catch when the database is down or unreachable (the CLI says so in one line).
DatabaseUnavailable = OperationalError


def shown_url(url: str) -> str:
    """Return a database URL fit to print: its password hidden."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def driver_url(url: str) -> str:
    """Return `url` naming the driver myapp installs: psycopg for postgresql://, PyMySQL for mysql://."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("mysql://"):
        return "mysql+pymysql://" + url[len("mysql://") :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the per-dialect settings the stores rely on."""
    url = driver_url(url)
    sizing = {} if "poolclass" in kwargs else {"pool_size": 10, "max_overflow": 20}  # a NullPool takes none
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, **kwargs)
        _configure_sqlite(engine)
        return engine
    if url.startswith("postgresql"):
        kwargs.setdefault("connect_args", {"application_name": application_name()})
        engine = create_engine(url, **sizing, **kwargs)
        event.listen(engine, "checkout", _ping_if_spoken_to)
        return engine
    # MySQL/MariaDB: READ COMMITTED, as on PostgreSQL. The stores lock the run row, then read what
    # other transactions committed meanwhile; InnoDB's default REPEATABLE READ would show them a
    # snapshot from before the wait (two leaves finishing together each saw the other unfinished).
    kwargs.setdefault("isolation_level", "READ COMMITTED")
    return create_engine(url, pool_pre_ping=True, **sizing, **kwargs)


def _ping_if_spoken_to(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Check a PostgreSQL connection taken from the pool; raise DisconnectionError if it is dead.

    An idle connection has nothing to read unless the server spoke: a server that restarts, crashes,
    terminates the backend or times the session out sends its goodbye or closes the socket, and
    either makes the socket readable. Only then is it pinged (the pool replaces a dead one). This
    is what `pool_pre_ping` catches, without its round trip on every checkout: two of a task's ten
    round trips to the database (docs/benchmarks.md). Neither notices a peer that vanished
    silently (a dropped network path): there a ping would wait for TCP's timeout too.
    """
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLPRI)
    if not poller.poll(0):
        return
    try:
        dbapi_connection.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as exc:  # noqa: BLE001  any failure here means: do not hand this connection out
        raise DisconnectionError(f"connection checked from the pool is dead: {exc}") from exc


def application_name(argv: list[str] | None = None) -> str:
    """Return this process's PostgreSQL application_name: $PGAPPNAME, else `myapp-<command>`."""
    if os.environ.get("PGAPPNAME"):
        return os.environ["PGAPPNAME"]
    argv = sys.argv if argv is None else argv
    program = Path(argv[0]) if argv else Path()
    if program.name == "myapp" or (program.name == "__main__.py" and program.parent.name == "myapp"):
        command = next((arg for arg in argv[1:] if not arg.startswith("-")), "")
        return f"myapp-{command}"[:63] if command else "myapp"
    return "myapp"


def is_transient(exc: BaseException) -> bool:
    """Return True for an error that repeating the transaction may cure.

    A connection dropped or refused, a server restarting, a deadlock or serialization failure
    (DBAPI OperationalError); never SQLite's (its only transient one, "locked", already waited).
    """
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError) and "sqlite" not in type(exc.orig).__module__


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("myapp_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """Owns the engine and hands out read and write transactions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._read = sessionmaker(engine, expire_on_commit=False)
        self._write = sessionmaker(engine.execution_options(myapp_write=True), expire_on_commit=False)
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    @classmethod
    def from_url(cls, url: str) -> Database:
        """Return a Database on a new engine for `url`."""
        return cls(make_engine(url))

    @contextmanager
    def write(self) -> Iterator[Session]:
        """Yield a session in a write transaction; commit on success, roll back on error.

        Callables appended to `session.info["after_commit"]` run once the transaction has
        committed (never after a rollback): messages about what it changed go out only then. A hook
        that raises is logged and skipped: the transaction is committed, and a caller that saw an
        error would repeat it (retry_on_disconnect).
        """
        with self._write() as session:
            with session.begin():
                yield session
            for hook in session.info.pop("after_commit", ()):
                try:
                    hook()
                except Exception:  # noqa: BLE001
                    log.exception("a hook run after COMMIT failed; the transaction stays committed")

    @contextmanager
    def read(self) -> Iterator[Session]:
        """Yield a session for reads (a plain transaction, never a writer lock)."""
        with self._read() as session, session.begin():
            yield session

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """Yield a connection in autocommit, for work that is one statement (PostgreSQL's claim and
        fast finish): each statement commits alone, and no ORM session is set up and torn down
        around it (~0.2 ms of a task's CPU each; issue 14)."""
        with self._autocommit.connect() as conn:
            yield conn

    @contextmanager
    def autocommit_session(self) -> Iterator[Session]:
        """Yield a session whose statements each commit alone, which checks a connection out of the
        pool only when it runs one (a claim's reads, mostly answered from the process's caches)."""
        with Session(bind=self._autocommit) as session:
            yield session

    def run_prebuilt(self, prebuilt: Prebuilt, params: Mapping[str, Any]) -> list[Any]:
        """Run a prebuilt statement alone in autocommit on the pooled DBAPI connection; return its rows
        (named tuples). For PostgreSQL's claim and fast finish: what a Connection adds around one
        statement was most of their CPU (db/prebuilt.py). A lost connection is invalidated and
        raised as SQLAlchemy's DBAPIError, as a Connection raises it."""
        return self.run_prebuilts(((prebuilt, params),))[0]

    def run_prebuilts(self, statements: Sequence[tuple[Prebuilt, Mapping[str, Any]]]) -> list[list[Any]]:
        """Run prebuilt statements one after the other as `run_prebuilt` does; return each one's rows.

        With psycopg (libpq pipeline mode) they go in one round trip and are one transaction: the
        server runs them in order, each seeing what the ones before it changed, and commits them
        together at the pipeline's end (one WAL flush), or none of them if one fails (the error is
        raised). Elsewhere each commits alone. A chain's finish and the claim of the task it keeps
        (AttemptStore.finish, issue 14).
        """
        engine, dialect = self.engine, self.engine.dialect
        work = []
        for prebuilt, params in statements:
            compiled = prebuilt.compiled(dialect)
            work.append((compiled, compiled.params(params)))
        pooled = engine.raw_connection()
        connection: Any = pooled.driver_connection
        cursors: list[Any] = []
        sql, values = work[0][0].sql, work[0][1]
        try:
            try:
                connection.autocommit = True
                together = len(work) > 1 and all(c.raw_cursor is not None for c, _ in work) and _pipelines(connection)
                with connection.pipeline() if together else contextlib.nullcontext():
                    for compiled, values in work:
                        sql = compiled.sql
                        cursor = connection.cursor() if compiled.raw_cursor is None else compiled.raw_cursor(connection)
                        cursors.append(cursor)
                        if engine.dispatch.before_cursor_execute:  # statement counters (tests, benchmarks)
                            engine.dispatch.before_cursor_execute(None, cursor, sql, values, None, False)
                        if compiled.raw_cursor is None:
                            cursor.execute(sql, values)
                        else:  # psycopg: $n placeholders, the values in their order
                            cursor.execute(compiled.raw_sql, [values[name] for name in compiled.order])
                results = []
                for (compiled, _), cursor in zip(work, cursors, strict=True):
                    rows = cursor.fetchall()
                    if compiled.result_processors is None:  # the first run: the columns' types as the server sent them
                        compiled.learn_result_types([column.type_code for column in cursor.description])
                    results.append(compiled.rows(rows))
            finally:
                for cursor in cursors:
                    cursor.close()
                if not connection.closed:  # back to the pool as it came: transactions, not autocommit
                    connection.autocommit = False
        except dialect.loaded_dbapi.Error as exc:
            cursor = cursors[-1] if cursors else None
            lost = dialect.is_disconnect(exc, connection, cursor)
            if lost or connection.autocommit:  # dead, or not put back out of autocommit: not for the pool
                pooled.invalidate(exc)
            raise DBAPIError.instance(
                sql, values, exc, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
            ) from exc
        finally:
            pooled.close()
        return results

    def lock_options(self, *, skip_locked: bool = False, shared: bool = False) -> dict[str, Any]:
        """Return with_for_update() kwargs for this dialect ({} means: rely on the SQLite lock)."""
        if self.is_sqlite:
            return {}
        options: dict[str, Any] = {"read": True} if shared else {}
        if skip_locked:
            options["skip_locked"] = True
        return options

    def relax_durability(self, session: Session) -> None:
        """Let this transaction commit without waiting for the WAL flush (PostgreSQL only).

        For writes whose loss in a database crash is harmless: heartbeats, process ids.
        """
        if self.engine.dialect.name == "postgresql":
            session.execute(text("SET LOCAL synchronous_commit TO OFF"))

    def retry_on_disconnect(
        self, work: Callable[[], T], *, within: float = 30.0, sleep: Callable[[float], None] = time.sleep
    ) -> T:
        """Return `work()`, calling it again while it fails on a lost connection, for up to `within` s.

        `work` must be whole transactions that are safe to repeat: one that failed was rolled back.
        (A connection lost during COMMIT leaves the outcome unknown; the stores' writes are
        idempotent or find the row already moved on.)
        """
        deadline, delay = time.monotonic() + within, 0.1
        while True:
            try:
                return work()
            except DBAPIError as exc:
                if not is_transient(exc) or time.monotonic() + delay > deadline:
                    raise
                log.warning("database connection lost (%s); retrying in %.1f s", str(exc.orig).strip(), delay)
            sleep(delay)
            delay = min(delay * 2, 2.0)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _pipelines(connection: Any) -> bool:
    """Whether `connection` (a DBAPI connection) can send statements in a pipeline: psycopg over a libpq >= 14."""
    return type(connection).__module__.startswith("psycopg") and hasattr(connection, "pipeline") and _libpq_pipelines()


@functools.cache
def _libpq_pipelines() -> bool:
    import psycopg

    return bool(psycopg.Pipeline.is_supported())
