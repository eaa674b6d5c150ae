"""Load (issue 7 item 4, scaled down): 50 concurrent runs of a 10-task pipeline on 2 worker processes
(one Celery worker, prefork pool of 2, with the reconciler's beat) complete with nothing lost.

benchmarks/bench_load.py runs the same workload with 1,000 runs and prints the figures.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.load.workload import TASKS, check, launch, save_pipeline, wait_all

pytestmark = [pytest.mark.integration, pytest.mark.slow]
RUNS = 50


def test_concurrent_runs_complete_with_nothing_lost(engine_services: Any) -> None:
    pipeline_id = save_pipeline(engine_services)
    launch(engine_services, pipeline_id, RUNS, creators=2)
    finished = wait_all(engine_services, pipeline_id, RUNS, timeout=150)
    report = check(engine_services, pipeline_id, RUNS)
    assert finished, "runs still active after 150 s:\n" + "\n".join(report.lines())
    assert report.problems == [], "\n".join(report.problems)
    assert report.runs == {"succeeded": RUNS}
    assert report.task_instances == {"succeeded": RUNS * len(TASKS)}
    assert report.attempts_per_ti == {1: RUNS * len(TASKS)}, "a task instance ran twice or never"
    assert report.logs_checked == RUNS * len(TASKS)
    assert report.outputs_checked == RUNS * (len(TASKS) - 1)
