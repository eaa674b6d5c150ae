"""Every shipped pipeline template (templates/*.yaml) imports and runs green out of the box on the
local executor, as in standalone: no service of ours or anyone's has to be listening."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cli import cli  # noqa: F401  the CLI fixture (subprocesses on this module's database)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
TEMPLATES = sorted((Path(__file__).resolve().parents[2] / "templates").glob("*.yaml"))


def test_there_are_templates() -> None:
    assert {p.stem for p in TEMPLATES} >= {"parameter-passing", "daily-etl", "ml-train-evaluate-publish"}


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.stem for p in TEMPLATES])
def test_template_runs_green(cli: Any, path: Path) -> None:  # noqa: F811
    created = cli("pipeline", "create", "--from-template", path.stem, "--yes", "--json")
    assert created.returncode == 0, created.stderr
    name = json.loads(created.stdout)["pipeline"]
    started = cli("pipeline", "run", name, "--json")
    assert started.returncode == 0, started.stderr
    run_id = json.loads(started.stdout)["run_id"]
    burst = cli("worker", "--burst")
    assert burst.returncode == 0, burst.stderr
    detail = json.loads(cli("run", "show", str(run_id), "--json").stdout)
    logs = cli("run", "logs", str(run_id)).stdout
    assert detail["state"] == "succeeded", (
        detail["message"],
        [(t["name"], t["state"], t["message"]) for t in detail["tasks"]],
        logs[-3000:],
    )
    assert all(t["state"] == "succeeded" for t in detail["tasks"])
    cli("pipeline", "disable", name)  # its schedule, if any, stops here: nothing else of it runs later
