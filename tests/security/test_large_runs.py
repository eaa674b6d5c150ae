"""Adversarial suite, large runs (issue 13 B15): a large run is created by a worker, never half.

A run whose pipeline has more tasks than `run_inline_tasks` (3 here, 10,000 tasks in the issue's
measurement) is answered at once with 202 and the run `creating`; a worker writes its task
instances and starts it in one transaction (myapp/db/run_creation.py). Checked here: what the
user sees while it is created and after; a refusal (bad parameters) shown on the run; a crash in
the middle of the creation leaves no task instance and the reconciler asks again; a run stopped
while creating stays stopped. Not timed: speed is in benchmarks/bench_big_dag.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from myapp.core.states import RunState, TaskState
from myapp.db import run_creation
from myapp.db.run_creation import creating_runs, finish_creation, resend_creating
from myapp.db.tables import Run, TaskInstance
from tests.security.conftest import unique

SETTINGS_OVERRIDES = {"run_inline_tasks": 3}
Clients = dict[str, tuple[FlaskClient, dict[str, str]]]
SECRET = "s3cret-run-value-B15"


@pytest.fixture
def asked(services: Any) -> Any:
    """Record the run ids the API asks a worker to create (the Celery message, without a broker)."""
    ids: list[int] = []
    previous = services.runs.create
    services.runs.create = ids.extend
    yield ids
    services.runs.create = previous


def save_chain(clients: Clients, n: int, **extra: Any) -> int:
    client, auth = clients["member"]
    tasks = [
        {
            "name": f"t{i}",
            "template": "shell",
            "args": {"script": "echo $who"},
            "inputs": {"who": {"from": "params.who"}},
            **({"depends_on": [f"t{i - 1}"]} if i else {}),
        }
        for i in range(n)
    ]
    body = {
        "name": unique("big"),
        "project": "sec",
        "tasks": tasks,
        "parameters": [{"name": "who", "default": "world"}, {"name": "key", "secret": True, "default": "x"}],
        **extra,
    }
    res = client.post("/api/v1/pipelines/", json=body, headers=auth)
    assert res.status_code == 200, res.get_data(as_text=True)
    return int(res.get_json()["id"])


def start(clients: Clients, pipeline_id: int, params: dict[str, str]) -> Any:
    client, auth = clients["member"]
    return client.post(f"/api/v1/pipelines/{pipeline_id}/runs", json={"params": params}, headers=auth)


def run_row(services: Any, run_id: int) -> tuple[Run, int]:
    with services.db.read() as s:
        run = s.get(Run, run_id)
        s.expunge(run)
        count = s.scalar(select(func.count()).select_from(TaskInstance).where(TaskInstance.run_id == run_id))
    return run, int(count or 0)


def shown(clients: Clients, run_id: int) -> dict[str, Any]:
    client, auth = clients["viewer"]
    res = client.get(f"/api/v1/runs/{run_id}", headers=auth)
    assert res.status_code == 200, res.get_data(as_text=True)
    return dict(res.get_json()["result"])


def test_b15_a_large_run_is_accepted_at_once_and_created_by_a_worker(
    clients: Clients, services: Any, asked: list[int]
) -> None:
    pipeline_id = save_chain(clients, 5)
    res = start(clients, pipeline_id, {"who": "you", "key": SECRET})
    assert res.status_code == 202, res.get_data(as_text=True)
    run_id = res.get_json()["id"]
    assert res.get_json()["state"] == "creating" and asked == [run_id]
    run, tasks = run_row(services, run_id)
    assert (run.state, tasks) == (RunState.CREATING.value, 0)
    assert SECRET not in str(run.params) and "you" not in str(run.params)  # every value sealed meanwhile (B6)
    detail = shown(clients, run_id)
    assert detail["state"] == "creating" and "creating 5 task instances" in detail["message"]

    dispatched: list[int] = []
    previous, services.runs.dispatch = services.runs.dispatch, dispatched.extend
    try:
        assert finish_creation(services.runs, run_id, services.clock.now())
        assert not finish_creation(services.runs, run_id, services.clock.now())  # a duplicate message: nothing
    finally:
        services.runs.dispatch = previous
    run, tasks = run_row(services, run_id)
    assert (run.state, tasks, run.message) == (RunState.RUNNING.value, 5, "")
    assert SECRET not in str(run.params) and run.params["who"] == "you"  # the secret stays sealed, the rest plain
    detail = shown(clients, run_id)
    assert detail["params"]["key"] == "******"
    states = {t["name"]: t["state"] for t in detail["tasks"]}
    assert states == {"t0": "queued", **{f"t{i}": "pending" for i in range(1, 5)}}
    with services.db.read() as s:
        assert dispatched == list(
            s.scalars(
                select(TaskInstance.id).where(
                    TaskInstance.run_id == run_id, TaskInstance.state == TaskState.QUEUED.value
                )
            )
        )


def test_b15_a_small_run_is_still_created_in_the_request(clients: Clients, services: Any, asked: list[int]) -> None:
    res = start(clients, save_chain(clients, 3), {})
    assert res.status_code == 201, res.get_data(as_text=True)
    assert asked == [] and run_row(services, res.get_json()["id"])[0].state == RunState.RUNNING.value


def test_b15_a_refused_large_run_fails_with_the_reason_on_the_run(
    clients: Clients, services: Any, asked: list[int]
) -> None:
    res = start(clients, save_chain(clients, 4), {"nope": "1"})
    assert res.status_code == 202
    run_id = res.get_json()["id"]
    assert finish_creation(services.runs, run_id, services.clock.now())
    run, tasks = run_row(services, run_id)
    assert (run.state, tasks) == (RunState.FAILED.value, 0)
    detail = shown(clients, run_id)
    assert detail["state"] == "failed" and "unknown parameter(s) nope" in detail["message"], detail["message"]


def test_b15_a_crash_while_creating_leaves_no_half_run_and_is_asked_again(
    clients: Clients, services: Any, asked: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = start(clients, save_chain(clients, 6), {}).get_json()["id"]
    real = run_creation.insert_rows

    def insert_then_die(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)  # the task instances are written ... and the worker dies before COMMIT
        raise SystemExit("worker killed")

    monkeypatch.setattr(run_creation, "insert_rows", insert_then_die)
    with pytest.raises(SystemExit):
        finish_creation(services.runs, run_id, services.clock.now())
    run, tasks = run_row(services, run_id)
    assert (run.state, tasks) == (RunState.CREATING.value, 0)  # nothing half-written
    monkeypatch.setattr(run_creation, "insert_rows", real)

    asked.clear()
    wait = services.settings.requeue_after
    assert resend_creating(services.runs, run.updated_at, wait) == 0 and asked == []  # not yet: it may still come
    assert run_id in creating_runs(services.runs)
    assert resend_creating(services.runs, run.updated_at + timedelta(seconds=wait + 1), wait) == 1 and asked == [run_id]
    assert finish_creation(services.runs, run_id, services.clock.now())
    assert run_row(services, run_id)[1] == 6


def test_b15_a_run_stopped_while_creating_stays_stopped(clients: Clients, services: Any, asked: list[int]) -> None:
    run_id = start(clients, save_chain(clients, 4), {}).get_json()["id"]
    client, auth = clients["member"]
    assert client.post(f"/api/v1/runs/{run_id}/stop", headers=auth).status_code == 200
    assert not finish_creation(services.runs, run_id, services.clock.now())
    run, tasks = run_row(services, run_id)
    assert (run.state, tasks) == (RunState.STOPPED.value, 0)
    assert client.post(f"/api/v1/runs/{run_id}/retry", headers=auth).status_code == 409


def test_b15_a_celery_worker_creates_the_run_and_it_runs_to_the_end(
    clients: Clients, services: Any, broker_url: str
) -> None:
    """The whole way: the API's message, the worker's `myapp.create_run`, then the tasks themselves."""
    import dataclasses

    from myapp.queue.celery_app import celery_create, celery_dispatch, create_celery
    from tests.conftest import WorkerProcess, worker_env
    from tests.integration.engine_helpers import wait_finished

    settings = dataclasses.replace(services.settings, broker_url=broker_url)
    celery, _ = create_celery(settings)
    saved = services.runs.dispatch, services.runs.create
    services.set_dispatch(celery_dispatch(celery))
    services.runs.create = celery_create(celery)
    worker = WorkerProcess(worker_env(settings, broker_url), beat=False)
    worker.start()
    try:
        res = start(clients, save_chain(clients, 4), {"who": "celery"})
        assert res.status_code == 202, res.get_data(as_text=True)
        run_id = res.get_json()["id"]
        wait_finished(services, run_id, timeout=120)
        run, tasks = run_row(services, run_id)
        assert (run.state, tasks) == (RunState.SUCCEEDED.value, 4), run.message
    finally:
        worker.stop()
        services.set_dispatch(saved[0])
        services.runs.create = saved[1]
