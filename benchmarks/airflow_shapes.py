"""The shapes of benchmarks/bench_shapes.py on Airflow, for a side-by-side run (docs/benchmarks.md).

    python3 benchmarks/airflow_shapes.py write DAGS_FOLDER          # one DAG file per shape
    python3 benchmarks/airflow_shapes.py measure --airflow-db URL --dag shapes_fanin [--run-id ID]

`write` turns each shape (the same task names and edges as bench_shapes.py, generated from its
definitions) into an Airflow 3 DAG of BashOperator("true") tasks, schedule None, catchup off;
`shapes_concurrent` has max_active_runs 1000 for the 1,000-run shape. `measure` reads Airflow's
metadata database (task_instance start/end dates) and prints the same figures bench_shapes.py
prints for myapp: tasks/s over the span from the first task's start to the last one's end, and
hop p50/p95 (a task's start minus the end of its last upstream task, from the shape's edges).
Airflow CPU and SQL statements are not measured here: read the CPU of the scheduler and executor
processes from /proc (or `pidstat`) over the same span, as bench_shapes.py does for the worker.

Needs only PyYAML and psycopg (the myapp venv has both); Airflow itself runs in its own venv.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_engine import percentile  # noqa: E402
from benchmarks.bench_shapes import SHAPES  # noqa: E402


def edges(shape: str) -> dict[str, list[str]]:
    """Return task -> its upstream tasks for a bench_shapes shape (one run of it)."""
    make, _ = SHAPES[shape]
    tasks = yaml.safe_load("\n".join(make()))
    return {t["name"]: list(t.get("depends_on") or []) for t in tasks}


def dag_source(shape: str) -> str:
    """Return an Airflow 3 DAG file running the shape with BashOperator("true") tasks."""
    graph = edges(shape)
    runs = SHAPES[shape][1]
    lines = [
        f'"""bench_shapes.py shape {shape!r} ({len(graph)} tasks), written by benchmarks/airflow_shapes.py."""',
        "from airflow.providers.standard.operators.bash import BashOperator",
        "from airflow.sdk import DAG",
        "",
        f"with DAG(dag_id='shapes_{shape}', schedule=None, catchup=False, max_active_runs={max(runs, 16)},",
        f"         max_active_tasks={max(len(graph) * runs, 16)}) as dag:",
        "    t = {}",
        f"    for name in {list(graph)!r}:",
        "        t[name] = BashOperator(task_id=name, bash_command='true')",
        f"    for name, ups in {graph!r}.items():",
        "        for up in ups:",
        "            t[up] >> t[name]",
        "",
    ]
    return "\n".join(lines)


def write(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for shape in SHAPES:
        path = folder / f"shapes_{shape}.py"
        path.write_text(dag_source(shape), encoding="utf-8")
        print(f"wrote {path}")


def measure(db_url: str, dag: str, run_id: str | None) -> None:
    import psycopg

    shape = dag.removeprefix("shapes_")
    graph = edges(shape)
    with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        where, params = "dag_id = %s", [dag]
        if run_id is not None:
            where, params = where + " AND run_id = %s", [dag, run_id]
        rows: list[Any] = conn.execute(
            f"SELECT run_id, task_id, start_date, end_date, state FROM task_instance WHERE {where}", params
        ).fetchall()
    if not rows:
        raise SystemExit(f"no task instances of {dag} in that database")
    not_done = [r for r in rows if r[4] != "success"]
    if not_done:
        raise SystemExit(
            f"{len(not_done)} task instances are not successful yet (e.g. {not_done[0][1]}: {not_done[0][4]})"
        )
    by_run: dict[str, dict[str, tuple[Any, Any]]] = {}
    for run, task, start, end, _ in rows:
        by_run.setdefault(run, {})[task] = (start, end)
    hops = [
        (tasks[name][0] - max(tasks[up][1] for up in ups)).total_seconds() * 1000
        for tasks in by_run.values()
        for name, ups in graph.items()
        if ups
    ]
    first, last = min(r[2] for r in rows), max(r[3] for r in rows)
    span = (last - first).total_seconds()
    p50 = statistics.median(hops) if hops else 0.0
    p95 = percentile(hops, 0.95) if hops else 0.0
    print(
        f"airflow {shape:<10} {len(rows):>6} tasks {len(rows) / span:>7.0f} tasks/s  hop p50 {p50:7.1f} ms "
        f"p95 {p95:8.1f} ms  span {span:.1f} s over {len(by_run)} run(s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="write one DAG file per shape")
    w.add_argument("folder", type=Path)
    m = sub.add_parser("measure", help="figures of finished runs from Airflow's metadata database")
    m.add_argument("--airflow-db", required=True, help="postgresql://... of Airflow's metadata database")
    m.add_argument("--dag", required=True, help="shapes_chain, shapes_fanin, ...")
    m.add_argument("--run-id", default=None, help="one run (default: every run of the DAG)")
    args = parser.parse_args()
    if args.command == "write":
        write(args.folder)
    else:
        measure(args.airflow_db, args.dag, args.run_id)


if __name__ == "__main__":
    main()
