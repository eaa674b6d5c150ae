"""myapp.sdk workflows on the Kubernetes executor: the same hello world as test_sdk.py, each step a pod
(FakeKubeServer + kubelet simulator, and the real API server with the node simulator), its OP's code
the pod's `python3 -c`, outputs collected from the pod and downloaded through the run handle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.k8s_env import backends, k8s_cluster
from tests.integration.test_sdk import check_hello, hello

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module", params=backends())
def engine_services(request: pytest.FixtureRequest, services: Any, broker_url: str) -> Iterator[Any]:
    """Services whose runs execute as pods on the backend's cluster."""
    with k8s_cluster(services, broker_url, backend=request.param) as cluster:
        services.cluster = cluster
        yield services


def test_the_hello_world_runs_as_pods(engine_services: Any, tmp_path: Path) -> None:
    run = hello("sdk-pods").submit(services=engine_services)
    check_hello(run, tmp_path)
    pods = [a["pods"] for t in run.detail()["tasks"] for a in t["attempts"]]
    assert len(pods) == 3 and all(pods), pods  # every step ran as a pod


def test_a_step_slices_over_a_list_of_paths_one_pod_per_file(engine_services: Any, tmp_path: Path) -> None:
    from tests.unit.sdk.test_workflow import files_workflow

    run = files_workflow().submit(services=engine_services)
    assert run.wait(timeout=240) == "succeeded", failure_report(run)
    slices = [t for t in run.detail()["tasks"] if t["name"].startswith("count[")]
    assert len(slices) == 3 and all(len(t["attempts"][0]["pods"]) == 1 for t in slices), slices
    assert [run.logs(f"count[{i}]").strip().splitlines()[-1] for i in range(3)] == [
        f"shard-{i}.txt: rows of shard {i}" for i in (2, 1, 0)
    ]
    assert run.parameters("names") == {"names": "shard-2.txt,shard-1.txt,shard-0.txt"}
    got = run.download_artifact("split", "shards", tmp_path / "shards")
    assert [p.name for p in got] == ["shard-2.txt", "shard-1.txt", "shard-0.txt"]


def failure_report(run: Any) -> str:
    """Each step's state; for one that did not succeed its message, attempts and log tail."""
    detail = run.detail()
    lines = [f"run {detail.get('state')}: {detail.get('message', '')!r}"]
    for task in detail["tasks"]:
        lines.append(f"{task['name']}: {task['state']}")
        if task["state"] != "succeeded":
            lines.append(f"  message: {task.get('message', '')!r}; attempts: {task.get('attempts')!r}")
            try:
                lines.append("  log: " + run.logs(task["name"])[-2000:])
            except Exception as exc:  # noqa: BLE001  a report must not hide the failure
                lines.append(f"  log unreadable: {exc!r}")
    return "\n".join(lines)
