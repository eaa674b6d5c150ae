"""Where a pipeline holds secrets, and one way to map them all (mask for viewers, seal at rest; B6).

Secrets of a pipeline: the defaults of global parameters marked `secret: true`, the values given to
a template's `secret` parameters (task `args`, and literal `inputs` bound to them), and a run's
values of secret global parameters. Everything else is plain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from myapp.core.model import PipelineSpec, TemplateSpec

TemplateLookup = Callable[[str], "TemplateSpec | None"]


def secret_params(template: TemplateSpec | None) -> set[str]:
    """Return the names of a template's secret parameters."""
    return {p.name for p in template.parameters if p.type == "secret"} if template else set()


def map_pipeline_secrets(
    data: Mapping[str, Any], templates: TemplateLookup, fn: Callable[[str], str]
) -> dict[str, Any]:
    """Return a copy of a pipeline's dict form (pipeline_to_dict) with `fn` applied to every secret value.

    Only what holds a secret is copied (the rest is shared with `data`, which stays unchanged): a
    deep copy of a 10,000-task definition took 0.2 s of a save (issue 13 B15).
    """
    out: dict[str, Any] = dict(data)
    if isinstance(out.get("parameters"), list):
        out["parameters"] = [
            {**p, "default": fn(p["default"])}
            if isinstance(p, dict) and p.get("secret") and isinstance(p.get("default"), str)
            else p
            for p in out["parameters"]
        ]
    if isinstance(out.get("tasks"), list):
        known: dict[str, set[str]] = {}
        out["tasks"] = [_map_task_secrets(task, templates, fn, known) for task in out["tasks"]]
    return out


def _map_task_secrets(
    task: Any, templates: TemplateLookup, fn: Callable[[str], str], known: dict[str, set[str]]
) -> Any:
    """Return `task` itself when it holds no secret, else a copy with `fn` applied to its secrets."""
    if not isinstance(task, dict) or not task.get("template"):
        return task
    ref = str(task["template"])
    if ref not in known:
        known[ref] = secret_params(templates(ref))
    secrets = known[ref]
    args, inputs = task.get("args"), task.get("inputs")
    if not secrets or not (set(args or ()) | set(inputs or ())) & secrets:
        return task
    out = dict(task)
    if isinstance(args, dict):
        out["args"] = {
            name: fn(value) if name in secrets and isinstance(value, str) else value for name, value in args.items()
        }
    if isinstance(inputs, dict):
        out["inputs"] = {
            name: _map_binding(binding, fn) if name in secrets else binding for name, binding in inputs.items()
        }
    return out


def _map_binding(binding: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(binding, dict) and isinstance(binding.get("value"), str):
        return {**binding, "value": fn(binding["value"])}
    return fn(binding) if isinstance(binding, str) else binding


def map_run_params(params: Mapping[str, Any], spec: PipelineSpec, fn: Callable[[str], str]) -> dict[str, Any]:
    """Return a run's parameter values with `fn` applied to those of secret global parameters."""
    secret = {p.name for p in spec.parameters if p.secret}
    return {k: fn(v) if k in secret and isinstance(v, str) else v for k, v in params.items()}
