"""Malformed and hostile pipelines through the REST API and `myapp pipeline import` (issue 7 item 2).

Each hostile input gets a clear 4xx (or a failed run naming the task and field) quickly, and the
database is unchanged (rows counted before and after). Inputs that must be accepted (shell
metacharacters in a parameter) reach a real process byte for byte.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from myapp.cli.process import run_burst
from myapp.core.errors import RenderError
from myapp.core.render import RenderContext, render_text
from myapp.db.tables import Pipeline, PipelineVersion, Project, Run
from tests.conftest import NO_TASK_ACCOUNTS
from tests.security.conftest import World, unique

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
TABLES = (Project, Pipeline, PipelineVersion, Run)


def counts(services: Any) -> tuple[int, ...]:
    with services.db.read() as s:
        return tuple(int(s.scalar(select(func.count()).select_from(t))) for t in TABLES)


def small(name: str, **extra: str) -> str:
    head = "".join(f"{k}: {v}\n" for k, v in extra.items())
    return f"name: {name}\nproject: sec\n{head}tasks:\n  - {{name: a, template: shell, args: {{script: 'true'}}}}\n"


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(9)
)
HOSTILE = {
    "over 2 MiB": small("big") + "description: '" + "x" * (2 * 1024 * 1024 + 10) + "'\n",
    "deep nesting": "name: deep\ntasks: " + "[" * 5000 + "]" * 5000 + "\n",
    "alias bomb": ALIAS_BOMB,
    "path traversal name": small("../../etc/passwd"),
    "unicode name": small("管道-ünï"),
    "path traversal task": "name: trav\nproject: sec\ntasks:\n  - {name: ../x, template: shell, args: {script: 'true'}}\n",
    "NUL in name": small("a\u0000b"),
    "invalid cron": small("badcron", schedule="{type: crontab, cron: '61 25 * * *'}"),
    "cron with text": small("badcron2", schedule="{type: crontab, cron: '* * * * * ; rm -rf /'}"),
    "invalid timezone": small("badtz", schedule="{type: crontab, cron: '0 1 * * *', timezone: 'Mars/Olympus'}"),
    "traversal timezone": small("badtz2", schedule="{type: crontab, cron: '0 1 * * *', timezone: '../../etc/passwd'}"),
    "not a mapping": "- just\n- a list\n",
    "binary junk": "\x00\x01\x02\xff{{{",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_pipeline_is_a_clean_4xx_and_changes_nothing(
    clients: dict[str, tuple[FlaskClient, dict[str, str]]], services: Any, case: str
) -> None:
    client, auth = clients["admin"]
    before = counts(services)
    for url in ("/api/v1/pipelines/", "/api/v1/pipelines/validate"):
        started = time.monotonic()
        res = client.post(
            url,
            data=HOSTILE[case].encode("utf-8", "surrogatepass"),
            headers={**auth, "Content-Type": "application/yaml"},
        )
        assert 400 <= res.status_code < 500, (case, res.status_code, res.get_data(as_text=True)[:300])
        assert time.monotonic() - started < 5, case
        body = res.get_json()
        assert body and body.get("message"), (case, res.get_data(as_text=True)[:300])
        assert "Traceback" not in body["message"] and "SELECT" not in body["message"]
    assert counts(services) == before, case


def test_request_over_the_size_cap_is_413(
    clients: dict[str, tuple[FlaskClient, dict[str, str]]], services: Any
) -> None:
    client, auth = clients["admin"]
    before = counts(services)
    res = client.post(
        "/api/v1/pipelines/", data=b"x" * (5 * 1024 * 1024), headers={**auth, "Content-Type": "application/yaml"}
    )
    assert res.status_code == 413 and counts(services) == before


def test_a_10000_task_dag_is_answered_fast(clients: dict[str, tuple[FlaskClient, dict[str, str]]]) -> None:
    client, auth = clients["admin"]
    tasks = [
        {
            "name": f"t{i}",
            "template": "shell",
            "args": {"script": "true"},
            **({"depends_on": [f"t{i - 1}"]} if i else {}),
        }
        for i in range(10_000)
    ]
    started = time.monotonic()
    res = client.post(
        "/api/v1/pipelines/validate", json={"name": "huge", "project": "sec", "tasks": tasks}, headers=auth
    )
    elapsed = time.monotonic() - started
    assert res.status_code in (200, 400), res.get_data(as_text=True)[:300]
    if res.status_code == 400:
        assert res.get_json()["message"]
    assert elapsed < 30, f"validating 10,000 tasks took {elapsed:.1f}s"


def test_shell_metacharacters_in_a_parameter_reach_the_process_unharmed(
    world: World, services: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    hostile = f"$(touch {marker}); `touch {marker}` | & ; > < * ? ' \" \\ {{{{ 7*7 }}}} $HOME %s ../../"
    pipeline_id = world.pipeline(cron=None)
    res = world.call("POST", f"/pipelines/{pipeline_id}/runs", json={"params": {"who": hostile}})
    assert res.status_code == 201
    run_id = res.get_json()["id"]
    run_burst(services, 1)
    detail = world.call("GET", f"/runs/{run_id}").get_json()["result"]
    assert detail["state"] == "succeeded", detail
    logs = world.call("GET", f"/runs/{run_id}/logs", query_string={"task": "hello"}).get_json()["lines"]
    assert f"hello {hostile}\n" in logs, logs
    assert not marker.exists()


def test_jinja_injection_in_a_run_parameter_is_data(world: World, services: Any) -> None:
    pipeline_id = world.pipeline(cron=None)
    payload = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    run_id = world.call("POST", f"/pipelines/{pipeline_id}/runs", json={"params": {"who": payload}}).get_json()["id"]
    run_burst(services, 1)
    logs = world.call("GET", f"/runs/{run_id}/logs", query_string={"task": "hello"}).get_json()["lines"]
    assert f"hello {payload}\n" in logs


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
        ("{% set s = 'x' * 900000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}", "iterations"),
        ("{% for a in range(10**9) %}{% endfor %}", "range"),
        ("{{ 'a' * 10**9 }}", "repetition"),
    ],
)
def test_hostile_jinja_fails_fast_naming_task_and_field(text: str, words: str) -> None:
    ctx = RenderContext(
        creator="c",
        runner="r",
        pipeline_id=1,
        pipeline_name="p",
        run_id=1,
        task_name="t",
        cluster_name="local",
        execution_date=None,
        params={},
    )  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(RenderError) as info:
        render_text(text, ctx, {}, task="train", field="args.script")
    assert time.monotonic() - started < 2
    message = str(info.value)
    assert "train" in message and "args.script" in message and words in message, message


def test_a_jinja_loop_bomb_fails_the_run_naming_task_and_field(world: World, services: Any) -> None:
    bomb = "{% set s = 'x' * 900000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"
    res = world.call(
        "POST",
        "/pipelines/",
        json={
            "name": unique("bomb"),
            "project": "sec",
            "tasks": [{"name": "boom", "template": "shell", "args": {"script": bomb}}],
        },
    )
    assert res.status_code == 200, res.get_json()
    run_id = world.run(res.get_json()["id"])
    started = time.monotonic()
    run_burst(services, 1)
    assert time.monotonic() - started < 30
    detail = world.call("GET", f"/runs/{run_id}").get_json()["result"]
    task = detail["tasks"][0]
    assert detail["state"] == "failed" and "args.script" in (task["message"] + str(task["attempts"])), detail


def test_oversized_text_output_fails_naming_task_and_output_and_long_lines_are_cut(world: World, services: Any) -> None:
    res = world.call(
        "POST",
        "/pipelines/",
        json={
            "name": unique("outs"),
            "project": "sec",
            "tasks": [
                {
                    "name": "big-out",
                    "template": "shell",
                    "args": {"script": "head -c 1500 /dev/zero | tr '\\0' x > out.txt"},
                    "outputs": [{"name": "report", "path": "out.txt"}],
                },
                {
                    "name": "long-line",
                    "template": "shell",
                    "args": {"script": "head -c 200000 /dev/zero | tr '\\0' y; echo"},
                },
            ],
        },
    )
    assert res.status_code == 200, res.get_json()
    run_id = world.run(res.get_json()["id"])
    run_burst(services, 2)
    detail = world.call("GET", f"/runs/{run_id}").get_json()["result"]
    tasks = {t["name"]: t for t in detail["tasks"]}
    failed = tasks["big-out"]
    text = failed["message"] + str(failed["attempts"])
    assert failed["state"] == "failed" and "report" in text and "1000" in text, failed
    assert tasks["long-line"]["state"] == "succeeded", tasks["long-line"]
    lines = world.call("GET", f"/runs/{run_id}/logs", query_string={"task": "long-line"}).get_json()["lines"]
    assert any("line cut" in line for line in lines) and max(len(line) for line in lines) < 100_000


@pytest.mark.parametrize(
    "case", ["over 2 MiB", "deep nesting", "alias bomb", "path traversal name", "invalid cron", "invalid timezone"]
)
def test_pipeline_import_refuses_hostile_files(services: Any, tmp_path: Path, case: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYAPP_")} | NO_TASK_ACCOUNTS
    env.update(
        {
            "MYAPP_HOME": str(services.settings.home),
            "MYAPP_DATABASE_URL": services.settings.effective_database_url,
            "MYAPP_SECRET_KEY": services.settings.secret_key,
            "MYAPP_WORKFLOW_SPACE": str(services.settings.workflow_space),
        }
    )
    path = tmp_path / "hostile.yaml"
    path.write_text(HOSTILE[case], encoding="utf-8")
    before = counts(services)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "myapp", "pipeline", "import", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr and done.stderr.strip(), done.stderr[-2000:]
    assert time.monotonic() - started < 60
    assert counts(services) == before
