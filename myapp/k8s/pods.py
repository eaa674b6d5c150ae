"""Pods as the API server reports them, parsed once (docs/rules.md S12). Pure.

What an attempt's pods add up to (its outcome) is decided in myapp/k8s/outcome.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from myapp.k8s.manifest import (
    CONTAINER,
    LABEL_ATTEMPT,
    LABEL_RANK,
    LABEL_RUN,
    LABEL_TRY,
    SECRET_ENV_ANNOTATION,
    STEPS_ANNOTATION,
    TASK_ANNOTATION,
)
from myapp.k8s.transfer import CONTAINERS as TRANSFER_CONTAINERS
from myapp.k8s.transfer import UPLOADER

TERMINAL_PHASES = ("Succeeded", "Failed")


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
class Condition:
    """One pod condition; `since` is its lastTransitionTime."""

    type: str
    status: str
    reason: str = ""
    message: str = ""
    since: datetime | None = None


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
    init_containers: tuple[ContainerView, ...] = ()  # run one after another before `containers` (SeqPod steps)
    init_container_names: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()  # a SeqPod's steps (STEPS_ANNOTATION): its lines are labelled `[STEP] ` already
    conditions: tuple[Condition, ...] = ()
    created_at: datetime | None = None
    deletion_at: datetime | None = None  # deletionTimestamp: when the grace period of a deletion ends
    secrets: tuple[str, ...] = field(default=(), repr=False)  # values to mask in its logs (SECRET_ENV_ANNOTATION)
    secret_refs: tuple[tuple[str, str], ...] = ()  # (Secret, key) of those values when they come from a Secret

    @property
    def is_terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES

    @property
    def task_container(self) -> ContainerView | None:
        """Return the container that runs the task (`main`; else the only one): sidecars are not it."""
        named = next((c for c in self.containers if c.name == CONTAINER), None)
        if named is not None or len(self.container_names) > 1:
            return named
        return self.containers[0] if self.containers else None

    @property
    def every_container(self) -> tuple[ContainerView, ...]:
        """Return the init containers' states, then the containers': every log of the pod, in order."""
        return self.init_containers + self.containers

    @property
    def several_containers(self) -> bool:
        """Return True when the pod's spec has more than one container, init containers included."""
        names = [n for n in self.init_container_names + self.container_names if n not in TRANSFER_CONTAINERS]
        return len(names) > 1

    @property
    def uploader(self) -> ContainerView | None:
        """Return the state of the container uploading the outputs (myapp/k8s/transfer.py), if the pod has one."""
        if UPLOADER not in self.container_names:
            return None
        return next((c for c in self.containers if c.name == UPLOADER), ContainerView(UPLOADER, "waiting"))

    def condition(self, kind: str) -> Condition | None:
        """Return the pod's condition of type `kind`, if it has one."""
        return next((c for c in self.conditions if c.type == kind), None)


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended as the cluster saw it; `termination` is rank 0's termination message."""

    succeeded: bool
    exit_code: int | None = None
    message: str = ""
    termination: str = ""
    force_delete: bool = False  # the pod's node no longer answers: delete it without a grace period


def parse_pod(raw: Mapping[str, Any], *, gone: bool = False) -> PodView:
    """Return the view of a raw pod dict (from a list, a watch event or a GET)."""
    meta, spec, status = raw.get("metadata") or {}, raw.get("spec") or {}, raw.get("status") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    return PodView(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        uid=str(meta.get("uid", "")),
        attempt_id=_int(labels.get(LABEL_ATTEMPT)),
        rank=_int(labels.get(LABEL_RANK)),
        run_id=_int(labels.get(LABEL_RUN)),
        try_number=_int(labels.get(LABEL_TRY)),
        task=str(annotations.get(TASK_ANNOTATION, "")),
        phase=str(status.get("phase") or "Pending"),
        reason=str(status.get("reason") or ""),
        message=str(status.get("message") or ""),
        node=str(spec.get("nodeName") or ""),
        ip=str(status.get("podIP") or ""),
        deleting=bool(meta.get("deletionTimestamp")),
        gone=gone,
        containers=tuple(_container(s) for s in status.get("containerStatuses") or []),
        container_names=tuple(str(c.get("name", "")) for c in spec.get("containers") or []),
        init_containers=tuple(_container(s) for s in status.get("initContainerStatuses") or []),
        init_container_names=tuple(str(c.get("name", "")) for c in spec.get("initContainers") or []),
        steps=tuple(n for n in str(annotations.get(STEPS_ANNOTATION) or "").split(",") if n),
        conditions=tuple(
            Condition(
                str(c.get("type", "")),
                str(c.get("status", "")),
                str(c.get("reason") or ""),
                str(c.get("message") or ""),
                parse_time(c.get("lastTransitionTime")),
            )
            for c in status.get("conditions") or []
        ),
        created_at=parse_time(meta.get("creationTimestamp")),
        deletion_at=parse_time(meta.get("deletionTimestamp")),
        secrets=_secret_values(spec, str(annotations.get(SECRET_ENV_ANNOTATION) or "")),
        secret_refs=_secret_refs(spec, str(annotations.get(SECRET_ENV_ANNOTATION) or "")),
    )


def _secret_refs(spec: Mapping[str, Any], names: str) -> tuple[tuple[str, str], ...]:
    wanted = {n for n in names.split(",") if n}
    refs = set()
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for entry in container.get("env") or []:
            ref = (entry.get("valueFrom") or {}).get("secretKeyRef") or {}
            if entry.get("name") in wanted and ref.get("name") and ref.get("key"):
                refs.add((str(ref["name"]), str(ref["key"])))
    return tuple(sorted(refs))


def _secret_values(spec: Mapping[str, Any], names: str) -> tuple[str, ...]:
    wanted = {n for n in names.split(",") if n}
    if not wanted:
        return ()
    return tuple(
        sorted(
            {
                str(e.get("value") or "")
                for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
                for e in c.get("env") or []
                if e.get("name") in wanted and e.get("value")
            }
        )
    )


def _container(raw: Mapping[str, Any]) -> ContainerView:
    state = raw.get("state") or {}
    for kind in ("terminated", "running", "waiting"):
        if state.get(kind) is not None:
            detail = state[kind] or {}
            return ContainerView(
                name=str(raw.get("name", "")),
                state=kind,
                reason=str(detail.get("reason") or ""),
                message=str(detail.get("message") or ""),
                exit_code=_int(detail.get("exitCode")),
                started_at=str(detail.get("startedAt") or ""),
                finished_at=str(detail.get("finishedAt") or ""),
            )
    return ContainerView(name=str(raw.get("name", "")), state="unknown")


def parse_time(value: object) -> datetime | None:
    """Return an RFC 3339 time of the API (`2026-01-02T03:04:05Z`, fractions allowed) as an aware datetime."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _int(value: object) -> int | None:
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None


def termination_message(pod: PodView) -> str:
    """Return the termination message of the task container (where the entrypoint writes outputs)."""
    main = pod.task_container
    return main.message if main is not None and main.state == "terminated" else ""


def pod_summary(pod: PodView) -> dict[str, Any]:
    """Return the pod's status as kept for the run page (TaskAttempt.container)."""
    waiting = next((c for c in pod.conditions if c.status == "False" and c.reason), None)
    return {
        "name": pod.name,
        "phase": "Deleted" if pod.gone else pod.phase,
        "reason": pod.reason,
        "message": pod.message or (waiting.message if waiting else ""),
        "node": pod.node,
        "ip": pod.ip,
        "rank": pod.rank,
        "deleting": pod.deleting,
        "containers": [
            {
                "name": c.name,
                "state": c.state,
                "reason": c.reason,
                "exit_code": c.exit_code,
                "message": "" if c.message.startswith("myapp-outputs") else c.message[:1000],
                "started_at": c.started_at,
                "finished_at": c.finished_at,
            }
            for c in pod.every_container
        ],
    }
