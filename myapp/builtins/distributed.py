"""The `distributed` template and every `kind: distributed` template: per-rank pods as pure data.

N pods run the same rendered command; pod 0 is the master. A headless Service gives each pod a
stable DNS name (`hostname.subdomain`), so the rendezvous env is known before any pod starts:
MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK (and NODE_RANK, LOCAL_RANK=0; TF_CONFIG for
`framework: tensorflow`). The settings come from the parameters `workers`, `master_port` and
`framework` when the template declares them, else from `extra`, else the defaults. The Kubernetes
executor creates the Service and the pods and aggregates their logs (each line prefixed with its
pod/container). Pure; imports myapp.core only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from myapp.core.errors import SpecError
from myapp.core.model import Resources, TemplateSpec
from myapp.core.render import RenderedTask

FRAMEWORKS = ("pytorch", "tensorflow", "generic")
MAX_WORKERS = 256
DEFAULTS: Mapping[str, object] = {"workers": 2, "master_port": 29500, "framework": "pytorch"}
_DNS = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class Rendezvous:
    """How many pods, on which port they meet, and which env convention they expect."""

    workers: int
    master_port: int
    framework: str


@dataclass(frozen=True)
class DistributedPlan:
    """The headless Service and one pod manifest per rank (rank 0 first)."""

    service: dict[str, object]
    pods: tuple[dict[str, object], ...]


def rendezvous_settings(template: TemplateSpec, values: Mapping[str, str]) -> Rendezvous:
    """Return the settings from parameter values, `extra` and defaults; SpecError names a bad one."""

    def pick(name: str) -> object:
        return values[name] if name in values else template.extra.get(name, DEFAULTS[name])

    workers = _integer(pick("workers"), "workers", 1, MAX_WORKERS)
    port = _integer(pick("master_port"), "master_port", 1, 65535)
    framework = str(pick("framework"))
    if framework not in FRAMEWORKS:
        raise SpecError("framework", f"must be one of {', '.join(FRAMEWORKS)}, not {framework!r}")
    return Rendezvous(workers, port, framework)


def check_distributed_template(template: TemplateSpec) -> list[SpecError]:
    """Return what is wrong with a `kind: distributed` template's fixed settings (extra)."""
    fixed = {k: template.extra[k] for k in DEFAULTS if k in template.extra and template.param(k) is None}
    try:
        rendezvous_settings(template, {k: str(v) for k, v in fixed.items()})
    except SpecError as exc:
        return [SpecError(f"extra.{exc.field}", exc.message)]
    return []


def rank_env(settings: Rendezvous, rank: int, addresses: tuple[str, ...]) -> dict[str, str]:
    """Return the rendezvous env of `rank`; `addresses` are the pods' DNS names, rank 0 first."""
    env = {
        "MASTER_ADDR": addresses[0],
        "MASTER_PORT": str(settings.master_port),
        "WORLD_SIZE": str(settings.workers),
        "RANK": str(rank),
        "NODE_RANK": str(rank),
        "LOCAL_RANK": "0",
        "MYAPP_RANK": str(rank),
        "MYAPP_WORLD_SIZE": str(settings.workers),
    }
    if settings.framework == "tensorflow":
        cluster = {"worker": [f"{a}:{settings.master_port}" for a in addresses]}
        env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": rank}})
    return env


def pod_prefix(run_id: int, task: str, try_number: int) -> str:
    """Return a DNS-1123 name for the attempt, short enough for `-RANK` and a Service name."""
    base = _DNS.sub("-", f"myapp-{run_id}-{task.lower()}-{try_number}").strip("-")
    if len(base) <= 50:
        return base
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    return f"{base[:41].rstrip('-')}-{digest}"


def build_distributed(
    rendered: RenderedTask,
    settings: Rendezvous,
    *,
    prefix: str,
    namespace: str,
    labels: Mapping[str, str],
    resources: Resources,
) -> DistributedPlan:
    """Return the Service and the per-rank pods that run `rendered` as one distributed job."""
    selector = {**labels, "myapp.io/job": prefix}
    addresses = tuple(f"{prefix}-{rank}.{prefix}.{namespace}.svc" for rank in range(settings.workers))
    service: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": prefix, "namespace": namespace, "labels": dict(selector)},
        "spec": {
            "clusterIP": "None",
            "selector": dict(selector),
            "publishNotReadyAddresses": True,
            "ports": [{"name": "rendezvous", "port": settings.master_port}],
        },
    }
    pods = tuple(
        _pod(
            rendered,
            settings,
            rank,
            addresses,
            prefix=prefix,
            namespace=namespace,
            labels=selector,
            resources=resources,
        )
        for rank in range(settings.workers)
    )
    return DistributedPlan(service, pods)


def _pod(
    rendered: RenderedTask,
    settings: Rendezvous,
    rank: int,
    addresses: tuple[str, ...],
    *,
    prefix: str,
    namespace: str,
    labels: Mapping[str, str],
    resources: Resources,
) -> dict[str, object]:
    env = {**rendered.env, **rank_env(settings, rank, addresses)}
    role = "master" if rank == 0 else "worker"
    container = {
        "name": "main",
        "image": rendered.image,
        "command": list(rendered.argv),
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "ports": [{"containerPort": settings.master_port, "name": "rendezvous"}],
        "resources": resource_requirements(resources),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{prefix}-{rank}",
            "namespace": namespace,
            "labels": {**labels, "myapp.io/rank": str(rank), "myapp.io/role": role},
        },
        "spec": {
            "hostname": f"{prefix}-{rank}",
            "subdomain": prefix,
            "restartPolicy": "Never",
            "containers": [container],
        },
    }


def resource_requirements(resources: Resources) -> dict[str, dict[str, str]]:
    """Return Kubernetes requests/limits for cpu, memory and nvidia.com/gpu."""
    amounts = {"cpu": resources.cpu, "memory": resources.memory}
    out = {k: v for k, v in amounts.items() if v}
    if resources.gpu:
        out["nvidia.com/gpu"] = str(resources.gpu)
    return {"requests": dict(out), "limits": dict(out)} if out else {}


def _integer(raw: object, name: str, low: int, high: int) -> int:
    try:
        value = int(str(raw))
    except ValueError:
        raise SpecError(name, f"{raw!r} is not an integer") from None
    if not low <= value <= high:
        raise SpecError(name, f"must be {low}..{high}, not {value}")
    return value
