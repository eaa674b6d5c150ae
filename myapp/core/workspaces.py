"""Workspaces: named volumes a task mounts, referred to as `$(workspaces.NAME.path)`. Pure.

A task binds `workspaces: {NAME: {claim: PVC, path: /mnt/x}}` (`claim` is required on Kubernetes;
`path` defaults to /workspaces/NAME). Commands, args, env (the task's and its template's, a
SeqPod's steps included) may say `$(workspaces.NAME.path)`; it is replaced by where the workspace
is seen (the mount path in a pod, the project's workspace directory locally) before the task is
rendered, so values that arrive as inputs are never scanned for it. A reference to a workspace the
task does not bind is refused when the pipeline is validated, naming the task and field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import replace

from myapp.core.errors import SpecError
from myapp.core.model import TaskSpec, TemplateSpec, WorkspaceBinding
from myapp.core.spec_fields import check_keys, read_mapping, read_str

NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
REF = re.compile(r"\$\(workspaces\.([^.)]*)\.path\)")
KEYS = ("claim", "path")
DEFAULT_ROOT = "/workspaces"


def parse_workspaces(raw: object, path: str) -> tuple[WorkspaceBinding, ...]:
    """Return the task's workspace bindings; SpecError names the field (`tasks[0].workspaces.data.path`)."""
    if raw is None:
        return ()
    out = []
    for name, value in read_mapping(raw, f"{path}.workspaces").items():
        where = f"{path}.workspaces.{name}"
        if not NAME.fullmatch(name):
            raise SpecError(where, "a workspace name is 1-63 characters of a-z, 0-9 and - (not at the ends)")
        data = read_mapping(value or {}, where)
        check_keys(data, KEYS, where)
        mount = read_str(data, "path", where)
        if mount and (not mount.startswith("/") or ".." in mount.split("/") or mount == "/"):
            raise SpecError(f"{where}.path", "must be an absolute path without '..' (not /)")
        out.append(WorkspaceBinding(name, read_str(data, "claim", where), mount))
    return tuple(out)


def workspaces_to_dict(bindings: tuple[WorkspaceBinding, ...]) -> dict[str, object]:
    """Return the plain-dict form of the bindings (empty fields omitted)."""
    return {b.name: {k: v for k, v in (("claim", b.claim), ("path", b.path)) if v} for b in bindings}


def mount_path(binding: WorkspaceBinding) -> str:
    """Return where `binding` is mounted in a pod."""
    return binding.path or f"{DEFAULT_ROOT}/{binding.name}"


def _texts(task: TaskSpec, template: TemplateSpec | None) -> Iterator[tuple[str, str]]:
    """Yield (field, text) for every text that may refer to a workspace."""
    yield from ((f"command[{i}]", el) for i, el in enumerate(task.command))
    yield from ((f"args.{k}", v) for k, v in task.args.items() if isinstance(v, str))
    yield from ((f"env.{k}", v) for k, v in task.env.items())
    if template is None:
        return
    yield from ((f"template.command[{i}]", el) for i, el in enumerate(template.command))
    yield from ((f"template.env.{k}", v) for k, v in template.env.items())
    steps = template.extra.get("steps") if template.kind == "seqpod" else None
    for i, step in enumerate(steps if isinstance(steps, list) else []):
        if isinstance(step, Mapping):
            command = step.get("command")
            yield from (
                (f"template.extra.steps[{i}].command[{j}]", el)
                for j, el in enumerate(command if isinstance(command, list) else [])
                if isinstance(el, str)
            )
            if isinstance(step.get("script"), str):
                yield f"template.extra.steps[{i}].script", str(step["script"])


def workspace_errors(task: TaskSpec, template: TemplateSpec | None, where: str) -> list[SpecError]:
    """Return every duplicate binding and every reference to a workspace `task` does not bind."""
    names = [b.name for b in task.workspaces]
    errors = [SpecError(f"{where}.workspaces.{n}", "bound twice") for i, n in enumerate(names) if n in names[:i]]
    for field, text in _texts(task, template):
        errors += [
            SpecError(f"{where}.{field}", f"unknown workspace {ref!r} (the task binds: {', '.join(names) or 'none'})")
            for ref in REF.findall(text)
            if ref not in names
        ]
    return errors


def expand(text: str, paths: Mapping[str, str]) -> str:
    """Return `text` with every `$(workspaces.NAME.path)` of `paths` replaced (others left as they are)."""
    return REF.sub(lambda m: paths.get(m.group(1), m.group(0)), text)


def apply_workspaces(
    task: TaskSpec,
    template: TemplateSpec | None,
    paths: Mapping[str, str],
) -> tuple[TaskSpec, TemplateSpec | None]:
    """Return `task` and `template` with the workspace references replaced by `paths` (NAME -> path)."""
    if not paths:
        return task, template
    task = replace(
        task,
        command=tuple(expand(el, paths) for el in task.command),
        args={k: expand(v, paths) if isinstance(v, str) else v for k, v in task.args.items()},
        env={k: expand(v, paths) for k, v in task.env.items()},
    )
    if template is None:
        return task, None
    extra = dict(template.extra)
    steps = extra.get("steps")
    if template.kind == "seqpod" and isinstance(steps, list):
        extra["steps"] = [_expand_step(step, paths) for step in steps]
    return task, replace(
        template,
        command=tuple(expand(el, paths) for el in template.command),
        env={k: expand(v, paths) for k, v in template.env.items()},
        extra=extra,
    )


def _expand_step(step: object, paths: Mapping[str, str]) -> object:
    if not isinstance(step, Mapping):
        return step
    out = dict(step)
    if isinstance(out.get("command"), list):
        out["command"] = [expand(el, paths) if isinstance(el, str) else el for el in out["command"]]
    if isinstance(out.get("script"), str):
        out["script"] = expand(out["script"], paths)
    return out
