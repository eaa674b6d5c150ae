"""The example of docs/sdk.md, exactly as written there, against a fresh `myapp standalone`: submitted to the
local installation in-process (same home) and to the running server over REST (MYAPP_URL)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_standalone import free_port, standalone_env, start_standalone, stop_standalone

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
REPO = Path(__file__).resolve().parents[2]


def example() -> str:
    """Return the first python block after '## A complete example' in docs/sdk.md."""
    text = (REPO / "docs" / "sdk.md").read_text()
    section = text.split("## A complete example", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "docs/sdk.md has no python block in its complete example"
    return match.group(1)


def run_example(where: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    where.mkdir(parents=True)
    (where / "hello_sdk.py").write_text(example())
    return subprocess.run(
        [sys.executable, "hello_sdk.py"], cwd=where, env=env, capture_output=True, text=True, timeout=400
    )


def test_the_documented_example_runs_locally_and_over_rest(tmp_path: Path) -> None:
    env = standalone_env(tmp_path)
    env.update({"PYTHONPATH": str(REPO), "MYAPP_CREDENTIALS": str(tmp_path / "no-sign-in.json")})
    proc = start_standalone(tmp_path, env, port := free_port())
    try:
        local = run_example(tmp_path / "local", env)
        assert local.returncode == 0, local.stdout + local.stderr
        remote_env = {k: v for k, v in env.items() if k not in ("MYAPP_HOME", "MYAPP_WORKFLOW_SPACE")}
        remote_env.update(
            {
                "MYAPP_URL": f"http://127.0.0.1:{port}",
                "MYAPP_USERNAME": "admin",
                "MYAPP_PASSWORD": "standalone-pass",
                "MYAPP_HOME": str(tmp_path / "client-home"),
            }
        )
        remote = run_example(tmp_path / "remote", remote_env)
        assert remote.returncode == 0, remote.stdout + remote.stderr
    finally:
        stop_standalone(proc)
    for result, where in ((local, tmp_path / "local"), (remote, tmp_path / "remote")):
        lines = result.stdout.splitlines()
        assert lines[:3] == [
            "{'step0': 'succeeded', 'step1': 'succeeded'}",
            "{'total': 4}",
            "read 'Hello World!' and 2",
        ], result.stdout
        assert (where / "downloads" / "report" / "report.txt").read_text() == "Hello World!\nHello World!"
        assert "template: python" in (where / "hello-sdk.yaml").read_text()
    # Nothing of the local submission was written into the client's own home by the REST one.
    assert not (tmp_path / "client-home" / "myapp.db").exists()
    assert os.path.isdir(tmp_path / "home")
