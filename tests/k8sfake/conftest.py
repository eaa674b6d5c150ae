"""Fixtures for the fake kube-apiserver's own tests: a running server and clients for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.k8sfake import FakeKubeServer


@pytest.fixture
def kube() -> Iterator[FakeKubeServer]:
    """Run a fresh server; fail the test if the fake itself crashed on a request."""
    with FakeKubeServer() as server:
        yield server
        assert server.server_errors == []


@pytest.fixture
def api_client(kube: FakeKubeServer) -> client.ApiClient:
    """Return an ApiClient pointed at the server."""
    return kube.api_client()


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    """Return a CoreV1Api on the server."""
    return client.CoreV1Api(api_client)
