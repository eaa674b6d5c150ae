"""The parameter values of one template task, coerced and rendered as the executor would pass them.

Built on `render_task` itself (the template seen with no command and `args_style: env`, so every
parameter with a value comes back once, in its canonical text), so the Kubernetes builders and the
local executor can never disagree about a value. Pure; imports myapp.core only.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace

from myapp.core.model import TaskSpec, TemplateSpec
from myapp.core.params import coerce_value
from myapp.core.render import RenderContext, render_task


def template_values(
    task: TaskSpec,
    template: TemplateSpec,
    ctx: RenderContext,
    inputs: Mapping[str, str],
    *,
    exclude: Collection[str] = (),
) -> dict[str, str]:
    """Return NAME -> canonical text of every parameter that has a value (RenderError names the field)."""
    params = tuple(p for p in template.parameters if p.name not in exclude)
    bare = replace(template, command=(), env={}, args_style="env", parameters=params)
    args = {k: v for k, v in task.args.items() if k not in exclude}
    bindings = tuple(b for b in task.inputs if b.name not in exclude)
    rendered = render_task(replace(task, env={}, args=args, inputs=bindings), bare, ctx, inputs)
    return {p.name: coerce_value(p, rendered.env[p.name]) for p in params if p.name in rendered.env}
