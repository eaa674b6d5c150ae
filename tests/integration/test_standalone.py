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
from typing import Any

import pytest

from tests.conftest import NO_TASK_ACCOUNTS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def standalone_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYAPP_")} | NO_TASK_ACCOUNTS
    env.update(
        {
            "MYAPP_HOME": str(tmp_path / "home"),
            "MYAPP_WORKFLOW_SPACE": str(tmp_path / "ws"),
            "MYAPP_ADMIN_PASSWORD": "standalone-pass",
        }
    )
    return env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "myapp", *args], env=env, capture_output=True, text=True, timeout=120, cwd=REPO
    )


def start_standalone(
    tmp_path: Path, env: dict[str, str], port: int, *, cwd: Path = REPO, preexec: Any = None
) -> subprocess.Popen[bytes]:
    """Start `myapp standalone` (the installed entry point) and wait until its web server answers."""
    log = (tmp_path / "standalone.log").open("wb")
    entry = Path(sys.executable).with_name("myapp")
    argv = [str(entry)] if entry.exists() else [sys.executable, "-m", "myapp"]
    proc = subprocess.Popen(
        [*argv, "standalone", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=cwd,
        preexec_fn=preexec,
    )
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
        logs = cli(env, "run", "logs", "1", "step2", "--plain").stdout.splitlines()
        assert logs[-2:] == ["outpraram2", "file1"]
        body = json.dumps({"username": "admin", "password": "standalone-pass", "provider": "db"}).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/security/login", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as res:
            token = json.load(res)["access_token"]
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/runs/1", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as res:
            assert json.load(res)["result"]["state"] == "succeeded"
    finally:
        stop_standalone(proc)


@pytest.mark.timeout(480)  # two starts of processes, then a wait that a loaded machine stretches
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
    proc = start_standalone(tmp_path, env, free_port())
    # Counted from the moment it answers (its start took seconds, or a minute on a loaded machine).
    # The line in its log below is what proves the re-send at the start, not the reconciler's.
    ready = time.monotonic()
    try:
        state = ""
        while time.monotonic() - ready < 240 and state not in ("succeeded", "failed"):
            time.sleep(0.5)
            state = json.loads(cli(env, "run", "show", str(run_id), "--json").stdout)["state"]
        assert state == "succeeded", (tmp_path / "standalone.log").read_text()[-3000:]
        assert "1 queued task(s) sent to the worker again" in (tmp_path / "standalone.log").read_text()
    finally:
        stop_standalone(proc)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _wait_gone(pids: list[int], timeout: float) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if not any(Path(f"/proc/{p}").exists() and "zombie" not in _status(p) for p in pids):
            return time.monotonic() - began
        time.sleep(0.1)
    pytest.fail(f"still running after {timeout} s: {[p for p in pids if Path(f'/proc/{p}').exists()]}")


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return "zombie"


def _ignore_sigint() -> None:  # what a script does to a job it starts with `&`
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("how", ["sigint-in-background", "sigterm"])
def test_standalone_is_quiet_and_stops_cleanly_from_any_directory(tmp_path: Path, how: str) -> None:
    port = free_port()
    env = standalone_env(tmp_path)
    elsewhere = tmp_path / "work"
    (elsewhere / "myapp").mkdir(parents=True)  # a folder named like the package: a checkout, say
    proc = start_standalone(
        tmp_path, env, port, cwd=elsewhere, preexec=_ignore_sigint if how.startswith("sigint") else None
    )
    try:
        assert cli(env, "pipeline", "import", "templates/parameter-passing.yaml").returncode == 0
        assert cli(env, "pipeline", "run", "parameter-passing", "--wait").returncode == 0, "the worker did not run it"
        deadline = time.monotonic() + 30
        while "succeeded" not in (tmp_path / "standalone.log").read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        children = _children(proc.pid)
        assert len(children) == 2
    finally:
        proc.send_signal(signal.SIGINT if how.startswith("sigint") else signal.SIGTERM)
        took = _wait_gone([proc.pid, *children], 30)
    proc.wait()
    out = (tmp_path / "standalone.log").read_text()
    lines = [line for line in out.splitlines() if line.strip()]
    assert "restarting" not in out and "Traceback" not in out and "ImportError" not in out, out
    assert lines[0].startswith("myapp standalone: http://"), out
    assert any(line.startswith("run 1 parameter-passing (manual) started") for line in lines), out
    assert any(line.startswith("run 1 parameter-passing (manual) succeeded") for line in lines), out
    # quiet: no Celery banner, beat ticks or access log; at most a shutdown notice besides our lines
    noise = [
        line for line in lines if not line.startswith(("myapp standalone:", "run 1 ")) and "Warm shutdown" not in line
    ]
    assert noise == [], out
    # tests run without task accounts (task_isolation: none): standalone says so once, after its first line
    assert [line for line in lines if "task isolation" in line] == [
        line for line in lines[1:2] if line.startswith("myapp standalone: warning: task isolation:")
    ], out
    assert took < 20, f"stopping took {took:.1f} s"
