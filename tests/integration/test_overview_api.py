"""REST endpoints of the overview pages: the pipeline list (strip, next run, schedule in words, search,
sort, total, bounded statements), the grid, debug inputs, the schedule switch with the backfill
guard (409 with the numbers, then confirmed), run totals and date filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event

from myapp.cli.process import run_burst
from myapp.web.app import create_app

pytestmark = pytest.mark.integration

UPSTREAM = """
name: ov-upstream
tasks:
  - name: make
    template: shell
    args: {script: 'echo made > /tmp/out.txt'}
    outputs: [{name: text, path: /tmp/out.txt, type: text}]
  - name: use
    template: shell
    inputs: {got: {from: make.text}}
    args: {script: 'echo "got $got"'}
"""

HOURLY = """
name: ov-hourly
schedule: {{type: crontab, cron: "0 * * * *", timezone: UTC, start_time: "{start}", expired_limit: 0, enabled: {enabled}}}
tasks:
  - {{name: t, template: shell, args: {{script: 'echo t'}}}}
"""


@pytest.fixture(scope="module")
def client(services: Any) -> tuple[FlaskClient, dict[str, str], Any]:
    app = create_app(services.settings, services)
    app.config["TESTING"] = True
    c = app.test_client()
    res = c.post("/api/v1/security/login", json={"username": "admin", "password": "admin-pass", "provider": "db"})
    return c, {"Authorization": f"Bearer {res.get_json()['access_token']}"}, services


def save(c: FlaskClient, h: dict[str, str], text: str, **query: str) -> Any:
    return c.post(
        "/api/v1/pipelines/", data=text, headers={**h, "Content-Type": "application/yaml"}, query_string=query
    )


def test_debug_inputs_come_from_the_latest_succeeded_run(client: Any) -> None:
    c, h, services = client
    pid = save(c, h, UPSTREAM).get_json()["id"]
    before = c.get(f"/api/v1/overview/pipelines/{pid}/debug_inputs?task=use", headers=h).get_json()
    assert before["missing"] == ["got"] and before["source_run_id"] is None
    refused = c.post(f"/api/v1/pipelines/{pid}/runs", json={"debug_task": "use"}, headers=h)
    assert refused.status_code == 400 and "got" in refused.get_json()["message"]
    run_id = c.post(f"/api/v1/pipelines/{pid}/runs", json={}, headers=h).get_json()["id"]
    run_burst(services, 2)
    plan = c.get(f"/api/v1/overview/pipelines/{pid}/debug_inputs?task=use", headers=h).get_json()
    assert plan["missing"] == [] and plan["source_run_id"] == run_id
    assert plan["inputs"] == [
        {"name": "got", "filled_from": "run", "kind": "text", "value": "made", "binding": "make.text"}
    ]
    debug = c.post(f"/api/v1/pipelines/{pid}/runs", json={"debug_task": "use"}, headers=h)
    assert debug.status_code == 201
    run_burst(services, 2)
    detail = c.get(f"/api/v1/runs/{debug.get_json()['id']}", headers=h).get_json()["result"]
    assert detail["state"] == "succeeded"
    logs = c.get(f"/api/v1/runs/{detail['id']}/logs?task=use", headers=h).get_json()
    assert [e["text"] for e in logs["entries"]] == ["got made\n"] and logs["entries"][0]["stream"] == "out"
    assert logs["entries"][0]["at"].endswith("Z") and logs["lines"] == ["got made\n"]
    unknown = c.get(f"/api/v1/overview/pipelines/{pid}/debug_inputs?task=nope", headers=h)
    assert unknown.status_code == 404


def test_pipeline_list_strip_search_sort_total_in_bounded_statements(client: Any) -> None:
    c, h, services = client
    for name in ("ov-a", "ov-b", "ov-c"):
        pid = save(c, h, UPSTREAM.replace("ov-upstream", name)).get_json()["id"]
        for _ in range(3):
            c.post(f"/api/v1/pipelines/{pid}/runs", json={}, headers=h)
    run_burst(services, 2)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(services.db.engine, "before_cursor_execute", count)
    try:
        res = c.get("/api/v1/overview/pipelines?q=ov-&sort=-name&strip=2&limit=2", headers=h).get_json()
    finally:
        event.remove(services.db.engine, "before_cursor_execute", count)
    names = [r["name"] for r in res["result"]]
    assert names == ["ov-upstream", "ov-c"] and res["total"] == 4
    assert all(len(r["runs"]) == 2 and r["runs"][0]["id"] > r["runs"][1]["id"] for r in res["result"])
    assert res["result"][1]["runs"][0]["state"] == "succeeded" and res["result"][1]["owner"] == "admin"
    page_queries = [s for s in statements if "pipelines" in s or "runs" in s]
    assert len(page_queries) <= 4, statements  # count, page, strips: no query per pipeline
    bad = c.get("/api/v1/overview/pipelines?sort=nonsense", headers=h)
    assert bad.status_code == 400


def test_grid_lists_runs_by_tasks(client: Any) -> None:
    c, h, services = client
    pid = save(c, h, UPSTREAM.replace("ov-upstream", "ov-grid")).get_json()["id"]
    ids = [c.post(f"/api/v1/pipelines/{pid}/runs", json={}, headers=h).get_json()["id"] for _ in range(3)]
    run_burst(services, 2)
    grid = c.get(f"/api/v1/overview/pipelines/{pid}/grid?limit=2", headers=h).get_json()
    assert grid["tasks"] == ["make", "use"] and [r["id"] for r in grid["runs"]] == ids[1:]
    assert grid["total_runs"] == 3 and len(grid["cells"]) == 4
    assert {(x["task"], x["try_number"], x["state"]) for x in grid["cells"]} == {
        ("make", 1, "succeeded"),
        ("use", 1, "succeeded"),
    }
    older = c.get(f"/api/v1/overview/pipelines/{pid}/grid?limit=2&before={ids[1]}", headers=h).get_json()
    assert [r["id"] for r in older["runs"]] == ids[:1]
    assert c.get("/api/v1/overview/pipelines/999999/grid", headers=h).status_code == 404


def test_schedule_switch_and_save_guard_a_large_backfill(client: Any) -> None:
    c, h, _ = client
    start = (datetime.now(UTC) - timedelta(hours=80)).strftime("%Y-%m-%dT%H:00:00")
    refused = save(c, h, HOURLY.format(start=start, enabled="true"))
    body = refused.get_json()
    assert refused.status_code == 409 and 79 <= body["backfill"]["runs"] <= 81 and body["backfill"]["threshold"] == 50
    assert "ov-hourly" not in [r["name"] for r in c.get("/api/v1/pipelines/", headers=h).get_json()["result"]]
    pid = save(c, h, HOURLY.format(start=start, enabled="false")).get_json()["id"]  # paused: no backfill yet
    row = next(r for r in c.get("/api/v1/overview/pipelines?q=ov-hourly", headers=h).get_json()["result"])
    assert row["schedule"]["text"] == "Every hour" and row["schedule"]["next_fire_at"] is None
    asked = c.post(f"/api/v1/overview/pipelines/{pid}/schedule", json={"enabled": True}, headers=h)
    assert asked.status_code == 409 and asked.get_json()["backfill"]["runs"] >= 79
    done = c.post(f"/api/v1/overview/pipelines/{pid}/schedule", json={"enabled": True, "confirm": True}, headers=h)
    assert done.status_code == 200 and done.get_json()["version"] == 2
    row = next(r for r in c.get("/api/v1/overview/pipelines?q=ov-hourly", headers=h).get_json()["result"])
    assert row["schedule"]["enabled"] and row["schedule"]["next_fire_at"]
    paused = c.post(f"/api/v1/overview/pipelines/{pid}/schedule", json={"enabled": False}, headers=h)
    assert paused.status_code == 200 and paused.get_json()["version"] == 3
    bad = c.post(f"/api/v1/overview/pipelines/{pid}/schedule", json={"enabled": "yes"}, headers=h)
    assert bad.status_code == 400


def test_runs_list_has_a_total_and_date_filters(client: Any) -> None:
    c, h, _ = client
    res = c.get("/api/v1/runs/?limit=1", headers=h).get_json()
    assert len(res["result"]) == 1 and res["total"] > 1
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    future = c.get(f"/api/v1/runs/?since={tomorrow}", headers=h).get_json()
    assert future["result"] == [] and future["total"] == 0
    past = c.get(f"/api/v1/runs/?until={tomorrow}&limit=500", headers=h).get_json()
    assert past["total"] == res["total"]
    assert c.get("/api/v1/runs/?since=not-a-date", headers=h).status_code == 400
    records = c.get(f"/api/v1/schedules/records?since={tomorrow}", headers=h).get_json()
    assert records["result"] == [] and records["total"] == 0
