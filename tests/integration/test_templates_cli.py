"""`myapp template ...` and `myapp pipeline create|templates` as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NO_TASK_ACCOUNTS
from tests.unit.catalog.test_cube_import import RAY_SKLEARN

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
BUILTINS = ("shell@1", "python@1", "http@1", "wait-for@1", "k8s-resource@1", "distributed@1")


@pytest.fixture(scope="module")
def cli(services: Any) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYAPP_")} | NO_TASK_ACCOUNTS
    env.update(
        {
            "MYAPP_HOME": str(services.settings.home),
            "MYAPP_DATABASE_URL": services.settings.effective_database_url,
            "MYAPP_SECRET_KEY": "test-secret",
            "MYAPP_WORKFLOW_SPACE": str(services.settings.workflow_space),
        }
    )

    def run(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "myapp", *args],
            env={**env, **extra_env},
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )

    return run


def test_template_list_shows_the_builtins(cli: Any) -> None:
    out = cli("template", "list")
    assert out.returncode == 0, out.stderr
    for ref in BUILTINS:
        assert ref in out.stdout
    listed = {t["name"]: t for t in json.loads(cli("template", "list", "--json").stdout)}
    assert listed["wait-for"]["monitoring"] is True and listed["http"]["parameters"]["token"]["type"] == "secret"
    shown = cli("template", "show", "http")
    assert "output body: file at body.txt" in shown.stdout and "# http" in shown.stdout


def test_validate_folders(cli: Any, tmp_path: Path) -> None:
    ok = cli("template", "validate", "plugins/http", "plugins/distributed")
    assert ok.returncode == 0 and ok.stdout.splitlines() == [
        "http@1: ok (plugins/http)",
        "distributed@1: ok (plugins/distributed)",
    ]
    assert cli("template", "validate", "plugins").stdout.count(": ok") == len(BUILTINS)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "template.yaml").write_text("name: bad\nparameters:\n  n: {type: integer, default: many}\n")
    out = cli("template", "validate", str(bad))
    assert out.returncode == 2
    assert f"{bad / 'template.yaml'}: parameters.n.default: 'many' is not an integer" in out.stderr


def test_a_broken_plugin_never_breaks_start_up(cli: Any, tmp_path: Path) -> None:
    broken = tmp_path / "more-plugins" / "broken"
    broken.mkdir(parents=True)
    (broken / "template.yaml").write_text("name: broken\nkind: job\n")
    (tmp_path / "more-plugins" / "unreadable").mkdir()
    (tmp_path / "more-plugins" / "unreadable" / "template.yaml").write_text("name: [\n")
    dirs = f"{REPO / 'plugins'},{tmp_path / 'more-plugins'}"
    init = cli("init", MYAPP_PLUGIN_DIRS=dirs, MYAPP_ADMIN_PASSWORD="admin-pass")
    assert init.returncode == 0, init.stderr
    assert f"plugin skipped: {broken / 'template.yaml'}" in init.stderr and "kind" in init.stderr
    assert "unreadable" in init.stderr
    listed = cli("template", "list", MYAPP_PLUGIN_DIRS=dirs)
    assert listed.returncode == 0 and "http@1" in listed.stdout and "broken" not in listed.stdout


def test_import_cube_writes_and_registers(cli: Any, tmp_path: Path) -> None:
    source = tmp_path / "cube.json"
    source.write_text(json.dumps({"ray-sklearn": RAY_SKLEARN}, ensure_ascii=False))
    dry = cli("template", "import-cube", str(source), "--dry-run")
    assert dry.returncode == 0 and "name: ray-sklearn" in dry.stdout and not (tmp_path / "out").exists()
    out = cli("template", "import-cube", str(source), "--out", str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "out" / "ray-sklearn" / "template.yaml").is_file()
    assert "Imported from the Cube Studio" in (tmp_path / "out" / "ray-sklearn" / "README.md").read_text()
    assert "1 templates registered: ray-sklearn@1" in out.stdout
    assert cli("template", "validate", str(tmp_path / "out" / "ray-sklearn")).returncode == 0
    shown = json.loads(cli("template", "show", "ray-sklearn", "--json").stdout)
    assert shown["parameters"]["num_worker"] == {
        "type": "integer",
        "default": 2,
        "required": True,
        "minimum": 1,
        "maximum": 10,
    }
    again = cli("template", "import-cube", str(source), "--out", str(tmp_path / "out"))
    assert again.returncode == 2 and "--force" in again.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(RAY_SKLEARN | {"image_name": ""}))
    failed = cli("template", "import-cube", str(bad), "--no-register", "--out", str(tmp_path / "o2"))
    assert failed.returncode == 2 and "image_name" in failed.stderr


def test_pipeline_create_from_template(cli: Any) -> None:
    listed = cli("pipeline", "templates")
    assert listed.returncode == 0
    assert {line.split()[0] for line in listed.stdout.splitlines()} >= {
        "daily-etl",
        "ml-train-evaluate-publish",
        "parameter-passing",
    }
    # its backfill (every day since 2026-01-01) is above backfill_confirm: refused, then confirmed with --yes
    refused = cli("pipeline", "create", "--from-template", "daily-etl", "--name", "etl-copy", "--project", "team-a")
    assert refused.returncode == 1 and "backfill runs" in refused.stderr and "--yes" in refused.stderr
    assert "etl-copy" not in cli("pipeline", "list").stdout
    out = cli(
        "pipeline", "create", "--from-template", "daily-etl", "--name", "etl-copy", "--project", "team-a", "--yes"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "etl-copy: version 1 (from template daily-etl, project team-a)"
    rows = {r["name"]: r for r in json.loads(cli("pipeline", "list", "--json").stdout)}
    assert rows["etl-copy"]["project"] == "team-a" and rows["etl-copy"]["schedule"]["cron"] == "0 2 * * *"
    ml = json.loads(cli("pipeline", "create", "--from-template", "ml-train-evaluate-publish", "--json").stdout)
    assert (ml["pipeline"], ml["version"], ml["changed"]) == ("ml-train-evaluate-publish", 1, True)
    exported = cli("pipeline", "export", "ml-train-evaluate-publish").stdout
    assert "template: distributed@1" in exported and "template: python@1" in exported
    missing = cli("pipeline", "create", "--from-template", "nope")
    assert missing.returncode == 1 and "available: daily-etl" in missing.stderr
    bad_name = cli("pipeline", "create", "--from-template", "daily-etl", "--name", "Bad_Name")
    assert bad_name.returncode == 2 and "name" in bad_name.stderr
