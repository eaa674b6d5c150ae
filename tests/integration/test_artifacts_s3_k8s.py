"""The Kubernetes executor with an S3 artifact repository (moto's S3 server on loopback), on the
fake API server and on the real one with the node simulator: the watcher uploads a pod's file and
directory outputs when the attempt ends, the worker fetches them into the consumer's working
directory before creating its pod. The first try of the consumer fails on purpose; the producer's
working directory and the on-disk artifact store are then deleted, and the retried consumer can
only get its inputs from the object store."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.engine_helpers import save, start, task_lines, wait_finished
from tests.integration.k8s_env import Cluster, backends, k8s_cluster
from tests.s3server import S3Server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PIPELINE = """
name: k8s-s3-pass
tasks:
  - name: produce
    image: busybox:s3-artifacts
    command:
      - sh
      - -c
      - |
        echo "hello from the pod" > message.txt
        mkdir -p model/sub model/empty
        echo weights > model/sub/weights.txt
        ln -s sub/weights.txt model/latest
    outputs:
      - {name: msg, path: message.txt, type: file}
      - {name: model, path: model, type: file}
  - name: consume
    image: busybox:s3-artifacts
    depends_on: [produce]
    inputs:
      msg: {from: produce.msg}
      model: {from: produce.model}
    command:
      - sh
      - -c
      - |
        set -e
        cat "$msg"
        [ -d "$model/empty" ] && [ -L "$model/latest" ]
        cat "$model/latest"
        [ "$MYAPP_TRY_NUMBER" -gt 1 ] || { echo "first try fails on purpose"; exit 3; }
"""


@pytest.fixture(scope="module", params=backends())
def cluster(request: pytest.FixtureRequest, services: Any, broker_url: str, s3: S3Server) -> Iterator[Cluster]:
    if request.param == "cluster":
        pytest.skip("a cluster's watcher cannot reach the test's loopback S3 server")
    # a prefix per backend: both start at run 1, and each must find only what its own watcher stored
    with k8s_cluster(services, broker_url, backend=request.param, **s3.env(f"k8s-{request.param}")) as running:
        yield running


def test_pods_pass_a_file_and_a_directory_through_s3(cluster: Cluster, s3: S3Server) -> None:
    svc = cluster.services
    run_id = start(svc, save(svc, PIPELINE))
    run = wait_finished(svc, run_id, timeout=120)
    assert run["state"] == "failed" and run["by_name"]["consume"]["state"] == "failed", run
    produced = run["by_name"]["produce"]["outputs"]
    prefix = f"k8s-{cluster.backend}"
    base = f"s3://{s3.bucket}/{prefix}/{run_id}/produce/1"
    assert produced["msg"] == {"type": "file", "path": f"{base}/msg/message.txt"}
    assert produced["model"] == {"type": "file", "path": f"{base}/model/model/"}
    assert s3.keys(f"{prefix}/{run_id}/") == [
        f"{prefix}/{run_id}/produce/1/model/model/.myapp-tree.tar.gz",
        f"{prefix}/{run_id}/produce/1/msg/message.txt",
    ]
    assert task_lines(svc, run_id, "consume", 1)[:2] == ["hello from the pod", "weights"]

    # Nothing of the producer is left on disk: the retried consumer can only fetch from S3.
    gone = [found for found in svc.settings.workflow_space.rglob("produce") if found.parent.name == str(run_id)]
    assert len(gone) == 1 and (gone[0] / "1" / "message.txt").exists()
    shutil.rmtree(gone[0])
    shutil.rmtree(svc.settings.artifacts_dir / str(run_id), ignore_errors=True)
    svc.runs.retry_run(run_id, svc.clock.now())
    run = wait_finished(svc, run_id, timeout=120)
    assert run["state"] == "succeeded", run
    assert [a["try_number"] for a in run["by_name"]["produce"]["attempts"]] == [1]
    assert task_lines(svc, run_id, "consume", 2) == ["hello from the pod", "weights"]
