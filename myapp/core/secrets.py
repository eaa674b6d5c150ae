"""Where a pipeline holds secrets, and one way to map them all (mask for viewers, seal at rest; B6).

Secrets of a pipeline: the defaults of global parameters marked `secret: true`, the values given to
a template's `secret` parameters (task `args`, and literal `inputs` bound to them), and a run's
values of secret global parameters. Everything else is plain.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from myapp.core.model import PipelineSpec, TemplateSpec

TemplateLookup = Callable[[str], "TemplateSpec | None"]


def secret_params(template: TemplateSpec | None) -> set[str]:
    """Return the names of a template's secret parameters."""
    return {p.name for p in template.parameters if p.type == "secret"} if template else set()


def map_pipeline_secrets(data: Mapping[str, Any], templates: TemplateLookup,
                         fn: Callable[[str], str]) -> dict[str, Any]:
    """Return a copy of a pipeline's dict form (pipeline_to_dict) with `fn` applied to every secret value."""
    out: dict[str, Any] = copy.deepcopy(dict(data))
    for param in out.get("parameters") or []:
        if isinstance(param, dict) and param.get("secret") and isinstance(param.get("default"), str):
            param["default"] = fn(param["default"])
    for task in out.get("tasks") or []:
        if not isinstance(task, dict) or not task.get("template"):
            continue
        secrets = secret_params(templates(str(task["template"])))
        for name, value in (task.get("args") or {}).items():
            if name in secrets and isinstance(value, str):
                task["args"][name] = fn(value)
        for name, binding in (task.get("inputs") or {}).items():
            if name in secrets and isinstance(binding, dict) and isinstance(binding.get("value"), str):
                binding["value"] = fn(binding["value"])
            elif name in secrets and isinstance(binding, str):
                task["inputs"][name] = fn(binding)
    return out


def map_run_params(params: Mapping[str, Any], spec: PipelineSpec, fn: Callable[[str], str]) -> dict[str, Any]:
    """Return a run's parameter values with `fn` applied to those of secret global parameters."""
    secret = {p.name for p in spec.parameters if p.secret}
    return {k: fn(v) if k in secret and isinstance(v, str) else v for k, v in params.items()}
