"""A Kubernetes test environment: a cluster side, a real Celery worker and a real `myapp k8s-watcher`
process, both using the official client through a kubeconfig file. Three backends:

- `fake`: FakeKubeServer + the kubelet simulator of k8s_kubelet.py (fast; every fault can be injected).
- `real`: the real kube-apiserver v1.20.2 of scripts/k8s-testenv (one per test session) + the node
  simulator of tests/k8ssim; each module gets a namespace of its own, with docker/k8s/rbac.yaml's Role,
  and the worker and the watcher authenticate as the user bound only to that Role.
- `cluster`: an existing cluster (kind, k3s) named by MYAPP_TEST_KUBECONFIG; see docs/kubernetes.md
  for the shared workflow-space volume it needs (MYAPP_TEST_WORKFLOW_SPACE, MYAPP_TEST_K8S_PVC).

The module fixtures parametrize over `backends()`: MYAPP_TEST_K8S_BACKENDS (default "fake,real";
"cluster" when MYAPP_TEST_KUBECONFIG is set). Tests that drive the fake skip elsewhere, saying why.
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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from myapp.k8s.launcher import Launcher
from myapp.queue.celery_app import celery_dispatch, create_celery
from tests.conftest import WorkerProcess, worker_env
from tests.integration.k8s_kubelet import Kubelet
from tests.k8sfake import FakeKubeServer
from tests.k8ssim.simulator import NodeSimulator
from tests.k8ssim.testenv import TestEnv, shared_testenv

REAL_CLUSTER = os.environ.get("MYAPP_TEST_KUBECONFIG", "")
CLUSTER_NAMESPACE = os.environ.get("MYAPP_TEST_K8S_NAMESPACE", "myapp-test")
NAMESPACE = "pipelines"  # the fake's namespace; the real backends use Cluster.namespace


def backends() -> list[Any]:
    """pytest params of the backends this session runs the Kubernetes suites on."""
    default = "cluster" if REAL_CLUSTER else "fake,real"
    chosen = [b.strip() for b in os.environ.get("MYAPP_TEST_K8S_BACKENDS", default).split(",") if b.strip()]
    unknown = set(chosen) - {"fake", "real", "cluster"}
    if unknown:
        raise ValueError(f"MYAPP_TEST_K8S_BACKENDS: unknown backend(s) {sorted(unknown)}; use fake, real, cluster")
    return [pytest.param(b, id=b) for b in chosen]


def write_kubeconfig(path: Path, url: str, namespace: str = NAMESPACE) -> Path:
    """Write a kubeconfig pointing at `url` (the fake needs no credentials)."""
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "fake",
                "clusters": [{"name": "fake", "cluster": {"server": url}}],
                "users": [{"name": "tester", "user": {"token": "test-token"}}],
                "contexts": [
                    {"name": "fake", "context": {"cluster": "fake", "user": "tester", "namespace": namespace}}
                ],
            }
        )
    )
    return path


def api_client(kubeconfig: Path) -> client.ApiClient:
    """An ApiClient configured from a kubeconfig: the Configuration is filled first (server, CA,
    token or client certificate), then the client is built on it."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


def k8s_env(base: dict[str, str], kubeconfig: Path, namespace: str = NAMESPACE, **extra: str) -> dict[str, str]:
    """Return a process environment selecting the Kubernetes executor on `kubeconfig`'s cluster."""
    env = dict(base)
    env.update(
        {
            "MYAPP_EXECUTOR": "kubernetes",
            "MYAPP_K8S_KUBECONFIG": str(kubeconfig),
            "MYAPP_K8S_NAMESPACE": namespace,
            "MYAPP_K8S_WORKFLOW_SPACE_PVC": os.environ.get("MYAPP_TEST_K8S_PVC", "workflow-space"),
            "MYAPP_K8S_GROUP": "test",
            "MYAPP_K8S_RESOURCE_PACKAGES": '{"small": {"cpu": "250m", "memory": "256Mi"}}',
            "MYAPP_K8S_IMAGE_PULL_GRACE": "2",
            # An attempt whose pods the watcher never sees fails saying so ("pod ... not found") well
            # before a test's wait for its run (wait_finished: 120 s) runs out, and before the module's
            # pytest timeout; still long enough for a slowed worker between claim and launch record
            # (the same grace fails an attempt "claimed but never launched").
            "MYAPP_K8S_MISSING_GRACE": "45",
        }
    )
    env.update(extra)
    return env


class WatcherProcess:
    """A real `myapp k8s-watcher` subprocess."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.log = Path(env["MYAPP_HOME"]) / f"watcher-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0  # a restart appends to the same log
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "myapp", "k8s-watcher"],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120  # a start takes seconds (Lease, first pod list); loaded, ten times that
        while time.monotonic() < deadline:
            # Ready: leading and its pods listed ("watching"), or standing by behind another leader.
            # Not the first line: a test acting before the first list could create and delete a pod
            # the watcher then never sees.
            text = self.log.read_bytes()[offset:]
            if b"k8s-watcher: watching" in text or b"k8s-watcher: standing by" in text:
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
    """What a Kubernetes test gets: the services, a client, the processes, and the backend's own
    handles (the fake server and kubelet, or the real server's node simulator and admin client)."""

    services: Any
    launcher: Launcher
    worker: WorkerProcess
    watcher: WatcherProcess
    backend: str = "fake"
    namespace: str = NAMESPACE
    kube: FakeKubeServer | None = None
    kubelet: Kubelet | None = None
    testenv: TestEnv | None = None
    logs: dict[str, Path] = field(default_factory=dict)

    @property
    def sim(self) -> NodeSimulator | None:
        return self.testenv.sim if self.testenv else None

    def fake(self, why: str = "it drives FakeKubeServer's control API") -> tuple[FakeKubeServer, Kubelet]:
        """Return the fake server and kubelet; skip the test on the other backends, saying why."""
        if self.kube is None or self.kubelet is None:
            pytest.skip(f"fake only: {why}")
        return self.kube, self.kubelet

    def node(self, why: str = "it drives the node simulator's knobs") -> NodeSimulator:
        """Return the real backend's node simulator; skip elsewhere."""
        if self.sim is None:
            pytest.skip(f"real API server only: {why}")
        return self.sim

    def admin(self, why: str) -> Any:
        """Return the real test server's admin client (system:masters); skip elsewhere, saying why."""
        if self.testenv is None or self.testenv.admin is None:
            pytest.skip(f"fake or test server only: {why}")
        return self.testenv.admin

    def get_pod(self, name: str) -> dict[str, Any] | None:
        """Return a pod through the client (fake or real cluster), or None."""
        return self.launcher.get_pod(name)

    def report_logs(self) -> list[tuple[str, Path]]:
        """The logs a failure report shows: worker, watcher, then the cluster side's."""
        own = [(p.name, p) for p in (self.worker.log, self.watcher.log)]
        return own + [(name, path) for name, path in self.logs.items() if path.exists()]


@contextmanager
def k8s_cluster(services: Any, broker_url: str, backend: str = "fake", **extra_env: str) -> Iterator[Cluster]:
    """Start the cluster side, a Celery worker and the watcher; route dispatch to them."""
    if backend == "cluster":  # the workflow space must be the directory the cluster's volume shows to pods
        space = Path(os.environ.get("MYAPP_TEST_WORKFLOW_SPACE", "/tmp/myapp-test-space"))
        services.settings = replace(services.settings, workflow_space=space)
    settings = replace(services.settings, broker_url=broker_url)
    app, _ = create_celery(settings)
    services.set_dispatch(celery_dispatch(app))
    if backend == "cluster":
        if not REAL_CLUSTER:
            pytest.skip("the cluster backend needs MYAPP_TEST_KUBECONFIG")
        with _processes(services, settings, broker_url, Path(REAL_CLUSTER), CLUSTER_NAMESPACE, extra_env) as procs:
            yield Cluster(
                services,
                Launcher(api_client(Path(REAL_CLUSTER)), CLUSTER_NAMESPACE),
                *procs,
                backend="cluster",
                namespace=CLUSTER_NAMESPACE,
            )
        return
    if backend == "real":
        yield from _real(services, settings, broker_url, extra_env)
        return
    with FakeKubeServer() as kube:
        kubeconfig = write_kubeconfig(settings.home / "kubeconfig.json", kube.url)
        kubelet = Kubelet(kube, NAMESPACE).start()
        try:
            with _processes(services, settings, broker_url, kubeconfig, NAMESPACE, extra_env) as (worker, watcher):
                yield Cluster(
                    services, Launcher(kube.api_client(), NAMESPACE), worker, watcher, kube=kube, kubelet=kubelet
                )
        finally:
            kubelet.stop()
        assert kube.server_errors == [], kube.server_errors
        assert kubelet.errors == [], kubelet.errors


def _real(services: Any, settings: Any, broker_url: str, extra_env: dict[str, str]) -> Iterator[Cluster]:
    env = shared_testenv()
    assert env.sim is not None
    errors_before = len(env.sim.errors)
    namespace = env.namespace("it", workflow_space=settings.workflow_space)
    kubeconfig = env.myapp_kubeconfig(namespace, settings.home / f"kubeconfig-{namespace}.json")
    api = api_client(kubeconfig)
    try:
        with _processes(services, settings, broker_url, kubeconfig, namespace, extra_env) as (worker, watcher):
            yield Cluster(
                services,
                Launcher(api, namespace),
                worker,
                watcher,
                backend="real",
                namespace=namespace,
                testenv=env,
                logs=env.logs(),
            )
    finally:
        env.clean_namespace(namespace)
        api.close()
    errors = env.sim.errors[errors_before:]
    assert errors == [], errors


@contextmanager
def _processes(
    services: Any, settings: Any, broker_url: str, kubeconfig: Path, namespace: str, extra_env: dict[str, str]
) -> Iterator[tuple[WorkerProcess, WatcherProcess]]:
    env = k8s_env(worker_env(settings, broker_url), kubeconfig, namespace, **extra_env)
    worker, watcher = WorkerProcess(env), WatcherProcess(env)
    worker.start()
    watcher.start()
    services.worker = worker
    try:
        yield worker, watcher
    finally:
        watcher.stop()
        worker.stop()
