"""Prepare one attempt for Kubernetes: render it, fetch its file inputs from the artifact repository
into the workflow space, and turn it into manifests (`pod`, `distributed` or `resource`) plus the record the
watcher needs (`TaskAttempt.container["launch"]`).

The workflow space is one volume seen at `cfg.workflow_space` here and at `cfg.workflow_space_mount`
in pods; an attempt works in RUN/TASK/TRY under it, as with the local executor.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

from myapp.artifacts.repository import DIR_ARCHIVE, RemoteArtifacts
from myapp.builtins.distributed import rank_env, rendezvous_settings
from myapp.builtins.k8s_resource import render_resource
from myapp.builtins.manifest_policy import ManifestPolicy
from myapp.builtins.seqpod import parse_steps, sh_runner_argv
from myapp.builtins.values import template_values
from myapp.core.errors import MyappError, SpecError
from myapp.core.inputs import local_value, resolve_inputs
from myapp.core.model import TaskSpec, TemplateSpec
from myapp.core.output_paths import artifact_key, output_path_problem
from myapp.core.params import MASK
from myapp.core.ports import ArtifactRepository, TemplateCatalog
from myapp.core.render import RenderContext, RenderedTask, render_global_params, render_task, render_text
from myapp.core.values import AttemptContext
from myapp.core.workspaces import apply_workspaces, mount_path
from myapp.executor.seqpod_local import render_steps
from myapp.k8s.config import KubeConfig
from myapp.k8s.entrypoint import KEEP_DIR
from myapp.k8s.manifest import (
    STEP_CONTAINER_PREFIX,
    AttemptRef,
    Manifest,
    PodPlan,
    attempt_name,
    distributed_manifests,
    pod_manifest,
    project_subpath,
    rank_addresses,
    resolve_resources,
    resource_manifest,
)
from myapp.k8s.transfer import INPUTS_ENV, OUTPUTS_ENV, InputFetch, OutputUpload
from myapp.k8s.transfer import inputs_env as transfer_inputs_env
from myapp.k8s.transfer import outputs_env as transfer_outputs_env


@dataclass(frozen=True)
class Launch:
    """What to create for one attempt (in order) and what to record before creating it."""

    manifests: list[Manifest]
    record: dict[str, Any]
    pod_names: list[str]
    secret: PodPlan | None = None  # create the attempt's Secret from it once its pods exist (their uids own it)


def local_workdir(cfg: KubeConfig, ctx: AttemptContext) -> Path:
    """Return the attempt's working directory as this process sees it (under its project's directory)."""
    return (
        cfg.workflow_space / project_subpath(ctx.spec.project) / str(ctx.run_id) / ctx.task.name / str(ctx.try_number)
    )


def manifest_policy(cfg: KubeConfig, project: str) -> ManifestPolicy:
    """Return what a resource manifest of `project` may ask of the cluster (myapp/builtins/manifest_policy.py)."""
    return ManifestPolicy(
        namespace=cfg.namespace,
        service_account=cfg.placement_for(project).service_account,
        claim=cfg.workflow_space_pvc,
        subpath=project_subpath(project),
    )


def pod_path(cfg: KubeConfig, local: Path) -> str:
    """Return where a path under the local workflow space is seen inside pods."""
    relative = local.relative_to(cfg.workflow_space)
    return str(PurePosixPath(cfg.workflow_space_mount) / relative.as_posix())


def prepare_launch(
    ctx: AttemptContext, cfg: KubeConfig, catalog: TemplateCatalog, artifacts: ArtifactRepository
) -> Launch:
    """Render the attempt into manifests; MyappError (naming task and field) when it cannot be."""
    template = catalog.get(ctx.task.template) if ctx.task.template else None
    if ctx.task.template and template is None:
        raise MyappError(f"task {ctx.task.name!r}: template {ctx.task.template!r} is not registered")
    _check_claims(ctx, cfg)
    task, template = apply_workspaces(ctx.task, template, {b.name: mount_path(b) for b in ctx.task.workspaces})
    remote = _pod_transfer_repository(ctx, cfg, artifacts)
    rctx, values, shown, fetches = _render_inputs(ctx, cfg, artifacts, remote)
    secret_params = {p.name for p in ctx.spec.parameters if p.secret}
    seqpod: tuple[tuple[tuple[str, str, tuple[str, ...]], ...], tuple[str, ...]] = ((), ())
    if template is not None and template.kind == "seqpod":  # docs/templates.md §9
        rendered, seqpod = _seqpod_rendered(task, template, rctx, values, secret_params)
    else:
        rendered = render_task(task, template, rctx, values, secret_params)
    kind = template.kind if template and template.kind != "seqpod" else "pod"  # a SeqPod is one pod
    secrets = {p.name for p in template.parameters if p.type == "secret"} if template else set()
    secrets |= rendered.secret_env
    shown = {k: {**v, "value": MASK} if k in secrets else v for k, v in shown.items()}
    plan = _plan(ctx, cfg, template, rendered)
    plan = replace(
        plan,
        secret_env=tuple(sorted(rendered.secret_env)),
        secret_name=f"{plan.name}-secret",
        init_steps=seqpod[0],
        steps=seqpod[1],
    )
    uploads: dict[str, list[str]] = {}
    if remote is not None:
        plan, uploads = _with_transfer(ctx, cfg, remote, plan, rendered, fetches)
    record: dict[str, Any] = {
        "kind": kind,
        "namespace": cfg.namespace,
        "timeout": ctx.task.timeout,
        "inputs": shown,
        "workdir": str(local_workdir(cfg, ctx)),
        "pod_workdir": plan.workdir,
        "image": plan.image,
        "outputs": [{"name": o.name, "path": o.path, "type": o.type} for o in rendered.outputs],
        "resources": {"cpu": plan.resources.cpu, "memory": plan.resources.memory, "gpu": plan.resources.gpu},
        **({"transfer": "pod", "uploads": uploads} if remote is not None else {}),
    }
    if kind == "resource" and template is not None:
        return _resource_launch(ctx, template, rctx, values, plan, record, manifest_policy(cfg, ctx.spec.project))
    if not rendered.image:
        raise MyappError(f"task {ctx.task.name!r}: no image: set `image` or use a template that has one")
    if kind == "distributed" and template is not None:
        if plan.transfer_image:
            raise MyappError(
                f"task {task.name!r}: file inputs or outputs of a distributed template need the shared "
                "workflow space (k8s_artifact_transfer: watcher)"
            )
        return _distributed_launch(ctx, template, rctx, values, plan, record)
    return Launch([pod_manifest(plan)], {**record, "pods": [plan.name], "secret": plan.secret_name}, [plan.name], plan)


def _seqpod_rendered(
    task: TaskSpec, template: TemplateSpec, rctx: RenderContext, values: dict[str, str], secret_params: set[str]
) -> tuple[RenderedTask, tuple[tuple[tuple[str, str, tuple[str, ...]], ...], tuple[str, ...]]]:
    """Return the main container's task and the SeqPod's init containers and step names.

    Steps all of one image (the task's `image`, else the template's) run in one container under
    the `sh` runner. When a step has an image of its own, every step runs in a container of its
    image, each under the runner (its lines labelled, its failure in its termination message):
    the steps before the last as init containers `step-NAME`, in order, and the last as `main`,
    which hands the outputs over. They share the working directory in the workflow space.
    """
    steps, rendered = render_steps(task, template, rctx, values, secret_params)
    default = render_text(task.image or template.image, rctx, values, task=task.name, field="image")
    images = [s.image or default for s in parse_steps(template)]
    names = tuple(name for name, _ in steps)
    if len(set(images)) <= 1:
        return replace(rendered, argv=sh_runner_argv(steps), image=images[0]), ((), names)
    for (name, _), image in zip(steps, images, strict=True):
        if not image:
            raise MyappError(
                f"task {task.name!r}: step {name!r}: no image: set the step's, the task's or the template's"
            )
    init = tuple(
        (f"{STEP_CONTAINER_PREFIX}{name}", image, sh_runner_argv([(name, argv)]))
        for (name, argv), image in zip(steps[:-1], images[:-1], strict=True)
    )
    return replace(rendered, argv=sh_runner_argv(steps[-1:]), image=images[-1]), (init, names)


def workspace_claim_prefix(project: str) -> str:
    """Return how the PVC names a project's tasks may mount as workspaces begin (`PROJECT-`)."""
    return (re.sub(r"[^a-z0-9-]+", "-", project.lower()).strip("-") or "default") + "-"


def workspace_claim_problems(task: TaskSpec, project: str, workflow_space_pvc: str) -> list[tuple[str, str]]:
    """Return (workspace name, what is wrong) for each claim `task` may not mount (docs/security.md §10)."""
    prefix = workspace_claim_prefix(project)
    out: list[tuple[str, str]] = []
    for b in task.workspaces:
        if not b.claim:
            out.append((b.name, "a workspace needs a PersistentVolumeClaim on the Kubernetes executor"))
        elif b.claim == workflow_space_pvc or not b.claim.startswith(prefix):
            out.append((b.name, f"{b.claim!r} is not one of the project's claims (named {prefix}...)"))
    return out


def _check_claims(ctx: AttemptContext, cfg: KubeConfig) -> None:
    """Refuse a workspace without a claim, or with a claim that is not the project's (docs/security.md §10)."""
    for name, problem in workspace_claim_problems(ctx.task, ctx.spec.project, cfg.workflow_space_pvc)[:1]:
        raise MyappError(f"task {ctx.task.name!r}: workspaces.{name}.claim: {problem}")


def _pod_transfer_repository(
    ctx: AttemptContext, cfg: KubeConfig, artifacts: ArtifactRepository
) -> RemoteArtifacts | None:
    """Return the repository pods move their own files with (`k8s_artifact_transfer: pod`), else None."""
    if cfg.artifact_transfer != "pod":
        return None
    if not isinstance(artifacts, RemoteArtifacts):
        raise MyappError(
            f"task {ctx.task.name!r}: k8s_artifact_transfer is pod, which needs an s3:// artifact_repository"
        )
    return artifacts


def _url_seconds(ctx: AttemptContext, cfg: KubeConfig) -> int:
    """Return how long an attempt's presigned URLs last: its timeout (else a day) plus the start-up wait."""
    return int(min(7 * 86400, (ctx.task.timeout or 86400) + cfg.pod_rules.startup_timeout + 3600))


def _render_inputs(
    ctx: AttemptContext, cfg: KubeConfig, artifacts: ArtifactRepository, remote: RemoteArtifacts | None
) -> tuple[RenderContext, dict[str, str], dict[str, Any], list[InputFetch]]:
    rctx = RenderContext(
        creator=ctx.creator,
        runner=ctx.runner,
        pipeline_id=ctx.pipeline_id,
        pipeline_name=ctx.pipeline_name,
        run_id=ctx.run_id,
        task_name=ctx.task.name,
        cluster_name=cfg.cluster_name,
        execution_date=ctx.execution_date,
        params={},
    )
    params = render_global_params(ctx.spec.parameters, ctx.params, rctx)
    rctx = replace(rctx, params=params)
    resolved = resolve_inputs(ctx.task, ctx.upstream_outputs, params, ctx.debug_inputs)
    workdir = local_workdir(cfg, ctx)
    workdir.mkdir(parents=True, exist_ok=True)
    values: dict[str, str] = {}
    fetches: list[InputFetch] = []
    for name, val in resolved.items():
        if remote is not None:  # the pod fetches its file inputs itself (myapp/k8s/transfer.py)

            def in_pod(location: str, dest: PurePath, name: str = name) -> str:
                fetch = _input_fetch(ctx, cfg, remote, name, location, pod_path(cfg, Path(dest)))
                fetches.append(fetch)
                return f"{fetch.directory}/{fetch.name}"

            values[name] = local_value(val, workdir / "inputs" / name, in_pod)
            continue
        # File inputs are fetched per consumer into the workflow space (R11) and named as pods see them.
        values[name] = local_value(
            val, workdir / "inputs" / name, lambda a, d: pod_path(cfg, artifacts.fetch(a, Path(d)))
        )
    # A file input also keeps its artifact's location: a retried or copied debug run fetches it again.
    shown = {
        k: {
            "type": v.kind,
            "value": values[k],
            **({"path": v.value} if v.kind == "file" else {}),
            **({"paths": json.loads(v.value)} if v.kind == "files" else {}),
        }
        for k, v in resolved.items()
    }
    return rctx, values, shown, fetches


def _input_fetch(
    ctx: AttemptContext, cfg: KubeConfig, remote: RemoteArtifacts, name: str, location: str, directory: str
) -> InputFetch:
    if not location.startswith(remote.url + "/") or "/../" in location:
        raise MyappError(
            f"task {ctx.task.name!r}: input {name!r}: {location} is not in the artifact repository "
            f"{remote.url}, so its pod cannot fetch it (k8s_artifact_transfer: pod)"
        )
    url = remote.presign(remote.object_path(location), "GET", _url_seconds(ctx, cfg))
    return InputFetch(directory, PurePosixPath(location.rstrip("/")).name, url, location.endswith("/"))


def _with_transfer(
    ctx: AttemptContext,
    cfg: KubeConfig,
    remote: RemoteArtifacts,
    plan: PodPlan,
    rendered: RenderedTask,
    fetches: list[InputFetch],
) -> tuple[PodPlan, dict[str, list[str]]]:
    """Return the plan of a pod moving its own files: no shared volume (an emptyDir), the fetch-inputs
    init container and the upload-outputs container with URLs signed for this attempt's keys only,
    kept in the attempt's Secret; and each file output's two possible locations (file, directory)."""
    seconds = _url_seconds(ctx, cfg)
    uploads: list[OutputUpload] = []
    locations: dict[str, list[str]] = {}
    for out in rendered.outputs:
        if out.type == "text":  # a `files` output is uploaded as its directory, split by the watcher
            continue
        problem = output_path_problem(out.path, cfg.output_roots)
        if problem:
            raise MyappError(f"task {ctx.task.name!r}: output {out.name!r}: {problem}")
        name = PurePosixPath(out.path).name
        base = f"{remote.root}/{artifact_key(ctx.run_id, ctx.task.name, ctx.try_number, out.name)}/{name}"
        relative = not PurePosixPath(out.path).is_absolute()
        source = f"{plan.workdir}/{out.path}" if relative else f"{plan.workdir}/{KEEP_DIR}/{out.name}/{name}"
        uploads.append(
            OutputUpload(
                out.name,
                source,
                remote.presign(base, "PUT", seconds),
                remote.presign(f"{base}/{DIR_ARCHIVE}", "PUT", seconds),
            )
        )
        locations[out.name] = [f"{remote.protocol}://{base}", f"{remote.protocol}://{base}/"]
    env = dict(plan.env)
    secret = set(plan.secret_env)
    if fetches:
        env[INPUTS_ENV] = transfer_inputs_env(fetches)
        secret.add(INPUTS_ENV)
    if uploads:
        env[OUTPUTS_ENV] = transfer_outputs_env(uploads)
        secret.add(OUTPUTS_ENV)
    plan = replace(
        plan, env=env, secret_env=tuple(sorted(secret)), pvc="", transfer_image=cfg.transfer_image or plan.image
    )
    return plan, locations


def _plan(ctx: AttemptContext, cfg: KubeConfig, template: TemplateSpec | None, rendered: RenderedTask) -> PodPlan:
    placement = cfg.placement_for(ctx.spec.project)
    try:
        resources = resolve_resources(
            ctx.task.resources,
            template.resources if template else None,
            placement.resources,
            cfg.packages,
            monitoring=bool(template and template.monitoring),
        )
    except KeyError as exc:
        raise MyappError(f"task {ctx.task.name!r}: resources.package: {exc.args[0]}") from None
    workdir = pod_path(cfg, local_workdir(cfg, ctx))
    env = {
        **rendered.env,
        "MYAPP_RUN_ID": str(ctx.run_id),
        "MYAPP_USER_ID": str(ctx.user_id or ""),
        "MYAPP_TOKEN": ctx.token,
        "MYAPP_TASK_NAME": ctx.task.name,
        "MYAPP_TRY_NUMBER": str(ctx.try_number),
        "MYAPP_PIPELINE_ID": str(ctx.pipeline_id),
        "MYAPP_ATTEMPT_ID": str(ctx.attempt_id),
    }
    ref = AttemptRef(
        ctx.pipeline_id, ctx.run_id, ctx.task.name, ctx.try_number, ctx.attempt_id, cfg.group, cfg.installation
    )
    return PodPlan(
        ref=ref,
        namespace=cfg.namespace,
        name=attempt_name(cfg.pod_prefix, ctx.run_id, ctx.task.name, ctx.try_number),
        image=rendered.image,
        argv=rendered.argv,
        env=env,
        workdir=workdir,
        outputs=rendered.outputs,
        resources=resources,
        placement=placement,
        timeout=ctx.task.timeout,
        mount=cfg.workflow_space_mount,
        pvc=cfg.workflow_space_pvc,
        gpu_resource=cfg.gpu_resource,
        subpath=project_subpath(ctx.spec.project),
        workspaces=tuple((b.name, b.claim, mount_path(b)) for b in ctx.task.workspaces),
    )


def _distributed_launch(
    ctx: AttemptContext,
    template: TemplateSpec,
    rctx: RenderContext,
    values: dict[str, str],
    plan: PodPlan,
    record: dict[str, Any],
) -> Launch:
    try:
        settings = rendezvous_settings(template, template_values(ctx.task, template, rctx, values))
    except SpecError as exc:
        raise MyappError(f"task {ctx.task.name!r}: {exc}") from None
    addresses = rank_addresses(plan, settings.workers)
    envs = [rank_env(settings, rank, addresses) for rank in range(settings.workers)]
    service, pods = distributed_manifests(plan, settings.master_port, envs)
    names = [str(p["metadata"]["name"]) for p in pods]
    return Launch(
        [service, *pods],
        {
            **record,
            "pods": names,
            "service": plan.name,
            "secret": plan.secret_name,
            "world_size": settings.workers,
            "master_port": settings.master_port,
        },
        names,
        plan,
    )


def _resource_launch(
    ctx: AttemptContext,
    template: TemplateSpec,
    rctx: RenderContext,
    values: dict[str, str],
    plan: PodPlan,
    record: dict[str, Any],
    policy: ManifestPolicy,
) -> Launch:
    resource = render_resource(ctx.task, template, rctx, values, policy)
    manifest = resource_manifest(resource.manifest, plan)
    meta = manifest["metadata"]
    if not meta.get("name"):  # generateName would create a new object on every retry of the create
        meta["name"] = f"{meta.pop('generateName')}{ctx.attempt_id}"
    ref = {
        "apiVersion": manifest["apiVersion"],
        "kind": manifest["kind"],
        "name": meta["name"],
        "namespace": meta.get("namespace", ""),
    }
    conditions = {
        name: [[r.path, r.operator, r.value] for r in reqs]
        for name, reqs in (("success", resource.success), ("failure", resource.failure))
    }
    return Launch(
        [manifest], {**record, "pods": [], "resource": ref, **conditions, "resource_timeout": resource.timeout}, []
    )
