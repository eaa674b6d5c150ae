"""`myapp schedule tick|preview|records` as a user runs them, and GET /api/v1/schedules/..."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from myapp.web.app import create_app
from tests.conftest import NO_TASK_ACCOUNTS
from tests.integration.test_scheduler import pipeline_yaml

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cli(services: Any) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYAPP_")} | NO_TASK_ACCOUNTS
    env.update(
        {
            "MYAPP_HOME": str(services.settings.home),
            "MYAPP_SECRET_KEY": "test-secret",
            "MYAPP_DATABASE_URL": services.settings.effective_database_url,
        }
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "myapp", *args], env=env, capture_output=True, text=True, timeout=120, cwd=REPO
        )

    return run


@pytest.fixture(scope="module")
def shanghai(cli: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("yaml") / "p.yaml"
    path.write_text(pipeline_yaml("cli-sh", "0 2 * * *", tz="Asia/Shanghai", exp=1, mar=1))
    assert cli("pipeline", "import", str(path)).returncode == 0
    return "cli-sh"


def test_tick_at_an_instant_reports_what_it_did(cli: Any, shanghai: str) -> None:
    out = cli("schedule", "tick", "--now", "2026-01-02T18:30", "--json")  # no offset: UTC
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["now"] == "2026-01-02T18:30:00+00:00"
    assert (report["created"], report["expired"], report["launched"]) == (3, 2, 1)
    text = cli("schedule", "tick", "--now", "2026-01-03T02:30:00+08:00")  # the same instant again
    assert text.returncode == 0 and "0 records created" in text.stdout


def test_records_show_local_time_with_offset_status_and_run(cli: Any, shanghai: str) -> None:
    cli("schedule", "tick", "--now", "2026-01-02T18:30Z")
    data = json.loads(cli("schedule", "records", "--pipeline", shanghai, "--json").stdout)
    newest = data["records"][0]
    assert newest["execution_local"] == "2026-01-03 02:00:00 +08:00" and newest["status"] == "launched"
    assert (
        newest["run_state"] == "running" and newest["run_id"] and newest["execution_utc"].startswith("2026-01-02T18:00")
    )
    text = cli("schedule", "records", "--pipeline", shanghai, "--status", "expired").stdout
    assert re.search(r"2026-01-01 02:00:00 \+08:00\s+expired", text) and "launched" not in text, text
    assert re.search(r"^\d+ in all$", text, re.M), text  # a listing says how many there are


def test_records_listing_says_n_of_m_and_filters_by_date(cli: Any, shanghai: str) -> None:
    cli("schedule", "tick", "--now", "2026-01-02T18:30Z")
    total = json.loads(cli("schedule", "records", "--pipeline", shanghai, "--json").stdout)["total"]
    assert total >= 2
    cut = cli("schedule", "records", "--pipeline", shanghai, "--limit", "1").stdout
    assert f"1 of {total} shown" in cut and "--all" in cut
    every = cli("schedule", "records", "--pipeline", shanghai, "--all").stdout
    assert f"{total} in all" in every
    since = json.loads(cli("schedule", "records", "--pipeline", shanghai, "--since", "2026-01-02", "--json").stdout)
    assert since["records"] and all(r["execution_utc"] >= "2026-01-02T00:00" for r in since["records"])
    assert since["total"] < total
    bad = cli("schedule", "records", "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_preview_explains_decisions_in_words(cli: Any, shanghai: str) -> None:
    cli("schedule", "tick", "--now", "2026-01-02T18:30Z")
    out = cli("schedule", "preview", shanghai, "--now", "2026-01-03T03:00:00+08:00", "-n", "2")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert 'cron "0 2 * * *" in Asia/Shanghai' in lines[0] and "1 cron run active" in lines[0]
    assert "2026-01-04 02:00:00 +08:00  wait     waits: max_active_runs 1 reached (1 active)" in lines[1]
    assert "expires 1 older waiting record" in lines[2]


def test_bad_input_is_one_clear_line(cli: Any, shanghai: str) -> None:
    out = cli("schedule", "tick", "--now", "yesterday")
    assert out.returncode == 2 and out.stderr.startswith("myapp: error: ") and "ISO 8601" in out.stderr
    assert cli("schedule", "preview", "no-such-pipeline").returncode == 1


def test_rest_records_and_preview(services: Any, cli: Any, shanghai: str) -> None:
    cli("schedule", "tick", "--now", "2026-01-02T18:30Z")
    app = create_app(services.settings, services)
    client = app.test_client()
    login = client.post(
        "/api/v1/security/login", json={"username": "admin", "password": "admin-pass", "provider": "db"}
    )
    headers = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    pid = services.pipelines.find(shanghai).id
    res = client.get(f"/api/v1/schedules/records?pipeline_id={pid}", headers=headers)
    assert res.status_code == 200
    assert res.get_json()["result"][0]["execution_local"] == "2026-01-03 02:00:00 +08:00"
    res = client.get(f"/api/v1/schedules/preview/{pid}?n=3&now=2026-01-03T03:00:00%2B08:00", headers=headers)
    assert res.status_code == 200 and len(res.get_json()["fire_times"]) == 3
    assert client.get("/api/v1/schedules/preview/99999", headers=headers).status_code == 404
    assert client.get("/api/v1/schedules/records?status=bogus", headers=headers).status_code == 400
    assert client.get("/api/v1/schedules/records").status_code == 401
