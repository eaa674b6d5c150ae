"""What an attempt's pods add up to: still running, succeeded, or failed and why. Pure.

An attempt of a `pod` template has one pod; a `distributed` one has N. It succeeds when the task
container (`main`; sidecars are not waited for) of every pod ended with exit code 0, and fails as
soon as one pod failed. The message says what happened, in this order of precedence:
- the pod was disrupted (condition DisruptionTarget, Kubernetes 1.26+: evicted through the
  Eviction API, preempted, deleted by the taint manager or the pod garbage collector);
- the kubelet failed it (`status.reason`: Evicted under node pressure, DeadlineExceeded, ...);
- someone else deleted it (deletionTimestamp set while it ran: myapp deletes pods only after it
  decided the outcome), so a killed task is not reported as "exit code 137";
- its task container's exit code (and OOMKilled, termination message).

Rules that depend on time (`now` passed in; PodRules holds the limits):
- a container that cannot start (ErrImagePull, ImagePullBackOff, InvalidImageName,
  CreateContainerConfigError, ...) fails the attempt only after `image_pull_grace` seconds since
  the pod was scheduled (a registry hiccup or a Secret created a moment later resolves itself);
- a pod the scheduler refuses because a PersistentVolumeClaim it mounts does not exist (a
  workspace's claim misspelt or never created) fails the attempt after `image_pull_grace` seconds,
  naming the claim (a claim created a moment later resolves itself), not after the startup timeout;
- a pod that has not started any container `startup_timeout` seconds after its creation fails
  the attempt, with the scheduler's reason (FailedScheduling event, PodScheduled condition);
  a pod with such a container error is judged by the image pull grace alone;
- a pod whose node is lost (still terminating `lost_node_timeout` seconds after its deletion
  time, or Running with a Ready condition the node controller set to False for that long) fails
  the attempt and is force-deleted (grace period 0): nothing else will ever remove it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from myapp.k8s.config import PodRules
from myapp.k8s.pods import ContainerView, Outcome, PodView, termination_message
from myapp.k8s.transfer import upload_failure

# Waiting reasons that do not resolve by themselves within a grace period: fail the attempt.
FATAL_WAITING = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
DISRUPTIONS = {
    "EvictionByEvictionAPI": "was evicted (Eviction API)",
    "PreemptionByScheduler": "was preempted by the scheduler",
    "PreemptionByKubeScheduler": "was preempted by the scheduler",
    "DeletionByTaintManager": "was deleted by the taint manager (its node became unusable)",
    "DeletionByPodGC": "was deleted by the pod garbage collector (its node is gone)",
    "TerminationByKubelet": "was terminated by the kubelet (node pressure or shutdown)",
}
FAILED_REASONS = {
    "Evicted": "was evicted",
    "Preempting": "was preempted",
    "NodeLost": "lost its node",
    "Shutdown": "was shut down with its node",
    "Terminated": "was terminated with its node",
}
# The scheduler's VolumeBinding PreFilter for a claim that does not exist (1.20: the bare error; later
# releases wrap it in "0/N nodes are available: N persistentvolumeclaim ... not found.").
MISSING_CLAIM = re.compile(r'persistentvolumeclaim "([^"]+)" not found')
NODE_NOT_READY = ("", "NodeNotReady", "NodeLost")  # Ready=False set by the node controller, not the kubelet


def attempt_outcome(
    pods: Sequence[PodView],
    expected: int,
    *,
    task: str,
    timeout: int,
    now: datetime,
    rules: PodRules = PodRules(),
    notes: Mapping[str, str] | None = None,
) -> Outcome | None:
    """Return the attempt's outcome once decided by its pods, else None (still running).

    `notes` maps a pod name to the scheduler's latest word on it (a FailedScheduling message).
    """
    ordered = sorted(pods, key=lambda p: (p.rank or 0, p.name))
    for pod in ordered:
        failure = pod_failure(
            pod,
            task=task,
            timeout=timeout,
            several=expected > 1,
            now=now,
            rules=rules,
            note=(notes or {}).get(pod.name, ""),
        )
        if failure is not None:
            return failure
    done = [p for p in ordered if is_done(p)]
    if expected and len(done) >= expected:
        return Outcome(True, 0, "", termination_message(ordered[0]))
    return None


def is_done(pod: PodView) -> bool:
    """Return True when the pod's task succeeded (its sidecars may still run) and, in a pod that
    uploads its own outputs, its uploader succeeded too."""
    main = pod.task_container
    up = pod.uploader
    if up is not None and not (up.state == "terminated" and up.exit_code == 0):
        return False
    if main is not None and main.state == "terminated":
        return main.exit_code == 0
    return pod.phase == "Succeeded"


def _uploading(pod: PodView, main: ContainerView | None, where: str) -> Outcome | None:
    """Return the failure of a pod's upload of its outputs, Outcome(True) while it still uploads, else None."""
    up = pod.uploader
    if up is None or main is None or main.state != "terminated" or main.exit_code != 0:
        return None
    if up.state != "terminated":
        return None if pod.is_terminal or pod.gone or pod.deleting else Outcome(True)
    if up.exit_code == 0:
        return None
    return Outcome(False, up.exit_code, where + upload_failure(up.message or f"exit code {up.exit_code}"))


def pod_failure(
    pod: PodView, *, task: str, timeout: int, several: bool, now: datetime, rules: PodRules = PodRules(), note: str = ""
) -> Outcome | None:
    """Return why `pod` failed the attempt, or None while it has not."""
    where = f"pod {pod.name}: " if several else ""
    main = pod.task_container
    if pod.is_terminal or pod.gone or (main is not None and main.state == "terminated"):
        return _ended(pod, main, task, timeout, where)
    return _stuck(pod, now, rules, where, note)


def _ended(pod: PodView, main: ContainerView | None, task: str, timeout: int, where: str) -> Outcome | None:
    disruption = pod.condition("DisruptionTarget")
    if disruption is not None and disruption.status == "True" and not is_done(pod):
        what = DISRUPTIONS.get(disruption.reason, f"was disrupted ({disruption.reason or 'no reason given'})")
        return Outcome(False, None, f"pod {pod.name} {what}: {disruption.message}".rstrip(": "))
    if pod.phase == "Failed" and pod.reason == "DeadlineExceeded":
        return Outcome(False, None, f"task {task!r} timed out after {timeout} s")
    if pod.phase == "Failed" and pod.reason:
        what = FAILED_REASONS.get(pod.reason, f"failed ({pod.reason})")
        return Outcome(False, None, f"pod {pod.name} {what}: {pod.message}".rstrip(": "))
    if is_done(pod):
        return None
    uploading = _uploading(pod, main, where)
    if uploading is not None:
        return None if uploading.succeeded else uploading
    if pod.deleting or pod.gone:
        code = f" (the task was killed: exit code {main.exit_code})" if main and main.exit_code is not None else ""
        state = "running" if main is not None and main.state != "waiting" else pod.phase.lower()
        return Outcome(False, None, f"pod {pod.name} was deleted by someone else while {state}{code}")
    return _exit_code(pod, main, where)


def _exit_code(pod: PodView, main: ContainerView | None, where: str) -> Outcome:
    # An init container (a SeqPod step) that failed ended the pod before its containers started.
    init = next((c for c in pod.init_containers if c.state == "terminated" and c.exit_code not in (0, None)), None)
    failed = [c for c in pod.containers if c.state == "terminated" and c.exit_code not in (0, None)]
    c = init or (main if main is not None and main in failed else (failed[0] if failed else None))
    if c is None:
        return Outcome(False, None, f"pod {pod.name} failed")
    text = f"{where}exit code {c.exit_code}"
    if c is init and not c.message.strip():  # else the step's runner wrote which step failed
        text = f"{where}init container {c.name} exit code {c.exit_code}"
    if c.reason and c.reason not in ("Error", "Completed"):
        text += f" ({c.reason})"
    if c.message and not c.message.startswith("myapp-outputs"):
        text += f": {c.message.strip()[:500]}"
    return Outcome(False, c.exit_code, text)


def _stuck(pod: PodView, now: datetime, rules: PodRules, where: str, note: str) -> Outcome | None:
    lost = _lost_node(pod, now, rules)
    if lost is not None:
        return lost
    scheduled = pod.condition("PodScheduled")
    since = (
        scheduled.since if scheduled is not None and scheduled.status == "True" and scheduled.since else pod.created_at
    )
    broken = [c for c in pod.every_container if c.state == "waiting" and c.reason in FATAL_WAITING]
    for c in broken:  # governed by the image pull grace alone, not by the startup timeout
        if not _past(since, now, rules.image_pull_grace):
            return None
        detail = f": {c.message}" if c.message else ""
        return Outcome(
            False,
            None,
            f"{where}container {c.name} cannot start: {c.reason}{detail} (for {rules.image_pull_grace:g} s)",
        )
    started = any(c.has_log for c in pod.every_container)  # init containers run while the pod is Pending
    refused = note or (scheduled.message if scheduled is not None and scheduled.status == "False" else "")
    missing = MISSING_CLAIM.search(refused)
    if missing is not None and pod.phase == "Pending" and not pod.node and not started:
        if not _past(pod.created_at, now, rules.image_pull_grace):
            return None
        return Outcome(
            False,
            None,
            f"pod {pod.name} cannot be scheduled: its PersistentVolumeClaim {missing.group(1)!r} does not exist "
            f"in namespace {pod.namespace} (for {rules.image_pull_grace:g} s; the scheduler says: {refused.strip()})",
        )
    if pod.phase == "Pending" and not started and _past(pod.created_at, now, rules.startup_timeout):
        why = (
            note
            or (scheduled.message if scheduled is not None and scheduled.status == "False" else "")
            or next((f"{c.reason}: {c.message}".rstrip(": ") for c in pod.every_container if c.reason), "")
        )
        return Outcome(
            False,
            None,
            f"pod {pod.name} did not start within {rules.startup_timeout:g} s" + (f": {why}" if why else ""),
        )
    return None


def _lost_node(pod: PodView, now: datetime, rules: PodRules) -> Outcome | None:
    node = pod.node or "?"
    if pod.deleting and _past(pod.deletion_at, now, rules.lost_node_timeout):
        return Outcome(
            False,
            None,
            f"pod {pod.name} was still terminating {rules.lost_node_timeout:g} s after its "
            f"deletion (node {node} lost?); it was force-deleted",
            force_delete=True,
        )
    ready = pod.condition("Ready")
    if (
        pod.phase == "Running"
        and ready is not None
        and ready.status == "False"
        and ready.reason in NODE_NOT_READY
        and _past(ready.since, now, rules.lost_node_timeout)
    ):
        return Outcome(
            False,
            None,
            f"node {node} of pod {pod.name} has not been ready for "
            f"{rules.lost_node_timeout:g} s (lost?); the pod was force-deleted",
            force_delete=True,
        )
    return None


def _past(since: datetime | None, now: datetime, limit: float) -> bool:
    return bool(limit) and since is not None and (now - since).total_seconds() >= limit
