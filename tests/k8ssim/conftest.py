"""Fixtures of the simulator's own tests: the session's real API server and a namespace per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.k8ssim.testenv import TestEnv, shared_testenv


@pytest.fixture(scope="module")
def testenv() -> TestEnv:
    return shared_testenv()


@pytest.fixture(scope="module")
def namespace(testenv: TestEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    ns = testenv.namespace("sim", workflow_space=tmp_path_factory.mktemp("space"))
    yield ns
    testenv.clean_namespace(ns)


@pytest.fixture(scope="module")
def core(testenv: TestEnv, namespace: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[client.CoreV1Api]:
    """CoreV1Api as the Role-only user (rbac.yaml), with its kubeconfig loaded before the ApiClient is made."""
    path = testenv.myapp_kubeconfig(namespace, tmp_path_factory.mktemp("kc") / "kubeconfig")
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=configuration)
    api = client.ApiClient(configuration)
    yield client.CoreV1Api(api)
    api.close()


@pytest.fixture(autouse=True)
def _reset_knobs(testenv: TestEnv) -> Iterator[None]:
    yield
    assert testenv.sim is not None
    testenv.sim.reset()


def space_of(testenv: TestEnv, namespace: str) -> Path:
    assert testenv.admin is not None
    pv = testenv.admin.get(f"/api/v1/persistentvolumes/{namespace}-workflow-space") or {}
    return Path(pv["spec"]["hostPath"]["path"])
