"""FakeKubeServer: a kube-apiserver on 127.0.0.1 that tests start, drive and stop.

Clients talk HTTP to it with the official `kubernetes` client; tests play the
scheduler, kubelet and controllers through thread-safe Python methods here.
The server itself uses only the standard library; `api_client()` and
`dynamic_client()` import `kubernetes` lazily.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from tests.k8sfake import pods
from tests.k8sfake.api import RestApi, shape
from tests.k8sfake.errors import StatusError
from tests.k8sfake.faults import Fault, Hold
from tests.k8sfake.handler import KubeHTTPServer, RecordedRequest
from tests.k8sfake.kinds import BUILTIN_TYPES, CRD_TYPE, EVENT_TYPE, crd_object, types_from_crd
from tests.k8sfake.logs import LogBook
from tests.k8sfake.meta import Clock, JsonObj, format_time, metadata, utc_now
from tests.k8sfake.pods import POD_TYPE
from tests.k8sfake.resources import Registry, ResourceType
from tests.k8sfake.store import Store
from tests.k8sfake.writes import Settings, Writer

if TYPE_CHECKING:
    from kubernetes.client import ApiClient
    from kubernetes.dynamic import DynamicClient

_TERMINAL = ("Succeeded", "Failed")


class FakeKubeServer:
    """A faithful-enough kube-apiserver for tests; use as a context manager."""

    def __init__(
        self,
        *,
        clock: Clock = utc_now,
        history_limit: int | None = None,
        auto_create_namespaces: bool = True,
        node_name: str = "fake-node",
    ) -> None:
        self.clock = clock
        self.node_name = node_name
        self.settings = Settings(auto_create_namespaces=auto_create_namespaces)
        self.store = Store(history_limit)
        self.registry = Registry()
        for rtype in (POD_TYPE, *BUILTIN_TYPES):
            self.registry.add(rtype)
        self.logs = LogBook(self.store, clock)
        self.writer = Writer(self.store, self.registry, clock, self.settings)
        self._httpd = KubeHTTPServer(RestApi(self.store, self.registry, self.logs, self.writer))
        self._thread: threading.Thread | None = None
        self._clients: list[ApiClient] = []
        self._tmpdir = tempfile.mkdtemp(prefix="k8sfake-")
        self._pod_ips = 0
        for namespace in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.writer.create(self.registry.find("namespaces"), None, {"metadata": {"name": namespace}})

    # --- lifecycle --------------------------------------------------------------

    @property
    def url(self) -> str:
        """Return the base URL, e.g. http://127.0.0.1:PORT."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeKubeServer:
        """Start serving in a background thread."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="k8sfake", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """End open streams cleanly, close clients made here, stop serving."""
        self.store.close()
        for client in self._clients:
            client.close()  # type: ignore[no-untyped-call]
        self._httpd.shutdown()
        self._httpd.drop_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> FakeKubeServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def api_client(self) -> ApiClient:
        """Return a kubernetes.client.ApiClient configured for this server (closed on stop)."""
        from kubernetes import client

        configuration = client.Configuration(host=self.url)
        api_client = client.ApiClient(configuration)
        self._clients.append(api_client)
        return api_client

    def dynamic_client(self) -> DynamicClient:
        """Return a DynamicClient whose discovery cache lives (and dies) with this server."""
        from kubernetes.dynamic import DynamicClient

        cache_file = f"{self._tmpdir}/discovery.json"
        return DynamicClient(self.api_client(), cache_file=cache_file)  # type: ignore[no-untyped-call]

    # --- what happened ------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Return the (method, path, query) of every request so far."""
        with self._httpd.records_lock:
            return list(self._httpd.requests)

    @property
    def server_errors(self) -> list[str]:
        """Return tracebacks of exceptions inside the fake (answered as 500)."""
        with self._httpd.records_lock:
            return list(self._httpd.server_errors)

    @property
    def resource_version(self) -> str:
        """Return the current global resourceVersion."""
        with self.store.lock:
            return str(self.store.revision)

    def get(self, plural: str, namespace: str, name: str, *, group: str | None = None) -> JsonObj | None:
        """Return the object as the API would serve it, or None."""
        rtype = self.registry.find(plural, group)
        found = self.store.get(rtype.storage_key, namespace, name)
        return shape(found, rtype) if found is not None else None

    def create(self, plural: str, namespace: str | None, body: JsonObj, *, group: str | None = None) -> JsonObj:
        """Create an object as a client would (defaults, validation, events); return it as served."""
        rtype = self.registry.find(plural, group)
        clean = {k: v for k, v in body.items() if k not in ("kind", "apiVersion")}
        return shape(self.writer.create(rtype, namespace if rtype.namespaced else None, clean), rtype)

    # --- kubelet and scheduler ----------------------------------------------------------

    def _next_pod_ip(self) -> str:
        with self.store.lock:
            self._pod_ips += 1
            return f"10.244.{self._pod_ips // 250}.{self._pod_ips % 250 + 2}"

    def _mutate_pod(self, namespace: str, name: str, change: Callable[[JsonObj], None]) -> JsonObj:
        return shape(self.writer.mutate(POD_TYPE, namespace, name, change), POD_TYPE)

    def set_pod_phase(self, namespace: str, name: str, phase: str, *, reason: str = "", message: str = "") -> JsonObj:
        """Move a pod to `phase` with the statuses a kubelet would report.

        Pending: scheduled with containers waiting (reason, default ContainerCreating), or
        PodScheduled=False when reason is "Unschedulable". Running: containers running and
        ready. Succeeded/Failed: containers terminated (exit 0 / 1); reason and message land
        in status.reason/message for Failed (e.g. "Evicted"). Unknown: phase only.
        """
        ip, now = self._next_pod_ip(), self.clock()

        def change(pod: JsonObj) -> None:
            if phase == "Pending" and reason == "Unschedulable":
                pods.set_unschedulable(pod, message, now)
                return
            if phase != "Unknown":
                pods.schedule(pod, self.node_name, "172.18.0.2", now)
            if phase == "Pending":
                pods.set_waiting(pod, reason or "ContainerCreating", message, now)
            elif phase in ("Running", *_TERMINAL):
                pods.set_running(pod, ip, now)
            if phase in _TERMINAL:
                pods.terminate(pod, None, 0 if phase == "Succeeded" else 1, "", "", now)
            pod["status"]["phase"] = phase
            if phase == "Failed" and (reason or message):
                pod["status"].update(reason=reason, message=message)

        return self._mutate_pod(namespace, name, change)

    def finish_pod(
        self,
        namespace: str,
        name: str,
        exit_code: int = 0,
        message: str = "",
        *,
        reason: str = "",
        container: str | None = None,
    ) -> JsonObj:
        """Terminate a container (default: all) with `exit_code` and termination `message`.

        The phase follows kubelet's rules: Succeeded/Failed once every container has
        terminated (restartPolicy Never/OnFailure), otherwise it stays Running.
        """
        ip, now = self._next_pod_ip(), self.clock()

        def change(pod: JsonObj) -> None:
            if not pod["spec"].get("nodeName"):
                pods.schedule(pod, self.node_name, "172.18.0.2", now)
            pods.set_running(pod, ip, now)
            pods.terminate(pod, container, exit_code, reason, message, now)

        return self._mutate_pod(namespace, name, change)

    def run_init_container(self, namespace: str, name: str, container: str) -> JsonObj:
        """Start the init container `container` (kubelet runs them one at a time, in order)."""
        ip, now = self._next_pod_ip(), self.clock()

        def change(pod: JsonObj) -> None:
            if not pod["spec"].get("nodeName"):
                pods.schedule(pod, self.node_name, "172.18.0.2", now)
            pod["status"].setdefault("podIP", ip)
            pods.set_init_state(pod, container, None, "", now)

        return self._mutate_pod(namespace, name, change)

    def finish_init_container(
        self, namespace: str, name: str, container: str, exit_code: int, message: str = ""
    ) -> JsonObj:
        """Terminate the init container `container`: a failure fails the pod (restartPolicy Never)."""
        now = self.clock()
        return self._mutate_pod(
            namespace, name, lambda pod: pods.set_init_state(pod, container, exit_code, message, now)
        )

    def mark_pod_not_ready(self, namespace: str, name: str) -> JsonObj:
        """Set the pod's Ready condition False as the node lifecycle controller does for a NotReady node."""
        now = format_time(self.clock())

        def change(pod: JsonObj) -> None:
            for condition in pod.get("status", {}).get("conditions") or []:
                if condition["type"] == "Ready" and condition["status"] != "False":
                    condition.update(status="False", lastTransitionTime=now)
                    condition.pop("reason", None)
                    condition.pop("message", None)

        return self._mutate_pod(namespace, name, change)

    def complete_pod_deletion(self, namespace: str, name: str) -> None:
        """Finish a graceful deletion held by `settings.hold_pod_deletions` (DELETED event)."""
        self.writer.remove(POD_TYPE, namespace, name)

    def append_log(self, namespace: str, name: str, text: str, container: str | None = None) -> None:
        """Write `text` to a container's log (default: the pod's first container)."""
        pod = self.store.get("pods", namespace, name)
        if pod is None:
            raise KeyError(f"pod {namespace}/{name} does not exist")
        chosen = container or pod["spec"]["containers"][0]["name"]
        self.logs.append(str(metadata(pod)["uid"]), chosen, text)

    # --- events, custom resources, status ------------------------------------------------

    def add_event(
        self,
        namespace: str,
        involved: tuple[str, str],
        reason: str,
        message: str,
        type: str = "Normal",
        *,
        component: str = "kubelet",
        field_path: str = "",
    ) -> JsonObj:  # noqa: A002
        """Record a core/v1 Event about (kind, name), aggregating repeats like the recorder."""
        kind, name = involved
        rtype = self.registry.find(kind)
        target = self.store.get(rtype.storage_key, namespace if rtype.namespaced else "", name) or {}
        reference = {
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "uid": metadata(target).get("uid", ""),
            "apiVersion": rtype.api_version,
            "resourceVersion": metadata(target).get("resourceVersion", ""),
        }
        if field_path:
            reference["fieldPath"] = field_path
        stamp = format_time(self.clock())

        def repeat(event: JsonObj) -> None:
            event.update(count=event["count"] + 1, lastTimestamp=stamp)

        with self.store.lock:
            for event in self.store.items(EVENT_TYPE.storage_key, namespace):
                if (event["involvedObject"], event["reason"], event["message"], event["type"]) == (
                    reference,
                    reason,
                    message,
                    type,
                ):
                    return shape(
                        self.writer.mutate(EVENT_TYPE, namespace, event["metadata"]["name"], repeat), EVENT_TYPE
                    )
            body = {
                "metadata": {"name": f"{name}.{time.time_ns():x}", "namespace": namespace},
                "involvedObject": reference,
                "reason": reason,
                "message": message,
                "source": {"component": component, **({"host": self.node_name} if component == "kubelet" else {})},
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
                "type": type,
                "eventTime": None,
                "reportingComponent": component,
                "reportingInstance": self.node_name if component == "kubelet" else "",
            }
            return shape(self.writer.create(EVENT_TYPE, namespace, body), EVENT_TYPE)

    def register_crd(
        self,
        group: str,
        version: str,
        kind: str,
        plural: str,
        *,
        singular: str | None = None,
        namespaced: bool = True,
        short_names: tuple[str, ...] = (),
        status_subresource: bool = True,
    ) -> JsonObj:
        """Create a CustomResourceDefinition and serve its custom resources (adds a version if it exists)."""
        crd = crd_object(
            group,
            version,
            kind,
            plural,
            singular=singular,
            namespaced=namespaced,
            short_names=short_names,
            status_subresource=status_subresource,
        )
        existing = self.store.get(CRD_TYPE.storage_key, "", f"{plural}.{group}")
        if existing is None:
            return shape(self.writer.create(CRD_TYPE, None, crd), CRD_TYPE)
        added = dict(crd["spec"]["versions"][0], storage=False)

        def add_version(stored: JsonObj) -> None:
            if all(v["name"] != version for v in stored["spec"]["versions"]):
                stored["spec"]["versions"].append(added)

        updated = self.writer.mutate(CRD_TYPE, "", f"{plural}.{group}", add_version)
        for served in types_from_crd(updated):
            self.registry.add(served)
        return shape(updated, CRD_TYPE)

    def set_status(
        self, namespace: str, plural: str, name: str, status: JsonObj, *, group: str | None = None
    ) -> JsonObj:
        """Replace an object's status as its controller would (MODIFIED event); return it."""
        rtype: ResourceType = self.registry.find(plural, group)
        changed = self.writer.mutate(
            rtype, namespace if rtype.namespaced else "", name, lambda obj: obj.__setitem__("status", status)
        )
        return shape(changed, rtype)

    # --- faults and admission --------------------------------------------------------------

    def inject_fault(
        self,
        method: str,
        path: str,
        error: StatusError,
        *,
        times: int = 1,
        watch: bool | None = None,
        retry_after: int | None = None,
    ) -> Fault:
        """Answer the next `times` requests (-1: all) whose path matches the regex `path` with `error`."""
        return self._httpd.faults.arm(Fault(method, re.compile(path), error, times, watch, retry_after))

    def hold_requests(
        self, method: str, path: str, *, times: int = 1, watch: bool | None = None, limit: float = 120.0
    ) -> Hold:
        """Keep the next `times` requests whose path matches the regex `path` waiting until the
        returned Hold is released (or `limit` seconds passed), then serve them: a slow server."""
        return self._httpd.faults.hold(Hold(method, re.compile(path), times, watch, limit))

    def clear_faults(self) -> None:
        """Disarm every injected fault and release every hold."""
        self._httpd.faults.clear()

    def add_admission(self, plural: str, mutate: Callable[[JsonObj], None]) -> None:
        """Mutate every created `plural` object before defaulting, as a mutating admission webhook does."""
        self.settings.admission.append((plural, mutate))

    # --- history and streams -------------------------------------------------------------

    def restore_backup(self, revisions: int) -> None:
        """Go back `revisions` in etcd's revision (a storage restore): clients now hold versions from the future."""
        with self.store.lock:
            self.store.revision = max(self.store.floor, self.store.revision - revisions)
            self.store.history.clear()
            self.store.floor = self.store.revision
        self.store.end_watches(None, "abrupt")

    def compact(self) -> None:
        """Forget history: watches from any resourceVersion before now get 410 Expired."""
        self.store.compact()

    def stall_log_streams(self) -> int:
        """Make every open `follow` log stream go silent without closing it; return how many were open."""
        return self.logs.stall_streams()

    def break_log_streams(self) -> int:
        """Cut every open `follow` log stream mid-body; return how many were open."""
        return self.logs.break_streams()

    def end_watches(self, plural: str | None = None, *, abrupt: bool = False, group: str | None = None) -> int:
        """End open watches (as a server timeout would, or cut if `abrupt`); return how many."""
        key = self.registry.find(plural, group).storage_key if plural else None
        return self.store.end_watches(key, "abrupt" if abrupt else "clean")

    def send_bookmarks(self) -> None:
        """Make every open watch that allows bookmarks send a BOOKMARK now."""
        self.store.request_bookmarks()

    def wait_for_watches(
        self, count: int = 1, plural: str = "pods", *, group: str | None = None, timeout: float = 5.0
    ) -> None:
        """Block until at least `count` watches on `plural` are open; TimeoutError otherwise."""
        key = self.registry.find(plural, group).storage_key
        self._wait(
            lambda: sum(s.key == key for s in self.store.subscriptions) >= count,
            timeout,
            f"{count} watch(es) on {plural}",
        )

    def wait_for_log_follows(self, count: int = 1, *, timeout: float = 5.0) -> None:
        """Block until at least `count` follow log streams are open; TimeoutError otherwise."""
        self._wait(lambda: len(self.logs.follows) >= count, timeout, f"{count} log follow(s)")

    def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        with self.store.lock:
            if not self.store.lock.wait_for(ready, timeout):
                raise TimeoutError(f"timed out waiting for {what}")
