"""Pods: the REST strategy (defaults, validation) and kubelet-like status changes.

Status helpers are pure functions on a pod dict with `now` passed in; the
server applies them under its lock. Ports kubelet's getPhase for the phase.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from tests.k8sfake.errors import FieldError
from tests.k8sfake.meta import JsonObj, format_time, new_uid
from tests.k8sfake.resources import CreateEnv, ResourceType
from tests.k8sfake.validation import dns1123_label, dns1123_subdomain, validate_metadata

RESTART_POLICIES = ("Always", "OnFailure", "Never")
_MUTABLE_SPEC_HINT = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)
_DEFAULT_TOLERATIONS = [
    {"key": f"node.kubernetes.io/{taint}", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
    for taint in ("not-ready", "unreachable")
]


def _containers(pod: JsonObj, key: str = "containers") -> list[JsonObj]:
    return list((pod.get("spec") or {}).get(key) or [])


def _pull_policy(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    return "Always" if ":" not in last or last.endswith(":latest") else "IfNotPresent"


def _qos_class(pod: JsonObj) -> str:
    resources = [c.get("resources") or {} for c in _containers(pod) + _containers(pod, "initContainers")]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for r in resources:
        limits = r.get("limits") or {}
        requests = r.get("requests") or limits
        if any(k not in limits or requests.get(k, limits[k]) != limits[k] for k in ("cpu", "memory")):
            return "Burstable"
    return "Guaranteed"


def default_pod_spec(spec: JsonObj) -> None:
    """Apply SetDefaults_PodSpec and the container defaults (pods and pod templates)."""
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            container.setdefault("resources", {})
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("imagePullPolicy", _pull_policy(str(container.get("image", ""))))
            for port in container.get("ports") or []:
                port.setdefault("protocol", "TCP")
    for key, value in (
        ("restartPolicy", "Always"),
        ("terminationGracePeriodSeconds", 30),
        ("dnsPolicy", "ClusterFirst"),
        ("securityContext", {}),
        ("schedulerName", "default-scheduler"),
        ("enableServiceLinks", True),
    ):
        spec.setdefault(key, value)


def default_pod(pod: JsonObj, env: CreateEnv) -> None:
    """Apply the pod defaults plus what admission adds (service account, priority, tolerations)."""
    spec = pod.setdefault("spec", {})
    default_pod_spec(spec)
    spec.setdefault("serviceAccountName", "default")
    spec["serviceAccount"] = spec["serviceAccountName"]
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    tolerations = spec.setdefault("tolerations", [])
    present = {t.get("key") for t in tolerations}
    tolerations += [dict(t) for t in _DEFAULT_TOLERATIONS if t["key"] not in present]
    pod["status"] = {"phase": "Pending", "qosClass": _qos_class(pod)}


def validate_pod(pod: JsonObj) -> list[FieldError]:
    """Return the errors ValidatePodCreate reports for the common mistakes."""
    errors = validate_metadata(pod, dns1123_subdomain)
    spec = pod.get("spec") or {}
    if not spec.get("containers"):
        errors.append(FieldError("spec.containers", "Required"))
    seen: set[str] = set()
    for key in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(key) or []):
            path = f"spec.{key}[{index}]"
            name = str(container.get("name") or "")
            if not name:
                errors.append(FieldError(f"{path}.name", "Required"))
            elif name in seen:
                errors.append(FieldError(f"{path}.name", "Duplicate", name))
            else:
                errors += [FieldError(f"{path}.name", "Invalid", name, p) for p in dns1123_label(name)]
            seen.add(name)
            if not container.get("image"):
                errors.append(FieldError(f"{path}.image", "Required"))
    policy = spec.get("restartPolicy")
    if policy not in RESTART_POLICIES:
        errors.append(
            FieldError(
                "spec.restartPolicy",
                "NotSupported",
                policy,
                "supported values: " + ", ".join(f'"{p}"' for p in RESTART_POLICIES),
            )
        )
    return errors


def _mutable_parts_removed(spec: JsonObj) -> JsonObj:
    stripped = dict(spec)
    for key in ("containers", "initContainers"):
        stripped[key] = [{k: v for k, v in c.items() if k != "image"} for c in spec.get(key) or []]
    for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
        stripped.pop(key, None)
    return stripped


def validate_pod_update(old: JsonObj, new: JsonObj) -> list[FieldError]:
    """Return the errors ValidatePodUpdate reports: metadata, then the immutable spec."""
    errors = validate_metadata(new, dns1123_subdomain)
    if _mutable_parts_removed(old.get("spec") or {}) != _mutable_parts_removed(new.get("spec") or {}):
        errors.append(FieldError("spec", "Forbidden", detail=_MUTABLE_SPEC_HINT))
    return errors


POD_TYPE = ResourceType(
    group="",
    version="v1",
    kind="Pod",
    plural="pods",
    singular="pod",
    short_names=("po",),
    categories=("all",),
    extra_subresources=("log",),
    return_deleted_object=True,
    field_labels=(
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    default=default_pod,
    validate=validate_pod,
    validate_update=validate_pod_update,
    tracks_generation=True,
)


# --- kubelet-like status transitions -------------------------------------------------


def _condition(kind: str, ok: bool, now: datetime, reason: str = "", message: str = "") -> JsonObj:
    condition: JsonObj = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": format_time(now),
    }
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _image_id(image: str) -> str:
    digest = hashlib.sha256(image.encode()).hexdigest()
    return f"docker.io/library/{image.split(':')[0]}@sha256:{digest}"


def _base_status(container: JsonObj, previous: JsonObj | None) -> JsonObj:
    return {
        "name": container["name"],
        "state": {},
        "lastState": {},
        "ready": False,
        "restartCount": 0,
        "image": str(container.get("image", "")),
        "imageID": "",
        "started": False,
        "containerID": (previous or {}).get("containerID", ""),
    }


def _statuses_by_name(pod: JsonObj) -> dict[str, JsonObj]:
    return {s["name"]: s for s in pod.get("status", {}).get("containerStatuses") or []}


def schedule(pod: JsonObj, node_name: str, host_ip: str, now: datetime) -> None:
    """Bind the pod to `node_name` as the scheduler and kubelet would."""
    pod["spec"]["nodeName"] = node_name
    status = pod.setdefault("status", {})
    status.setdefault("hostIP", host_ip)
    status.setdefault("hostIPs", [{"ip": host_ip}])
    status.setdefault("startTime", format_time(now))


def set_unschedulable(pod: JsonObj, message: str, now: datetime) -> None:
    """Mark the pod Pending with PodScheduled=False/Unschedulable."""
    pod["status"]["phase"] = "Pending"
    pod["status"]["conditions"] = [_condition("PodScheduled", False, now, "Unschedulable", message)]


def set_waiting(pod: JsonObj, reason: str, message: str, now: datetime) -> None:
    """Mark every container waiting with `reason` (e.g. ContainerCreating)."""
    previous = _statuses_by_name(pod)
    statuses = []
    for container in _containers(pod):
        status = _base_status(container, previous.get(container["name"]))
        status["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        statuses.append(status)
    pod["status"]["containerStatuses"] = statuses
    _refresh(pod, now)


def set_running(pod: JsonObj, pod_ip: str, now: datetime) -> None:
    """Mark every not-yet-terminated container running and ready."""
    previous = _statuses_by_name(pod)
    statuses = []
    for container in _containers(pod):
        old = previous.get(container["name"])
        if old and ("running" in old["state"] or "terminated" in old["state"]):
            statuses.append(old)
            continue
        status = _base_status(container, old)
        status.update(
            ready=True,
            started=True,
            imageID=_image_id(status["image"]),
            containerID="containerd://" + new_uid().replace("-", "") * 2,
        )
        status["state"] = {"running": {"startedAt": format_time(now)}}
        statuses.append(status)
    pod["status"]["containerStatuses"] = statuses
    pod["status"].setdefault("podIP", pod_ip)
    pod["status"].setdefault("podIPs", [{"ip": pod_ip}])
    _refresh(pod, now)


def terminate(pod: JsonObj, container: str | None, exit_code: int, reason: str, message: str, now: datetime) -> None:
    """Terminate one container (or every running one) with `exit_code`; recompute the phase."""
    for status in pod["status"].get("containerStatuses") or []:
        if (container is None and "terminated" not in status["state"]) or status["name"] == container:
            started = status["state"].get("running", {}).get("startedAt", format_time(now))
            terminated: JsonObj = {
                "exitCode": exit_code,
                "reason": reason or ("Completed" if exit_code == 0 else "Error"),
                "startedAt": started,
                "finishedAt": format_time(now),
                "containerID": status.get("containerID", ""),
            }
            if message:
                terminated["message"] = message
            status.update(state={"terminated": terminated}, ready=False, started=False)
    _refresh(pod, now)


def container_state(pod: JsonObj, container: str) -> JsonObj:
    """Return the container's (or init container's) current state mapping ({} when it has no status yet)."""
    init = {s["name"]: s for s in pod.get("status", {}).get("initContainerStatuses") or []}
    status = _statuses_by_name(pod).get(container) or init.get(container)
    return dict(status["state"]) if status else {}


def set_init_state(pod: JsonObj, container: str, exit_code: int | None, message: str, now: datetime) -> None:
    """Run the init container `container` (exit_code None) or terminate it, as kubelet reports init
    containers: the ones before it terminated, the ones after it waiting (PodInitializing), the pod
    Pending (and its containers waiting PodInitializing) until every init container succeeded, and
    Failed when one failed (restartPolicy Never)."""
    old = {s["name"]: s for s in pod["status"].get("initContainerStatuses") or []}
    statuses, seen = [], False
    for spec in _containers(pod, "initContainers"):
        name = spec["name"]
        status = old.get(name) or _base_status(spec, None)
        if name == container:
            seen = True
            started = (status["state"].get("running") or {}).get("startedAt", format_time(now))
            status.update(imageID=_image_id(status["image"]), containerID="containerd://" + new_uid().replace("-", ""))
            if exit_code is None:
                status.update(state={"running": {"startedAt": started}}, started=True)
            else:
                terminated: JsonObj = {
                    "exitCode": exit_code,
                    "reason": "Completed" if exit_code == 0 else "Error",
                    "startedAt": started,
                    "finishedAt": format_time(now),
                    "containerID": status["containerID"],
                }
                if message:
                    terminated["message"] = message
                status.update(state={"terminated": terminated}, ready=exit_code == 0, started=False)
        elif seen and not status["state"]:
            status["state"] = {"waiting": {"reason": "PodInitializing"}}
        statuses.append(status)
    pod["status"]["initContainerStatuses"] = statuses
    if "containerStatuses" not in pod["status"] or exit_code is None:
        set_waiting(pod, "PodInitializing", "", now)
    if exit_code not in (None, 0) and pod["spec"].get("restartPolicy") == "Never":
        pod["status"]["phase"] = "Failed"
    _refresh(pod, now)


def _init_pending(pod: JsonObj) -> list[str]:
    return [
        s["name"]
        for s in pod["status"].get("initContainerStatuses") or []
        if (s["state"].get("terminated") or {}).get("exitCode") != 0
    ]


def phase_of(pod: JsonObj) -> str:
    """Return the phase kubelet's getPhase derives from the container statuses."""
    if _containers(pod, "initContainers") and (_init_pending(pod) or not pod["status"].get("initContainerStatuses")):
        return "Pending"
    states = [s["state"] for s in pod["status"].get("containerStatuses") or []]
    if len(states) < len(_containers(pod)) or any("waiting" in s for s in states):
        return "Pending"
    if any("running" in s for s in states):
        return "Running"
    policy = pod["spec"].get("restartPolicy", "Always")
    if policy == "Always":
        return "Running"
    if all(s["terminated"]["exitCode"] == 0 for s in states):
        return "Succeeded"
    return "Failed" if policy == "Never" else "Running"


def _refresh(pod: JsonObj, now: datetime) -> None:
    status = pod["status"]
    if status.get("phase") not in ("Succeeded", "Failed"):
        status["phase"] = phase_of(pod)
    names = [s["name"] for s in status.get("containerStatuses") or [] if not s["ready"]]
    terminal = status["phase"] in ("Succeeded", "Failed")
    reason = "PodCompleted" if terminal else ("ContainersNotReady" if names else "")
    message = "" if terminal or not names else f"containers with unready status: [{' '.join(names)}]"
    started = any("waiting" not in s["state"] for s in status.get("containerStatuses") or [])
    old = {c["type"]: c for c in status.get("conditions") or []}
    pending_init = _init_pending(pod) if _containers(pod, "initContainers") else []
    fresh = [
        _condition("PodReadyToStartContainers", started and not terminal, now),
        _condition(
            "Initialized",
            not pending_init,
            now,
            "ContainersNotInitialized" if pending_init else "",
            f"containers with incomplete status: [{' '.join(pending_init)}]" if pending_init else "",
        ),
        _condition("Ready", not names, now, reason, message),
        _condition("ContainersReady", not names, now, reason, message),
        _condition("PodScheduled", True, now),
    ]
    for condition in fresh:  # keep lastTransitionTime when the status did not flip
        before = old.get(condition["type"])
        if before and before["status"] == condition["status"]:
            condition["lastTransitionTime"] = before["lastTransitionTime"]
    status["conditions"] = fresh
