"""Runs list benchmark (issue 7 item 4): the runs list API stays fast with 100,000 runs.

    python3 benchmarks/bench_runs_list.py                      # PostgreSQL (a fresh throwaway database)
    python3 benchmarks/bench_runs_list.py --database sqlite    # a SQLite file
    python3 benchmarks/bench_runs_list.py --runs 100000 --repeat 40 --explain

100,000 runs are bulk-inserted with SQLAlchemy Core over 5 projects of 4 pipelines each (states
85% succeeded, 10% failed, 3% stopped, 1.5% running, 0.5% queued; triggers 80% cron, 18% manual,
2% debug; every 5th run with 3 task instances), then the tables are analysed (VACUUM ANALYZE on
PostgreSQL, ANALYZE on SQLite: what autovacuum does in production). Each request is made through
Flask's test client with a JWT, as the admin, as a member of 2 projects and as a member of 1 (the
project filter), `--repeat` times after one warm-up call; the figures are the whole request (auth,
permission checks, query, JSON), and the list query alone (`run_rows`, median). Statements are
counted with a `before_cursor_execute` listener on every engine.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.databases import drop_database, fresh_database  # noqa: E402

PROJECTS = 5
PIPELINES_PER_PROJECT = 4
STATES = [("succeeded", 85), ("failed", 10), ("stopped", 3), ("running", 1.5), ("queued", 0.5)]
TRIGGERS = [("cron", 80), ("manual", 18), ("debug", 2)]
BATCH = 5000


def pipeline_yaml(project: str, name: str) -> str:
    return (
        f"name: {name}\nproject: {project}\ntasks:\n"
        "  - {name: a, image: local, command: ['true']}\n"
        "  - {name: b, image: local, command: ['true'], depends_on: [a]}\n"
        "  - {name: c, image: local, command: ['true'], depends_on: [b]}\n"
    )


def seed_pipelines(services: Any) -> list[tuple[int, int, int]]:
    """Save 5 x 4 pipelines; return (pipeline id, version id, project id) of each."""
    from myapp.core.pipeline_spec import parse_pipeline
    from myapp.db.tables import Pipeline
    from myapp.yaml_io import load_yaml
    from tests.accounts import ensure_project

    found = []
    for p in range(PROJECTS):
        ensure_project(services, f"proj{p}")
        for k in range(PIPELINES_PER_PROJECT):
            spec = parse_pipeline(load_yaml(pipeline_yaml(f"proj{p}", f"etl-{p}-{k}")))
            pid = services.pipelines.save(spec, services.clock.now()).pipeline_id
            with services.db.read() as s:
                row = s.get(Pipeline, pid)
                found.append((row.id, row.current_version_id, row.project_id))
    return found


def seed_runs(services: Any, pipelines: list[tuple[int, int, int]], count: int) -> float:
    """Bulk-insert `count` runs (and task instances for every 5th); return the seconds taken."""
    from sqlalchemy import insert

    from myapp.db.tables import Run, TaskInstance

    rng = random.Random(7)
    weights = [1 + (i % 4) * 2 for i in range(len(pipelines))]  # some pipelines run more than others
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=90)
    step = (now - start) / count
    began = time.perf_counter()
    for first in range(0, count, BATCH):
        rows = []
        for i in range(first, min(first + BATCH, count)):
            pid, vid, project = rng.choices(pipelines, weights)[0]
            created = start + step * i
            state = rng.choices([s for s, _ in STATES], [w for _, w in STATES])[0]
            ended = created + timedelta(seconds=rng.randint(5, 900)) if state not in ("running", "queued") else None
            rows.append(
                {
                    "pipeline_id": pid,
                    "version_id": vid,
                    "project_id": project,
                    "trigger": rng.choices([t for t, _ in TRIGGERS], [w for _, w in TRIGGERS])[0],
                    "state": state,
                    "params": {"day": created.strftime("%Y-%m-%d")},
                    "execution_date": created,
                    "execution_date_text": created.strftime("%Y-%m-%d %H:%M:%S"),
                    "runner": "bench",
                    "message": "",
                    "timeout": 0,
                    "created_at": created,
                    "updated_at": ended or created,
                    "started_at": None if state == "queued" else created,
                    "ended_at": ended,
                }
            )
        with services.db.write() as s:
            ids = (
                s.execute(insert(Run.__table__).returning(Run.__table__.c.id, sort_by_parameter_order=True), rows)
                .scalars()
                .all()
            )
            tis = [
                {
                    "run_id": run_id,
                    "task_name": name,
                    "state": "succeeded",
                    "try_number": 1,
                    "max_tries": 1,
                    "inputs": {},
                    "outputs": {},
                    "message": "",
                }
                for run_id in ids[::5]
                for name in ("a", "b", "c")
            ]
            s.execute(insert(TaskInstance.__table__), tis)
    return time.perf_counter() - began


def analyse(services: Any) -> None:
    """Refresh planner statistics (and PostgreSQL's visibility map), as autovacuum would."""
    engine = services.db.engine
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE runs")
            conn.exec_driver_sql("VACUUM ANALYZE task_instances")
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")


class StatementCounter:
    """Counts the SQL statements of every engine in this process."""

    def __init__(self) -> None:
        from sqlalchemy import Engine, event

        self.count = 0
        event.listen(Engine, "before_cursor_execute", self._count)

    def _count(self, *_: Any) -> None:
        self.count += 1


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def time_request(
    client: Any, auth: dict[str, str], url: str, repeat: int, counter: StatementCounter
) -> tuple[list[float], int, int]:
    """Return (milliseconds per call, statements per call, rows in the answer)."""
    res = client.get(url, headers=auth)
    assert res.status_code == 200, (url, res.status_code, res.get_data(as_text=True)[:300])
    times, statements = [], 0
    for _ in range(repeat):
        before = counter.count
        began = time.perf_counter()
        res = client.get(url, headers=auth)
        times.append((time.perf_counter() - began) * 1000)
        statements = counter.count - before
    body = res.get_json()
    return times, statements, len(body.get("result", [])) if isinstance(body, dict) else 0


def time_query(services: Any, filters: dict[str, Any], project_ids: list[int] | None, repeat: int) -> float:
    """Return the median milliseconds of the list query alone (`run_rows`, as the endpoint calls it)."""
    from myapp.db.run_views import run_rows

    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        with services.db.read() as s:
            run_rows(s, project_ids=project_ids, **{"limit": 50, **filters})
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def queries(pipeline_id: int) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Return (label, URL, run_rows filters) of the requests users make; `pipeline_id` is one the members see."""
    return [
        ("runs page (limit 25, newest first)", "/api/v1/runs/?limit=25", {"limit": 25}),
        ("API first page (default limit 50)", "/api/v1/runs/", {}),
        (
            "filtered by pipeline",
            f"/api/v1/runs/?pipeline_id={pipeline_id}&limit=25",
            {"pipeline_id": pipeline_id, "limit": 25},
        ),
        ("filtered by state=failed", "/api/v1/runs/?state=failed&limit=25", {"state": "failed", "limit": 25}),
        ("filtered by state=running", "/api/v1/runs/?state=running&limit=25", {"state": "running", "limit": 25}),
        ("filtered by trigger=debug", "/api/v1/runs/?trigger=debug&limit=25", {"trigger": "debug", "limit": 25}),
        (
            "pipeline + state=failed",
            f"/api/v1/runs/?pipeline_id={pipeline_id}&state=failed&limit=25",
            {"pipeline_id": pipeline_id, "state": "failed", "limit": 25},
        ),
        ("deep page (offset 10,000)", "/api/v1/runs/?offset=10000&limit=25", {"offset": 10000, "limit": 25}),
        (
            "pipeline, deep page (offset 2,000)",
            f"/api/v1/runs/?pipeline_id={pipeline_id}&offset=2000&limit=25",
            {"pipeline_id": pipeline_id, "offset": 2000, "limit": 25},
        ),
        ("runs page: pipeline names", "/api/v1/pipelines/", None),
        ("who am I (/me/)", "/api/v1/me/", None),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server URL, or 'sqlite' for a SQLite file",
    )
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--explain", action="store_true", help="print the query plan of the list queries")
    args = parser.parse_args()

    from myapp.cli.process import init_database
    from myapp.services import build_services
    from tests.conftest import make_settings

    home = Path(tempfile.mkdtemp(prefix="myapp-runs-list-"))
    url = fresh_database(args.database, home)
    services = build_services(make_settings(home, url))
    try:
        init_database(services, admin_user="admin", admin_password="bench-pass", admin_email="a@b.c", quiet=True)
        pipelines = seed_pipelines(services)
        seconds = seed_runs(services, pipelines, args.runs)
        analyse(services)
        print(
            f"database {services.db.engine.dialect.name}: {args.runs} runs over {len(pipelines)} pipelines in "
            f"{PROJECTS} projects inserted in {seconds:.1f} s; python {sys.version.split()[0]}, "
            f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}"
        )
        report(services, pipelines, args)
        print(f"load average (1 min) after: {os.getloadavg()[0]:.1f}")
    finally:
        services.db.dispose()
        drop_database(args.database, url)


def report(services: Any, pipelines: list[tuple[int, int, int]], args: argparse.Namespace) -> None:
    from sqlalchemy import select

    from myapp.db.tables import Project
    from myapp.web.app import create_app
    from tests.accounts import ensure_member, ensure_user

    app = create_app(services.settings, services)
    projects = sorted({p[2] for p in pipelines})
    with services.db.read() as s:
        names = {project_id: name for project_id, name in s.execute(select(Project.id, Project.name))}
    users: list[tuple[str, str, list[int] | None]] = [
        ("admin", "bench-pass", None),
        ("member2", "member2-pass", projects[1:3]),
        ("member1", "member1-pass", projects[1:2]),
    ]
    with app.app_context():
        for name, _, scope in users[1:]:
            user = ensure_user(app, name, "User")
            for project in scope or []:
                ensure_member(services, user.id, names[project], "member")
    client = app.test_client()
    counter = StatementCounter()
    own = max((p for p in pipelines if p[2] == projects[1]), key=lambda p: p[0] % 4)[0]
    print("request: the whole HTTP request through Flask's test client; SQL: run_rows alone (median)")
    print(f"{'query':<38} {'user':<8} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'SQL ms':>7} {'stmts':>5} {'rows':>5}")
    for user, password, scope in users:
        res = client.post("/api/v1/security/login", json={"username": user, "password": password, "provider": "db"})
        auth = {"Authorization": f"Bearer {res.get_json()['access_token']}"}
        for label, url, filters in queries(own):
            times, statements, rows = time_request(client, auth, url, args.repeat, counter)
            sql = f"{time_query(services, filters, scope, args.repeat):7.1f}" if filters is not None else "      -"
            print(
                f"{label:<38} {user:<8} {statistics.median(times):7.1f} {percentile(times, 0.95):7.1f} "
                f"{max(times):7.1f} {sql} {statements:5d} {rows:5d}"
            )
    if args.explain:
        explain(services, projects[1:3])


def explain(services: Any, member_projects: list[int]) -> None:
    """Print the plans of the list query for a few filters (PostgreSQL: EXPLAIN ANALYZE)."""
    from sqlalchemy import text

    from myapp.db.run_views import run_rows_query

    engine = services.db.engine
    prefix = "EXPLAIN ANALYZE " if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
    cases: list[dict[str, Any]] = [
        {},
        {"state": "failed"},
        {"offset": 10000},
        {"project_ids": member_projects},
        {"project_ids": member_projects, "offset": 10000},
        {"project_ids": member_projects[:1], "offset": 10000},
        {"trigger": "debug"},
    ]
    with engine.connect() as conn:
        for case in cases:
            stmt = run_rows_query(limit=25, **case).compile(engine, compile_kwargs={"literal_binds": True})
            print(f"-- {case}")
            for row in conn.execute(text(prefix + str(stmt))):
                print("   ", " ".join(str(c) for c in row))


if __name__ == "__main__":
    main()
