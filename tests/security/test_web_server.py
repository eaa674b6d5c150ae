"""The web server under slow clients and large requests (issue 13, B9 and B15), with a real `myapp webserver`.

gunicorn runs as deployed (threaded workers, client timeouts) on this module's database. A
"half-sent" request is a connection that sent a request line and one header, then nothing: two of
them held both sync workers of the old setup for 30 s. Each test failed on the main branch.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import NO_TASK_ACCOUNTS, REPO
from tests.security.conftest import app as app  # noqa: F401  users of projects "sec" and "elsewhere"

pytestmark = pytest.mark.integration
PATIENCE = 20.0  # far below what a stalled worker used to cost (gunicorn's 30 s), far above a healthy answer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class WebServer:
    """`myapp webserver` in a process group of its own; its output goes to `log`."""

    def __init__(self, services: Any, *args: str, client_timeout: int = 10) -> None:
        settings = services.settings
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = Path(settings.home) / f"web-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MYAPP_")} | NO_TASK_ACCOUNTS
        env.update(
            {
                "MYAPP_HOME": str(settings.home),
                "MYAPP_DATABASE_URL": settings.effective_database_url,
                "MYAPP_SECRET_KEY": settings.secret_key,
                "MYAPP_WORKFLOW_SPACE": str(settings.workflow_space),
                "MYAPP_WEB_CLIENT_TIMEOUT": str(client_timeout),
                "PYTHONPATH": str(REPO),
            }
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "myapp", "webserver", "--port", str(self.port), *args],
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.log.read_text()[-3000:])
            try:
                if health(self.base, 2.0) == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"no /health in 120 s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()


def health(base: str, timeout: float = PATIENCE) -> int:
    with urllib.request.urlopen(f"{base}/health", timeout=timeout) as res:
        return int(res.status)


def half_sent(port: int, count: int) -> list[socket.socket]:
    """Open `count` connections that each send the start of a request and then stall."""
    out = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE * 2)
        sock.sendall(b"POST /api/v1/pipelines/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        out.append(sock)
    return out


@pytest.fixture()
def server(services: Any, app: Any) -> Iterator[WebServer]:  # noqa: F811  `app` creates the users first
    web = WebServer(services, "--workers", "2")
    yield web
    web.stop()


def test_b9_half_sent_requests_do_not_stall_the_server(server: WebServer) -> None:
    stalled = half_sent(server.port, 6)
    try:
        for _ in range(5):
            assert health(server.base) == 200
    finally:
        for sock in stalled:
            sock.close()


def test_b9_a_stalled_client_is_disconnected_and_its_thread_freed(services: Any, app: Any) -> None:  # noqa: F811
    web = WebServer(services, "--workers", "1", "--threads", "2", client_timeout=2)
    stalled = half_sent(web.port, 4)  # twice as many as the server has threads
    try:
        assert health(web.base) == 200
        for sock in stalled:  # each is closed by the server after 2 s of silence
            try:
                assert sock.recv(100) == b""
            except ConnectionResetError:
                pass
        assert "slow or stalled client" in web.log.read_text()
    finally:
        for sock in stalled:
            sock.close()
        web.stop()


def test_b9_compose_publishes_on_loopback_and_carries_no_secret() -> None:
    compose = yaml.safe_load((REPO / "docker" / "docker-compose.yml").read_text())
    ports = compose["services"]["web"]["ports"]
    assert all(str(p).startswith("${MYAPP_PUBLISH_ADDRESS:-127.0.0.1}:") for p in ports), ports
    for service in compose["services"].values():
        env = service.get("environment") or {}
        for key in ("MYAPP_SECRET_KEY", "MYAPP_ADMIN_PASSWORD", "POSTGRES_PASSWORD"):
            if key in env:
                assert str(env[key]).startswith("${") and ":?" in str(env[key]), (key, env[key])


def post_json(base: str, path: str, body: Any, token: str) -> tuple[int, Any]:
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=600) as res:
            return int(res.status), json.loads(res.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:300]


def answered_meanwhile(base: str, *requests: Any) -> tuple[list[Any], int]:
    """Run the `requests` in threads at once; ask /health until all end; return their results and how
    many /health answers came back while one of them was still running (a large run is now answered
    at once, 202: the save beside it is what is still slow)."""
    results: dict[int, Any] = {}
    threads = [threading.Thread(target=lambda i=i, r=r: results.__setitem__(i, r())) for i, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    time.sleep(0.15)  # let the requests (a 1 MB body) reach the server first
    answered = 0
    while any(thread.is_alive() for thread in threads):
        status = health(base)
        if any(thread.is_alive() for thread in threads):
            answered += status == 200
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    return [results[i] for i in range(len(requests))], answered


def chain(n: int, script: str) -> list[dict[str, Any]]:
    return [
        {
            "name": f"t{i}",
            "template": "shell",
            "args": {"script": script},
            **({"depends_on": [f"t{i - 1}"]} if i else {}),
        }
        for i in range(n)
    ]


def test_b15_a_10000_task_save_and_run_do_not_hold_the_server(services: Any, app: Any) -> None:  # noqa: F811
    web = WebServer(services, "--workers", "1")  # the standalone setup: one worker process
    try:
        login = urllib.request.Request(
            f"{web.base}/api/v1/security/login",
            method="POST",
            data=json.dumps({"username": "admin", "password": "admin-pass", "provider": "db"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(login, timeout=60) as res:
            token = json.loads(res.read())["access_token"]

        def save(script: str) -> Any:
            return post_json(
                web.base,
                "/api/v1/pipelines/",
                {"name": "huge", "project": "sec", "tasks": chain(10_000, script)},
                token,
            )

        [(status, saved)], during_save = answered_meanwhile(web.base, lambda: save("true"))
        assert status == 200, saved
        # a new version saved while a run of the first one is created
        [(saved_status, _), (run_status, run)], during_both = answered_meanwhile(
            web.base,
            lambda: save("echo 2"),
            lambda: post_json(web.base, f"/api/v1/pipelines/{saved['id']}/runs", {}, token),
        )
        assert saved_status == 200 and run_status == 202 and run["state"] == "creating", run  # a worker creates it
        assert during_save > 0 and during_both > 0, (during_save, during_both)
    finally:
        web.stop()
