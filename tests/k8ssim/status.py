"""The pod status kubelet computes (kubelet_pods.go generateAPIPodStatus/getPhase, pkg/kubelet/status
GeneratePodReadyCondition...). Pure functions over the simulator's container states.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


@dataclass
class ContainerState:
    """What the runtime knows of one container (kubelet's ContainerStatus)."""

    name: str
    image: str
    init: bool = False
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"  # waiting reason, or terminated reason
    message: str = ""
    exit_code: int = 0
    started_at: str = ""
    finished_at: str = ""
    container_id: str = ""
    image_id: str = ""
    extra: Obj = field(default_factory=dict)

    def as_status(self) -> Obj:
        if self.state == "running":
            state: Obj = {"running": {"startedAt": self.started_at}}
        elif self.state == "terminated":
            term: Obj = {
                "exitCode": self.exit_code,
                "reason": self.reason,
                "startedAt": self.started_at or None,
                "finishedAt": self.finished_at,
                "containerID": self.container_id or None,
            }
            if self.message:
                term["message"] = self.message
            state = {"terminated": {k: v for k, v in term.items() if v is not None}}
        else:
            waiting: Obj = {"reason": self.reason}
            if self.message:
                waiting["message"] = self.message
            state = {"waiting": waiting}
        status: Obj = {
            "name": self.name,
            "state": state,
            "lastState": {},
            "ready": self.state == "running",
            "restartCount": 0,
            "image": normalize_image(self.image),
            "imageID": self.image_id,
            "started": self.state == "running",
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status


def normalize_image(image: str) -> str:
    """The image as containerd reports it: docker.io/library/busybox:1.36."""
    name = image
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        name += ":latest"
    return name


def get_phase(spec: Obj, containers: list[ContainerState]) -> str:
    """kubelet's getPhase for the regular containers."""
    running = waiting = stopped = succeeded = unknown = 0
    for c in containers:
        if c.state == "running":
            running += 1
        elif c.state == "terminated":
            stopped += 1
            succeeded += c.exit_code == 0
        elif c.state == "waiting":
            waiting += 1
        else:
            unknown += 1
    if waiting:
        return "Pending"
    if running and not unknown:
        return "Running"
    if not running and stopped and not unknown:
        policy = spec.get("restartPolicy", "Always")
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _condition(kind: str, ok: bool, old: dict[str, Obj], now: str, reason: str = "", message: str = "") -> Obj:
    status = "True" if ok else "False"
    previous = old.get(kind)
    since = previous["lastTransitionTime"] if previous and previous.get("status") == status else now
    cond: Obj = {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": since}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def conditions(
    phase: str, init: list[ContainerState], main: list[ContainerState], old: list[Obj], now: str
) -> list[Obj]:
    """Initialized, Ready, ContainersReady, PodScheduled (the scheduler's, kept as it is)."""
    by_type = {c["type"]: c for c in old}
    pending_init = [c.name for c in init if not (c.state == "terminated" and c.exit_code == 0)]
    out = [
        _condition(
            "Initialized",
            not pending_init or phase == "Succeeded",
            by_type,
            now,
            *(
                ("ContainersNotInitialized", f"containers with incomplete status: [{' '.join(pending_init)}]")
                if pending_init and phase != "Succeeded"
                else ()
            ),
        )
    ]
    if phase == "Succeeded":
        ready, reason, message = False, "PodCompleted", ""
    else:
        unready = [c.name for c in main if c.state != "running"]
        ready = not unready
        reason, message = (
            ("ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]") if unready else ("", "")
        )
    out.append(_condition("Ready", ready, by_type, now, reason, message))
    out.append(_condition("ContainersReady", ready, by_type, now, reason, message))
    if "PodScheduled" in by_type:
        out.append(by_type["PodScheduled"])
    return out
