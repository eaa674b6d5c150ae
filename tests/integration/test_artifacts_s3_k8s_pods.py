"""Pods without a shared volume move their own files (`k8s_artifact_transfer: pod`, myapp/k8s/transfer.py),
on the fake API server and on the real one with the node simulator, against moto's S3 server on
loopback: no pod mounts the workflow-space claim (an emptyDir instead); the producer's pod uploads a
file and a directory through URLs presigned for its own keys, the consumer's init container fetches
them before its task starts. The worker and the watcher never read or write the pods' files."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.engine_helpers import log_text, save, start, task_lines, wait_finished
from tests.integration.k8s_env import Cluster, backends, k8s_cluster
from tests.s3server import S3Server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PIPELINE = """
name: k8s-s3-pods
tasks:
  - name: produce
    image: busybox:pod-transfer
    command:
      - sh
      - -c
      - |
        echo "hello from the pod" > message.txt
        mkdir -p model/sub model/empty
        echo weights > model/sub/weights.txt
        ln -s sub/weights.txt model/latest
        echo 42 > /tmp/score.txt
    outputs:
      - {name: msg, path: message.txt, type: file}
      - {name: model, path: model, type: file}
      - {name: score, path: /tmp/score.txt, type: file}
      - {name: note, path: message.txt, type: text}
  - name: consume
    image: busybox:pod-transfer
    depends_on: [produce]
    inputs:
      msg: {from: produce.msg}
      model: {from: produce.model}
      score: {from: produce.score}
    command:
      - sh
      - -c
      - |
        set -e
        cat "$msg"
        [ -d "$model/empty" ] && [ -L "$model/latest" ]
        cat "$model/latest"
        cat "$score"
        mkdir -p out && cp -R "$model" out/copy
    outputs:
      - {name: copy, path: out/copy, type: file}
"""


@pytest.fixture(scope="module", params=backends())
def cluster(request: pytest.FixtureRequest, services: Any, broker_url: str, s3: S3Server) -> Iterator[Cluster]:
    if request.param == "cluster":
        pytest.skip("a cluster's pods cannot reach the test's loopback S3 server")
    # a prefix per backend: both start at run 1, and the real one must find only what its own pods stored
    env = {**s3.env(f"pods-{request.param}"), "MYAPP_K8S_ARTIFACT_TRANSFER": "pod", "MYAPP_K8S_WORKFLOW_SPACE_PVC": ""}
    with k8s_cluster(services, broker_url, backend=request.param, **env) as running:
        yield running


def test_pods_without_a_shared_volume_pass_files_and_directories_through_s3(cluster: Cluster, s3: S3Server) -> None:
    svc = cluster.services
    created: dict[str, Any] = {}
    if cluster.kube is not None:
        cluster.kube.add_admission("pods", lambda pod: created.setdefault(pod["metadata"]["name"], copy.deepcopy(pod)))
    space = svc.settings.workflow_space
    before = {p: p.stat().st_mtime_ns for p in space.rglob("message.txt")}  # an earlier backend's (same home)
    run_id = start(svc, save(svc, PIPELINE))
    run = wait_finished(svc, run_id, timeout=150)
    prefix = f"pods-{cluster.backend}"
    by = run["by_name"]
    assert run["state"] == "succeeded", (run, log_text(svc, run_id, "produce"), log_text(svc, run_id, "consume"))
    base = f"s3://{s3.bucket}/{prefix}/{run_id}/produce/1"
    assert by["produce"]["outputs"] == {
        "msg": {"type": "file", "path": f"{base}/msg/message.txt"},
        "model": {"type": "file", "path": f"{base}/model/model/"},
        "score": {"type": "file", "path": f"{base}/score/score.txt"},
        "note": {"type": "text", "value": "hello from the pod"},
    }
    assert by["consume"]["outputs"]["copy"] == {
        "type": "file",
        "path": f"s3://{s3.bucket}/{prefix}/{run_id}/consume/1/copy/copy/",
    }
    assert s3.keys(f"{prefix}/{run_id}/") == [
        f"{prefix}/{run_id}/consume/1/copy/copy/.myapp-tree.tar.gz",
        f"{prefix}/{run_id}/produce/1/model/model/.myapp-tree.tar.gz",
        f"{prefix}/{run_id}/produce/1/msg/message.txt",
        f"{prefix}/{run_id}/produce/1/score/score.txt",
    ]
    assert task_lines(svc, run_id, "consume") == ["hello from the pod", "weights", "42"]
    # Nothing went through this side's workflow space: the pods' files lived in their own emptyDir (the
    # fake kubelet runs every container on this machine, in the pod's workingDir, so only the node simulator shows it).
    written = [p for p in space.rglob("message.txt") if before.get(p) != p.stat().st_mtime_ns]
    assert cluster.kube is not None or not written, f"a pod wrote to the shared space: {written}"
    if cluster.kube is not None:
        produce = created[by["produce"]["attempts"][0]["pods"][0]]["spec"]
        consume = created[by["consume"]["attempts"][0]["pods"][0]]["spec"]
        assert all("persistentVolumeClaim" not in v for v in produce["volumes"] + consume["volumes"])
        assert [c["name"] for c in produce["containers"]] == ["main", "upload-outputs"]
        assert "initContainers" not in produce
        assert [c["name"] for c in consume["initContainers"]] == ["fetch-inputs"]
        # the URLs come from the attempt's Secret, never inline; the task container does not get them
        uploader = {e["name"]: e for e in produce["containers"][1]["env"]}
        assert "secretKeyRef" in uploader["MYAPP_TRANSFER_OUTPUTS"]["valueFrom"]
        assert "MYAPP_TOKEN" not in uploader
        assert "MYAPP_TRANSFER_OUTPUTS" not in {e["name"] for e in produce["containers"][0]["env"]}


def test_pods_without_a_shared_volume_slice_over_a_list_of_files(cluster: Cluster, s3: S3Server) -> None:
    """The producer's pod uploads its `files` directory as one archive; the watcher stores it item by
    item, and each slice's pod fetches only its own file."""
    svc = cluster.services
    pipeline = """
    name: k8s-s3-pods-files
    tasks:
      - name: split
        image: busybox:pod-transfer
        command: ["sh", "-c", "mkdir shards && echo one > shards/a.txt && echo two > shards/b.txt"]
        outputs: [{name: shards, path: shards, type: files}]
      - name: read
        image: busybox:pod-transfer
        command: ["sh", "-c", "echo $(basename $0): $(cat $0)", "$shard"]
        inputs: {shard: {from: split.shards}}
        slices: {inputs: [shard]}
    """
    run_id = start(svc, save(svc, pipeline))
    run = wait_finished(svc, run_id, timeout=150)
    assert run["state"] == "succeeded", (run, log_text(svc, run_id, "split"))
    base = f"s3://{s3.bucket}/pods-{cluster.backend}/{run_id}/split/1/shards/items"
    assert run["by_name"]["split"]["outputs"]["shards"] == {
        "type": "files",
        "paths": [f"{base}/0/a.txt", f"{base}/1/b.txt"],
    }
    assert [task_lines(svc, run_id, f"read[{i}]") for i in range(2)] == [["a.txt: one"], ["b.txt: two"]]
