"""Deleting what an attempt created: its pods, its headless service, its resource object."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from myapp.k8s.launcher import Launcher, LaunchError
from myapp.k8s.pods import PodView
from myapp.k8s.tracked import TrackedAttempt

log = logging.getLogger(__name__)


def delete_quietly(
    launcher: Launcher,
    kind: str,
    name: str,
    *,
    grace: int | None = None,
    api_version: str = "v1",
    namespace: str | None = None,
) -> None:
    """Delete one object; a refusal is logged (the next tick or sweep tries again), never raised."""
    try:
        launcher.delete(kind, name, api_version=api_version, namespace=namespace, grace_seconds=grace)
    except LaunchError as exc:
        log.warning("%s", exc)


def delete_attempt_objects(
    launcher: Launcher,
    attempt: TrackedAttempt,
    cached: Sequence[PodView],
    *,
    running_only: bool,
    grace: int | None = None,
) -> None:
    """Delete the attempt's pods (only those still running if `running_only`), then its service and resource."""
    known = {p.name: p for p in cached}
    for name in sorted(set(attempt.pod_names) | set(known)):
        pod = known.get(name)
        if pod is not None and (pod.gone or (running_only and pod.is_terminal)):
            continue
        delete_quietly(launcher, "Pod", name, grace=grace)
    if running_only:
        return
    if attempt.launch.get("service"):
        delete_quietly(launcher, "Service", str(attempt.launch["service"]))
    if attempt.launch.get("secret"):  # owned by the pods, but no garbage collector may run (nor in time)
        delete_quietly(launcher, "Secret", str(attempt.launch["secret"]))
    ref = attempt.launch.get("resource")
    if isinstance(ref, dict) and ref.get("name"):
        delete_quietly(
            launcher,
            str(ref.get("kind")),
            str(ref["name"]),
            api_version=str(ref.get("apiVersion")),
            namespace=str(ref.get("namespace") or "") or None,
        )
