"""NodeSimulator: one Node that plays kube-scheduler and kubelet through the real API only, plus the
control API tests use to inject faults (README.md lists every knob). Everything it does goes through
the API server with a kubeconfig (the testenv's admin one): list+watch, pods/binding, pods/status,
deletes with a uid precondition, events, Node and Lease updates; the API server reaches it only
through the kubelet endpoint it registers in the Node status (pods/log) and the webhook it registers.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import os
import platform
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.k8ssim import sandbox
from tests.k8ssim.client import ApiError, SimApi, pod_path
from tests.k8ssim.events import Recorder, now_micro, now_rfc3339
from tests.k8ssim.faults import Faults, PodMatch, matcher
from tests.k8ssim.pods import PodWorker
from tests.k8ssim.reactor import Reactor
from tests.k8ssim.scheduler import Scheduler
from tests.k8ssim.server import NodeServer, make_certs
from tests.k8ssim.workqueue import WorkQueue

Obj = dict[str, Any]
log = logging.getLogger("k8ssim")
DEFAULT_EVICTION = "The node was low on resource: memory. "
WEBHOOK = "k8ssim-sidecar-injector"
SYNC_THREADS = 8  # kubelet syncs pods in goroutines; here a few threads sync them all


@dataclass
class SimConfig:
    """Settings of the simulated node (kubelet's defaults, except where tests want faster)."""

    node_name: str = "sim-node"
    node_ip: str = "127.0.0.1"
    capacity: dict[str, str] = field(
        default_factory=lambda: {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    )
    labels: dict[str, str] = field(default_factory=dict)
    heartbeat_interval: float = 10.0  # nodeStatusUpdateFrequency / lease renew interval
    lease_duration: int = 40
    log_max_size: int = 10 * 1024 * 1024  # containerLogMaxSize
    log_max_files: int = 5  # containerLogMaxFiles
    pull_backoff: tuple[float, float] = (10.0, 300.0)
    pull_seconds: float = 0.0  # how long a (successful) pull takes
    retry_interval: float = 10.0  # re-sync of a container that could not be created
    unschedulable_retry: float = 30.0  # how often unschedulable pods are tried again
    pvc_dirs: dict[str, str] = field(default_factory=dict)  # "ns/claim" or "claim" -> local directory
    keep_pod_dirs: bool = False
    namespaces: tuple[str, ...] = ()  # only these (empty: all)


class Reflector:
    """list + watch of one path, resumed after a broken watch, listed again after 410."""

    def __init__(
        self,
        api: SimApi,
        path: str,
        query: dict[str, str],
        handler: Callable[[str, Obj], None],
        stop: threading.Event,
        errors: list[str],
        name: str,
    ) -> None:
        self.api, self.path, self.query, self.handler = api, path, query, handler
        self.stop, self.errors, self.name = stop, errors, name
        self.synced = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"reflector {name}", daemon=True)

    def _run(self) -> None:
        known: dict[str, Obj] = {}
        version = ""
        while not self.stop.is_set():
            try:
                if not version:
                    listed = self.api.get(self.path, **self.query) or {}
                    version = listed["metadata"]["resourceVersion"]
                    current = {o["metadata"]["uid"]: o for o in listed.get("items", [])}
                    for uid, obj in known.items():
                        if uid not in current:
                            self.handler("DELETED", obj)
                    for obj in current.values():
                        self.handler("MODIFIED" if obj["metadata"]["uid"] in known else "ADDED", obj)
                    known = current
                    self.synced.set()
                for event in self.api.watch(self.path, resource_version=version, timeout_seconds=20, **self.query):
                    if self.stop.is_set():
                        return
                    kind, obj = event["type"], event["object"]
                    if kind == "ERROR":
                        version = ""  # 410 Gone: list again
                        break
                    version = obj["metadata"]["resourceVersion"]
                    if kind == "BOOKMARK":
                        continue
                    uid = obj["metadata"]["uid"]
                    if kind == "DELETED":
                        known.pop(uid, None)
                    else:
                        known[uid] = obj
                    self.handler(kind, obj)
            except ApiError as exc:
                if exc.status == 410:
                    version = ""
                    continue
                log.warning("%s: %s", self.name, exc)
                self.stop.wait(1)
            except Exception as exc:  # noqa: BLE001  connection trouble: retry
                if self.stop.is_set():
                    return
                log.warning("%s: %s: %s", self.name, type(exc).__name__, exc)
                self.stop.wait(0.5)


class NodeSimulator:
    """A node (scheduler + kubelet) for a real API server; start() it, stop() it, use the knobs."""

    def __init__(self, kubeconfig: Path, state_dir: Path, config: SimConfig | None = None) -> None:
        ok, why = sandbox.available()
        if not ok:
            raise RuntimeError(f"the node simulator cannot run containers here: {why}")
        self.config = config or SimConfig()
        self.state_dir = Path(state_dir)
        self.api = SimApi(kubeconfig, maxsize=32)
        self.recorder = Recorder(self.api, self.config.node_name)
        self.faults = Faults()
        self.errors: list[str] = []
        self.node_lost = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers: dict[str, PodWorker] = {}  # uid -> worker
        self._by_name: dict[str, PodWorker] = {}  # ns/name -> latest worker
        self._images: set[str] = set()
        self._next_ip = 0
        self.scheduler = Scheduler(self)
        self.server: NodeServer | None = None
        self.allocatable = dict(self.config.capacity)
        self._node: Obj = {}
        self._reflectors: list[Reflector] = []
        self._threads: list[threading.Thread] = []
        self.reactor = Reactor(self.errors)  # every container's output and end, one thread
        self.syncs = WorkQueue(SYNC_THREADS)  # every pod's syncs, a few threads

    # --- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> NodeSimulator:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        certs = make_certs(self.state_dir / "pki", self.config.node_ip)
        self.server = NodeServer(self, self.config.node_ip, certs)
        self.server.start()
        self.reactor.start()
        self.syncs.start()
        self._register_node()
        self._register_webhook(certs[0])
        self._reflectors = [
            Reflector(
                self.api,
                "/api/v1/pods",
                {"fieldSelector": f"spec.nodeName={self.config.node_name}"},
                self._kubelet_event,
                self._stop,
                self.errors,
                "kubelet pods",
            ),
            Reflector(
                self.api,
                "/api/v1/pods",
                {"fieldSelector": "spec.nodeName="},
                self._scheduler_event,
                self._stop,
                self.errors,
                "scheduler pods",
            ),
        ]
        for r in self._reflectors:
            r.thread.start()
        for r in self._reflectors:
            r.synced.wait(30)
        self._threads = [
            threading.Thread(target=self.scheduler.loop, args=(self._stop,), name="scheduler", daemon=True),
            threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True),
        ]
        for t in self._threads:
            t.start()
        log.info(
            "node ready: %s (kubelet endpoint %s:%s)", self.config.node_name, self.config.node_ip, self.server.port
        )
        return self

    def stop(self) -> None:
        """Stop the node: every container is killed, nothing is finalized (pods stay as they are)."""
        self._stop.set()
        self.node_lost.set()
        self.scheduler.kick.set()
        with self._lock:
            workers = list(self._workers.values())
        running = [r.process for w in workers for r in w.containers() if r.process is not None and r.process.running()]
        for process in running:
            process.kill_all()
        deadline = time.monotonic() + 15
        for process in running:
            process.wait(max(0.0, deadline - time.monotonic()))
        self.syncs.stop()
        self.reactor.stop()
        if self.server:
            self.server.shutdown()
        try:
            self.api.delete(
                f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{WEBHOOK}-{self.config.node_name}"
            )
        except (ApiError, OSError):
            pass
        self.api.close()

    def __enter__(self) -> NodeSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- node -----------------------------------------------------------------------------------------
    def node_object(self) -> Obj:
        with self._lock:
            return self._node

    def _node_status(self) -> Obj:
        stamp = now_rfc3339()
        previous = {c["type"]: c for c in (self._node.get("status") or {}).get("conditions") or []}

        def cond(kind: str, status: str, reason: str, message: str) -> Obj:
            old = previous.get(kind)
            since = old["lastTransitionTime"] if old and old["status"] == status else stamp
            return {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": since,
            }

        assert self.server is not None
        return {
            "capacity": dict(self.config.capacity),
            "allocatable": dict(self.allocatable),
            "conditions": [
                cond(
                    "MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"
                ),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": self.config.node_ip},
                {"type": "Hostname", "address": self.config.node_name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.server.port}},
            "nodeInfo": {
                "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, self.config.node_name).hex,
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, self.config.node_name)),
                "bootID": str(uuid.uuid4()),
                "kernelVersion": platform.release(),
                "osImage": "k8ssim (processes on the host)",
                "containerRuntimeVersion": "containerd://1.4.13",
                "kubeletVersion": "v1.20.2",
                "kubeProxyVersion": "v1.20.2",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }

    def _register_node(self) -> None:
        name = self.config.node_name
        labels = {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": "amd64",
            **self.config.labels,
        }
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": labels,
                "annotations": {
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                },
            },
            "spec": {},
        }
        try:
            self._node = self.api.create("/api/v1/nodes", body)
        except ApiError as exc:
            if exc.status != 409:
                raise
            self._node = self.api.get(f"/api/v1/nodes/{name}") or body
        self._post_node_status()
        self._renew_lease()
        self._untaint()

    def _untaint(self) -> None:
        """The node lifecycle controller's part (no controller-manager runs): the API server's
        TaintNodesByCondition admission gave the new node `node.kubernetes.io/not-ready`; it is
        removed once the node posts Ready."""
        node = self.api.get(f"/api/v1/nodes/{self.config.node_name}") or {}
        taints = (node.get("spec") or {}).get("taints") or []
        kept = [t for t in taints if t["key"] not in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")]
        if kept != taints:
            answer = self.api.merge_patch(f"/api/v1/nodes/{self.config.node_name}", {"spec": {"taints": kept or None}})
            if answer:
                with self._lock:
                    self._node = answer

    def _post_node_status(self) -> None:
        status = self._node_status()
        answer = self.api.merge_patch(f"/api/v1/nodes/{self.config.node_name}/status", {"status": status})
        if answer:
            with self._lock:
                self._node = answer

    def _renew_lease(self) -> None:
        name, path = self.config.node_name, "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        spec = {"holderIdentity": name, "leaseDurationSeconds": self.config.lease_duration, "renewTime": now_micro()}
        lease = self.api.get(f"{path}/{name}")
        if lease is None:
            self.api.create(
                path,
                {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {
                        "name": name,
                        "namespace": "kube-node-lease",
                        "ownerReferences": [
                            {"apiVersion": "v1", "kind": "Node", "name": name, "uid": self._node["metadata"]["uid"]}
                        ],
                    },
                    "spec": spec,
                },
            )
        else:
            lease["spec"].update(spec)
            self.api.request("PUT", f"{path}/{name}", lease)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.config.heartbeat_interval):
            if self.node_lost.is_set():
                continue
            try:
                self._post_node_status()
                self._renew_lease()
            except Exception as exc:  # noqa: BLE001
                log.warning("heartbeat: %s", exc)

    # --- the two informers -------------------------------------------------------------------------------
    def _wanted(self, pod: Obj) -> bool:
        return not self.config.namespaces or pod["metadata"]["namespace"] in self.config.namespaces

    def _scheduler_event(self, kind: str, pod: Obj) -> None:
        if self._wanted(pod):
            self.scheduler.seen(kind, pod)

    def _kubelet_event(self, kind: str, pod: Obj) -> None:
        if not self._wanted(pod):
            return
        uid = pod["metadata"]["uid"]
        with self._lock:
            worker = self._workers.get(uid)
        if kind == "DELETED":
            if worker:
                worker.deleted()
            self.scheduler.kick.set()  # resources were freed
            return
        if worker:
            worker.update(pod)
            return
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp"):
            return  # ended before this simulator started
        worker = PodWorker(self, pod)
        with self._lock:
            self._workers[uid] = worker
            self._by_name[worker.key] = worker
        worker.kick()

    def forget(self, worker: PodWorker) -> None:
        with self._lock:
            self._workers.pop(worker.uid, None)
            if self._by_name.get(worker.key) is worker:
                del self._by_name[worker.key]
        self.scheduler.kick.set()

    def worker(self, namespace: str, name: str) -> PodWorker | None:
        with self._lock:
            return self._by_name.get(f"{namespace}/{name}")

    def workers(self) -> list[PodWorker]:
        with self._lock:
            return list(self._workers.values())

    def node_usage(self) -> tuple[dict[str, float], int]:
        used: dict[str, float] = {}
        count = 0
        for w in self.workers():
            if w.terminal or w.gone:
                continue
            count += 1
            for k, v in w.requests.items():
                used[k] = used.get(k, 0) + v
        return used, count

    # --- what pod workers need --------------------------------------------------------------------------
    def allocate_ip(self) -> str:
        with self._lock:
            self._next_ip += 1
            return str(ipaddress.IPv4Address("127.1.0.0") + self._next_ip)

    def image_present(self, image: str) -> bool:
        with self._lock:
            return image in self._images

    def image_pulled(self, image: str) -> None:
        with self._lock:
            self._images.add(image)

    def lookup(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.api.get(f"/api/v1/namespaces/{namespace}/{kind}/{name}")

    def service_env(self) -> dict[str, str]:
        server = urlsplit(self.api.server)
        host, port = server.hostname or "127.0.0.1", str(server.port or 443)
        return {
            "KUBERNETES_SERVICE_HOST": host,
            "KUBERNETES_SERVICE_PORT": port,
            "KUBERNETES_SERVICE_PORT_HTTPS": port,
            "KUBERNETES_PORT": f"tcp://{host}:{port}",
            f"KUBERNETES_PORT_{port}_TCP": f"tcp://{host}:{port}",
            f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
            f"KUBERNETES_PORT_{port}_TCP_PORT": port,
            f"KUBERNETES_PORT_{port}_TCP_ADDR": host,
        }

    def log_path(self, namespace: str, name: str, uid: str, container: str) -> Path:
        return self.state_dir / "logs" / f"{namespace}_{name}_{uid}" / container / "0.log"

    def tail_log(self, path: Path, lines: int, limit: int) -> str:
        try:
            records = path.read_bytes().splitlines()[-lines:]
        except OSError:
            return ""
        text = b"\n".join(r.split(b" ", 3)[-1] for r in records).decode("utf-8", "replace")
        return text[-limit:]

    def volume_dir(self, worker: PodWorker, volume: Obj) -> Path:
        name = volume["name"]
        own: Path = worker.dir / "volumes" / str(name)
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            for key in (f"{worker.namespace}/{claim}", claim):
                if key in self.config.pvc_dirs:
                    return Path(str(self.config.pvc_dirs[key]))
            pvc = self.api.get(f"/api/v1/namespaces/{worker.namespace}/persistentvolumeclaims/{claim}")
            pv = self.api.get(f"/api/v1/persistentvolumes/{(pvc or {}).get('spec', {}).get('volumeName', '-')}")
            source = (pv or {}).get("spec", {})
            path = str((source.get("hostPath") or source.get("local") or {}).get("path") or "")
            if not path:
                raise RuntimeError(f"claim {worker.namespace}/{claim} is not bound to a hostPath/local volume")
            return Path(path)
        if "hostPath" in volume:
            host = Path(volume["hostPath"]["path"])
            if volume["hostPath"].get("type") in ("DirectoryOrCreate",) or not host.exists():
                host.mkdir(parents=True, exist_ok=True)
            return host
        own.mkdir(parents=True, exist_ok=True)
        for kind, key in (("secrets", "secret"), ("configmaps", "configMap")):
            if key in volume:
                ref = volume[key]
                obj = self.lookup(kind, worker.namespace, ref.get("secretName") or ref.get("name"))
                data = (obj or {}).get("data") or {}
                for item in ref.get("items") or [{"key": k, "path": k} for k in data]:
                    value = data.get(item["key"], "")
                    raw = base64.b64decode(value) if kind == "secrets" else str(value).encode()
                    target = own / item["path"]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(raw)
        return own

    # --- the webhook ---------------------------------------------------------------------------------------
    def _register_webhook(self, ca: Path) -> None:
        assert self.server is not None
        name = f"{WEBHOOK}-{self.config.node_name}"
        body = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [
                {
                    "name": "sidecars.k8ssim.test",
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "failurePolicy": "Ignore",
                    "timeoutSeconds": 5,
                    "reinvocationPolicy": "Never",
                    "clientConfig": {
                        "url": f"https://{self.config.node_ip}:{self.server.port}/mutate",
                        "caBundle": base64.b64encode(ca.read_bytes()).decode(),
                    },
                    "rules": [
                        {
                            "operations": ["CREATE"],
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "resources": ["pods"],
                            "scope": "Namespaced",
                        }
                    ],
                    "namespaceSelector": {
                        "matchExpressions": [{"key": "k8ssim/no-sidecars", "operator": "DoesNotExist"}]
                    },
                }
            ],
        }
        path = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
        self.api.delete(f"{path}/{name}")
        self.api.create(path, body)

    # === control API (thread-safe) ===========================================================================
    def reset(self) -> None:
        """Clear every knob and bring a lost node back."""
        self.faults.reset()
        if self.node_lost.is_set():
            self.restore_node()
        self.scheduler.kick.set()

    def hold_scheduling(
        self, match: str | PodMatch, message: str = "0/1 nodes are available: 1 Insufficient cpu."
    ) -> None:
        """Keep matching pods unscheduled; each try records FailedScheduling with `message` ("" = silently)."""
        with self.faults.lock:
            self.faults.holds.append((matcher(match), message))

    def release_scheduling(self) -> None:
        with self.faults.lock:
            self.faults.holds.clear()
        with self.scheduler.lock:
            self.scheduler.tried.clear()
        self.scheduler.kick.set()

    def delay_start(self, match: str | PodMatch, seconds: float) -> None:
        """Matching pods stay ContainerCreating for `seconds` after they reach the node."""
        with self.faults.lock:
            self.faults.delays.append((matcher(match), seconds))

    def fail_pulls(self, image_part: str, times: int = 1 << 30) -> None:
        """The first `times` pulls of images containing `image_part` fail (ErrImagePull)."""
        with self.faults.lock:
            self.faults.pull_failures[image_part] = times

    def inject_sidecar(
        self,
        match: str | PodMatch,
        *,
        name: str = "sidecar",
        image: str = "k8ssim/sidecar:1",
        command: tuple[str, ...] = ("sleep", "3600"),
    ) -> None:
        """New matching pods get one more container (through the mutating webhook, as istio's injector)."""
        container = {
            "name": name,
            "image": image,
            "command": list(command),
            "resources": {},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent",
        }
        with self.faults.lock:
            self.faults.sidecars.append((matcher(match), container))

    def stall_logs(self, match: str | PodMatch) -> None:
        """Log streams of matching pods stop sending (the connection stays open)."""
        with self.faults.lock:
            self.faults.stalled.append(matcher(match))

    def resume_logs(self) -> None:
        with self.faults.lock:
            self.faults.stalled.clear()

    def rotate_logs(self, namespace: str, name: str, container: str = "main") -> None:
        """Rotate a container's log file now (as kubelet at containerLogMaxSize)."""
        runtime = self._runtime(namespace, name, container)
        if runtime.log is None:
            raise KeyError(f"{namespace}/{name}/{container} has no log yet")
        runtime.log.rotate()

    def evict(self, namespace: str, name: str, message: str = DEFAULT_EVICTION, grace: int = 0) -> None:
        """kubelet's node-pressure eviction: containers killed, phase Failed, reason Evicted (the pod stays)."""
        self._worker(namespace, name).evict(message, grace)

    def evict_via_api(self, namespace: str, name: str, grace: int | None = None) -> None:
        """The Eviction API (as `kubectl drain`): a graceful delete through pods/eviction."""
        body: Obj = {
            "apiVersion": "policy/v1beta1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        if grace is not None:
            body["deleteOptions"] = {"gracePeriodSeconds": grace}
        self.api.create(pod_path(namespace, name, "eviction"), body)

    def oom_kill(self, namespace: str, name: str, container: str = "main") -> None:
        """The kernel's OOM killer: the container dies with 137, reason OOMKilled."""
        self._worker(namespace, name).oom_kill(container)

    def lose_node(self) -> None:
        """The node drops off: no heartbeats or status, no deletions finished (pods stay Terminating),
        its endpoint unreachable; the containers keep running."""
        self.node_lost.set()
        if self.server:
            self.server.pause()

    def restore_node(self) -> None:
        if self.server:
            self.server.resume()
            self._post_node_status()
        self.node_lost.clear()
        for w in self.workers():
            w.kick()

    def on_start(self, match: str | PodMatch, hook: Callable[[PodWorker, Any], None]) -> None:
        """Call hook(worker, runtime) right after each matching container starts."""
        with self.faults.lock:
            self.faults.on_start_hooks.append((matcher(match), hook))

    def pid(self, namespace: str, name: str, container: str = "main") -> int:
        """The host pid of a running container's PID 1."""
        runtime = self._runtime(namespace, name, container)
        return runtime.process.init_pid if runtime.process else 0

    def signals(self, namespace: str, name: str, container: str = "main") -> list[int]:
        """The signals sent to a container's PID 1 so far."""
        runtime = self._runtime(namespace, name, container)
        return list(runtime.process.signalled) if runtime.process else []

    def log_requests(self) -> list[tuple[str, str, str, dict[str, str]]]:
        """(namespace, pod, container, query) of every containerLogs request the node served."""
        with self.faults.lock:
            return list(self.faults.log_requests)

    def events(self) -> list[Obj]:
        with self.recorder._lock:
            return list(self.recorder.recorded)

    def pods(self) -> Iterator[PodWorker]:
        return iter(self.workers())

    def wait_idle(self, namespace: str, timeout: float = 60) -> bool:
        """Wait until no pod of `namespace` is left on the node."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(w.namespace == namespace for w in self.workers()):
                return True
            time.sleep(0.05)
        return False

    def _worker(self, namespace: str, name: str) -> PodWorker:
        worker = self.worker(namespace, name)
        if worker is None:
            raise KeyError(f"pod {namespace}/{name} is not on the node")
        return worker

    def _runtime(self, namespace: str, name: str, container: str) -> Any:
        runtime = self._worker(namespace, name).container(container)
        if runtime is None:
            raise KeyError(f"pod {namespace}/{name} has no container {container!r}")
        return runtime


def purge(state_dir: Path) -> None:
    shutil.rmtree(state_dir, ignore_errors=True)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
