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
