"""The foundation's engine scenarios on the Kubernetes executor (issue 5).

The same test functions as test_engine_scenarios.py run here unchanged; only `engine_services`
differs: a real Celery worker with MYAPP_EXECUTOR=kubernetes creates pods through the official
client on FakeKubeServer, a real `myapp k8s-watcher` ends the attempts, and a kubelet simulator
plays the containers. Stop gets a Kubernetes version (pods are deleted instead of processes killed).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from myapp.catalog.plugins import parse_template
from tests.integration.engine_helpers import detail, poll, save, start, task_lines, wait_finished, wait_until
from tests.integration.k8s_env import REAL_CLUSTER, backends, k8s_cluster
from tests.integration.test_engine_scenarios import (  # noqa: F401  collected again with the k8s fixture
    _alive,
    test_a_condition_over_an_upstream_output_skips_or_runs_a_task,
    test_copy_starts_a_new_run_with_the_same_parameters,
    test_debug_run_of_one_task,
    test_diamond_runs_in_dependency_order,
    test_failure_propagates_and_independent_branch_continues,
    test_reference_parameter_passing_example,
    test_retries_exhausted_fail_the_task,
    test_retries_fail_twice_then_succeed,
    test_retry_from_failure_reuses_outputs,
    test_run_timeout_fails_running_and_stops_unstarted,
    test_task_env_and_workdir,
    test_task_timeout_kills_the_process_group,
    test_trigger_rules_run_a_cleanup_after_a_failure_and_skip_what_they_say,
)
from tests.integration.test_templates_builtins import LEAKY_TEMPLATE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

if REAL_CLUSTER:  # these two share files under the test's tmp_path with the task: only a local "kubelet" sees them

    @pytest.mark.skip(reason="uses host paths that pods of a real cluster cannot see")
    def test_task_timeout_kills_the_process_group() -> None:
        """Skipped on a real cluster."""

    @pytest.mark.skip(reason="uses host paths that pods of a real cluster cannot see")
    def test_retry_from_failure_reuses_outputs() -> None:
        """Skipped on a real cluster."""


# Known differences of a real node, each a product issue (issue 12 item 5), not a harness one:
REAL_NODE_GAPS = {
    "test_task_timeout_kills_the_process_group[real]": "a timed-out pod is deleted with the default 30 s grace and the entrypoint's sh, PID 1 of the "
    "container, ignores SIGTERM: the task's children live until the SIGKILL (issue 12, graceful stop)",
}


@pytest.fixture(autouse=True)
def _real_node_gaps(request: pytest.FixtureRequest) -> None:
    reason = REAL_NODE_GAPS.get(request.node.name)
    if reason:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=False))  # timing: may pass when slow


@pytest.fixture(scope="module", params=backends())
def engine_services(request: pytest.FixtureRequest, services: Any, broker_url: str) -> Iterator[Any]:
    """Services whose runs execute as pods on the backend's cluster."""
    with k8s_cluster(services, broker_url, backend=request.param) as cluster:
        services.cluster = cluster
        yield services


def test_stop_deletes_the_running_pods(engine_services: Any) -> None:
    cluster = engine_services.cluster
    pid = save(
        engine_services,
        """
        name: stoppable-pods
        tasks:
          - {name: long, template: shell, args: {script: "echo started; sleep 60"}}
          - {name: next, template: shell, args: {script: "echo next"}, depends_on: [long]}
          - {name: parallel, template: shell, args: {script: "sleep 60"}}
    """,
    )
    run_id = start(engine_services, pid)
    running = wait_until(
        engine_services,
        run_id,
        lambda d: all(
            d["by_name"][n]["state"] == "running" and d["by_name"][n]["attempts"][0]["pods"]
            for n in ("long", "parallel")
        ),
        what="long and parallel to run",
    )
    pods = [running["by_name"][n]["attempts"][0]["pods"][0] for n in ("long", "parallel")]
    poll(lambda: all(_phase(cluster, p) == "Running" for p in pods), "both pods to run", timeout=120)
    if cluster.kubelet is not None:
        poll(lambda: all(f"{p}/main" in cluster.kubelet.pids for p in pods), "the kubelet to start both containers")
    engine_services.runs.stop_run(run_id, engine_services.clock.now(), by="tester")
    run = detail(engine_services, run_id)
    assert run["state"] == "stopped"
    assert {t["name"]: t["state"] for t in run["tasks"]} == {
        "long": "stopped",
        "next": "stopped",
        "parallel": "stopped",
    }
    poll(lambda: all(cluster.get_pod(p) is None for p in pods), "stop to delete the pods", timeout=60)
    if cluster.kubelet is not None:
        processes = [cluster.kubelet.pids[f"{p}/main"] for p in pods]
        poll(lambda: not any(_alive(pid) for pid in processes), "the containers' processes to die")
    time.sleep(0.5)
    assert detail(engine_services, run_id)["by_name"]["next"]["attempts"] == []


def test_pods_are_labelled_and_placed(engine_services: Any) -> None:
    cluster = engine_services.cluster
    pid = save(
        engine_services,
        """
        name: labelled
        tasks:
          - name: Show_Me
            template: shell
            args: {script: "sleep 1; echo done"}
            timeout: 30
            resources: {cpu: 100m, memory: 64Mi, gpu: 1}
          - {name: packaged, template: shell, args: {script: "true"}, resources: {package: small}}
    """,
    )
    run_id = start(engine_services, pid)
    data = wait_until(
        engine_services,
        run_id,
        lambda d: d["by_name"]["Show_Me"]["attempts"] and d["by_name"]["Show_Me"]["attempts"][0]["pods"],
        what="the pod name",
    )
    name = data["by_name"]["Show_Me"]["attempts"][0]["pods"][0]
    pod = poll(lambda: cluster.get_pod(name), "the pod (the launch record is written before it is created)")
    labels = pod["metadata"]["labels"]
    assert {k: labels[k] for k in ("myapp/pipeline", "myapp/run", "myapp/task", "myapp/try")} == {
        "myapp/pipeline": str(pid),
        "myapp/run": str(run_id),
        "myapp/task": "Show_Me",
        "myapp/try": "1",
    }
    spec = pod["spec"]
    assert spec["activeDeadlineSeconds"] == 30 and spec["restartPolicy"] == "Never"
    main = spec["containers"][0]
    assert main["resources"]["limits"] == {"cpu": "100m", "memory": "64Mi", "nvidia.com/gpu": "1"}
    env = {e["name"]: e.get("value") for e in main["env"]}
    assert env["MYAPP_RUN_ID"] == str(run_id) and env["MYAPP_TASK_NAME"] == "Show_Me"
    token = next(e for e in main["env"] if e["name"] == "MYAPP_TOKEN")  # never inline: the attempt's Secret
    assert token["valueFrom"]["secretKeyRef"] == {"name": f"{name}-secret", "key": "MYAPP_TOKEN"}
    claim = os.environ.get("MYAPP_TEST_K8S_PVC", "workflow-space")
    assert spec["volumes"] == [{"name": "workflow-space", "persistentVolumeClaim": {"claimName": claim}}]
    if cluster.kube is None:
        return  # a real cluster without GPUs leaves it Pending: the labels and placement were the point
    run = wait_finished(engine_services, run_id)
    assert run["state"] == "succeeded"
    packaged = run["by_name"]["packaged"]["attempts"][0]
    assert packaged["container"]["launch"]["resources"] == {"cpu": "250m", "memory": "256Mi", "gpu": 0}
    shown = run["by_name"]["Show_Me"]["attempts"][0]["container"]
    assert shown["pods"][0]["phase"] == "Succeeded" and shown["pods"][0]["containers"][0]["exit_code"] == 0
    assert task_lines(engine_services, run_id, "Show_Me") == ["done"]


def _phase(cluster: Any, name: str) -> str:
    pod = cluster.get_pod(name)
    return str((pod or {}).get("status", {}).get("phase", ""))


LEAKY_POD_TEMPLATE = {**LEAKY_TEMPLATE, "name": "secret-leak-pod", "image": "bash:5"}  # a pod needs an image


def test_a_secret_parameter_a_pod_prints_is_masked_in_its_log_and_details(engine_services: Any) -> None:
    engine_services.templates.sync([parse_template(LEAKY_POD_TEMPLATE)], "test", engine_services.clock.now())
    pid = save(
        engine_services,
        """
        name: pod-prints-secret
        parameters: [{name: pw}]
        tasks:
          - {name: leak, template: secret-leak-pod, inputs: {password: {from: params.pw}}}
    """,
    )
    run_id = start(engine_services, pid, {"pw": "correct-horse-battery"})
    run = wait_finished(engine_services, run_id, timeout=120)
    text = "\n".join(task_lines(engine_services, run_id, "leak"))
    assert run["state"] == "succeeded", text
    assert "pw=****** token=******" in text and "done" in text and "correct-horse-battery" not in text
    leak = run["by_name"]["leak"]
    assert leak["inputs"]["password"]["value"] == "******"
    assert "correct-horse-battery" not in json.dumps(leak)  # inputs, container status, launch record


def test_the_run_token_a_pod_prints_is_masked_in_its_log(engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: pod-prints-token
        tasks:
          - {name: leak, template: shell, args: {script: 'echo "token=$MYAPP_TOKEN"; echo done'}}
    """,
    )
    run_id = start(engine_services, pid)
    run = wait_finished(engine_services, run_id, timeout=120)
    lines = task_lines(engine_services, run_id, "leak")
    assert run["state"] == "succeeded", lines
    text = "\n".join(lines)
    assert "token=******" in text and "done" in text
    assert engine_services.runs.run_token(run_id) not in text


def test_a_wide_start_goes_to_the_worker_in_batches_and_every_task_gets_one_pod(engine_services: Any) -> None:
    # 34 roots: the start's dispatch sends messages of two ids (myapp.execute_task_instances), and
    # the worker launches each id of a message in turn (launch_with_own_client).
    tasks = "\n".join(f"  - {{name: t{i}, template: shell, args: {{script: 'echo {i}'}}}}" for i in range(34))
    run_id = start(engine_services, save(engine_services, f"name: wide-pods\ntasks:\n{tasks}\n"))
    run = wait_finished(engine_services, run_id, timeout=170)
    assert run["state"] == "succeeded", run
    assert all(len(t["attempts"]) == 1 and len(t["attempts"][0]["pods"]) == 1 for t in run["tasks"]), run["tasks"]
    log = engine_services.cluster.worker.log.read_bytes()
    assert b"myapp.execute_task_instances[" in log
