"""Adversarial suite, task side (issue 13: B1, B5, B6, B7, B8): what a project member can do through a task.

Users in two projects (conftest: "sec" with owner/member/viewer, "elsewhere" with its own owner);
tasks run on the local executor through real processes. Every test here failed on main before
the fix it guards (each says which finding). docs/security.md is the threat model they check.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from myapp.cli.process import run_burst
from tests.security.conftest import World, unique

pytestmark = pytest.mark.integration
# B1: tasks run as per-project accounts (the tests run as root, so the switch is real). The workflow
# space lies outside pytest's private temporary folders so that a task account can reach its own
# working directory.
WORKFLOW_SPACE = Path(tempfile.mkdtemp(prefix="myapp-iso-ws-"))
SETTINGS_OVERRIDES = {
    "task_isolation": "users" if os.geteuid() == 0 else "auto",
    "task_tmp": "private",
    "workflow_space": WORKFLOW_SPACE,
}
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
Clients = dict[str, tuple[FlaskClient, dict[str, str]]]
PAYLOAD = "x; id; echo INJECTED $(id -un)"  # issue 13, B8


def run_tasks(
    world: World,
    services: Any,
    tasks: list[dict[str, Any]],
    *,
    project: str = "sec",
    parameters: list[dict[str, Any]] | None = None,
    params: dict[str, str] | None = None,
    client: tuple[FlaskClient, dict[str, str]] | None = None,
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Save a pipeline, run it to its end on the local executor; return the run and each task's log."""
    call = (
        world.call
        if client is None
        else (
            lambda method, path, **kw: client[0].open(
                f"/api/v1{path}", method=method, headers={**client[1], **kw.pop("headers", {})}, **kw
            )
        )
    )
    res = call(
        "POST",
        "/pipelines/",
        json={"name": unique("iso"), "project": project, "tasks": tasks, "parameters": parameters or []},
    )
    assert res.status_code == 200, res.get_json()
    started = call("POST", f"/pipelines/{res.get_json()['id']}/runs", json={"params": params or {}})
    assert started.status_code == 201, started.get_json()
    run_id = started.get_json()["id"]
    run_burst(services, 2)
    detail = world.call("GET", f"/runs/{run_id}").get_json()["result"]
    logs = {
        t["name"]: world.call("GET", f"/runs/{run_id}/logs", query_string={"task": t["name"]}).get_json()["lines"]
        for t in detail["tasks"]
    }
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
@pytest.mark.parametrize(
    "command",
    [
        ["timeout", "30", "bash", "-c", "echo got: $msg"],
        ["nice", "sh", "-c", "echo got: $msg"],
        ["env", "X=1", "sh", "-c", "echo got: $msg"],
        ["bash", "--rcfile", "/dev/null", "-c", "echo got: $msg"],
        ["stdbuf", "-oL", "bash", "-c", "echo got: $msg"],
        ["nice", "timeout", "30", "/bin/bash", "-c", "echo got: ${msg}"],
    ],
)
def test_b8_wrapped_shells_receive_inputs_as_data(world: World, services: Any, command: list[str]) -> None:
    detail, logs = run_tasks(
        world,
        services,
        [{"name": "echo", "image": "x", "command": command, "inputs": {"msg": {"from": "params.msg"}}}],
        parameters=[{"name": "msg", "default": "hi"}],
        params={"msg": PAYLOAD},
    )
    assert detail["state"] == "succeeded", detail
    text = "".join(logs["echo"])
    assert f"got: {PAYLOAD}\n" in text, text
    assert "INJECTED" not in text.replace(f"got: {PAYLOAD}", ""), text
    assert "uid=" not in text, text


def test_b8_a_user_template_splicing_a_parameter_into_wrapped_python_is_refused(clients: Clients) -> None:
    client, auth = clients["member"]
    body = {
        "template": {
            "name": unique("wrapped"),
            "version": "1",
            "image": "python:3.12-slim",
            "command": ["nice", "python3", "-c", "print('$(params.msg)')"],
            "parameters": {"msg": {"type": "string"}},
        },
        "project": "sec",
    }
    res = client.post("/api/v1/user_templates/", json=body, headers=auth)
    assert res.status_code == 400, res.get_json()
    assert "command[3]" in str(res.get_json()), res.get_json()


@pytest.mark.parametrize(
    "command",
    [
        ["timeout", "30", "bash", "-c", "echo got: $(params.msg)"],
        ["nice", "sh", "-c", 'echo "got: $(params.msg)"'],
        ["bash", "-c", "echo 'got: $(params.msg)'"],
    ],
)
def test_b8_user_template_parameters_reach_wrapped_shell_code_as_data(
    world: World, services: Any, clients: Clients, command: list[str]
) -> None:
    name = publish_template(
        world,
        clients,
        {
            "name": unique("greeter"),
            "version": "1",
            "image": "debian",
            "command": command,
            "parameters": {"msg": {"type": "string", "required": True}},
        },
    )
    detail, logs = run_tasks(
        world,
        services,
        [{"name": "greet", "template": f"{name}@1", "inputs": {"msg": {"from": "params.msg"}}}],
        parameters=[{"name": "msg", "default": "hi"}],
        params={"msg": PAYLOAD},
    )
    text = "".join(logs["greet"])
    assert detail["state"] == "succeeded", (detail, text)
    assert "uid=" not in text and "INJECTED root" not in text, text
    assert (f"got: {PAYLOAD}" in text) or ("MYAPP_PARAM_msg" in text), text


def test_b8_a_value_that_would_become_the_interpreter_fails_the_attempt(world: World, services: Any) -> None:
    started = time.monotonic()
    detail, logs = run_tasks(
        world,
        services,
        [
            {
                "name": "sneaky",
                "image": "x",
                "command": ["$prog", "-c", "$code"],
                "inputs": {"prog": {"from": "params.prog"}, "code": {"from": "params.code"}},
            }
        ],
        parameters=[{"name": "prog", "default": "bash"}, {"name": "code", "default": "id"}],
    )
    task = detail["tasks"][0]
    assert task["state"] == "failed" and "interpreter code" in task["message"], task
    assert "uid=" not in "".join(logs["sneaky"])
    assert time.monotonic() - started < 60


# B5: rendering bounded in memory and time; a stopped run frees its worker slot at once.
@pytest.mark.parametrize(
    "bomb",
    [
        "{% set a = 'x' * 10000 %}{{ ([a]*3000)|map('upper')|join|length }}",  # issue 13: ([a]*30000)|map('upper')
        "{% set a = 'x' * 100000 %}{% set a = ([a]*100)|join %}{{ a|length }}",  # issue 13: ([a]*1000)|join doubling
        "{% set a = 'x' * 600000 %}{% set b = a ~ a %}{{ b|length }}",
    ],
)
def test_b5_a_render_bomb_fails_the_attempt_quickly_naming_task_and_field(
    world: World, services: Any, bomb: str
) -> None:
    started = time.monotonic()
    detail, logs = run_tasks(
        world, services, [{"name": "boom", "template": "shell", "args": {"script": bomb}, "timeout": 5}]
    )
    elapsed = time.monotonic() - started
    task = detail["tasks"][0]
    assert task["state"] == "failed", (task, logs)
    assert "boom" in task["message"] and "args.script" in task["message"], task["message"]
    assert any(word in task["message"] for word in ("larger than", "longer than", "repetition", "given more")), task
    assert elapsed < 20, elapsed


def test_b5_stopping_a_rendering_run_frees_the_worker_for_another_project(
    world: World, services: Any, tmp_path: Any
) -> None:
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO, worker_env

    bomb = "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
    slow = world.call(
        "POST",
        "/pipelines/",
        json={
            "name": unique("slowrender"),
            "project": "sec",
            "tasks": [{"name": "render", "template": "shell", "args": {"script": bomb}}],
        },
    ).get_json()["id"]
    quick = world.call(
        "POST",
        "/pipelines/",
        json={
            "name": unique("quick"),
            "project": "elsewhere",
            "tasks": [{"name": "hello", "template": "shell", "args": {"script": "echo quick"}}],
        },
    ).get_json()["id"]
    slow_run = world.run(slow)
    log = (tmp_path / "burst.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "myapp", "worker", "--burst", "-c", "1"],
        cwd=REPO,
        env=worker_env(services.settings, "filesystem://"),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: world.call("GET", f"/runs/{slow_run}").get_json()["result"]["tasks"][0]["state"] == "running",
            60,
            "the render attempt to start",
        )
        quick_run = world.run(quick)
        stopped_at = time.monotonic()
        assert world.call("POST", f"/runs/{slow_run}/stop").status_code == 200
        wait_for(
            lambda: world.call("GET", f"/runs/{quick_run}").get_json()["result"]["state"] == "succeeded",
            30,
            "the other project's run to succeed",
        )
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


# B1: task code is untrusted on the local executor.
def _secret_key_file(services: Any) -> str:
    """Write MYAPP_HOME/secret_key as `myapp` does when no key is configured; return its text."""
    path = services.settings.home / "secret_key"
    if not path.exists():
        path.write_text("secret-key-written-by-the-worker-" + unique("k"), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8")


@needs_root
def test_b1_a_task_reads_nothing_of_the_worker_or_of_another_project(world: World, services: Any) -> None:
    key = _secret_key_file(services)
    settings = services.settings
    # Another project's run leaves a log line and a file in its working directory.
    theirs, their_logs = run_tasks(
        world,
        services,
        [
            {
                "name": "private",
                "template": "shell",
                "args": {"script": "echo their-log-line-xyzzy; echo their-file-plugh > kept.txt"},
            }
        ],
        project="elsewhere",
    )
    assert theirs["state"] == "succeeded", theirs
    assert "their-log-line-xyzzy\n" in their_logs["private"]
    their_dir = WORKFLOW_SPACE / str(theirs["id"]) / "private" / "1"
    their_log = settings.logs_dir / str(theirs["id"]) / "private" / "1.log"
    assert (their_dir / "kept.txt").exists() and their_log.exists()
    probe = "\n".join(
        [
            'echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"',
            'cat "/proc/$PPID/environ" && echo READ-ENVIRON',
            f'cat "{settings.home}/secret_key" && echo READ-KEY',
            f'ls "{settings.home}" && echo LISTED-HOME',
            f'cat "{their_log}" && echo READ-THEIR-LOG',
            f'cat "{their_dir}/kept.txt" && echo READ-THEIR-FILE',
            f'ls "{their_dir}" && echo LISTED-THEIR-DIR',
            f'touch "{their_dir}/planted" && echo WROTE-THEIR-DIR',
            f'ln -s "{settings.home}" "{WORKFLOW_SPACE}/999999" && echo PLANTED-RUN-DIR',
            "echo mine > out.txt; mkdir -p data; echo payload > data/f",
            "echo probe-done",
        ]
    )
    detail, logs = run_tasks(
        world,
        services,
        [
            {
                "name": "probe",
                "template": "shell",
                "args": {"script": probe},
                "outputs": [
                    {"name": "text", "path": "out.txt", "type": "text"},
                    {"name": "data", "path": "data", "type": "file"},
                ],
            },
            {
                "name": "consume",
                "template": "shell",
                "depends_on": ["probe"],
                "args": {"script": 'echo "got $text"; cat "$data/f"'},
                "inputs": {"text": {"from": "probe.text"}, "data": {"from": "probe.data"}},
            },
        ],
    )
    text = "".join(logs["probe"])
    sec = world.project_id("sec")
    uid = settings.task_uid_base + sec
    assert f"uid={uid} gid={uid} groups={uid}\n" in text, text
    for leak in (
        "READ-ENVIRON",
        "READ-KEY",
        "LISTED-HOME",
        "READ-THEIR-LOG",
        "READ-THEIR-FILE",
        "LISTED-THEIR-DIR",
        "WROTE-THEIR-DIR",
        "PLANTED-RUN-DIR",
        key,
        "their-log-line-xyzzy",
        "their-file-plugh",
        "MYAPP_DATABASE_URL",
        "MYAPP_SECRET_KEY",
    ):
        assert leak not in text, (leak, text)
    # Denied, or not there at all: the worker's home lies in the host's /tmp, which the task does not see.
    assert text.count("Permission denied") + text.count("No such file or directory") >= 7, text
    assert "probe-done\n" in text
    # The worker still reads what the task produced, and hands it on.
    assert detail["state"] == "succeeded", detail
    by_name = {t["name"]: t for t in detail["tasks"]}
    assert by_name["probe"]["outputs"]["text"] == {"type": "text", "value": "mine"}, by_name["probe"]
    assert logs["consume"][:2] == ["got mine\n", "payload\n"], logs["consume"]
    assert not (their_dir / "planted").exists()


@needs_root
def test_b1_a_task_cannot_signal_another_projects_attempt(world: World, services: Any, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO, worker_env

    release = WORKFLOW_SPACE / "release"  # the victim runs until this exists (its /tmp is its own)
    # The victim's command line carries a mark the attacker looks for in /proc; the attacker's own
    # command line spells it in two halves so that it does not match itself.
    victim = world.call(
        "POST",
        "/pipelines/",
        json={
            "name": unique("victim"),
            "project": "elsewhere",
            "tasks": [
                {
                    "name": "victim",
                    "template": "shell",
                    "timeout": 120,
                    "args": {
                        "script": f"echo VICTIMMARK; while [ ! -e {release} ]; do sleep 0.1; done; echo victim-alive"
                    },
                }
            ],
        },
    )
    attacker = world.call(
        "POST",
        "/pipelines/",
        json={
            "name": unique("attacker"),
            "project": "sec",
            "tasks": [
                {
                    "name": "attack",
                    "template": "shell",
                    "args": {
                        "script": "\n".join(
                            [
                                "m=VICTIM; m=${m}MARK; found=0",
                                "for d in /proc/[0-9]*; do",
                                '  if { tr "\\0" " " < "$d/cmdline"; } 2>/dev/null | grep -q "echo $m"; then',
                                "    found=1; pid=${d#/proc/}",
                                '    if kill -9 "$pid" 2>/dev/null; then echo "KILLED $pid"; else echo "DENIED $pid"; fi',
                                '    cat "$d/environ" >/dev/null 2>&1 && echo "READ-ENV $pid"',
                                "  fi",
                                "done",
                                'echo "found=$found"',
                            ]
                        )
                    },
                }
            ],
        },
    )
    victim_run = world.run(victim.get_json()["id"])
    log = (tmp_path / "burst.log").open("wb")

    def burst_worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "myapp", "worker", "--burst", "-c", "1"],
            cwd=REPO,
            env=worker_env(services.settings, "filesystem://"),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    workers = [burst_worker()]  # one worker per run, so that both attempts run at once
    try:
        wait_for(
            lambda: (
                "VICTIMMARK\n"
                in world.call("GET", f"/runs/{victim_run}/logs", query_string={"task": "victim"}).get_json()["lines"]
            ),
            60,
            "the victim to start",
        )
        attack_run = world.run(attacker.get_json()["id"])
        workers.append(burst_worker())
        wait_for(
            lambda: world.call("GET", f"/runs/{attack_run}").get_json()["result"]["state"] in ("succeeded", "failed"),
            60,
            "the attacker to end",
        )
        release.touch()
        wait_for(
            lambda: world.call("GET", f"/runs/{victim_run}").get_json()["result"]["state"] in ("succeeded", "failed"),
            60,
            "the victim to end",
        )
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    attack = "".join(world.call("GET", f"/runs/{attack_run}/logs", query_string={"task": "attack"}).get_json()["lines"])
    assert "found=1" in attack and "DENIED" in attack, attack
    assert "KILLED" not in attack and "READ-ENV" not in attack, attack
    assert world.call("GET", f"/runs/{victim_run}").get_json()["result"]["state"] == "succeeded"


@needs_root
def test_b1_an_output_linked_to_another_projects_file_is_refused(world: World, services: Any) -> None:
    theirs, _ = run_tasks(
        world,
        services,
        [{"name": "keep", "template": "shell", "args": {"script": "echo their-secret-frob > theirs.txt"}}],
        project="elsewhere",
    )
    assert theirs["state"] == "succeeded", theirs
    their_file = WORKFLOW_SPACE / str(theirs["id"]) / "keep" / "1" / "theirs.txt"
    link = f"/tmp/{WORKFLOW_SPACE.name}-link"
    detail, logs = run_tasks(
        world,
        services,
        [
            {
                "name": "steal",
                "template": "shell",
                "args": {"script": f"ln -sf {their_file} {link}"},
                "outputs": [{"name": "loot", "path": link, "type": "text"}],
            }
        ],
    )
    task = detail["tasks"][0]
    assert task["state"] == "failed" and "does not belong to the task's account" in task["message"], task
    assert "their-secret-frob" not in str(detail)


# Every attempt has a /tmp of its own, as a pod has (a root worker: a mount namespace per attempt). Before,
# two attempts writing the declared output /tmp/out raced, and another project could pre-create it.
@needs_root
def test_b1_concurrent_attempts_writing_one_absolute_output_path_each_read_their_own(
    world: World, services: Any
) -> None:
    planted, _ = run_tasks(
        world,
        services,
        [{"name": "plant", "template": "shell", "args": {"script": "echo planted > /tmp/out; touch /tmp/left-behind"}}],
        project="elsewhere",
    )
    assert planted["state"] == "succeeded", planted
    sync = WORKFLOW_SPACE / unique("sync")  # where both attempts of "sec" see each other start
    sync.mkdir(mode=0o777)
    sync.chmod(0o777)
    script = "\n".join(
        [
            'ls -A /tmp | tr "\\n" " " | sed "s/^/tmp: /"; echo',
            'echo "mine-$MYAPP_RUN_ID" > /tmp/out',
            f'touch "{sync}/$MYAPP_RUN_ID"',
            f'i=0; while [ "$(ls {sync} | wc -l)" -lt 2 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done',
            f'[ "$(ls {sync} | wc -l)" -ge 2 ] && echo met',
            "sleep 0.3; cat /tmp/out",
        ]
    )
    res = world.call(
        "POST",
        "/pipelines/",
        json={
            "name": unique("same-path"),
            "project": "sec",
            "tasks": [
                {
                    "name": "w",
                    "template": "shell",
                    "args": {"script": script},
                    "outputs": [{"name": "out", "path": "/tmp/out", "type": "text"}],
                }
            ],
        },
    )
    assert res.status_code == 200, res.get_json()
    runs = [world.run(res.get_json()["id"]) for _ in range(2)]
    run_burst(services, 2)
    for run_id in runs:
        detail = world.call("GET", f"/runs/{run_id}").get_json()["result"]
        lines = world.call("GET", f"/runs/{run_id}/logs", query_string={"task": "w"}).get_json()["lines"]
        assert detail["state"] == "succeeded", (detail, lines)
        assert "met\n" in lines, lines  # the two attempts ran at the same time
        assert detail["tasks"][0]["outputs"]["out"] == {"type": "text", "value": f"mine-{run_id}"}, detail
        # Nothing of another attempt in its /tmp: only the workflow space, kept at its path.
        assert lines[0] == f"tmp: {WORKFLOW_SPACE.name} \n", lines


def test_b1_health_says_how_tasks_are_kept_apart(clients: Clients) -> None:
    body = clients["anonymous"][0].get("/health").get_json()
    expected = "users" if os.geteuid() == 0 else "single-project"
    assert body["task_isolation"]["mode"] == expected, body


# B7: a task receiving secrets takes no environment that loads code; the log masker knows encodings.
B7_SECRET = "T0ken/of+the=template!default"


def test_b7_pythonpath_to_an_upstream_sitecustomize_is_refused_for_a_task_with_secrets(
    world: World, clients: Clients
) -> None:
    name = publish_template(
        world,
        clients,
        {
            "name": unique("pyrun"),
            "version": "1",
            "image": "python:3.12-slim",
            "command": ["python3", "-c", "print('template ran')"],
            "parameters": {"token": {"type": "secret", "default": B7_SECRET}},
        },
    )
    hook = "import base64, os; print(base64.b64encode(os.environ['token'].encode()).decode())"
    client, auth = clients["member"]
    for key in ("PYTHONPATH", "LD_PRELOAD", "PYTHONSTARTUP", "NODE_OPTIONS", "BASH_ENV", "PERL5OPT"):
        res = client.post(
            "/api/v1/pipelines/",
            headers=auth,
            json={
                "name": unique("b7"),
                "project": "sec",
                "tasks": [
                    {
                        "name": "plant",
                        "template": "shell",
                        "args": {"script": f"mkdir -p lib && printf '%s\\n' \"{hook}\" > lib/sitecustomize.py"},
                        "outputs": [{"name": "lib", "path": "lib", "type": "file"}],
                    },
                    {
                        "name": "use",
                        "template": f"{name}@1",
                        "env": {key: "inputs/lib/lib"},
                        "inputs": {"lib": {"from": "plant.lib"}},
                    },
                ],
            },
        )
        assert res.status_code == 400, (key, res.get_json())
        assert f"tasks[use].env.{key}" in str(res.get_json()) and "secret parameter 'token'" in str(res.get_json())


def test_b7_a_secret_printed_encoded_is_masked_in_the_log(world: World, services: Any, clients: Clients) -> None:
    name = publish_template(
        world,
        clients,
        {
            "name": unique("withkey"),
            "version": "1",
            "image": "debian",
            "command": ["bash", "-c", "$(params.script)"],
            "parameters": {
                "script": {"type": "text", "script": True, "required": True},
                "token": {"type": "secret", "default": B7_SECRET},
            },
        },
    )
    script = "\n".join(
        [
            'printf %s "$token" | base64 -w0; echo',
            'printf %s "x$token" | base64 -w0; echo',
            'printf %s "xy$token" | base64 -w0; echo',
            'printf %s "$token" | od -An -tx1 | tr -d " \\n"; echo',
            "python3 -c \"import os, urllib.parse as u; print(u.quote(os.environ['token'], safe=''))\"",
            "python3 -c \"import os, urllib.parse as u; print(u.quote_plus(os.environ['token']))\"",
            "python3 -c \"import os, base64; print(base64.urlsafe_b64encode(os.environ['token'].encode()).decode())\"",
            'echo "$token" | tr a-z A-Z',
            "echo done",
        ]
    )
    detail, logs = run_tasks(world, services, [{"name": "leak", "template": f"{name}@1", "args": {"script": script}}])
    text = "".join(logs["leak"])
    assert detail["state"] == "succeeded", (detail, text)
    import base64
    from urllib.parse import quote, quote_plus

    raw = B7_SECRET.encode()
    for form in (
        B7_SECRET,
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        raw.hex(),
        quote(B7_SECRET, safe=""),
        quote_plus(B7_SECRET),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ):
        assert form not in text, (form, text)
    for shift in ("x", "xy"):
        encoded = base64.b64encode((shift + B7_SECRET).encode()).decode()
        assert encoded[4:-4] not in text, (shift, text)
    assert text.count("******") >= 7, text
    assert "done\n" in text


def test_b1_every_page_warns_when_tasks_cannot_be_kept_apart(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from myapp.executor import task_user
    from tests.security.test_web_hardening import form_login

    client = app.test_client()
    assert form_login(client, "viewer", "viewer-pass").status_code in (200, 302)
    page = client.get("/pipelines/").get_data(as_text=True)
    assert 'id="myapp-task-isolation"' not in page, page  # this module demands task accounts
    # task_isolation: auto, run by a user that is not root
    monkeypatch.setattr("myapp.web.pages.describe", lambda setting: task_user.describe("auto", 1000))
    page = client.get("/pipelines/").get_data(as_text=True)
    assert 'id="myapp-task-isolation"' in page and "Tasks are not isolated" in page, page
    assert "cannot switch users" in page, page


def test_b1_a_worker_that_cannot_switch_users_runs_one_projects_tasks_only(
    world: World, services: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13 item 2: without root, tasks of a second project are refused unless the operator opts in."""
    from myapp.executor import task_user, worker

    monkeypatch.setattr(worker, "decide", lambda setting, euid: task_user.decide("auto", 1000))  # not root
    bound = services.settings.home / "task_project"
    bound.unlink(missing_ok=True)
    try:
        mine, _ = run_tasks(world, services, [{"name": "first", "template": "shell", "args": {"script": "echo ok"}}])
        assert mine["state"] == "succeeded", mine
        theirs, _ = run_tasks(
            world,
            services,
            [{"name": "other", "template": "shell", "args": {"script": "echo SHOULD-NOT-RUN"}}],
            project="elsewhere",
        )
        message = theirs["tasks"][0]["message"]
        assert theirs["state"] == "failed" and "refused: this worker cannot switch users" in message, theirs
        assert "MYAPP_TASK_ISOLATION=none" in message and not theirs["tasks"][0]["attempts"][0].get("pid"), theirs
        again, _ = run_tasks(world, services, [{"name": "again", "template": "shell", "args": {"script": "true"}}])
        assert again["state"] == "succeeded", again  # the first project still runs
    finally:
        bound.unlink(missing_ok=True)


# B1 for the shipped demo: with task accounts, outputs written at one fixed /tmp path by two projects
# collided (the second project's account may not overwrite the first one's file: Permission denied).
def test_the_shipped_parameter_passing_pipeline_runs_green_in_two_projects_under_task_accounts(
    world: World, services: Any
) -> None:
    import yaml

    spec = yaml.safe_load((Path(__file__).parents[2] / "templates" / "parameter-passing.yaml").read_text())
    for project in ("sec", "elsewhere", "sec"):
        detail, logs = run_tasks(world, services, spec["tasks"], project=project)
        assert detail["state"] == "succeeded", (project, detail, logs)
        assert "".join(logs["step2"]).endswith("outpraram2\nfile1\n"), (project, logs)


# B1 side effect: under task accounts the built-in `http` template found no `myapp` to import (the
# worker's Python and installation are private to it), so every http and wait-for task failed.
@needs_root
def test_the_builtin_http_template_runs_under_a_task_account(world: World, services: Any) -> None:
    import http.server
    import threading

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802  the standard library's name
            body = b"pong from the test"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/ping"
        detail, logs = run_tasks(world, services, [{"name": "ping", "template": "http", "args": {"url": url}}])
    finally:
        server.shutdown()
    assert detail["state"] == "succeeded", (detail, logs)
    assert detail["tasks"][0]["outputs"]["status"]["value"] == "200", detail
    assert "pong from the test\n" in logs["ping"], logs
