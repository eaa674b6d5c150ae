"""The database backends a store contract suite runs on, as a `services` fixture per backend.

A test module imports `store_services` (its fixture name is `services`, so it replaces the one in
tests/conftest.py) and every test in it runs once per backend. The backends follow the suite being
run (scripts/test runs the whole suite on SQLite and on PostgreSQL):
- SQLite suite: `sqlite`, and `mariadb` (MySQL's generic path) on MYAPP_TEST_MYSQL_URL (default
  mysql://root@127.0.0.1:3306/mysql; `.ci/run` starts MariaDB when it is down). A MariaDB that is
  not reachable skips, unless MYAPP_TEST_MYSQL_REQUIRE=1 (scripts/test sets it): then it fails.
- PostgreSQL suite: `postgresql` (the one-statement claim and finish) and `postgresql-generic`
  (setting sql_fast_paths=false: the generic path MySQL and SQLite take, on the same server).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import (
    _copy_database,
    _drop_database,
    _fresh_database_url,
    _initialise,
    database_name,
    make_settings,
    orphaned,
)

MYSQL_URL = os.environ.get("MYAPP_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/mysql")


def backend_names() -> list[str]:
    if os.environ.get("MYAPP_TEST_DATABASE_URL", "").startswith("postgresql"):
        return ["postgresql", "postgresql-generic"]
    return ["sqlite", "mariadb"]


def _mysql_admin() -> Any:
    import pymysql

    parts = urlsplit(MYSQL_URL)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        autocommit=True,
        connect_timeout=5,
    )


def _fresh_mysql_database() -> str:
    try:
        admin = _mysql_admin()
    except Exception as exc:  # noqa: BLE001  (pymysql raises OperationalError, or ImportError without it)
        if os.environ.get("MYAPP_TEST_MYSQL_REQUIRE") == "1":
            raise
        pytest.skip(f"MariaDB/MySQL not reachable at {MYSQL_URL} ({exc}); .ci/run starts it")
    name = database_name()
    with admin:
        cursor = admin.cursor()
        cursor.execute("SHOW DATABASES LIKE 'myapp\\_test\\_%'")
        for left in orphaned(row[0] for row in cursor.fetchall()):  # a killed run's
            cursor.execute(f"DROP DATABASE IF EXISTS `{left}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    return MYSQL_URL.rsplit("/", 1)[0] + "/" + name + "?charset=utf8mb4"


def _drop_mysql_database(url: str) -> None:
    name = url.rsplit("/", 1)[1].split("?")[0]
    with _mysql_admin() as admin:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(scope="module", params=backend_names(), name="services")
def store_services(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, initialised_database: str, broker_url: str
) -> Iterator[Any]:
    """Services on a fresh, initialised database of the backend `request.param`."""
    from myapp.services import build_services

    backend: str = request.param
    home: Path = tmp_path_factory.mktemp(backend)
    if backend == "mariadb":
        url = _fresh_mysql_database()
        _initialise(home, url)
    else:  # the suite's own backend: a copy of the session's initialised database
        url = _copy_database(initialised_database, home)
    overrides = {**getattr(request.module, "SETTINGS_OVERRIDES", {}), "sql_fast_paths": backend != "postgresql-generic"}
    svc = build_services(make_settings(home, url, redis_url=broker_url, **overrides))
    assert svc.attempts._in_one is (backend == "postgresql"), "the switch picks the implementation"
    yield svc
    svc.db.dispose()
    if backend == "mariadb":
        _drop_mysql_database(url)
    else:
        _drop_database(url)


__all__ = ["_fresh_database_url", "backend_names", "store_services"]
