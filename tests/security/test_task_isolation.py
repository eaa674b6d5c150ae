"""Adversarial suite, task side (issue 13: B1, B5, B6, B7, B8): what a project member can do through a task.

Users in two projects (conftest: "sec" with owner/member/viewer, "elsewhere" with its own owner);
tasks run on the local executor through real processes. Every test here failed on main before
the fix it guards (each says which finding). docs/security.md is the threat model they check.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from myapp.cli.process import run_burst
from tests.security.conftest import World, unique

pytestmark = pytest.mark.integration
Clients = dict[str, tuple[FlaskClient, dict[str, str]]]
PAYLOAD = "x; id; echo INJECTED $(id -un)"   # issue 13, B8


def run_tasks(world: World, services: Any, tasks: list[dict[str, Any]], *, project: str = "sec",
              parameters: list[dict[str, Any]] | None = None, params: dict[str, str] | None = None,
              client: tuple[FlaskClient, dict[str, str]] | None = None) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Save a pipeline, run it to its end on the local executor; return the run and each task's log."""
    call = world.call if client is None else (
        lambda method, path, **kw: client[0].open(f"/api/v1{path}", method=method,
                                                  headers={**client[1], **kw.pop("headers", {})}, **kw))
    res = call("POST", "/pipelines/", json={"name": unique("iso"), "project": project, "tasks": tasks,
                                            "parameters": parameters or []})
    assert res.status_code == 200, res.get_json()
    started = call("POST", f"/pipelines/{res.get_json()['id']}/runs", json={"params": params or {}})
    assert started.status_code == 201, started.get_json()
    run_id = started.get_json()["id"]
    run_burst(services, 2)
    detail = world.call("GET", f"/runs/{run_id}").get_json()["result"]
    logs = {t["name"]: world.call("GET", f"/runs/{run_id}/logs", query_string={"task": t["name"]}).get_json()["lines"]
            for t in detail["tasks"]}
    return detail, logs


def publish_template(world: World, clients: Clients, template: dict[str, Any]) -> str:
    """Create a template as the member of "sec", submit it, have the admin approve it; return its name."""
    client, auth = clients["member"]
    res = client.post("/api/v1/user_templates/", json={"template": template, "project": "sec"}, headers=auth)
    assert res.status_code in (200, 201), res.get_json()
    tid = res.get_json()["result"]["id"]
    assert client.post(f"/api/v1/user_templates/{tid}/submit", headers=auth).status_code == 200
    assert world.call("POST", f"/user_templates/{tid}/approve", json={"scope": "project"}).status_code == 200
    return str(template["name"])


# B8: inputs never spliced into interpreter code, whatever wraps the interpreter.
@pytest.mark.parametrize("command", [
    ["timeout", "30", "bash", "-c", "echo got: $msg"],
    ["nice", "sh", "-c", "echo got: $msg"],
    ["env", "X=1", "sh", "-c", "echo got: $msg"],
    ["bash", "--rcfile", "/dev/null", "-c", "echo got: $msg"],
    ["stdbuf", "-oL", "bash", "-c", "echo got: $msg"],
    ["nice", "timeout", "30", "/bin/bash", "-c", "echo got: ${msg}"],
])
def test_b8_wrapped_shells_receive_inputs_as_data(world: World, services: Any, command: list[str]) -> None:
    detail, logs = run_tasks(world, services, [{"name": "echo", "image": "x", "command": command,
                                                "inputs": {"msg": {"from": "params.msg"}}}],
                             parameters=[{"name": "msg", "default": "hi"}], params={"msg": PAYLOAD})
    assert detail["state"] == "succeeded", detail
    text = "".join(logs["echo"])
    assert f"got: {PAYLOAD}\n" in text, text
    assert "INJECTED" not in text.replace(f"got: {PAYLOAD}", ""), text
    assert "uid=" not in text, text


def test_b8_a_user_template_splicing_a_parameter_into_wrapped_python_is_refused(clients: Clients) -> None:
    client, auth = clients["member"]
    body = {"template": {"name": unique("wrapped"), "version": "1", "image": "python:3.12-slim",
                         "command": ["nice", "python3", "-c", "print('$(params.msg)')"],
                         "parameters": {"msg": {"type": "string"}}}, "project": "sec"}
    res = client.post("/api/v1/user_templates/", json=body, headers=auth)
    assert res.status_code == 400, res.get_json()
    assert "command[3]" in str(res.get_json()), res.get_json()


@pytest.mark.parametrize("command", [
    ["timeout", "30", "bash", "-c", "echo got: $(params.msg)"],
    ["nice", "sh", "-c", "echo \"got: $(params.msg)\""],
    ["bash", "-c", "echo 'got: $(params.msg)'"],
])
def test_b8_user_template_parameters_reach_wrapped_shell_code_as_data(world: World, services: Any, clients: Clients,
                                                                      command: list[str]) -> None:
    name = publish_template(world, clients, {"name": unique("greeter"), "version": "1", "image": "debian",
                                             "command": command,
                                             "parameters": {"msg": {"type": "string", "required": True}}})
    detail, logs = run_tasks(world, services, [{"name": "greet", "template": f"{name}@1",
                                                "inputs": {"msg": {"from": "params.msg"}}}],
                             parameters=[{"name": "msg", "default": "hi"}], params={"msg": PAYLOAD})
    text = "".join(logs["greet"])
    assert detail["state"] == "succeeded", (detail, text)
    assert "uid=" not in text and "INJECTED root" not in text, text
    assert (f"got: {PAYLOAD}" in text) or ("MYAPP_PARAM_msg" in text), text


def test_b8_a_value_that_would_become_the_interpreter_fails_the_attempt(world: World, services: Any) -> None:
    started = time.monotonic()
    detail, logs = run_tasks(world, services, [{"name": "sneaky", "image": "x", "command": ["$prog", "-c", "$code"],
                                                "inputs": {"prog": {"from": "params.prog"},
                                                           "code": {"from": "params.code"}}}],
                             parameters=[{"name": "prog", "default": "bash"}, {"name": "code", "default": "id"}])
    task = detail["tasks"][0]
    assert task["state"] == "failed" and "interpreter code" in task["message"], task
    assert "uid=" not in "".join(logs["sneaky"])
    assert time.monotonic() - started < 60


# B5: rendering bounded in memory and time; a stopped run frees its worker slot at once.
@pytest.mark.parametrize("bomb", [
    "{% set a = 'x' * 10000 %}{{ ([a]*3000)|map('upper')|join|length }}",     # issue 13: ([a]*30000)|map('upper')
    "{% set a = 'x' * 100000 %}{% set a = ([a]*100)|join %}{{ a|length }}",   # issue 13: ([a]*1000)|join doubling
    "{% set a = 'x' * 600000 %}{% set b = a ~ a %}{{ b|length }}",
])
def test_b5_a_render_bomb_fails_the_attempt_quickly_naming_task_and_field(world: World, services: Any,
                                                                           bomb: str) -> None:
    started = time.monotonic()
    detail, logs = run_tasks(world, services, [{"name": "boom", "template": "shell", "args": {"script": bomb},
                                                "timeout": 5}])
    elapsed = time.monotonic() - started
    task = detail["tasks"][0]
    assert task["state"] == "failed", (task, logs)
    assert "boom" in task["message"] and "args.script" in task["message"], task["message"]
    assert any(word in task["message"] for word in ("larger than", "longer than", "repetition", "given more")), task
    assert elapsed < 20, elapsed


def test_b5_stopping_a_rendering_run_frees_the_worker_for_another_project(world: World, services: Any,
                                                                           tmp_path: Any) -> None:
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO, worker_env

    bomb = "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
    slow = world.call("POST", "/pipelines/", json={"name": unique("slowrender"), "project": "sec", "tasks": [
        {"name": "render", "template": "shell", "args": {"script": bomb}}]}).get_json()["id"]
    quick = world.call("POST", "/pipelines/", json={"name": unique("quick"), "project": "elsewhere", "tasks": [
        {"name": "hello", "template": "shell", "args": {"script": "echo quick"}}]}).get_json()["id"]
    slow_run = world.run(slow)
    log = (tmp_path / "burst.log").open("wb")
    worker = subprocess.Popen([sys.executable, "-m", "myapp", "worker", "--burst", "-c", "1"], cwd=REPO,
                              env=worker_env(services.settings, "filesystem://"), stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        wait_for(lambda: world.call("GET", f"/runs/{slow_run}").get_json()["result"]["tasks"][0]["state"] == "running",
                 60, "the render attempt to start")
        quick_run = world.run(quick)
        stopped_at = time.monotonic()
        assert world.call("POST", f"/runs/{slow_run}/stop").status_code == 200
        wait_for(lambda: world.call("GET", f"/runs/{quick_run}").get_json()["result"]["state"] == "succeeded", 30,
                 "the other project's run to succeed")
        assert time.monotonic() - stopped_at < 30
        assert world.call("GET", f"/runs/{slow_run}").get_json()["result"]["state"] == "stopped"
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def wait_for(condition: Any, seconds: float, what: str) -> None:
    """Poll `condition` until it holds; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.1)
