"""Every built-in template that can run locally, run through the real engine (Celery worker).

http and wait-for against a local server on 127.0.0.1; distributed as a world of one; the
k8s-resource explains that it needs the Kubernetes executor; the ready-made pipelines of
templates/ run end to end; a bad Jinja expression fails its task before any process starts;
secret inputs are masked in the run's details.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from myapp.catalog.plugins import parse_template
from myapp.cli.pipeline import read_spec
from tests.integration.engine_helpers import log_text, save, start, task_lines, wait_finished
from tests.integration.local_http import Script, serve

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_http_calls_checks_and_outputs_the_body(engine_services: Any) -> None:
    script = Script({"/report": [(200, "hello from the server")], "/echo": [(201, "created")]})
    with serve(script) as base:
        pid = save(
            engine_services,
            f"""
            name: http-demo
            tasks:
              - name: call
                template: http
                args: {{url: "{base}/report?run={{{{ run_id }}}}"}}
              - name: post
                template: http
                args: {{url: "{base}/echo", method: POST, body: '{{"a": 1}}', expect_status: 2xx,
                        headers: {{Content-Type: application/json}}, token: s3cret-token}}
              - name: use
                template: shell
                depends_on: [call]
                inputs: {{body: {{from: call.body}}, status: {{from: call.status}}}}
                args: {{script: 'echo "status=$status body=$(cat "$body")"'}}
        """,
        )
        run = wait_finished(engine_services, start(engine_services, pid))
    assert run["state"] == "succeeded", {
        t["name"]: (t["message"], log_text(engine_services, run["id"], t["name"])) for t in run["tasks"]
    }
    assert task_lines(engine_services, run["id"], "use") == ["status=200 body=hello from the server"]
    assert run["by_name"]["call"]["outputs"]["status"] == {"type": "text", "value": "200"}
    method, path, body, headers = next(r for r in script.requests if r[1] == "/echo")
    assert (method, body, headers["Authorization"], headers["Content-Type"]) == (
        "POST",
        '{"a": 1}',
        "Bearer s3cret-token",
        "application/json",
    )
    assert any(r[1] == f"/report?run={run['id']}" for r in script.requests)
    assert "s3cret-token" not in log_text(engine_services, run["id"], "post")


def test_http_fails_on_an_unexpected_status(engine_services: Any) -> None:
    with serve(Script({"/gone": [(404, "no such thing")]})) as base:
        pid = save(
            engine_services,
            f"""
            name: http-fail
            tasks:
              - {{name: call, template: http, args: {{url: "{base}/gone"}}}}
        """,
        )
        run = wait_finished(engine_services, start(engine_services, pid))
    assert run["state"] == "failed"
    assert "status 404 is not the expected 200" in log_text(engine_services, run["id"], "call")


def test_wait_for_polls_a_url_until_it_is_ready_and_times_out_otherwise(engine_services: Any) -> None:
    script = Script({"/health": [(503, "starting"), (200, "warming"), (200, "ready")], "/never": [(503, "down")]})
    with serve(script) as base:
        pid = save(
            engine_services,
            f"""
            name: wait-demo
            tasks:
              - name: ready
                template: wait-for
                args: {{url: "{base}/health", contains: ready, interval: 0.2, timeout: 30}}
              - name: never
                template: wait-for
                args: {{url: "{base}/never", interval: 0.2, timeout: 1}}
        """,
        )
        run = wait_finished(engine_services, start(engine_services, pid))
    tasks = run["by_name"]
    assert (tasks["ready"]["state"], tasks["never"]["state"]) == ("succeeded", "failed")
    ready_log = log_text(engine_services, run["id"], "ready")
    assert "check 3: done" in ready_log and "answered 503" in ready_log
    assert "timed out after 1 s" in log_text(engine_services, run["id"], "never")


def test_wait_for_a_run_through_the_rest_api(engine_services: Any) -> None:
    runs = Script(
        {
            "/api/v1/runs/41": [
                (200, json.dumps({"result": {"state": "running"}})),
                (200, json.dumps({"result": {"state": "succeeded"}})),
            ]
        }
    )
    with serve(runs) as base:
        pid = save(
            engine_services,
            f"""
            name: wait-run
            tasks:
              - name: upstream-run
                template: wait-for
                args: {{run_id: 41, api_url: "{base}", interval: 0.2, timeout: 30}}
        """,
        )
        run = wait_finished(engine_services, start(engine_services, pid))
    assert run["state"] == "succeeded", log_text(engine_services, run["id"], "upstream-run")
    assert runs.requests[0][3]["Authorization"].startswith("Bearer ")  # the task's MYAPP_TOKEN


def test_distributed_runs_locally_as_a_world_of_one(engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: ddp-local
        tasks:
          - name: train
            template: distributed
            args: {workers: 4, script: 'echo "rank=$RANK world=$WORLD_SIZE master=$MASTER_ADDR:$MASTER_PORT"'}
    """,
    )
    run = wait_finished(engine_services, start(engine_services, pid))
    assert run["state"] == "succeeded"
    assert task_lines(engine_services, run["id"], "train") == ["rank=0 world=1 master=127.0.0.1:29500"]


def test_k8s_resource_explains_it_needs_the_kubernetes_executor(engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: resource-local
        tasks:
          - name: job
            template: k8s-resource
            args:
              params: {name: demo}
              manifest: |
                apiVersion: batch/v1
                kind: Job
                metadata: {name: $(params.name)}
    """,
    )
    run = wait_finished(engine_services, start(engine_services, pid))
    assert run["by_name"]["job"]["state"] == "failed"
    assert "kubernetes executor" in log_text(engine_services, run["id"], "job")


def test_a_bad_jinja_expression_fails_the_task_before_anything_starts(engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: bad-jinja
        tasks:
          - {name: fine, template: shell, args: {script: 'echo ok'}}
          - {name: broken, template: shell, args: {script: 'touch started; echo {{ nope.attr }}'}}
          - {name: after, template: shell, depends_on: [broken], args: {script: 'echo never'}}
    """,
    )
    run = wait_finished(engine_services, start(engine_services, pid))
    broken = run["by_name"]["broken"]
    assert (run["state"], broken["state"], run["by_name"]["after"]["state"]) == ("failed", "failed", "upstream_failed")
    assert run["by_name"]["fine"]["state"] == "succeeded"
    message = broken["attempts"][0]["message"]
    assert "task 'broken', field args.script" in message and "nope" in message
    assert broken["attempts"][0]["pid"] is None  # no process was started
    workdir = engine_services.settings.workflow_space / str(run["id"]) / "broken" / "1"
    assert not (workdir / "started").exists()


SECRET_TEMPLATE = {
    "name": "secret-echo",
    "version": "1",
    "command": ["bash", "-c", 'test "$password" = hunter2 && echo checked'],
    "args_style": "env",
    "parameters": {"password": {"type": "secret", "required": True}},
}


def test_secret_inputs_are_masked_in_the_run_details(engine_services: Any) -> None:
    engine_services.templates.sync([parse_template(SECRET_TEMPLATE)], "test", engine_services.clock.now())
    pid = save(
        engine_services,
        """
        name: secret-demo
        parameters: [{name: pw}]
        tasks:
          - name: use
            template: secret-echo
            inputs: {password: {from: params.pw}, visible: {value: shown}}
    """,
    )
    run = wait_finished(engine_services, start(engine_services, pid, {"pw": "hunter2"}))
    assert run["state"] == "succeeded", log_text(engine_services, run["id"], "use")
    inputs = run["by_name"]["use"]["inputs"]
    assert inputs["password"] == {"type": "text", "value": "******"}
    assert inputs["visible"] == {"type": "text", "value": "shown"}
    assert "hunter2" not in json.dumps(run["by_name"]["use"]) + log_text(engine_services, run["id"], "use")


LEAKY_TEMPLATE = {
    "name": "secret-leak",
    "version": "1",
    "args_style": "env",
    "command": ["bash", "-c", 'echo "pw=$password token=$MYAPP_TOKEN"; echo "$password" >&2; echo done'],
    "parameters": {"password": {"type": "secret", "required": True}},
}


def test_a_task_printing_its_secret_and_token_leaves_them_masked_in_the_log(engine_services: Any) -> None:
    engine_services.templates.sync([parse_template(LEAKY_TEMPLATE)], "test", engine_services.clock.now())
    pid = save(
        engine_services,
        """
        name: secret-leak-demo
        parameters: [{name: pw}]
        tasks:
          - {name: leak, template: secret-leak, inputs: {password: {from: params.pw}}}
    """,
    )
    run_id = start(engine_services, pid, {"pw": "correct-horse-battery"})
    token = engine_services.runs.run_token(run_id)
    run = wait_finished(engine_services, run_id)
    text = log_text(engine_services, run["id"], "leak")
    assert run["state"] == "succeeded", text
    assert "pw=****** token=******" in text and "done" in text
    assert "correct-horse-battery" not in text and token not in text


def test_ready_made_ml_pipeline_runs_end_to_end(engine_services: Any) -> None:
    registry = Script({"/models": [(201, '{"ok": true}')]})
    spec = read_spec(str(TEMPLATES / "ml-train-evaluate-publish.yaml"))
    pid = engine_services.pipelines.save(spec, engine_services.clock.now()).pipeline_id
    with serve(registry) as base:
        run = wait_finished(engine_services, start(engine_services, pid, {"registry_url": f"{base}/models"}), 120)
    assert run["state"] == "succeeded", {t["name"]: t["message"] for t in run["tasks"]}
    assert task_lines(engine_services, run["id"], "train")[0] == "rank 0 of 1 (master 127.0.0.1:29500), 3 epochs"
    assert run["by_name"]["evaluate"]["outputs"]["accuracy"]["value"] == "0.85"
    card = json.loads(registry.requests[0][2])
    assert card == {"model": "ml-train-evaluate-publish", "run": run["id"], "accuracy": 0.85}


def test_ml_pipeline_quality_gate_stops_publishing(engine_services: Any) -> None:
    spec = read_spec(str(TEMPLATES / "ml-train-evaluate-publish.yaml"))
    pid = engine_services.pipelines.save(spec, engine_services.clock.now()).pipeline_id
    run = wait_finished(engine_services, start(engine_services, pid, {"epochs": "1", "min_accuracy": "0.9"}), 120)
    assert (run["by_name"]["evaluate"]["state"], run["by_name"]["publish"]["state"]) == ("failed", "upstream_failed")


def test_ready_made_daily_etl_loads_its_execution_date(engine_services: Any) -> None:
    spec = read_spec(str(TEMPLATES / "daily-etl.yaml"))
    pid = engine_services.pipelines.save(spec, engine_services.clock.now()).pipeline_id
    run = wait_finished(engine_services, start(engine_services, pid, {"rows": "4"}), 120)
    assert run["state"] == "succeeded", {t["name"]: t["message"] for t in run["tasks"]}
    day = run["execution_date"][:10]
    assert run["by_name"]["load"]["outputs"]["report"]["value"] == f"day={day} total=100"
    assert f"execution_date: {run['execution_date']}, run {run['id']}" in task_lines(
        engine_services, run["id"], "extract"
    )


def test_parameter_passing_demo_template_runs(engine_services: Any) -> None:
    spec = read_spec(str(TEMPLATES / "parameter-passing.yaml"))
    pid = engine_services.pipelines.save(spec, engine_services.clock.now()).pipeline_id
    run = wait_finished(engine_services, start(engine_services, pid), 120)
    assert run["state"] == "succeeded"
    assert task_lines(engine_services, run["id"], "step2")[0] == "outpraram1"
