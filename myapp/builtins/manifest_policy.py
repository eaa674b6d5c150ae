"""What a `kind: resource` manifest (k8s-resource) may ask of the cluster (issue 12 item 7). Pure.

The executor creates the object with its own rights, so a manifest could otherwise borrow them: run
a pod as the executor's service account, mount another claim (the server's own data), or escape
to the node. Every pod template inside the manifest (a Pod's spec, a Job's template, each replica
of a PyTorchJob: any mapping with `containers`) is checked:
- `serviceAccountName` / `serviceAccount`: only the task pods' own (`k8s_service_account`, per
  project in `k8s_projects`), or none;
- `volumes`: only emptyDir, downwardAPI and the workflow space claim, mounted with the project's
  own subPath; never hostPath, another claim, a Secret or anything else;
- `hostNetwork`, `hostPID`, `hostIPC`, and containers' `securityContext.privileged` (or added
  capabilities SYS_ADMIN / ALL) are refused;
- the object itself lives in the executor's namespace.
Checked when a template or pipeline is saved (literal values; Jinja is not rendered then) and
again after rendering, since Jinja and $(params.x) may produce any of these.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

SAFE_SOURCES = frozenset({"emptyDir", "downwardAPI"})
VOLUME_KEYS = frozenset({"name"})
POWERFUL_CAPS = frozenset({"SYS_ADMIN", "ALL", "CAP_SYS_ADMIN"})
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True)
class ManifestPolicy:
    """What the installation allows; None / "": not known here (a template parsed without settings)."""

    namespace: str = ""
    service_account: str | None = None
    claim: str | None = None
    subpath: str = ""  # the project's own part of the workflow space claim


def manifest_problems(manifest: object, policy: ManifestPolicy, where: str = "manifest") -> list[tuple[str, str]]:
    """Return (field, message) for everything `manifest` may not ask for."""
    problems: list[tuple[str, str]] = []
    if isinstance(manifest, Mapping):
        namespace = (
            (manifest.get("metadata") or {}).get("namespace") if isinstance(manifest.get("metadata"), Mapping) else None
        )
        if policy.namespace and namespace and _literal(namespace) and namespace != policy.namespace:
            problems.append(
                (
                    f"{where}.metadata.namespace",
                    f"objects are created in the executor's namespace {policy.namespace!r} only",
                )
            )
    for path, spec in _pod_specs(manifest, where):
        problems += _pod_spec_problems(spec, path, policy)
    return problems


def _pod_specs(node: object, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if isinstance(node, Mapping):
        if isinstance(node.get("containers"), list):
            yield path, node
        for key, value in node.items():
            yield from _pod_specs(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _pod_specs(value, f"{path}[{index}]")


def _pod_spec_problems(spec: Mapping[str, Any], path: str, policy: ManifestPolicy) -> list[tuple[str, str]]:
    problems = []
    for key in ("serviceAccountName", "serviceAccount"):
        account = spec.get(key)
        if policy.service_account is not None and _literal(account) and account and account != policy.service_account:
            own = repr(policy.service_account) if policy.service_account else "none"
            problems.append((f"{path}.{key}", f"may not name service account {account!r} (the task pods' own: {own})"))
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key) is True or str(spec.get(key)).lower() == "true":
            problems.append((f"{path}.{key}", f"{key} is not allowed (a task stays off the node's namespaces)"))
    claims = set()
    for index, volume in enumerate(spec.get("volumes") or []):
        if isinstance(volume, Mapping):
            problem, is_claim = _volume_problem(volume, policy)
            if problem:
                problems.append((f"{path}.volumes[{index}]", problem))
            if is_claim:
                claims.add(str(volume.get("name")))
    for kind in CONTAINER_LISTS:
        for index, container in enumerate(spec.get(kind) or []):
            if isinstance(container, Mapping):
                problems += _container_problems(container, f"{path}.{kind}[{index}]", claims, policy)
    return problems


def _volume_problem(volume: Mapping[str, Any], policy: ManifestPolicy) -> tuple[str, bool]:
    sources = [k for k in volume if k not in VOLUME_KEYS]
    name = volume.get("name")
    if "hostPath" in sources:
        return f"volume {name!r}: hostPath is not allowed", False
    if sources == ["persistentVolumeClaim"]:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if not _literal(claim) or policy.claim is None or (policy.claim and claim == policy.claim):
            return "", True
        return (
            f"volume {name!r}: claim {claim!r} is not the task's own "
            f"(only the workflow space {policy.claim or '(k8s_workflow_space_pvc)'!r})"
        ), False
    if len(sources) == 1 and sources[0] in SAFE_SOURCES:
        return "", False
    what = ", ".join(sources) or "no source"
    return f"volume {name!r}: {what} is not allowed (only emptyDir, downwardAPI and the workflow space claim)", False


def _container_problems(
    container: Mapping[str, Any], path: str, claims: set[str], policy: ManifestPolicy
) -> list[tuple[str, str]]:
    problems = []
    context = container.get("securityContext") or {}
    if isinstance(context, Mapping):
        if context.get("privileged") is True or str(context.get("privileged")).lower() == "true":
            problems.append((f"{path}.securityContext.privileged", "privileged containers are not allowed"))
        added = (
            ((context.get("capabilities") or {}).get("add") or [])
            if isinstance(context.get("capabilities"), Mapping)
            else []
        )
        if any(str(cap).upper() in POWERFUL_CAPS for cap in added):
            problems.append((f"{path}.securityContext.capabilities.add", "SYS_ADMIN / ALL are not allowed"))
    for index, mount in enumerate(container.get("volumeMounts") or []):
        if not isinstance(mount, Mapping) or mount.get("name") not in claims or not policy.subpath:
            continue
        sub = str(mount.get("subPath") or "")
        if (
            _literal(sub)
            and not (sub == policy.subpath or sub.startswith(policy.subpath + "/"))
            or ".." in sub.split("/")
        ):
            problems.append(
                (
                    f"{path}.volumeMounts[{index}].subPath",
                    f"the workflow space is mounted with the project's own subPath {policy.subpath!r}",
                )
            )
    return problems


def _literal(value: object) -> bool:
    """Return False for a value only rendering will tell (Jinja or $(params.x))."""
    return not (isinstance(value, str) and ("{{" in value or "$(params." in value))
