"""Slices (docs/rules.md R15) on the Kubernetes executor (FakeKubeServer, and the real API server
with the node simulator; official client, real Celery worker and watcher): one pod per slice,
each named from its slice, the item as `$name`, file outputs gathered and handed to a join as the
JSON list of their paths, and a retry that re-runs only the failed slice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.engine_helpers import save, start, task_lines, wait_finished
from tests.integration.k8s_env import Cluster, backends, k8s_cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture(scope="module", params=backends())
def cluster(request: pytest.FixtureRequest, services: Any, broker_url: str) -> Iterator[Cluster]:
    with k8s_cluster(services, broker_url, backend=request.param) as running:
        yield running


def test_a_sweep_runs_one_pod_per_slice_and_a_join_reads_the_gathered_outputs(cluster: Cluster) -> None:
    svc = cluster.services
    pid = save(
        svc,
        """
        name: k8s-sweep
        tasks:
          - name: grid
            image: alpine:3
            command: ["sh", "-c", "echo '[\\"a\\", \\"b\\", \\"c\\"]' > grid"]
            outputs: [{name: items, path: grid, type: text}]
          - name: train
            image: alpine:3
            command: ["sh", "-c", "mkdir -p m && echo model-$0 > m/w && echo $MYAPP_TASK_NAME > s", "$x"]
            inputs: {x: {from: grid.items}}
            outputs: [{name: score, path: s, type: text}, {name: model, path: m, type: file}]
            slices: {inputs: [x], parallelism: 2}
          - name: best
            image: alpine:3
            command: ["sh", "-c", "echo $0; for p in $(echo $1 | tr -d '[],\\"'); do cat $p/w; done", "$scores", "$models"]
            inputs: {scores: {from: train.score}, models: {from: train.model}}
        """,
    )
    run = wait_finished(svc, start(svc, pid), timeout=150)
    by = run["by_name"]
    assert run["state"] == "succeeded", run
    pods = [by[f"train[{i}]"]["attempts"][0]["pods"] for i in range(3)]
    assert all(len(p) == 1 for p in pods) and len({p[0] for p in pods}) == 3, pods
    assert task_lines(svc, run["id"], "best") == [
        '["train[0]", "train[1]", "train[2]"]',
        "model-a",
        "model-b",
        "model-c",
    ]


def test_a_list_of_files_output_runs_one_pod_per_file(cluster: Cluster) -> None:
    svc = cluster.services
    pid = save(
        svc,
        """
        name: k8s-list-of-files
        tasks:
          - name: split
            image: alpine:3
            command: ["sh", "-c", "mkdir shards && for s in b a c; do echo rows-$s > shards/$s.csv; done"]
            outputs: [{name: shards, path: shards, type: files}]
          - name: count
            image: alpine:3
            command: ["sh", "-c", "echo $MYAPP_TASK_NAME got $(basename $0): $(cat $0)", "$shard"]
            inputs: {shard: {from: split.shards}}
            slices: {inputs: [shard], parallelism: 2}
          - name: join
            image: alpine:3
            command: ["sh", "-c", "for p in $(echo $0 | tr -d '[],\\"'); do cat $p; done", "$shards"]
            inputs: {shards: {from: split.shards}}
        """,
    )
    run = wait_finished(svc, start(svc, pid), timeout=150)
    by = run["by_name"]
    assert run["state"] == "succeeded", run
    pods = [by[f"count[{i}]"]["attempts"][0]["pods"] for i in range(3)]
    assert all(len(p) == 1 for p in pods) and len({p[0] for p in pods}) == 3, pods
    assert [task_lines(svc, run["id"], f"count[{i}]") for i in range(3)] == [
        ["count[0] got a.csv: rows-a"],
        ["count[1] got b.csv: rows-b"],
        ["count[2] got c.csv: rows-c"],
    ]
    assert task_lines(svc, run["id"], "join") == ["rows-a", "rows-b", "rows-c"]


def test_retry_reruns_only_the_failed_slice(cluster: Cluster) -> None:
    svc = cluster.services
    pid = save(
        svc,
        """
        name: k8s-sweep-retry
        parameters: [{name: bad, default: b}]
        tasks:
          - name: train
            image: alpine:3
            command: ["sh", "-c", "echo item $0; [ $0 != $1 ]", "$x", "$bad"]
            inputs: {x: [a, b, c], bad: {from: params.bad}}
            slices: {inputs: [x]}
        """,
    )
    run = wait_finished(svc, start(svc, pid), timeout=150)
    assert run["state"] == "failed" and run["by_name"]["train[1]"]["state"] == "failed", run
    assert "2 of 3 slices succeeded" in run["by_name"]["train"]["message"]
    svc.runs.retry_run(run["id"], svc.clock.now())
    run = wait_finished(svc, run["id"], timeout=150)
    tries = {n: len(run["by_name"][f"train[{i}]"]["attempts"]) for i, n in enumerate("abc")}
    assert tries == {"a": 1, "b": 2, "c": 1}, tries
    assert run["by_name"]["train[1]"]["state"] == "failed"  # the parameter still names it: it fails again
