"""A deleted run's id is never given to a new run (nor a task instance's or an attempt's).

A run's id names its working directory in the workflow space, its archived logs, artifacts and
live-log keys: on SQLite without AUTOINCREMENT the next run got the id of the newest run deleted,
and with it that run's leftovers. Migration 0011 rebuilds runs, task_instances and task_attempts
with AUTOINCREMENT on SQLite (a no-op on PostgreSQL, whose sequences never go back); it must keep
every row, index, constraint and foreign key. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import insert, inspect, select, text

from myapp.core.states import Trigger
from myapp.core.values import NewRun
from myapp.db.migrate import alembic_config, current
from myapp.db.retention_store import delete_runs
from myapp.db.schedule_tables import AlertOutbox
from myapp.db.session import driver_url
from myapp.db.tables import ScheduleRecord, TaskInstance
from tests.conftest import _copy_database, _drop_database, make_settings
from tests.integration.test_retention import _attempt, myapp_cli
from tests.integration.test_scheduler import pipeline_yaml, save_at, ts

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
BEFORE = "0010_launch_templates"
AFTER = "0012_shared_counts"  # the revision before 0013, which drops an index


def _run(services: Any, pid: int, at: datetime) -> int:
    """Create a manual run at `at`, give its task `a` an ended attempt (with its log and working
    directory), and stop it."""
    run_id = int(services.runs.create_run(NewRun(pid, Trigger.MANUAL, at, {}), at))
    _attempt(services, run_id, at)
    services.runs.stop_run(run_id, at + timedelta(minutes=1))
    return run_id


def _delete(services: Any, run_id: int) -> None:
    with services.db.write() as s:
        assert delete_runs(s, [run_id]) == 1


def _ids(services: Any, table: str) -> list[int]:
    with services.db.read() as s:
        return [int(i) for i in s.scalars(text(f"SELECT id FROM {table} ORDER BY id"))]  # noqa: S608


def _snapshot(services: Any) -> dict[str, Any]:
    """Every row of every table, and each table's columns, indexes, unique constraints and foreign keys."""
    with services.db.engine.connect() as conn:
        insp = inspect(conn)
        tables = sorted(t for t in insp.get_table_names() if t != "alembic_version")
        shot: dict[str, Any] = {}
        for t in tables:
            shot[t] = {
                "rows": sorted(repr(tuple(r)) for r in conn.execute(text(f'SELECT * FROM "{t}"'))),  # noqa: S608
                "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(t)],
                "pk": insp.get_pk_constraint(t)["constrained_columns"],
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(t)
                ),
                "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(t)),
                "fks": sorted(
                    (
                        tuple(f["constrained_columns"]),
                        f["referred_table"],
                        tuple(f["referred_columns"]),
                        (f.get("options") or {}).get("ondelete"),
                    )
                    for f in insp.get_foreign_keys(t)
                ),
            }
        if conn.dialect.name == "sqlite":
            shot["sqlite_indexes"] = sorted(
                tuple(r)
                for r in conn.execute(text("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'"))
            )
            shot["sqlite_fks"] = {  # with ON DELETE / ON UPDATE as SQLite itself sees them
                t: sorted(tuple(r)[2:] for r in conn.execute(text(f'PRAGMA foreign_key_list("{t}")'))) for t in tables
            }
    return shot


def _upgrade(db: Any, revision: str) -> None:
    """Upgrade to `revision` as myapp.db.migrate.upgrade upgrades to the newest: in one transaction."""
    cfg = alembic_config(driver_url(db.engine.url.render_as_string(hide_password=False)))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def _downgrade(db: Any, revision: str) -> None:
    """Downgrade as myapp.db.migrate.upgrade upgrades: in one transaction of the product's engine."""
    cfg = alembic_config(driver_url(db.engine.url.render_as_string(hide_password=False)))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


@pytest.fixture
def old_schema(tmp_path: Path, initialised_database: str, broker_url: str) -> Iterator[Any]:
    """Services on a database of its own, downgraded to the revision before 0011."""
    from myapp.services import build_services

    url = _copy_database(initialised_database, tmp_path)
    svc = build_services(make_settings(tmp_path, url, redis_url=broker_url))
    _downgrade(svc.db, BEFORE)
    yield svc
    svc.db.dispose()
    _drop_database(url)


def test_the_migration_keeps_every_row_and_index_and_stops_reusing_ids(old_schema: Any) -> None:
    services = old_schema
    sqlite = services.db.is_sqlite
    assert current(services.db) == BEFORE
    pid = save_at(services, pipeline_yaml("ids-mig", "0 0 * * *", enabled=False), "2026-01-01T00:00Z")
    runs = [_run(services, pid, ts(f"2026-01-0{day}T00:00Z")) for day in (2, 3, 4)]
    with services.db.write() as s:  # rows that point at runs: a schedule record, an outbox row
        s.execute(
            insert(ScheduleRecord.__table__).values(
                pipeline_id=pid,
                execution_date=ts("2026-01-04T00:00Z"),
                execution_date_text="2026-01-04T00:00:00",
                status="launched",
                run_id=runs[2],
                message="",
                created_at=ts("2026-01-04T00:00Z"),
                updated_at=ts("2026-01-04T00:00Z"),
            )
        )
        s.execute(
            insert(AlertOutbox.__table__).values(
                pipeline_id=pid,
                run_id=runs[1],
                event="failed",
                url="http://example.invalid/hook",
                payload={},
                status="sent",
                attempts=1,
                next_attempt_at=ts("2026-01-03T00:00Z"),
                last_error="",
                created_at=ts("2026-01-03T00:00Z"),
            )
        )
    _delete(services, runs[2])
    again = _run(services, pid, ts("2026-01-05T00:00Z"))
    if sqlite:  # what 0011 is for: before it, SQLite gave the deleted run's id back
        assert again == runs[2]
    before = _snapshot(services)

    _upgrade(services.db, AFTER)

    assert current(services.db) == AFTER
    after = _snapshot(services)
    assert after == before  # every row, column, index, unique constraint and foreign key kept
    with services.db.engine.connect() as conn:
        if sqlite:
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1  # enforcement back on
            tables = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE name IN ('runs', 'task_instances', 'task_attempts')")
            ).scalars()
            assert all("AUTOINCREMENT" in sql for sql in tables)
    # The foreign keys still act: a run deleted by a bare DELETE takes its task instances and attempts.
    newest = _ids(services, "runs")[-1]
    tis, attempts = _ids(services, "task_instances"), _ids(services, "task_attempts")
    with services.db.write() as s:
        s.execute(text("DELETE FROM runs WHERE id = :id"), {"id": newest})
        assert not s.scalar(select(TaskInstance.id).where(TaskInstance.run_id == newest))
    assert len(_ids(services, "task_instances")) < len(tis) and len(_ids(services, "task_attempts")) < len(attempts)
    created = _run(services, pid, ts("2026-01-06T00:00Z"))
    assert created == newest + 1
    assert _ids(services, "task_instances")[-1] > tis[-1] and _ids(services, "task_attempts")[-1] > attempts[-1]

    _downgrade(services.db, BEFORE)
    rows = _snapshot(services)
    _upgrade(services.db, AFTER)
    assert _snapshot(services) == rows  # down and up again: still everything


def test_a_deleted_runs_id_is_never_given_to_a_new_run(services: Any) -> None:
    pid = save_at(services, pipeline_yaml("ids-new", "0 0 * * *", enabled=False), "2026-01-01T00:00Z")
    first, second, third = (_run(services, pid, ts(f"2026-02-2{day}T00:00Z")) for day in (1, 2, 3))
    assert (second, third) == (first + 1, first + 2)
    attempts = _ids(services, "task_attempts")

    _delete(services, third)  # the product's delete (retention's statements)
    fourth = _run(services, pid, ts("2026-02-24T00:00Z"))
    assert fourth == third + 1
    assert _ids(services, "task_attempts")[-1] > attempts[-1]

    old = _run(services, pid, ts("2026-01-02T00:00Z"))  # the newest run, and the only old one
    out = myapp_cli(services, "db", "clean", "--older-than", "30", "--now", "2026-03-01T00:00Z", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["runs"] == 1 and _ids(services, "runs")[-1] == fourth
    assert _run(services, pid, ts("2026-02-25T00:00Z")) == old + 1


def test_retention_removes_a_deleted_runs_working_directory_only_after_its_commit(services: Any) -> None:
    from myapp.executor.private_tmp import run_dir_remover
    from myapp.retention.clean import clean

    pid = save_at(services, pipeline_yaml("ids-dirs", "0 0 * * *", enabled=False), "2026-01-01T00:00Z")
    old, recent = _run(services, pid, ts("2026-01-02T00:00Z")), _run(services, pid, ts("2026-02-27T00:00Z"))
    assert all((services.settings.workflow_space / str(run_id) / "a" / "1").is_dir() for run_id in (old, recent))
    remove = run_dir_remover(services)
    assert remove is not None
    seen: list[tuple[list[int], bool, bool]] = []

    def watching(run_ids: Any, dry_run: bool) -> tuple[int, int, int]:
        with services.db.read() as s:  # another connection: what is committed
            committed_gone = not s.scalar(text("SELECT count(*) FROM runs WHERE id = :id"), {"id": old})
        seen.append((list(run_ids), dry_run, committed_gone))
        return remove(run_ids, dry_run)

    dry = clean(
        services, ts("2026-03-01T00:00Z"), 30, dry_run=True, progress=lambda line: None, remove_workdirs=watching
    )
    assert dry.counts["workdirs"] == 1 and (services.settings.workflow_space / str(old)).is_dir()
    report = clean(services, ts("2026-03-01T00:00Z"), 30, progress=lambda line: None, remove_workdirs=watching)
    assert report.counts["workdirs"] == 1 and (report.workdirs_kept, report.workdirs_failed) == (0, 0)
    assert seen == [([old], True, False), ([old], False, True)]  # the real one after the COMMIT
    assert not (services.settings.workflow_space / str(old)).exists()
    assert (services.settings.workflow_space / str(recent) / "a" / "1" / "input.csv").exists()
