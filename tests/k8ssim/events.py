"""Events as the two components record them in 1.20.

kubelet uses the core/v1 recorder: `source: {component: kubelet, host: NODE}`, first/last timestamps
and `count`; an identical event (same object, reason, message, type) within 10 minutes is the same
Event with `count` raised (the correlator's patch). The 1.20 scheduler uses the events.k8s.io/v1
recorder: `reportingController: default-scheduler`, `eventTime`, `action`, `note`, no source,
timestamps or count (the core/v1 view shows `reportingComponent` and `eventTime`); a repeat within
6 minutes becomes a `series`.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from tests.k8ssim.client import ApiError, SimApi

Obj = dict[str, Any]
log = logging.getLogger("k8ssim.events")


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def object_ref(pod: Obj, field_path: str = "") -> Obj:
    meta = pod["metadata"]
    ref = {
        "kind": "Pod",
        "namespace": meta["namespace"],
        "name": meta["name"],
        "uid": meta["uid"],
        "apiVersion": "v1",
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if field_path:
        ref["fieldPath"] = field_path
    return ref


class Recorder:
    """Posts events; failures are logged (an event is best effort, as in Kubernetes)."""

    def __init__(self, api: SimApi, node: str) -> None:
        self.api, self.node = api, node
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, ...], tuple[str, str, int, float]] = {}  # key -> (ns, name, count, at)
        self.recorded: list[Obj] = []

    def kubelet(self, pod: Obj, type_: str, reason: str, message: str, field_path: str = "") -> None:
        ref = object_ref(pod, field_path)
        key = (ref["uid"], field_path, type_, reason, message)
        stamp = now_rfc3339()
        with self._lock:
            previous = self._seen.get(key)
            self.recorded.append(
                {"component": "kubelet", "pod": ref["name"], "reason": reason, "message": message, "type": type_}
            )
        try:
            if previous and time.monotonic() - previous[3] < 600:
                ns, name, count, _ = previous
                self.api.merge_patch(
                    f"/api/v1/namespaces/{ns}/events/{name}", {"count": count + 1, "lastTimestamp": stamp}
                )
                with self._lock:
                    self._seen[key] = (ns, name, count + 1, time.monotonic())
                return
            name = f"{ref['name']}.{time.time_ns():x}"
            self.api.create(
                f"/api/v1/namespaces/{ref['namespace']}/events",
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"name": name, "namespace": ref["namespace"]},
                    "involvedObject": ref,
                    "reason": reason,
                    "message": message,
                    "type": type_,
                    "source": {"component": "kubelet", "host": self.node},
                    "count": 1,
                    "firstTimestamp": stamp,
                    "lastTimestamp": stamp,
                    "reportingComponent": "",
                    "reportingInstance": "",
                },
            )
            with self._lock:
                self._seen[key] = (ref["namespace"], name, 1, time.monotonic())
        except (ApiError, OSError) as exc:
            log.warning("event %s/%s not recorded: %s", ref["name"], reason, exc)

    def scheduler(self, pod: Obj, type_: str, reason: str, note: str, action: str = "Scheduling") -> None:
        ref = object_ref(pod)
        key = ("scheduler", ref["uid"], type_, reason, note)
        with self._lock:
            previous = self._seen.get(key)
            self.recorded.append(
                {"component": "default-scheduler", "pod": ref["name"], "reason": reason, "message": note, "type": type_}
            )
        path = f"/apis/events.k8s.io/v1/namespaces/{ref['namespace']}/events"
        try:
            if previous and time.monotonic() - previous[3] < 360:
                ns, name, count, _ = previous
                self.api.merge_patch(
                    f"{path}/{name}", {"series": {"count": count + 1, "lastObservedTime": now_micro()}}
                )
                with self._lock:
                    self._seen[key] = (ns, name, count + 1, time.monotonic())
                return
            name = f"{ref['name']}.{time.time_ns():x}"
            self.api.create(
                path,
                {
                    "apiVersion": "events.k8s.io/v1",
                    "kind": "Event",
                    "metadata": {"name": name, "namespace": ref["namespace"]},
                    "eventTime": now_micro(),
                    "reportingController": "default-scheduler",
                    "reportingInstance": f"default-scheduler-{self.node}",
                    "action": action,
                    "reason": reason,
                    "regarding": ref,
                    "note": note,
                    "type": type_,
                },
            )
            with self._lock:
                self._seen[key] = (ref["namespace"], name, 1, time.monotonic())
        except (ApiError, OSError) as exc:
            log.warning("event %s/%s not recorded: %s", ref["name"], reason, exc)
