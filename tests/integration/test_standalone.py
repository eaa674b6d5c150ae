"""`myapp standalone` as the README runs it: SQLite, no Redis, folder broker, web + worker + beat."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_standalone_serves_web_and_runs_a_pipeline(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYAPP_")}
    env.update({"MYAPP_HOME": str(tmp_path / "home"), "MYAPP_WORKFLOW_SPACE": str(tmp_path / "ws"),
                "MYAPP_ADMIN_PASSWORD": "standalone-pass"})
    log = (tmp_path / "standalone.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "myapp", "standalone", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as res:
                    if json.load(res)["status"] == "ok":
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("web server did not answer: " + (tmp_path / "standalone.log").read_text()[-3000:])

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "myapp", *args], env=env, capture_output=True,
                                  text=True, timeout=120, cwd=REPO)

        assert cli("pipeline", "import", "templates/parameter-passing.yaml").returncode == 0
        run = cli("pipeline", "run", "parameter-passing", "--wait")
        assert run.returncode == 0, run.stdout + run.stderr
        logs = cli("run", "logs", "1", "step2").stdout.splitlines()
        assert logs[-2:] == ["outpraram2", "file1"]
        body = json.dumps({"username": "admin", "password": "standalone-pass", "provider": "db"}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/security/login", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as res:
            token = json.load(res)["access_token"]
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/runs/1",
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=10) as res:
            assert json.load(res)["result"]["state"] == "succeeded"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
