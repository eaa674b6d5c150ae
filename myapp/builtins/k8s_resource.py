"""The `k8s-resource` template and every `kind: resource` template: render the manifest as pure data.

A manifest comes from the template (`extra.manifest`, as YAML text or a mapping; user templates
in the style of a Resource WorkflowTemplate) or from the task's `manifest` argument (the built-in
`k8s-resource`). It is parsed first and rendered string by string, so no value can change its
structure: Jinja (the sandbox of docs/rules.md P2), then `$(params.NAME)`, where NAME is a declared
parameter of the template or a key of the `params` JSON argument. A string that is exactly
`$(params.NAME)` takes the value's type (`replicas: $(params.workers)` gives an integer).
The Kubernetes executor creates the object and watches `success_condition`/`failure_condition`.
Running this module as a process only explains that (the local executor cannot apply manifests).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from myapp.builtins.conditions import Requirement, parse_condition
from myapp.builtins.manifest_policy import ManifestPolicy, manifest_problems
from myapp.builtins.values import template_values
from myapp.core.argv import PARAM_REF
from myapp.core.errors import RenderError, SpecError
from myapp.core.model import ParamDef, TaskSpec, TemplateSpec
from myapp.core.render import RenderContext, render_text
from myapp.yaml_io import load_yaml

MANIFEST, PARAMS = "manifest", "params"
CONDITIONS = ("success_condition", "failure_condition")
SETTINGS = (MANIFEST, PARAMS, *CONDITIONS, "timeout")
TYPED = frozenset({"integer", "number", "boolean", "json"})


@dataclass(frozen=True)
class ResourcePlan:
    """What the Kubernetes executor does for one attempt: create `manifest`, watch the conditions."""

    manifest: dict[str, object]
    success: tuple[Requirement, ...]
    failure: tuple[Requirement, ...]
    timeout: int


def check_task_manifest(task: TaskSpec, template: TemplateSpec | None, policy: ManifestPolicy) -> list[SpecError]:
    """Return what the task's literal manifest (args.manifest or the template's) may not ask for, on save."""
    if template is None or template.kind != "resource":
        return []
    try:
        source, field = _manifest_source(task, template, {})
        data = _parse_manifest(source, task.name, field)
    except (RenderError, KeyError):
        return []  # no literal manifest here (an input, or broken: reported elsewhere)
    return [
        SpecError(f"tasks[{task.name}].{name.replace('manifest', field, 1)}", message)
        for name, message in manifest_problems(data, policy)
    ]


def render_resource(
    task: TaskSpec,
    template: TemplateSpec,
    ctx: RenderContext,
    inputs: Mapping[str, str],
    policy: ManifestPolicy | None = None,
) -> ResourcePlan:
    """Return the rendered manifest and conditions of one attempt; RenderError names task and field."""
    values = template_values(task, template, ctx, inputs, exclude=(MANIFEST,))
    source, field = _manifest_source(task, template, inputs)
    data = _parse_manifest(source, task.name, field)
    substitutions = _substitutions(template, values, task.name)
    substitutions.update(_authored_params(task, ctx, inputs))
    manifest = _render_node(data, ctx, inputs, substitutions, task.name, field)
    problem = manifest_problem(manifest)
    if problem or not isinstance(manifest, dict):
        raise RenderError(task.name, field, problem)
    refused = manifest_problems(manifest, policy or ManifestPolicy())  # Jinja may have produced any of them
    if refused:
        name, message = refused[0]
        raise RenderError(task.name, name.replace("manifest", field, 1), message)
    conditions = [_condition(template, values, name, task.name) for name in CONDITIONS]
    return ResourcePlan(manifest, conditions[0], conditions[1], _timeout(template, values, task.name))


def check_resource_template(template: TemplateSpec) -> list[SpecError]:
    """Return what is wrong with a `kind: resource` template (manifest, references, conditions)."""
    declared = {p.name for p in template.parameters}
    raw = template.extra.get(MANIFEST)
    if raw is None:
        return (
            []
            if MANIFEST in declared
            else [SpecError("extra.manifest", "a resource template needs extra.manifest or a `manifest` parameter")]
        )
    try:
        data = _parse_manifest(raw, "", "extra.manifest")
    except RenderError as exc:
        return [SpecError("extra.manifest", str(exc.args[0]).split(": ", 1)[-1])]
    errors = [SpecError("extra.manifest", problem) for problem in [manifest_problem(data)] if problem]
    errors += [
        SpecError(field.replace("manifest", "extra.manifest", 1), message)
        for field, message in manifest_problems(data, ManifestPolicy())
    ]
    if PARAMS not in declared:
        errors += [
            SpecError("extra.manifest", f"unknown parameter {name!r} in $(params.{name})")
            for name in sorted(_references(data))
            if name not in declared
        ]
    for name in CONDITIONS:
        if isinstance(template.extra.get(name), str):
            try:
                parse_condition(str(template.extra[name]))
            except ValueError as exc:
                errors.append(SpecError(f"extra.{name}", str(exc)))
    return errors


def manifest_problem(data: object) -> str:
    """Return why `data` is not one Kubernetes object, or "" when it is."""
    if not isinstance(data, Mapping):
        return "the manifest must be one mapping (a Kubernetes object)"
    missing = [key for key in ("apiVersion", "kind") if not isinstance(data.get(key), str) or not data.get(key)]
    if missing:
        return f"the manifest needs {' and '.join(missing)}"
    metadata = data.get("metadata")
    if not isinstance(metadata, Mapping) or not (metadata.get("name") or metadata.get("generateName")):
        return "the manifest needs metadata.name or metadata.generateName"
    return ""


def _manifest_source(task: TaskSpec, template: TemplateSpec, inputs: Mapping[str, str]) -> tuple[object, str]:
    if MANIFEST in task.args:
        return task.args[MANIFEST], f"args.{MANIFEST}"
    if any(b.name == MANIFEST for b in task.inputs):
        return inputs[MANIFEST], f"inputs.{MANIFEST}"
    if MANIFEST in template.extra:
        return template.extra[MANIFEST], "template.extra.manifest"
    declared = template.param(MANIFEST)
    if declared is not None and declared.default is not None:
        return declared.default, f"args.{MANIFEST}"
    raise RenderError(task.name, f"args.{MANIFEST}", f"{template.ref} has no manifest")


def _parse_manifest(source: object, task: str, field: str) -> object:
    if isinstance(source, Mapping):
        return json.loads(json.dumps(source))  # a deep copy of plain JSON data
    if not isinstance(source, str):
        raise RenderError(task, field, "the manifest must be YAML text or a mapping")
    try:
        return load_yaml(source)
    except SpecError as exc:
        raise RenderError(task, field, exc.message) from None


def _substitutions(template: TemplateSpec, values: Mapping[str, str], task: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, text in values.items():
        if name not in SETTINGS:
            out[name] = _typed(template.param(name), text)
    if PARAMS in values:
        extra = json.loads(values[PARAMS])
        if not isinstance(extra, dict):
            raise RenderError(task, f"args.{PARAMS}", "must be a JSON object of NAME: value")
        out.update(extra)
    return out


def _authored_params(task: TaskSpec, ctx: RenderContext, inputs: Mapping[str, str]) -> dict[str, object]:
    # `params` written as a mapping in the pipeline: its strings are authored text, so Jinja is
    # rendered in them (values that arrive as inputs are data and never are).
    raw = task.args.get(PARAMS)
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): _render_jinja(v, ctx, inputs, task.name, f"args.{PARAMS}.{k}") for k, v in raw.items()}


def _render_jinja(node: object, ctx: RenderContext, inputs: Mapping[str, str], task: str, field: str) -> object:
    if isinstance(node, dict):
        return {str(k): _render_jinja(v, ctx, inputs, task, f"{field}.{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [_render_jinja(v, ctx, inputs, task, f"{field}[{i}]") for i, v in enumerate(node)]
    return render_text(node, ctx, inputs, task=task, field=field) if isinstance(node, str) else node


def _typed(defn: ParamDef | None, text: str) -> object:
    if defn is None or defn.type not in TYPED:
        return text
    return json.loads(text)  # canonical integer/number/boolean/json text is JSON


def _render_node(
    node: object, ctx: RenderContext, inputs: Mapping[str, str], subs: Mapping[str, object], task: str, field: str
) -> object:
    if isinstance(node, dict):
        return {str(k): _render_node(v, ctx, inputs, subs, task, f"{field}.{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [_render_node(v, ctx, inputs, subs, task, f"{field}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node
    text = render_text(node, ctx, inputs, task=task, field=field)
    whole = PARAM_REF.fullmatch(text)
    if whole is not None:
        return _lookup(subs, whole.group(1), task, field)
    return PARAM_REF.sub(lambda m: _as_text(_lookup(subs, m.group(1), task, field)), text)


def _lookup(subs: Mapping[str, object], name: str, task: str, field: str) -> object:
    if name not in subs:
        raise RenderError(task, field, f"$(params.{name}) has no value; declared: {', '.join(sorted(subs)) or 'none'}")
    return subs[name]


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _references(node: object) -> set[str]:
    if isinstance(node, dict):
        return set().union(*(_references(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_references(v) for v in node)) if node else set()
    return set(PARAM_REF.findall(node)) if isinstance(node, str) else set()


def _condition(template: TemplateSpec, values: Mapping[str, str], name: str, task: str) -> tuple[Requirement, ...]:
    text = values.get(name, str(template.extra.get(name, "") or ""))
    try:
        return parse_condition(text)
    except ValueError as exc:
        raise RenderError(task, f"args.{name}", str(exc)) from None


def _timeout(template: TemplateSpec, values: Mapping[str, str], task: str) -> int:
    raw = values.get("timeout", template.extra.get("timeout", 0))
    try:
        return max(int(str(raw)), 0)
    except ValueError:
        raise RenderError(task, "args.timeout", f"{raw!r} is not a number of seconds") from None


def main() -> int:
    """Explain, when run as a local process, that a resource task needs the Kubernetes executor."""
    print(
        "myapp: a k8s-resource task creates a Kubernetes object; run it with the kubernetes executor "
        "(MYAPP_EXECUTOR=kubernetes). The local executor cannot apply manifests.",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
