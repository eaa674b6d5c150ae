"""Adversarial suite, secrets on the Kubernetes executor (issue 13 B6, B7), on FakeKubeServer and on the real
API server with the node simulator (`backends()`: a real Celery worker and `myapp k8s-watcher` each).

The local executor's variants are in test_secrets.py and test_task_isolation.py; here what differs
on Kubernetes: a secret reaches the pod through the attempt's own Secret (`secretKeyRef`), never as
a literal value in the pod spec, the launch record or what a viewer reads (B6); an environment
variable that loads code is refused for a pod receiving secrets, also for a version stored before
the rule (the attempt fails before any pod exists) (B7); a secret a pod prints encoded (base64 at
each alignment, URL-safe base64, hex) is masked in the run's log (B7).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from myapp.catalog.plugins import parse_template
from myapp.db.run_views import run_detail
from myapp.db.sealed import open_tree
from myapp.db.tables import Pipeline, PipelineVersion, Run
from tests.integration.engine_helpers import log_text, poll, save, start, wait_finished, wait_until
from tests.integration.k8s_env import Cluster, backends, k8s_cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
TEMPLATE_SECRET = "T0ken/of+the=template!default"  # a template's secret default (B7's target)
RUN_SECRET = "run-value-of-a-secret-param"  # a run's value of a `secret: true` global parameter
PRINT_ENCODED = "; ".join(
    [
        'printf %s "$token" | base64 -w0; echo',
        'printf %s "x$token" | base64 -w0; echo',
        'printf %s "xy$token" | base64 -w0; echo',
        'printf %s "$token" | od -An -tx1 | tr -d " \\n"; echo',
        'printf %s "$token" | base64 -w0 | tr "+/" "-_" | tr -d "="; echo',
        'echo "key=$key"',
        "sleep 2",
        "echo done",
    ]
)


@pytest.fixture(scope="module", params=backends())
def cluster(request: pytest.FixtureRequest, services: Any, broker_url: str) -> Iterator[Cluster]:
    with k8s_cluster(services, broker_url, backend=request.param) as running:
        services.templates.sync(
            [
                parse_template(
                    {
                        "name": "k8s-keyed",
                        "version": "1",
                        "args_style": "env",
                        "image": "bash:5",
                        "command": ["bash", "-c", PRINT_ENCODED],
                        "parameters": {
                            "token": {"type": "secret", "default": TEMPLATE_SECRET},
                            "key": {"type": "secret", "required": True},
                        },
                    }
                )
            ],
            "test",
            services.clock.now(),
        )
        yield running


def running_pod(cluster: Cluster, run_id: int, task: str) -> dict[str, Any]:
    data = wait_until(
        cluster.services,
        run_id,
        lambda d: d["by_name"][task]["attempts"] and d["by_name"][task]["attempts"][-1]["pods"],
        timeout=120,
        what=f"the pod of {task}",
    )
    name = str(data["by_name"][task]["attempts"][-1]["pods"][0])
    poll(
        lambda: ((cluster.get_pod(name) or {}).get("status") or {}).get("phase") in ("Running", "Succeeded"),
        f"pod {name} to run",
        timeout=120,
    )
    return cluster.get_pod(name) or {}


def keyed_pipeline(svc: Any, name: str, env: str = "") -> int:
    return save(
        svc,
        f"""
        name: {name}
        parameters: [{{name: key, secret: true}}]
        tasks:
          - {{name: use, template: k8s-keyed, inputs: {{key: {{from: params.key}}}}{env}}}
    """,
    )


def test_b6_k8s_secrets_reach_the_pod_only_through_its_attempt_secret(cluster: Cluster) -> None:
    svc = cluster.services
    run_id = start(svc, keyed_pipeline(svc, "k8s-b6"), {"key": RUN_SECRET})
    pod = running_pod(cluster, run_id, "use")
    name = pod["metadata"]["name"]
    spec_text = json.dumps(pod)
    assert TEMPLATE_SECRET not in spec_text and RUN_SECRET not in spec_text
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    for key in ("token", "key"):
        assert "value" not in env[key] and env[key]["valueFrom"]["secretKeyRef"] == {
            "name": f"{name}-secret",
            "key": key,
        }, env[key]
    data = cluster.launcher.get_secret_data(f"{name}-secret")
    assert (data["token"], data["key"]) == (TEMPLATE_SECRET, RUN_SECRET)
    run = wait_finished(svc, run_id, timeout=120)
    assert run["state"] == "succeeded", log_text(svc, run_id, "use")
    with svc.db.read() as s:  # what a viewer reads: run params, inputs, the attempt's launch record
        shown = json.dumps(run_detail(s, run_id), default=str)
        stored = s.scalar(select(Run.params).where(Run.id == run_id))
    assert TEMPLATE_SECRET not in shown and RUN_SECRET not in shown and "******" in shown
    assert RUN_SECRET not in json.dumps(stored) and open_tree(stored)["key"] == RUN_SECRET  # sealed at rest
    poll(
        lambda: cluster.launcher.get_secret_data(f"{name}-secret") == {},
        "the Secret to go with the attempt",
        timeout=60,
    )


def test_b7_k8s_a_secret_a_pod_prints_encoded_is_masked_in_the_log(cluster: Cluster) -> None:
    svc = cluster.services
    run_id = start(svc, keyed_pipeline(svc, "k8s-b7-log"), {"key": RUN_SECRET})
    run = wait_finished(svc, run_id, timeout=120)
    text = log_text(svc, run_id, "use")
    assert run["state"] == "succeeded", text
    raw = TEMPLATE_SECRET.encode()
    for form in (
        TEMPLATE_SECRET,
        RUN_SECRET,
        base64.b64encode(raw).decode().rstrip("="),
        raw.hex(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ):
        assert form not in text, (form, text)
    for shift in ("x", "xy"):
        assert base64.b64encode((shift + TEMPLATE_SECRET).encode()).decode()[4:-4] not in text, (shift, text)
    assert "key=******" in text and "done" in text and text.count("******") >= 6, text


def test_b7_k8s_code_loading_env_is_refused_for_a_pod_receiving_secrets(cluster: Cluster) -> None:
    svc = cluster.services
    from myapp.core.errors import SpecError

    for key in ("PYTHONPATH", "LD_PRELOAD"):  # refused when saved
        with pytest.raises(SpecError, match=f"env.{key}.*secret parameter"):
            keyed_pipeline(svc, f"k8s-b7-{key.lower().replace('_', '-')}", f", env: {{{key}: inputs/lib}}")
    # A version stored before the rule: its attempt fails when it renders, before any pod exists.
    pid = keyed_pipeline(svc, "k8s-b7-old", ", env: {HARMLESS: inputs/lib}")
    with svc.db.write() as s:
        version = s.scalar(
            select(PipelineVersion)
            .join(Pipeline, Pipeline.current_version_id == PipelineVersion.id)
            .where(Pipeline.id == pid)
        )
        spec = json.loads(json.dumps(version.spec))
        spec["tasks"][0]["env"] = {"LD_PRELOAD": "inputs/lib/hook.so"}
        version.spec = spec
    run_id = start(svc, pid, {"key": RUN_SECRET})
    run = wait_finished(svc, run_id, timeout=120)
    use = run["by_name"]["use"]
    assert run["state"] == "failed" and "LD_PRELOAD" in use["message"] and "secret" in use["message"], use
    assert all(not a["pods"] for a in use["attempts"]), use["attempts"]  # no pod was ever created
