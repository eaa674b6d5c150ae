"""A large run in the browser (issue 13 B15): while a worker writes its task instances the run page
says so, then shows the graph as the run goes on; a run refused by the worker shows why."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from myapp.core.states import Trigger
from myapp.core.values import NewRun
from myapp.db.run_creation import finish_creation, request_run
from myapp.db.tables import Run
from tests.browser.conftest import shot
from tests.integration.engine_helpers import save

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(240)]


def held_run(services: Any, pipeline_id: int, params: dict[str, str]) -> int:
    """Ask for a `creating` run as the REST API does, but send the worker nothing (the test plays it)
    and keep the live server's reconciler from asking again for an hour (as if just asked)."""
    runs = services.runs
    sent, runs.create = runs.create, lambda ids: None
    try:
        now = services.clock.now()
        run_id = request_run(
            runs,
            NewRun(pipeline_id=pipeline_id, trigger=Trigger.MANUAL, execution_date=now, params=params, runner="admin"),
            now,
            3,
        )
    finally:
        runs.create = sent
    with services.db.write() as s:
        s.execute(update(Run).where(Run.id == run_id).values(updated_at=now + timedelta(hours=1)))
    return run_id


def test_a_creating_run_says_so_then_shows_its_graph(new_page: Any, live_server: Any, engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: big-in-browser
        parameters: [{name: who, default: world}]
        tasks:
          - {name: a, template: shell, args: {script: 'echo a'}}
          - {name: b, template: shell, args: {script: 'echo b'}, depends_on: [a]}
          - {name: c, template: shell, args: {script: 'echo c'}, depends_on: [b]}
    """,
    )
    run_id = held_run(engine_services, pid, {})
    page = new_page()
    page.goto(f"{live_server.url}/runs/{run_id}")
    banner = page.wait_for_selector("[data-testid=run-creating]")
    assert "creating 3 task instances" in banner.inner_text()
    page.wait_for_selector("[data-testid=run-page][data-state=creating]")
    shot(page, "run-creating")
    assert finish_creation(engine_services.runs, run_id, engine_services.clock.now())
    page.wait_for_selector("[data-testid=run-page][data-state=succeeded]", timeout=180_000)
    assert page.locator("[data-testid=run-creating]").count() == 0
    assert page.locator(".myapp-run-node[data-task=c][data-state=succeeded]").count() == 1

    refused = held_run(engine_services, pid, {"nope": "1"})
    assert finish_creation(engine_services.runs, refused, engine_services.clock.now())
    page.goto(f"{live_server.url}/runs/{refused}")
    page.wait_for_selector("[data-testid=run-page][data-state=failed]")
    assert "unknown parameter(s) nope" in page.inner_text("[data-testid=run-page]")
