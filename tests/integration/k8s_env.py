"""A Kubernetes test environment: FakeKubeServer + kubelet simulator + a real Celery worker and a real
`myapp k8s-watcher` process, both using the official client through a kubeconfig file.

With MYAPP_TEST_KUBECONFIG set, the same tests run against that real cluster instead (kind, k3s):
no fake, no simulator; tests that drive the fake skip themselves. See docs/kubernetes.md for the
shared workflow-space volume this needs (MYAPP_TEST_WORKFLOW_SPACE, MYAPP_TEST_K8S_PVC).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from myapp.k8s.launcher import Launcher
from myapp.queue.celery_app import celery_dispatch, create_celery
from tests.conftest import WorkerProcess, worker_env
from tests.integration.k8s_kubelet import Kubelet
from tests.k8sfake import FakeKubeServer

REAL_CLUSTER = os.environ.get("MYAPP_TEST_KUBECONFIG", "")
NAMESPACE = os.environ.get("MYAPP_TEST_K8S_NAMESPACE", "myapp-test") if REAL_CLUSTER else "pipelines"


def write_kubeconfig(path: Path, url: str, namespace: str = NAMESPACE) -> Path:
    """Write a kubeconfig pointing at `url` (the fake needs no credentials)."""
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": url}}],
        "users": [{"name": "tester", "user": {"token": "test-token"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester", "namespace": namespace}}],
    }))
    return path


def k8s_env(base: dict[str, str], kubeconfig: Path, **extra: str) -> dict[str, str]:
    """Return a process environment selecting the Kubernetes executor on the fake cluster."""
    env = dict(base)
    env.update({"MYAPP_EXECUTOR": "kubernetes", "MYAPP_K8S_KUBECONFIG": str(kubeconfig),
                "MYAPP_K8S_NAMESPACE": NAMESPACE,
                "MYAPP_K8S_WORKFLOW_SPACE_PVC": os.environ.get("MYAPP_TEST_K8S_PVC", "workflow-space"),
                "MYAPP_K8S_GROUP": "test", "MYAPP_K8S_RESOURCE_PACKAGES": '{"small": {"cpu": "250m", "memory": "256Mi"}}',
                "MYAPP_K8S_IMAGE_PULL_GRACE": "2"})
    env.update(extra)
    return env


class WatcherProcess:
    """A real `myapp k8s-watcher` subprocess."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.log = Path(env["MYAPP_HOME"]) / f"watcher-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0   # a restart appends to the same log
        out = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "myapp", "k8s-watcher"], env=self.env, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if b"watching" in self.log.read_bytes()[offset:]:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"watcher exited: {self.log.read_text()[-3000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"watcher not ready: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Cluster:
    """What a Kubernetes test gets: the services, a client, and (on the fake) the server and kubelet."""

    services: Any
    launcher: Launcher
    worker: WorkerProcess
    watcher: WatcherProcess
    kube: FakeKubeServer | None = None
    kubelet: Kubelet | None = None

    def fake(self, why: str = "") -> tuple[FakeKubeServer, Kubelet]:
        """Return the fake server and kubelet; skip the test on a real cluster (saying `why` it needs the fake)."""
        if self.kube is None or self.kubelet is None:
            pytest.skip(why or "drives the fake API server (MYAPP_TEST_KUBECONFIG selects a real cluster)")
        return self.kube, self.kubelet

    def get_pod(self, name: str) -> dict[str, Any] | None:
        """Return a pod through the client (fake or real cluster), or None."""
        return self.launcher.get_pod(name)


@contextmanager
def k8s_cluster(services: Any, broker_url: str, **extra_env: str) -> Iterator[Cluster]:
    """Start the cluster side, a Celery worker and the watcher; route dispatch to them."""
    if REAL_CLUSTER:   # the workflow space must be the directory the cluster's volume shows to pods
        space = Path(os.environ.get("MYAPP_TEST_WORKFLOW_SPACE", "/tmp/myapp-test-space"))
        services.settings = replace(services.settings, workflow_space=space)
    settings = replace(services.settings, broker_url=broker_url)
    app, _ = create_celery(settings)
    services.set_dispatch(celery_dispatch(app))
    if REAL_CLUSTER:
        api = client.ApiClient(client.Configuration())
        from kubernetes import config

        config.load_kube_config(config_file=REAL_CLUSTER, client_configuration=api.configuration)
        with _processes(services, settings, broker_url, Path(REAL_CLUSTER), extra_env) as (worker, watcher):
            yield Cluster(services, Launcher(api, NAMESPACE), worker, watcher)
        return
    with FakeKubeServer() as kube:
        kubeconfig = write_kubeconfig(settings.home / "kubeconfig.json", kube.url)
        kubelet = Kubelet(kube, NAMESPACE).start()
        try:
            with _processes(services, settings, broker_url, kubeconfig, extra_env) as (worker, watcher):
                yield Cluster(services, Launcher(kube.api_client(), NAMESPACE), worker, watcher, kube, kubelet)
        finally:
            kubelet.stop()
        assert kube.server_errors == [], kube.server_errors
        assert kubelet.errors == [], kubelet.errors


@contextmanager
def _processes(services: Any, settings: Any, broker_url: str, kubeconfig: Path,
               extra_env: dict[str, str]) -> Iterator[tuple[WorkerProcess, WatcherProcess]]:
    env = k8s_env(worker_env(settings, broker_url), kubeconfig, **extra_env)
    worker, watcher = WorkerProcess(env), WatcherProcess(env)
    worker.start()
    watcher.start()
    services.worker = worker
    try:
        yield worker, watcher
    finally:
        watcher.stop()
        worker.stop()
