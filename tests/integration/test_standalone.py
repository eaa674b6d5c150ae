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


def standalone_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYAPP_")}
    env.update({"MYAPP_HOME": str(tmp_path / "home"), "MYAPP_WORKFLOW_SPACE": str(tmp_path / "ws"),
                "MYAPP_ADMIN_PASSWORD": "standalone-pass"})
    return env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "myapp", *args], env=env, capture_output=True,
                          text=True, timeout=120, cwd=REPO)


def start_standalone(tmp_path: Path, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """Start `myapp standalone` and wait until its web server answers."""
    log = (tmp_path / "standalone.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "myapp", "standalone", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as res:
                if json.load(res)["status"] == "ok":
                    return proc
        except OSError:
            time.sleep(0.5)
    stop_standalone(proc)
    pytest.fail("web server did not answer: " + (tmp_path / "standalone.log").read_text()[-3000:])


def stop_standalone(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_standalone_serves_web_and_runs_a_pipeline(tmp_path: Path) -> None:
    port = free_port()
    env = standalone_env(tmp_path)
    proc = start_standalone(tmp_path, env, port)
    try:
        assert cli(env, "pipeline", "import", "templates/parameter-passing.yaml").returncode == 0
        run = cli(env, "pipeline", "run", "parameter-passing", "--wait")
        assert run.returncode == 0, run.stdout + run.stderr
        logs = cli(env, "run", "logs", "1", "step2").stdout.splitlines()
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
        stop_standalone(proc)


def test_standalone_sends_again_a_queued_task_whose_message_was_lost(tmp_path: Path) -> None:
    # A run queued while standalone was down, its message gone from the folder broker (as when a
    # stopped standalone's worker had already taken it): the run must start when standalone does,
    # not when the reconciler re-sends it (requeue_after, 120 s in the product's configuration).
    env = standalone_env(tmp_path)
    assert cli(env, "init").returncode == 0
    assert cli(env, "pipeline", "import", "templates/parameter-passing.yaml").returncode == 0
    started = cli(env, "pipeline", "run", "parameter-passing", "--json")
    assert started.returncode == 0, started.stderr
    run_id = json.loads(started.stdout)["run_id"]
    messages = [p for p in (tmp_path / "home" / "broker" / "queue").iterdir() if p.is_file()]
    assert messages, "the run's first task was not sent to the folder broker"
    for message in messages:
        message.unlink()
    begun = time.monotonic()
    proc = start_standalone(tmp_path, env, free_port())
    try:
        state = ""
        while time.monotonic() - begun < 60 and state not in ("succeeded", "failed"):
            time.sleep(0.5)
            state = json.loads(cli(env, "run", "show", str(run_id), "--json").stdout)["state"]
        assert state == "succeeded", (tmp_path / "standalone.log").read_text()[-3000:]
        assert "1 queued task(s) sent to the worker again" in (tmp_path / "standalone.log").read_text()
    finally:
        stop_standalone(proc)
