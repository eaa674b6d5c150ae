"""The scheduler's part: pods without a node, with `schedulerName: default-scheduler`, are checked
against the one node (nodeSelector, required node affinity, taints/tolerations, resource requests
against allocatable minus what the node's pods request, pod count) and bound through
`pods/binding` (the API server then sets `spec.nodeName` and `PodScheduled=True`). A pod that does
not fit gets `PodScheduled=False, reason Unschedulable` with the 1.20 scheduler's message
("0/1 nodes are available: 1 node(s) didn't match node selector.") and a FailedScheduling event; it
is tried again every `unschedulable_retry` seconds and whenever a pod leaves the node or a knob
changes (the scheduler's move-to-active on cluster events).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from tests.k8ssim.client import ApiError, pod_path
from tests.k8ssim.envvars import quantity
from tests.k8ssim.events import now_rfc3339

if TYPE_CHECKING:
    from tests.k8ssim.simulator import NodeSimulator

Obj = dict[str, Any]
log = logging.getLogger("k8ssim.scheduler")


def pod_requests(spec: Obj) -> dict[str, float]:
    """The effective request: the containers' sum, or the largest init container's if larger."""
    total: dict[str, float] = {}
    for c in spec.get("containers") or []:
        for k, v in ((c.get("resources") or {}).get("requests") or {}).items():
            total[k] = total.get(k, 0) + quantity(v)
    for c in spec.get("initContainers") or []:
        for k, v in ((c.get("resources") or {}).get("requests") or {}).items():
            total[k] = max(total.get(k, 0), quantity(v))
    return total


def _matches(expr: Obj, labels: dict[str, str]) -> bool:
    key, op, values = expr["key"], expr["operator"], expr.get("values") or []
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt") and key in labels:
        try:
            return (int(labels[key]) > int(values[0])) if op == "Gt" else (int(labels[key]) < int(values[0]))
        except ValueError:
            return False
    return False


def _tolerates(tolerations: list[Obj], taint: Obj) -> bool:
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint["effect"]:
            continue
        if t.get("operator") == "Exists" and (not t.get("key") or t["key"] == taint["key"]):
            return True
        if t.get("key") == taint["key"] and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def fit_failures(pod: Obj, node: Obj, used: dict[str, float], pod_count: int) -> list[str]:
    """The scheduler's reasons this node does not fit the pod (empty: it fits)."""
    spec, labels = pod["spec"], node["metadata"].get("labels") or {}
    reasons: list[str] = []
    selector = spec.get("nodeSelector") or {}
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    terms = (affinity or {}).get("nodeSelectorTerms") or []
    if any(labels.get(k) != v for k, v in selector.items()) or (
        terms and not any(all(_matches(e, labels) for e in t.get("matchExpressions") or []) for t in terms)
    ):
        reasons.append("node(s) didn't match node selector")
    if node["spec"].get("unschedulable"):
        reasons.append("node(s) were unschedulable")
    for taint in node["spec"].get("taints") or []:
        if taint["effect"] in ("NoSchedule", "NoExecute") and not _tolerates(spec.get("tolerations") or [], taint):
            reasons.append(
                f"node(s) had taint {{{taint['key']}: {taint.get('value', '')}}}, that the pod didn't tolerate"
            )
    allocatable = {k: quantity(v) for k, v in node["status"]["allocatable"].items()}
    if pod_count + 1 > allocatable.get("pods", 110):
        reasons.append("Too many pods")
    for resource, amount in pod_requests(spec).items():
        if amount > 0 and amount > allocatable.get(resource, 0) - used.get(resource, 0):
            reasons.append(f"Insufficient {resource}")
    return reasons


def unschedulable_message(reasons: list[str]) -> str:
    return f"0/1 nodes are available: {', '.join(f'1 {r}' for r in sorted(reasons))}."


class Scheduler:
    """Binds the pods that fit; keeps the others pending, retried."""

    def __init__(self, sim: NodeSimulator) -> None:
        self.sim = sim
        self.pending: dict[str, Obj] = {}  # uid -> latest pod
        self.tried: dict[str, float] = {}  # uid -> when it last failed
        self.lock = threading.Lock()
        self.kick = threading.Event()

    def seen(self, event: str, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        with self.lock:
            if (
                event == "DELETED"
                or pod["spec"].get("nodeName")
                or pod["metadata"].get("deletionTimestamp")
                or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            ):
                self.pending.pop(uid, None)
                self.tried.pop(uid, None)
            elif pod["spec"].get("schedulerName", "default-scheduler") == "default-scheduler":
                self.pending[uid] = pod
                self.kick.set()

    def run_once(self, now: float) -> float:
        """Try what is due; return the seconds until the next retry."""
        retry = self.sim.config.unschedulable_retry
        with self.lock:
            due = [p for uid, p in self.pending.items() if now - self.tried.get(uid, -1e9) >= retry]
        for pod in sorted(due, key=lambda p: p["metadata"].get("creationTimestamp", "")):
            self._schedule(pod, now)
        with self.lock:
            waits = [retry - (now - t) for uid, t in self.tried.items() if uid in self.pending]
        return max(0.05, min([retry, *waits]))

    def _schedule(self, pod: Obj, now: float) -> None:
        uid = pod["metadata"]["uid"]
        hold = self.sim.faults.held(pod)
        if hold is not None:
            with self.lock:
                self.tried[uid] = now
            if hold:  # an empty message holds silently (as a scheduler that is not running)
                self._unschedulable(pod, hold)
            return
        node = self.sim.node_object()
        used, count = self.sim.node_usage()
        problem = self._claims(pod)
        reasons = [] if problem else fit_failures(pod, node, used, count)
        if problem or reasons:
            with self.lock:
                self.tried[uid] = now
            self._unschedulable(pod, problem or unschedulable_message(reasons))
            return
        meta = pod["metadata"]
        try:
            self.sim.api.create(
                pod_path(meta["namespace"], meta["name"], "binding"),
                {
                    "apiVersion": "v1",
                    "kind": "Binding",
                    "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": uid},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": self.sim.config.node_name},
                },
            )
        except ApiError as exc:
            if exc.status in (404, 409):  # deleted, or bound meanwhile
                with self.lock:
                    self.pending.pop(uid, None)
                return
            raise
        with self.lock:
            self.pending.pop(uid, None)
            self.tried.pop(uid, None)
        self.sim.recorder.scheduler(
            pod,
            "Normal",
            "Scheduled",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {self.sim.config.node_name}",
            action="Binding",
        )

    def _claims(self, pod: Obj) -> str:
        """VolumeBinding's PreFilter: every claim must exist and be bound."""
        namespace = pod["metadata"]["namespace"]
        for volume in pod["spec"].get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim:
                continue
            pvc = self.sim.api.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}")
            if pvc is None:
                return f'persistentvolumeclaim "{claim}" not found'
            if (pvc.get("status") or {}).get("phase") != "Bound":
                return "0/1 nodes are available: 1 pod has unbound immediate PersistentVolumeClaims."
        return ""

    def _unschedulable(self, pod: Obj, message: str) -> None:
        meta = pod["metadata"]
        conditions = [c for c in (pod.get("status") or {}).get("conditions") or [] if c["type"] != "PodScheduled"]
        previous = next(
            (c for c in (pod.get("status") or {}).get("conditions") or [] if c["type"] == "PodScheduled"), None
        )
        same = previous and previous.get("status") == "False" and previous.get("message") == message
        if not same:
            conditions.append(
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastProbeTime": None,
                    "lastTransitionTime": now_rfc3339(),
                }
            )
            try:
                self.sim.api.merge_patch(
                    pod_path(meta["namespace"], meta["name"], "status"),
                    {"metadata": {"uid": meta["uid"]}, "status": {"conditions": conditions}},
                )
            except ApiError as exc:
                if exc.status not in (404, 409, 422):
                    raise
        self.sim.recorder.scheduler(pod, "Warning", "FailedScheduling", message)
        log.info("pod %s/%s unschedulable: %s", meta["namespace"], meta["name"], message)

    def loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                wait = self.run_once(time.monotonic())
            except Exception as exc:  # noqa: BLE001
                log.exception("scheduler")
                self.sim.errors.append(f"scheduler: {type(exc).__name__}: {exc}")
                wait = 1.0
            self.kick.wait(wait)
            self.kick.clear()
