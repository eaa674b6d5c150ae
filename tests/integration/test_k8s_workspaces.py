"""Workspaces and SeqPod on the Kubernetes executor (FakeKubeServer, and the real API server with
the node simulator for SeqPod; official client, real Celery worker and watcher): the task's pod mounts each workspace's PersistentVolumeClaim at its path and the command
sees `$(workspaces.NAME.path)` as that path; a claim that is not the project's, or none, fails the
attempt naming the task and field, before any pod exists. SeqPod runs its steps in one container
sharing the working directory, labels their lines and names a failed step; steps with images of their
own run as init containers in order (the fake kubelet and the node simulator run them as a kubelet does)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from myapp.catalog.plugins import parse_template
from tests.integration.engine_helpers import log_text, save, start, task_lines, wait_finished
from tests.integration.k8s_env import Cluster, backends, k8s_cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture(scope="module", params=backends())
def cluster(request: pytest.FixtureRequest, services: Any, broker_url: str) -> Iterator[Cluster]:
    with k8s_cluster(services, broker_url, backend=request.param) as running:
        yield running


def bind_claims(cluster: Cluster, tmp_path: Path, *claims: str) -> None:
    """On the real API server: each claim bound to a hostPath PersistentVolume on a directory of its own
    (the binding the PV controller would write); the node simulator mounts it in every pod using it."""
    if cluster.testenv is not None:
        for claim in claims:
            cluster.testenv.bind_directory(cluster.namespace, claim, tmp_path / claim)


def test_a_workspace_is_the_projects_claim_mounted_at_its_path(cluster: Cluster, tmp_path: Path) -> None:
    bind_claims(cluster, tmp_path, "default-notebook", "default-out")
    svc = cluster.services
    created: dict[str, Any] = {}  # the pods as created (they are deleted once the attempt ends)
    if cluster.kube is not None:
        cluster.kube.add_admission("pods", lambda pod: created.setdefault(pod["metadata"]["name"], copy.deepcopy(pod)))
    pid = save(
        svc,
        """
        name: k8s-workspaces
        tasks:
          - name: use
            image: alpine:3
            command: ["sh", "-c", "echo data at $(workspaces.data.path); echo out at $OUT"]
            env: {OUT: "$(workspaces.out.path)/x"}
            workspaces: {data: {claim: default-notebook, path: /mnt/data}, out: {claim: default-out}}
          - {name: stolen, image: alpine:3, command: ["ls", "$(workspaces.w.path)"], workspaces: {w: {claim: other-pvc}}}
          - {name: unclaimed, image: alpine:3, command: ["ls", "$(workspaces.w.path)"], workspaces: {w: {}}}
    """,
    )
    run = wait_finished(svc, start(svc, pid))
    by = run["by_name"]
    assert by["use"]["state"] == "succeeded", by["use"]
    assert task_lines(svc, run["id"], "use") == ["data at /mnt/data", "out at /workspaces/out/x"]
    if cluster.kube is not None:
        spec = created[by["use"]["attempts"][0]["pods"][0]]["spec"]
        claims = {
            v["name"]: v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v
        }
        assert claims["ws-data"] == "default-notebook" and claims["ws-out"] == "default-out"
        mounts = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
        assert mounts["ws-data"] == "/mnt/data" and mounts["ws-out"] == "/workspaces/out"
    assert by["stolen"]["state"] == "failed" and by["stolen"]["attempts"][0]["pods"] == []
    assert "workspaces.w.claim: 'other-pvc' is not one of the project's claims" in by["stolen"]["message"]
    assert "workspaces.w.claim: a workspace needs a PersistentVolumeClaim" in by["unclaimed"]["message"]


def test_two_tasks_in_two_pods_share_files_through_a_workspace_and_a_missing_claim_fails(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Real API server: a claim bound to a PersistentVolume, mounted by the pods of two tasks (one after
    the other, each its own pod) at different paths: the second reads what the first wrote. A task whose
    claim does not exist stays Pending (the scheduler's FailedScheduling event) and fails after the grace,
    naming the claim, instead of waiting for the startup timeout."""
    cluster.node("the fake kubelet runs commands on the host, without mounts")
    svc = cluster.services
    bind_claims(cluster, tmp_path, "default-shared")
    pid = save(
        svc,
        """
        name: k8s-workspace-share
        tasks:
          - name: produce
            image: alpine:3
            command: ["sh", "-c", "mkdir -p $(workspaces.ws.path)/d && echo from $MYAPP_TASK_NAME > $(workspaces.ws.path)/d/msg"]
            workspaces: {ws: {claim: default-shared, path: /mnt/shared}}
          - name: consume
            image: alpine:3
            depends_on: [produce]
            command: ["sh", "-c", "cat $(workspaces.ws.path)/d/msg; hostname"]
            workspaces: {ws: {claim: default-shared}}
          - name: lost
            image: alpine:3
            command: ["true"]
            workspaces: {ws: {claim: default-missing}}
    """,
    )
    run = wait_finished(svc, start(svc, pid))
    by = run["by_name"]
    assert by["produce"]["state"] == "succeeded", by["produce"]
    assert by["consume"]["state"] == "succeeded", by["consume"]
    lines = task_lines(svc, run["id"], "consume")
    assert lines == ["from produce", by["consume"]["attempts"][0]["pods"][0]]  # its own pod
    assert (tmp_path / "default-shared" / "d" / "msg").read_text() == "from produce\n"
    assert by["lost"]["state"] == "failed"
    assert "its PersistentVolumeClaim 'default-missing' does not exist" in by["lost"]["message"], by["lost"]
    assert 'persistentvolumeclaim "default-missing" not found' in log_text(svc, run["id"], "lost")


SEQ = {
    "name": "seq-k8s",
    "kind": "seqpod",
    "image": "python:3.12-slim",
    "parameters": {"fail_with": {"type": "integer", "default": 0}},
    "outputs": [{"name": "result", "path": "result.txt", "type": "text"}],
    "extra": {
        "steps": [
            {"name": "write", "script": "echo 'hello from step 1' > shared.txt; echo wrote"},
            {
                "name": "read",
                "language": "python",
                "script": (
                    "import os, sys\ntext = open('shared.txt').read().strip()\nprint('read:', text)\n"
                    "open('result.txt', 'w').write(text.upper())\nsys.exit(int(os.environ['fail_with']))\n"
                ),
            },
            {"name": "finish", "command": ["sh", "-c", "touch finished.txt; cat result.txt"]},
        ]
    },
}


def test_seqpod_runs_its_steps_in_one_pod_and_names_a_failed_step(cluster: Cluster) -> None:
    svc = cluster.services
    svc.templates.sync([parse_template(SEQ)], "test", svc.clock.now())
    pid = save(
        svc,
        """
        name: seq-k8s
        tasks:
          - {name: ok, template: seq-k8s}
          - {name: bad, template: seq-k8s, args: {fail_with: 7}}
    """,
    )
    run = wait_finished(svc, start(svc, pid))
    by = run["by_name"]
    assert by["ok"]["state"] == "succeeded", by["ok"]
    assert by["ok"]["outputs"]["result"] == {"type": "text", "value": "HELLO FROM STEP 1"}
    assert task_lines(svc, run["id"], "ok") == [
        "[write] wrote",
        "[read] read: hello from step 1",
        "[finish] HELLO FROM STEP 1",
    ]
    assert len(by["ok"]["attempts"][0]["pods"]) == 1
    assert by["bad"]["state"] == "failed"
    assert "step 'read' failed with exit code 7" in by["bad"]["message"], by["bad"]
    assert "[finish]" not in log_text(svc, run["id"], "bad")


IMAGES = {
    "name": "seq-k8s-images",
    "kind": "seqpod",
    "image": "python:3.12-slim",
    "parameters": {"fail_at": {"type": "string", "default": "none"}},
    "outputs": [{"name": "result", "path": "result.txt", "type": "text"}],
    "extra": {
        "steps": [
            {
                "name": "fetch",
                "image": "busybox:1.36",
                "command": ["sh", "-c", 'echo one > data.txt; echo wrote data; [ "$fail_at" != fetch ] || exit 3'],
            },
            {
                "name": "compute",
                "language": "python",
                "script": (
                    "import os, sys\ntext = open('data.txt').read().strip()\nprint('read', text)\n"
                    "open('result.txt', 'w').write(text.upper())\nsys.exit(4 if os.environ['fail_at'] == 'compute' else 0)\n"
                ),
            },
            {"name": "report", "image": "alpine:3", "command": ["sh", "-c", "cat result.txt"]},
        ]
    },
}


def test_seqpod_steps_with_their_own_images_run_as_init_containers_in_order(cluster: Cluster) -> None:
    """Each step runs in a container of its image (the steps before the last as init containers, the
    last as `main`), sharing the working directory; a failed init step fails the pod, and the message
    names it (from the init container's status); every step's container log reaches the attempt's log."""
    svc = cluster.services
    created: dict[str, Any] = {}
    if cluster.kube is not None:
        cluster.kube.add_admission("pods", lambda pod: created.setdefault(pod["metadata"]["name"], copy.deepcopy(pod)))
    svc.templates.sync([parse_template(IMAGES)], "test", svc.clock.now())
    pid = save(
        svc,
        """
        name: seq-k8s-images
        tasks:
          - {name: ok, template: seq-k8s-images}
          - {name: first, template: seq-k8s-images, args: {fail_at: fetch}}
          - {name: middle, template: seq-k8s-images, args: {fail_at: compute}}
    """,
    )
    run = wait_finished(svc, start(svc, pid))
    by = run["by_name"]
    assert by["ok"]["state"] == "succeeded", (by["ok"], log_text(svc, run["id"], "ok"))
    assert by["ok"]["outputs"]["result"] == {"type": "text", "value": "ONE"}
    # each step's lines are whole and labelled; the watcher reads each container's log as its own stream
    assert sorted(task_lines(svc, run["id"], "ok")) == ["[compute] read one", "[fetch] wrote data", "[report] ONE"]
    assert len(by["ok"]["attempts"][0]["pods"]) == 1
    assert by["first"]["state"] == "failed"
    assert "exit code 3: step 'fetch' failed with exit code 3" in by["first"]["message"], by["first"]
    assert "[compute]" not in log_text(svc, run["id"], "first")
    assert by["middle"]["state"] == "failed"
    assert "exit code 4: step 'compute' failed with exit code 4" in by["middle"]["message"], by["middle"]
    assert "[fetch] wrote data" in log_text(svc, run["id"], "middle")
    assert "[report]" not in log_text(svc, run["id"], "middle")
    if cluster.kube is not None:
        spec = created[by["ok"]["attempts"][0]["pods"][0]]["spec"]
        assert [(c["name"], c["image"]) for c in spec["initContainers"]] == [
            ("step-fetch", "busybox:1.36"),
            ("step-compute", "python:3.12-slim"),
        ]
        assert [(c["name"], c["image"]) for c in spec["containers"]] == [("main", "alpine:3")]
        assert all(c["workingDir"] == spec["containers"][0]["workingDir"] for c in spec["initContainers"])
