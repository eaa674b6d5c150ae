"""Pods as the API server reports them, parsed once (STYLE.md rule 12), and the attempt outcome
they add up to. Pure.

An attempt of a `pod` template has one pod; a `distributed` one has N. It succeeds when every
pod succeeded, and fails as soon as one pod failed (its exit code, eviction or deadline), was
deleted while running, or cannot start (bad image, bad config).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from myapp.k8s.manifest import LABEL_ATTEMPT, LABEL_RANK, LABEL_RUN, LABEL_TRY, SECRET_ENV_ANNOTATION, TASK_ANNOTATION

TERMINAL_PHASES = ("Succeeded", "Failed")
# Waiting reasons that never resolve by themselves: fail the attempt (a retry may still help).
FATAL_WAITING = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                           "CreateContainerConfigError", "CreateContainerError", "RunContainerError"})


@dataclass(frozen=True)
class ContainerView:
    """One container's state: waiting, running or terminated (with exit code and message)."""

    name: str
    state: str
    reason: str = ""
    message: str = ""
    exit_code: int | None = None
    started_at: str = ""
    finished_at: str = ""

    @property
    def has_log(self) -> bool:
        """Return True once the container started (its log can be read)."""
        return self.state in ("running", "terminated")


@dataclass(frozen=True)
class PodView:
    """What the watcher needs of one pod."""

    name: str
    namespace: str
    uid: str
    attempt_id: int | None
    rank: int | None
    phase: str
    run_id: int | None = None
    task: str = ""
    try_number: int | None = None
    reason: str = ""
    message: str = ""
    node: str = ""
    ip: str = ""
    deleting: bool = False
    gone: bool = False
    containers: tuple[ContainerView, ...] = ()
    container_names: tuple[str, ...] = ()
    conditions: tuple[tuple[str, str, str, str], ...] = ()   # (type, status, reason, message)
    secrets: tuple[str, ...] = field(default=(), repr=False)   # values to mask in its logs (SECRET_ENV_ANNOTATION)

    @property
    def is_terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended as the cluster saw it; `termination` is rank 0's termination message."""

    succeeded: bool
    exit_code: int | None = None
    message: str = ""
    termination: str = ""


def parse_pod(raw: Mapping[str, Any], *, gone: bool = False) -> PodView:
    """Return the view of a raw pod dict (from a list, a watch event or a GET)."""
    meta, spec, status = raw.get("metadata") or {}, raw.get("spec") or {}, raw.get("status") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    return PodView(
        name=str(meta.get("name", "")), namespace=str(meta.get("namespace", "")), uid=str(meta.get("uid", "")),
        attempt_id=_int(labels.get(LABEL_ATTEMPT)), rank=_int(labels.get(LABEL_RANK)),
        run_id=_int(labels.get(LABEL_RUN)), try_number=_int(labels.get(LABEL_TRY)),
        task=str(annotations.get(TASK_ANNOTATION, "")),
        phase=str(status.get("phase") or "Pending"), reason=str(status.get("reason") or ""),
        message=str(status.get("message") or ""), node=str(spec.get("nodeName") or ""),
        ip=str(status.get("podIP") or ""), deleting=bool(meta.get("deletionTimestamp")), gone=gone,
        containers=tuple(_container(s) for s in status.get("containerStatuses") or []),
        container_names=tuple(str(c.get("name", "")) for c in spec.get("containers") or []),
        conditions=tuple((str(c.get("type", "")), str(c.get("status", "")), str(c.get("reason") or ""),
                          str(c.get("message") or "")) for c in status.get("conditions") or []),
        secrets=_secret_values(spec, str(annotations.get(SECRET_ENV_ANNOTATION) or "")),
    )


def _secret_values(spec: Mapping[str, Any], names: str) -> tuple[str, ...]:
    wanted = {n for n in names.split(",") if n}
    if not wanted:
        return ()
    return tuple(sorted({str(e.get("value") or "") for c in spec.get("containers") or [] for e in c.get("env") or []
                         if e.get("name") in wanted and e.get("value")}))


def _container(raw: Mapping[str, Any]) -> ContainerView:
    state = raw.get("state") or {}
    for kind in ("terminated", "running", "waiting"):
        if state.get(kind) is not None:
            detail = state[kind] or {}
            return ContainerView(
                name=str(raw.get("name", "")), state=kind, reason=str(detail.get("reason") or ""),
                message=str(detail.get("message") or ""), exit_code=_int(detail.get("exitCode")),
                started_at=str(detail.get("startedAt") or ""), finished_at=str(detail.get("finishedAt") or ""))
    return ContainerView(name=str(raw.get("name", "")), state="unknown")


def _int(value: object) -> int | None:
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None


def attempt_outcome(pods: Sequence[PodView], expected: int, *, task: str, timeout: int) -> Outcome | None:
    """Return the attempt's outcome once decided by its pods, else None (still running)."""
    ordered = sorted(pods, key=lambda p: (p.rank or 0, p.name))
    for pod in ordered:
        failure = pod_failure(pod, task=task, timeout=timeout, several=expected > 1)
        if failure is not None:
            return failure
    done = [p for p in ordered if p.phase == "Succeeded"]
    if expected and len(done) >= expected:
        return Outcome(True, 0, "", termination_message(ordered[0]))
    return None


def pod_failure(pod: PodView, *, task: str, timeout: int, several: bool) -> Outcome | None:
    """Return why `pod` failed the attempt, or None while it has not."""
    where = f"pod {pod.name}: " if several else ""
    if pod.phase == "Failed":
        return _failed(pod, task, timeout, where)
    if pod.gone and pod.phase != "Succeeded":
        return Outcome(False, None, f"pod {pod.name} was deleted while {pod.phase.lower()}")
    for c in pod.containers:
        if c.state == "waiting" and c.reason in FATAL_WAITING:
            detail = f": {c.message}" if c.message else ""
            return Outcome(False, None, f"{where}container {c.name} cannot start: {c.reason}{detail}")
    return None


def _failed(pod: PodView, task: str, timeout: int, where: str) -> Outcome:
    if pod.reason == "DeadlineExceeded":
        return Outcome(False, None, f"task {task!r} timed out after {timeout} s")
    if pod.reason:
        return Outcome(False, None, f"pod {pod.name} {_reason_text(pod.reason)}: {pod.message}".rstrip(": "))
    failed = [c for c in pod.containers if c.state == "terminated" and c.exit_code not in (0, None)]
    if not failed:
        return Outcome(False, None, f"pod {pod.name} failed")
    c = failed[0]
    text = f"{where}exit code {c.exit_code}"
    if c.reason and c.reason not in ("Error", "Completed"):
        text += f" ({c.reason})"
    if c.message and not c.message.startswith("myapp-outputs"):
        text += f": {c.message.strip()[:500]}"
    return Outcome(False, c.exit_code, text)


def _reason_text(reason: str) -> str:
    return {"Evicted": "was evicted", "Preempting": "was preempted", "NodeLost": "lost its node",
            "Shutdown": "was shut down with its node"}.get(reason, f"failed ({reason})")


def termination_message(pod: PodView) -> str:
    """Return the termination message of the pod's first container (where outputs are written)."""
    for c in pod.containers:
        if c.state == "terminated":
            return c.message
    return ""


def pod_summary(pod: PodView) -> dict[str, Any]:
    """Return the pod's status as kept for the run page (TaskAttempt.container)."""
    waiting = next((c for c in pod.conditions if c[1] == "False" and c[2]), None)
    return {
        "name": pod.name, "phase": "Deleted" if pod.gone else pod.phase, "reason": pod.reason,
        "message": pod.message or (waiting[3] if waiting else ""), "node": pod.node, "ip": pod.ip,
        "rank": pod.rank, "deleting": pod.deleting,
        "containers": [{"name": c.name, "state": c.state, "reason": c.reason, "exit_code": c.exit_code,
                        "message": "" if c.message.startswith("myapp-outputs") else c.message[:1000],
                        "started_at": c.started_at, "finished_at": c.finished_at} for c in pod.containers],
    }
