"""Manifests of one attempt as plain dicts: pods, the headless service of a distributed attempt,
and the labels stamped on a resource. Pure: no I/O, no kubernetes import (docs/rules.md S6).

Names derive from ids (run, task, try), so creating twice finds "already exists". Labels carry
pipeline, run, task, try, attempt, worker group and installation; the watcher selects on the group
and the installation, so two installations sharing a namespace never see (or delete) each
other's objects.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from myapp.core.model import OutputSpec, Resources
from myapp.k8s.config import Placement, merge_resources
from myapp.k8s.entrypoint import TERMINATION_LOG, outputs_env, wrapped_command
from myapp.k8s.transfer import (
    EXIT_CODE_ENV,
    EXIT_CODE_FILE,
    FETCHER,
    INPUTS_ENV,
    OUTPUTS_ENV,
    UPLOADER,
    transfer_argv,
)

MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PIPELINE, LABEL_RUN, LABEL_TASK, LABEL_TRY = "myapp/pipeline", "myapp/run", "myapp/task", "myapp/try"
LABEL_ATTEMPT, LABEL_GROUP, LABEL_RANK, LABEL_ROLE = "myapp/attempt", "myapp/group", "myapp/rank", "myapp/role"
LABEL_INSTALLATION = "myapp/installation"
TASK_ANNOTATION = "myapp/task-name"
SECRET_ENV_ANNOTATION = "myapp/secret-env"  # names (never values) of the env vars that carry secrets
STEPS_ANNOTATION = "myapp/steps"  # a SeqPod's step names, in order: its log lines carry `[STEP] ` already
STEP_CONTAINER_PREFIX = "step-"  # a SeqPod step in an init container of its own image: `step-NAME`
TOKEN_ENV = "MYAPP_TOKEN"
CONTAINER = "main"
VOLUME = "workflow-space"
MONITORING = Resources(cpu="100m", memory="128Mi")
MAX_BASE_NAME = 52  # leaves room for "-RANK" within the 63 characters of a hostname / service name
_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_NOT_LABEL = re.compile(r"[^A-Za-z0-9_.-]+")

Manifest = dict[str, Any]


@dataclass(frozen=True)
class AttemptRef:
    """The ids that name and label an attempt's objects."""

    pipeline_id: int
    run_id: int
    task: str
    try_number: int
    attempt_id: int
    group: str
    installation: str = ""


@dataclass(frozen=True)
class PodPlan:
    """What every pod of one attempt runs, and where."""

    ref: AttemptRef
    namespace: str
    name: str
    image: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    workdir: str
    outputs: tuple[OutputSpec, ...] = ()
    resources: Resources = field(default_factory=Resources)
    placement: Placement = field(default_factory=Placement)
    timeout: int = 0
    mount: str = "/tmp/workflow_space"
    subpath: str = ""  # the project's own directory of the workflow space: the only part its pods mount
    pvc: str = ""
    gpu_resource: str = "nvidia.com/gpu"
    secret_env: tuple[str, ...] = ()  # env names holding secret parameters: the watcher masks their values in logs
    secret_name: str = ""  # the attempt's Secret: secret parameters and the run token come from it, never inline
    workspaces: tuple[tuple[str, str, str], ...] = ()  # (name, PVC claim, mount path): core/workspaces.py
    # A SeqPod whose steps have images of their own: (container name, image, argv) of the init containers
    # running the steps before the last one, in order; the last step is the `main` container.
    init_steps: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    steps: tuple[str, ...] = ()  # a SeqPod's step names (STEPS_ANNOTATION)
    # Pods that move their own files (myapp/k8s/transfer.py): the image of the fetch-inputs init container
    # and of the upload-outputs container, present when env holds INPUTS_ENV / OUTPUTS_ENV (from the Secret).
    transfer_image: str = ""


def attempt_name(prefix: str, run_id: int, task: str, try_number: int) -> str:
    """Return the DNS-1035 base name of an attempt's objects, e.g. myapp-12-extract-1."""
    slug = _NOT_DNS.sub("-", task.lower()).strip("-")
    base = f"{prefix}-{run_id}-{slug}-{try_number}" if slug else f"{prefix}-{run_id}-{try_number}"
    lossless = slug == task
    if lossless and len(base) <= MAX_BASE_NAME:
        return base
    digest = hashlib.sha256(task.encode()).hexdigest()[:6]  # keeps "A_b" and "a-b" apart
    head = f"{prefix}-{run_id}-{slug}"[: MAX_BASE_NAME - len(f"-{digest}-{try_number}")].rstrip("-")
    return f"{head}-{digest}-{try_number}"


def label_value(text: str) -> str:
    """Return `text` as a valid label value (63 characters, alphanumeric at both ends)."""
    return _NOT_LABEL.sub("-", text)[:63].strip("-_.")


def attempt_labels(ref: AttemptRef) -> dict[str, str]:
    """Return the labels of every object of the attempt."""
    return {
        MANAGED_BY: "myapp",
        LABEL_GROUP: label_value(ref.group),
        LABEL_PIPELINE: str(ref.pipeline_id),
        LABEL_RUN: str(ref.run_id),
        LABEL_TASK: label_value(ref.task),
        LABEL_TRY: str(ref.try_number),
        LABEL_ATTEMPT: str(ref.attempt_id),
        **({LABEL_INSTALLATION: ref.installation} if ref.installation else {}),
    }


def group_selector(group: str, installation: str = "") -> str:
    """Return the label selector of every pod a worker group's watcher owns (in its installation)."""
    own = f",{LABEL_INSTALLATION}={installation}" if installation else ""
    return f"{MANAGED_BY}=myapp,{LABEL_GROUP}={label_value(group)}{own}"


def resolve_resources(
    task: Resources,
    template: Resources | None,
    placement: Resources,
    packages: Mapping[str, Resources],
    *,
    monitoring: bool = False,
) -> Resources:
    """Return the attempt's resources: task, then its package, then template, then config/project."""
    if monitoring:
        return MONITORING
    template = template or Resources()
    name = task.package or template.package
    if name and name not in packages:
        known = ", ".join(sorted(packages)) or "none configured (k8s_resource_packages)"
        raise KeyError(f"resource package {name!r} is unknown; known: {known}")
    package = packages[name] if name else Resources()
    merged = merge_resources(task, merge_resources(package, merge_resources(template, placement)))
    return Resources(cpu=merged.cpu, memory=merged.memory, gpu=merged.gpu)


def resource_requirements(resources: Resources, gpu_resource: str) -> dict[str, dict[str, str]]:
    """Return requests/limits: cpu and memory requested as limited, GPUs as an extended resource."""
    amounts = {k: v for k, v in (("cpu", resources.cpu), ("memory", resources.memory)) if v}
    if resources.gpu:
        amounts[gpu_resource] = str(resources.gpu)
    return {"requests": dict(amounts), "limits": dict(amounts)} if amounts else {}


def pod_manifest(
    plan: PodPlan,
    *,
    name: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    extra_labels: Mapping[str, str] | None = None,
    subdomain: str = "",
    ports: Sequence[int] = (),
    collect_outputs: bool = True,
) -> Manifest:
    """Return one pod of the attempt (restartPolicy Never: retries are the engine's)."""
    pod_name = name or plan.name
    env = {**plan.env, **(extra_env or {}), "MYAPP_WORKDIR": plan.workdir, "MYAPP_TERMINATION_LOG": TERMINATION_LOG}
    if collect_outputs and plan.outputs:
        env["MYAPP_OUTPUTS"] = outputs_env(plan.outputs)
    transfer = {k: env.pop(k) for k in (INPUTS_ENV, OUTPUTS_ENV) if k in env}  # the transfer containers' only
    if OUTPUTS_ENV in transfer:
        env[EXIT_CODE_ENV] = f"{plan.workdir}/{EXIT_CODE_FILE}"
    container = _container(plan, CONTAINER, plan.image, plan.argv, env)
    if ports:
        container["ports"] = [{"name": f"port-{p}", "containerPort": p} for p in ports]
    init_env = {k: v for k, v in env.items() if k not in ("MYAPP_OUTPUTS", EXIT_CODE_ENV)}  # the last step's
    init = [_container(plan, n, image, argv, init_env) for n, image, argv in plan.init_steps]
    containers = [container]
    if INPUTS_ENV in transfer:
        init.insert(0, _transfer(plan, FETCHER, "fetch", {INPUTS_ENV: transfer[INPUTS_ENV]}))
    if OUTPUTS_ENV in transfer:
        containers.append(
            _transfer(plan, UPLOADER, "upload", {OUTPUTS_ENV: transfer[OUTPUTS_ENV], EXIT_CODE_ENV: env[EXIT_CODE_ENV]})
        )
    spec: Manifest = {
        "restartPolicy": "Never",
        **({"initContainers": init} if init else {}),
        "containers": containers,
        "enableServiceLinks": False,
        "volumes": [
            _volume(plan),
            *({"name": f"ws-{n}", "persistentVolumeClaim": {"claimName": c}} for n, c, _ in plan.workspaces),
        ],
    }
    spec.update(_placement(plan.placement))
    if plan.timeout > 0:
        spec["activeDeadlineSeconds"] = plan.timeout
    if subdomain:
        spec.update(hostname=pod_name, subdomain=subdomain)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": _metadata(plan, pod_name, extra_labels), "spec": spec}


def _container(plan: PodPlan, name: str, image: str, argv: Sequence[str], env: Mapping[str, str]) -> Manifest:
    """Return one container of the attempt's pod: `argv` under the entrypoint, in the working directory."""
    command, args = wrapped_command(argv)
    return {
        "name": name,
        "image": image,
        "command": command,
        "args": args,
        "workingDir": plan.workdir,
        "env": [_env_entry(plan, k, v) for k, v in env.items()],
        "resources": resource_requirements(plan.resources, plan.gpu_resource),
        "volumeMounts": [_workflow_mount(plan), *({"name": f"ws-{n}", "mountPath": m} for n, _, m in plan.workspaces)],
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "File",
    }


def _transfer(plan: PodPlan, name: str, mode: str, env: Mapping[str, str]) -> Manifest:
    """Return a transfer container: no task env (no run token), only its plan and the workflow-space mount."""
    own = {**env, "MYAPP_TERMINATION_LOG": TERMINATION_LOG}
    return {
        "name": name,
        "image": plan.transfer_image,
        "command": list(transfer_argv(mode)[:3]),
        "args": list(transfer_argv(mode)[3:]),
        "env": [_env_entry(plan, k, v) for k, v in own.items()],
        "resources": resource_requirements(MONITORING, plan.gpu_resource),
        "volumeMounts": [_workflow_mount(plan)],
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "File",
    }


def secret_keys(plan: PodPlan) -> tuple[str, ...]:
    """Return the env names a pod reads from the attempt's Secret (the run token, secret parameters)."""
    return tuple(k for k in plan.env if k == TOKEN_ENV or k in plan.secret_env) if plan.secret_name else ()


def _env_entry(plan: PodPlan, name: str, value: str) -> Manifest:
    if name in secret_keys(plan):
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": plan.secret_name, "key": name}}}
    return {"name": name, "value": value}


def secret_manifest(plan: PodPlan, owners: Sequence[tuple[str, str]]) -> Manifest:
    """Return the attempt's Secret, owned by its pods (`owners`: (name, uid)), so it goes with them."""
    data = {k: base64.b64encode(plan.env[k].encode()).decode() for k in secret_keys(plan)}
    meta = _metadata(plan, plan.secret_name, None)
    if owners:
        meta["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": name,
                "uid": uid,
                "controller": False,
                "blockOwnerDeletion": False,
            }
            for name, uid in owners
        ]
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "data": data}


def distributed_manifests(
    plan: PodPlan, port: int, rank_envs: Sequence[Mapping[str, str]]
) -> tuple[Manifest, list[Manifest]]:
    """Return the headless service and one pod per rank (rank 0, the master, first)."""
    selector = {LABEL_ATTEMPT: str(plan.ref.attempt_id), MANAGED_BY: "myapp"}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(plan, plan.name, None),
        "spec": {
            "clusterIP": "None",
            "selector": selector,
            "publishNotReadyAddresses": True,
            "ports": [{"name": "rendezvous", "port": port, "targetPort": port}],
        },
    }
    pods = [
        pod_manifest(
            plan,
            name=rank_pod_name(plan.name, rank),
            extra_env=env,
            subdomain=plan.name,
            extra_labels={LABEL_RANK: str(rank), LABEL_ROLE: "master" if rank == 0 else "worker"},
            ports=(port,),
            collect_outputs=rank == 0,
        )
        for rank, env in enumerate(rank_envs)
    ]
    return service, pods


def rank_pod_name(base: str, rank: int) -> str:
    """Return the pod (and host) name of one rank of a distributed attempt."""
    return f"{base}-{rank}"


def rank_addresses(plan: PodPlan, workers: int) -> tuple[str, ...]:
    """Return the stable DNS name of every rank's pod (hostname.service.namespace.svc)."""
    return tuple(f"{rank_pod_name(plan.name, r)}.{plan.name}.{plan.namespace}.svc" for r in range(workers))


def resource_manifest(manifest: Mapping[str, Any], plan: PodPlan) -> Manifest:
    """Return a rendered resource manifest stamped with the attempt's labels and namespace."""
    out = copy.deepcopy(dict(manifest))
    meta = out.setdefault("metadata", {})
    meta.setdefault("namespace", plan.namespace)
    meta["labels"] = {**(meta.get("labels") or {}), **attempt_labels(plan.ref)}
    return out


def _metadata(plan: PodPlan, name: str, extra_labels: Mapping[str, str] | None) -> Manifest:
    return {
        "name": name,
        "namespace": plan.namespace,
        "labels": {**attempt_labels(plan.ref), **(extra_labels or {})},
        "annotations": {
            TASK_ANNOTATION: plan.ref.task,
            **({SECRET_ENV_ANNOTATION: ",".join(plan.secret_env)} if plan.secret_env else {}),
            **({STEPS_ANNOTATION: ",".join(plan.steps)} if plan.steps else {}),
        },
    }


def project_subpath(project: str) -> str:
    """Return the directory of a project in the workflow space (its pods mount nothing else of it)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", project).strip("-.") or "default"
    return slug[:100]


def _workflow_mount(plan: PodPlan) -> Manifest:
    if not plan.subpath:
        return {"name": VOLUME, "mountPath": plan.mount}
    return {"name": VOLUME, "mountPath": f"{plan.mount.rstrip('/')}/{plan.subpath}", "subPath": plan.subpath}


def _volume(plan: PodPlan) -> Manifest:
    if plan.pvc:
        return {"name": VOLUME, "persistentVolumeClaim": {"claimName": plan.pvc}}
    return {"name": VOLUME, "emptyDir": {}}


def _placement(placement: Placement) -> Manifest:
    spec: Manifest = {}
    if placement.service_account:
        spec["serviceAccountName"] = placement.service_account
    if placement.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": n} for n in placement.image_pull_secrets]
    if placement.node_selector:
        spec["nodeSelector"] = dict(placement.node_selector)
    if placement.tolerations:
        spec["tolerations"] = [dict(t) for t in placement.tolerations]
    return spec
