"""The real API server for a test session: one `scripts/k8s-testenv serve` instance (etcd +
kube-apiserver, stopped when this process ends, even by SIGKILL: its stdin closes) and one
NodeSimulator, shared by every test module of the session; each module gets a namespace of its own.

    env = shared_testenv()                      # starts on first use; pytest.skip()s when not built
    ns = env.namespace("m", workflow_space=dir) # fresh namespace, rbac.yaml's Role, workflow-space PV/PVC
    env.myapp_kubeconfig(ns, path)              # the Role-only user's kubeconfig, context namespace ns
    env.admin                                   # SimApi as admin (system:masters)
    env.sim                                     # the NodeSimulator (knobs: tests/k8ssim/README.md)
    env.clean_namespace(ns)                     # pods force-deleted, the node's processes gone, knobs reset

Set MYAPP_TEST_K8S_REQUIRE=1 (CI does) to fail instead of skipping when the binaries are missing.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8ssim.client import ApiError, SimApi
from tests.k8ssim.simulator import NodeSimulator, SimConfig

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "k8s-testenv"
RBAC = REPO / "docker" / "k8s" / "rbac.yaml"
HOME_NAMESPACE = "myapp-test"  # where the Role-only user's ServiceAccount lives
PLURALS = {
    "ServiceAccount": "serviceaccounts",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "ClusterRoleBinding": "clusterrolebindings",
}


def test_config() -> SimConfig:
    """kubelet's behaviour with shorter waits (tests hold on a 10x slower machine, not on 10 s timers)."""
    return SimConfig(heartbeat_interval=5.0, pull_backoff=(1.0, 8.0), retry_interval=1.0, unschedulable_retry=1.0)


class TestEnv:
    __test__ = False

    def __init__(self, root: Path, config: SimConfig | None = None) -> None:
        self.root = root
        self.config = config or test_config()
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self.admin: SimApi | None = None
        self.sim: NodeSimulator | None = None
        self._handler: logging.Handler | None = None

    @property
    def cluster_dir(self) -> Path:
        return self.root / "cluster"

    def start(self) -> TestEnv:
        self.root.mkdir(parents=True, exist_ok=True)
        stderr = (self.root / "testenv.log").open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(SCRIPT),
                "serve",
                "--state",
                str(self.cluster_dir),
                "--watch-stdin",
                "--audit",
                f"--namespace={HOME_NAMESPACE}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        stderr.close()
        line: list[bytes] = []
        reader = threading.Thread(
            target=lambda: line.append(
                self.proc.stdout.readline()  # type: ignore[union-attr]
            ),
            daemon=True,
        )
        reader.start()
        reader.join(300)
        if not line or not line[0].strip():
            self.stop()
            raise RuntimeError(f"k8s-testenv did not start: {(self.root / 'testenv.log').read_text()[-3000:]}")
        self.info = json.loads(line[0])
        self.admin = SimApi(Path(self.info["admin_kubeconfig"]))
        self._handler = logging.FileHandler(self.root / "node-simulator.log")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        sim_logger = logging.getLogger("k8ssim")
        sim_logger.addHandler(self._handler)
        sim_logger.setLevel(logging.INFO)
        self.sim = NodeSimulator(Path(self.info["admin_kubeconfig"]), self.root / "node", self.config).start()
        return self

    def stop(self) -> None:
        if self.sim is not None:
            self.sim.stop()
            self.sim = None
        if self.proc is not None:
            if self.proc.stdin:
                self.proc.stdin.close()  # the supervisor stops etcd and the API server
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self._handler is not None:
            logging.getLogger("k8ssim").removeHandler(self._handler)
            self._handler.close()

    # --- namespaces ------------------------------------------------------------------------------
    def namespace(self, prefix: str, *, workflow_space: Path | None = None, pvc: str = "workflow-space") -> str:
        """A new namespace with rbac.yaml's objects (bound to the Role-only user) and, given a
        directory, a hostPath PersistentVolume on it bound to the claim `pvc`."""
        assert self.admin is not None
        ns = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.admin.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        self.admin.create(
            f"/api/v1/namespaces/{ns}/serviceaccounts",
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "default"},
                "automountServiceAccountToken": False,
            },
        )
        for obj in yaml.safe_load_all(RBAC.read_text()):
            if not obj or obj["kind"] == "ClusterRoleBinding":  # discovery: bound once by k8s-testenv
                continue
            obj["metadata"]["namespace"] = ns
            for subject in obj.get("subjects", []):
                subject["namespace"] = HOME_NAMESPACE
            if obj["kind"] == "ServiceAccount":
                obj.setdefault("automountServiceAccountToken", False)
            group = obj["apiVersion"].rpartition("/")[0]
            base = f"/apis/{obj['apiVersion']}" if group else f"/api/{obj['apiVersion']}"
            self.admin.create(f"{base}/namespaces/{ns}/{PLURALS[obj['kind']]}", obj)
        if workflow_space is not None:
            self.bind_directory(ns, pvc, workflow_space)
        return ns

    def bind_directory(self, ns: str, claim: str, directory: Path) -> None:
        """A claim bound to a hostPath PersistentVolume (the binding the PV controller would write)."""
        assert self.admin is not None
        directory.mkdir(parents=True, exist_ok=True)
        pv = f"{ns}-{claim}"
        self.admin.create(
            "/api/v1/persistentvolumes",
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": pv},
                "spec": {
                    "capacity": {"storage": "10Gi"},
                    "accessModes": ["ReadWriteMany"],
                    "storageClassName": "manual",
                    "persistentVolumeReclaimPolicy": "Retain",
                    "hostPath": {"path": str(directory)},
                    "claimRef": {"namespace": ns, "name": claim},
                },
            },
        )
        self.admin.create(
            f"/api/v1/namespaces/{ns}/persistentvolumeclaims",
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim},
                "spec": {
                    "accessModes": ["ReadWriteMany"],
                    "storageClassName": "manual",
                    "volumeName": pv,
                    "resources": {"requests": {"storage": "10Gi"}},
                },
            },
        )
        self.admin.merge_patch(f"/api/v1/persistentvolumes/{pv}/status", {"status": {"phase": "Bound"}})
        self.admin.merge_patch(
            f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{claim}/status",
            {"status": {"phase": "Bound", "accessModes": ["ReadWriteMany"], "capacity": {"storage": "10Gi"}}},
        )

    def myapp_kubeconfig(self, ns: str, path: Path) -> Path:
        """The Role-only user's kubeconfig with `ns` as its context's namespace."""
        config = json.loads(Path(self.info["kubeconfig"]).read_text())
        for context in config["contexts"]:
            context["context"]["namespace"] = ns
        path.write_text(json.dumps(config))
        os.chmod(path, 0o600)
        return path

    def clean_namespace(self, ns: str, timeout: float = 60) -> None:
        """Force-delete what tests left (no namespace controller runs: the namespace itself stays)."""
        assert self.admin is not None and self.sim is not None
        self.sim.reset()
        for plural in ("pods", "services"):
            listed = self.admin.get(f"/api/v1/namespaces/{ns}/{plural}") or {}
            for item in listed.get("items", []):
                try:
                    self.admin.delete(
                        f"/api/v1/namespaces/{ns}/{plural}/{item['metadata']['name']}",
                        {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0},
                    )
                except ApiError:
                    pass
        self.sim.wait_idle(ns, timeout)

    def logs(self) -> dict[str, Path]:
        """Log files worth showing with a failure."""
        files = {
            "kube-apiserver": self.cluster_dir / "kube-apiserver.log",
            "etcd": self.cluster_dir / "etcd.log",
            "node simulator": self.root / "node-simulator.log",
            "k8s-testenv": self.root / "testenv.log",
        }
        return {name: path for name, path in files.items() if path.exists()}


_shared: TestEnv | None = None
_shared_error = ""
_lock = threading.Lock()


def missing_binaries() -> str:
    """Why the testenv cannot start here ("" when it can)."""
    from tests.k8ssim import sandbox

    ok, why = sandbox.available()
    if not ok:
        return why
    cache = Path(
        os.environ.get("MYAPP_K8S_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "myapp-k8s"
    )
    binaries = [cache / "bin" / "kube-apiserver-v1.20.2", cache / "bin" / "etcd-3.4.23"]
    if not all(b.exists() for b in binaries):
        return f"kube-apiserver/etcd are not built in {cache} (run scripts/k8s-testenv build once)"
    return ""


def database_suite() -> str:
    """The database this test session runs on: "postgresql" or "sqlite" (tests/conftest.py's choice)."""
    return "postgresql" if os.environ.get("MYAPP_TEST_DATABASE_URL", "").startswith("postgresql") else "sqlite"


def other_suite_runs_it() -> str:
    """Why this session leaves the real API server out ("" when it runs it). scripts/test runs the
    whole suite twice, on SQLite and on PostgreSQL, side by side; the real-API-server tests do not
    depend on the database (the fake backend's tests, run in both, cover the database side), so
    MYAPP_TEST_K8S_REAL_SUITE names the one suite that runs them. Unset: every session does."""
    chosen = os.environ.get("MYAPP_TEST_K8S_REAL_SUITE", "").strip().lower()
    if chosen not in ("", "sqlite", "postgresql"):
        raise ValueError(f"MYAPP_TEST_K8S_REAL_SUITE={chosen!r}: use sqlite or postgresql")
    if chosen and chosen != database_suite():
        return (
            f"the real-API-server tests run in the {chosen} suite only (MYAPP_TEST_K8S_REAL_SUITE={chosen}): "
            "they do not depend on the database; the fake backend runs in both"
        )
    return ""


def shared_testenv() -> TestEnv:
    """The session's instance, started on first use; skips (or fails with MYAPP_TEST_K8S_REQUIRE=1)
    when it cannot run here; skips when MYAPP_TEST_K8S_REAL_SUITE names the other database suite."""
    global _shared, _shared_error
    elsewhere = other_suite_runs_it()
    if elsewhere:
        pytest.skip(elsewhere)
    with _lock:
        if _shared is None and not _shared_error:
            _shared_error = missing_binaries()
            if not _shared_error:
                root = Path(tempfile.mkdtemp(prefix="myapp-k8s-testenv-"))
                try:
                    _shared = TestEnv(root).start()
                    atexit.register(_stop_shared, root)
                except Exception as exc:  # noqa: BLE001
                    _shared_error = f"the API server did not start: {exc}"
        if _shared is None:
            if os.environ.get("MYAPP_TEST_K8S_REQUIRE", "").lower() in ("1", "true", "yes"):
                pytest.fail(f"the real-API-server suite cannot run: {_shared_error}")
            pytest.skip(f"the real-API-server suite cannot run: {_shared_error}")
        return _shared


def _stop_shared(root: Path) -> None:
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None
    if not os.environ.get("MYAPP_TEST_K8S_KEEP"):
        shutil.rmtree(root, ignore_errors=True)


def wait_for(check: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
