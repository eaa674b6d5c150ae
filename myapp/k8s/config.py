"""The Kubernetes executor's configuration, parsed once from Settings (errors name the setting).

Structured settings (node selector, tolerations, resource packages, per-project defaults) are
JSON or YAML text, so they work the same from config/myapp.yaml and from MYAPP_* variables.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from myapp.core.model import Resources
from myapp.core.output_paths import parse_roots
from myapp.settings import Settings, SettingsError

JsonMap = Mapping[str, Any]


@dataclass(frozen=True)
class Placement:
    """Where and how pods of a project run: defaults from config, overridden per project."""

    resources: Resources = field(default_factory=Resources)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[JsonMap, ...] = ()
    service_account: str = ""
    image_pull_secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class PodRules:
    """Time limits of the rules of myapp/k8s/outcome.py, in seconds (0 turns a rule off)."""

    image_pull_grace: float = 120.0
    startup_timeout: float = 600.0
    lost_node_timeout: float = 300.0


@dataclass(frozen=True)
class KubeConfig:
    """Everything the Kubernetes executor and watcher read from settings."""

    namespace: str
    group: str = "default"
    kubeconfig: str = ""
    context: str = ""
    workflow_space: Path = Path("/tmp/workflow_space")  # where this process sees the workflow space
    workflow_space_mount: str = "/tmp/workflow_space"  # where pods see it
    workflow_space_pvc: str = ""
    placement: Placement = field(default_factory=Placement)
    projects: Mapping[str, Placement] = field(default_factory=dict)
    packages: Mapping[str, Resources] = field(default_factory=dict)
    gpu_resource: str = "nvidia.com/gpu"
    pod_prefix: str = "myapp"
    cluster_name: str = "local"
    delete_finished: bool = True
    watch_timeout: int = 300
    log_streams: int = 2000
    heartbeat_interval: float = 2.0
    missing_grace: float = 60.0
    pod_rules: PodRules = field(default_factory=PodRules)
    create_retry_timeout: float = 300.0
    installation: str = ""
    output_roots: tuple[str, ...] = ("/tmp",)
    artifact_transfer: str = "watcher"  # or "pod": pods fetch and upload their own files (myapp/k8s/transfer.py)
    transfer_image: str = "python:3.12-slim"

    def placement_for(self, project: str) -> Placement:
        """Return the placement of `project`: its own values over the global defaults."""
        own = self.projects.get(project)
        if own is None:
            return self.placement
        base = self.placement
        return Placement(
            resources=merge_resources(own.resources, base.resources),
            node_selector={**base.node_selector, **own.node_selector},
            tolerations=base.tolerations + own.tolerations,
            service_account=own.service_account or base.service_account,
            image_pull_secrets=tuple(dict.fromkeys(base.image_pull_secrets + own.image_pull_secrets)),
        )


def merge_resources(first: Resources, fallback: Resources) -> Resources:
    """Return `first` with each unset field taken from `fallback`."""
    return Resources(
        cpu=first.cpu or fallback.cpu,
        memory=first.memory or fallback.memory,
        gpu=first.gpu or fallback.gpu,
        package=first.package or fallback.package,
    )


def kube_config(settings: Settings) -> KubeConfig:
    """Parse the k8s_* settings; SettingsError names the bad one."""
    placement = Placement(
        resources=_resources(
            _parse(settings.k8s_default_resources, "k8s_default_resources", {}), "k8s_default_resources"
        ),
        node_selector=_selector(settings.k8s_node_selector, "k8s_node_selector"),
        tolerations=_tolerations(_parse(settings.k8s_tolerations, "k8s_tolerations", []), "k8s_tolerations"),
        service_account=settings.k8s_service_account,
        image_pull_secrets=_names(settings.k8s_image_pull_secrets),
    )
    packages = _parse(settings.k8s_resource_packages, "k8s_resource_packages", {})
    projects = _parse(settings.k8s_projects, "k8s_projects", {})
    if not isinstance(packages, dict) or not isinstance(projects, dict):
        raise SettingsError("MYAPP_K8S_RESOURCE_PACKAGES / MYAPP_K8S_PROJECTS: expected a mapping")
    return KubeConfig(
        namespace=settings.k8s_namespace,
        group=settings.k8s_group,
        kubeconfig=settings.k8s_kubeconfig,
        context=settings.k8s_context,
        workflow_space=settings.workflow_space,
        workflow_space_mount=settings.k8s_workflow_space_mount or str(settings.workflow_space),
        workflow_space_pvc=settings.k8s_workflow_space_pvc,
        placement=placement,
        projects={str(k): _project(v, f"k8s_projects.{k}") for k, v in projects.items()},
        packages={str(k): _resources(v, f"k8s_resource_packages.{k}") for k, v in packages.items()},
        gpu_resource=settings.k8s_gpu_resource,
        pod_prefix=settings.k8s_pod_prefix,
        cluster_name=settings.cluster_name,
        delete_finished=settings.k8s_delete_finished,
        watch_timeout=settings.k8s_watch_timeout,
        log_streams=settings.k8s_log_streams,
        heartbeat_interval=settings.heartbeat_interval,
        missing_grace=float(settings.k8s_missing_grace),
        pod_rules=PodRules(
            image_pull_grace=settings.k8s_image_pull_grace,
            startup_timeout=settings.k8s_startup_timeout,
            lost_node_timeout=settings.k8s_lost_node_timeout,
        ),
        create_retry_timeout=settings.k8s_create_retry_timeout,
        installation=installation_id(settings),
        output_roots=parse_roots(settings.output_roots),
        artifact_transfer=settings.k8s_artifact_transfer,
        transfer_image=settings.k8s_transfer_image,
    )


def installation_id(settings: Settings) -> str:
    """Return the installation's id: the setting, else derived from the database (its URL without password).

    Every object an installation creates carries it (label myapp/installation) and its watchers
    select on it, so two installations in one namespace and worker group never touch each other's pods.
    """
    if settings.installation_id:
        return settings.installation_id
    url = make_url_safe(settings.effective_database_url)
    return "db-" + hashlib.sha256(url.encode()).hexdigest()[:12]


def make_url_safe(url: str) -> str:
    """Return a database URL without its password (the id must not depend on, or reveal, a secret)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    credentials, _, host = rest.partition("@")
    return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"


def _fail(name: str, why: str) -> SettingsError:
    head, _, rest = name.partition(".")
    return SettingsError(f"MYAPP_{head.upper()}{'.' + rest if rest else ''}: {why}")


def _parse(text: str, name: str, empty: object) -> Any:
    if not text.strip():
        return empty
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _fail(name, f"not JSON or YAML: {exc}") from None


def _selector(text: str, name: str) -> dict[str, str]:
    if text.strip() and not text.strip().startswith("{") and "=" in text:
        pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
        return {k.strip(): v.strip() for k, v in pairs}
    data = _parse(text, name, {})
    if not isinstance(data, dict):
        raise _fail(name, "expected a mapping of label to value")
    return {str(k): str(v) for k, v in data.items()}


def _tolerations(data: object, name: str) -> tuple[JsonMap, ...]:
    if not isinstance(data, list) or not all(isinstance(t, dict) for t in data):
        raise _fail(name, "expected a list of tolerations (mappings)")
    return tuple(dict(t) for t in data)


def _resources(data: object, name: str) -> Resources:
    if not isinstance(data, dict):
        raise _fail(name, "expected a mapping with cpu, memory and gpu")
    unknown = set(data) - {"cpu", "memory", "gpu"}
    if unknown:
        raise _fail(name, f"unknown key(s) {', '.join(sorted(unknown))}; use cpu, memory, gpu")
    try:
        gpu = int(data.get("gpu") or 0)
    except (TypeError, ValueError):
        raise _fail(name, f"gpu {data.get('gpu')!r} is not a whole number") from None
    return Resources(cpu=_text(data.get("cpu")), memory=_text(data.get("memory")), gpu=gpu)


def _project(data: object, name: str) -> Placement:
    if not isinstance(data, dict):
        raise _fail(name, "expected a mapping")
    selector = data.get("node_selector") or {}
    if not isinstance(selector, dict):
        raise _fail(f"{name}.node_selector", "expected a mapping")
    secrets = data.get("image_pull_secrets") or []
    return Placement(
        resources=_resources(data.get("resources") or {}, f"{name}.resources"),
        node_selector={str(k): str(v) for k, v in selector.items()},
        tolerations=_tolerations(data.get("tolerations") or [], f"{name}.tolerations"),
        service_account=str(data.get("service_account") or ""),
        image_pull_secrets=_names(secrets if isinstance(secrets, str) else ",".join(map(str, secrets))),
    )


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _text(value: object) -> str | None:
    return None if value in (None, "") else str(value)
