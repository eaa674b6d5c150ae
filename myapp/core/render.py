"""Run-time rendering of a task into argv, env, image and outputs (docs/rules.md P2).

Order: Jinja first (sandbox.py; args, command elements, env values), then `$(params.NAME)` and
`$name` substitution in one pass, so a value is never evaluated twice. Interpreter code (argv.py,
wherever the interpreter stands in the argv) gets no `$name` splicing and no `inputs` in Jinja:
every input is exported as an environment variable and the interpreter reads it from there; a
template parameter inside shell code becomes `${MYAPP_PARAM_NAME}`, exported likewise. The final
argv is checked again, so a value can never end up as code (`[$prog, -c, $code]`). The scheduler
never calls this; the worker does.
Imports jinja2 (through sandbox.py) and nothing else outside the standard library.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from jinja2.exceptions import SecurityError

from myapp.core.argv import (
    CodeSlot,
    code_slots,
    expand,
    param_env_name,
    param_env_refs,
    param_refs,
    whole_param_ref,
)
from myapp.core.env_policy import loads_code
from myapp.core.errors import RenderError, SpecError
from myapp.core.model import GlobalParam, OutputSpec, ParamDef, TaskSpec, TemplateSpec
from myapp.core.params import coerce_value
from myapp.core.sandbox import DATETIME, UUID, RenderCancelled, render_bounded
from myapp.core.validate import effective_outputs

CODE_HINT = "inputs are not spliced into code: read them from the environment ($NAME, os.environ['NAME'])"


@dataclass(frozen=True)
class RenderContext:
    """The documented Jinja variables of one task of one run (besides params and inputs)."""

    creator: str
    runner: str
    pipeline_id: int
    pipeline_name: str
    run_id: int
    task_name: str
    cluster_name: str
    execution_date: str
    params: Mapping[str, str]


@dataclass(frozen=True)
class RenderedTask:
    """What an executor starts: argv (never a shell string), env, image and the outputs to collect."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    image: str
    outputs: tuple[OutputSpec, ...]
    secret_env: frozenset[str] = frozenset()  # names of env entries that carry secret values


class _InputsInCode:
    """`inputs` seen from interpreter code: any access explains where inputs are instead."""

    def __getattr__(self, name: str) -> object:
        raise SecurityError(CODE_HINT)


def render_text(
    text: str,
    ctx: RenderContext,
    inputs: Mapping[str, str],
    *,
    task: str,
    field: str,
    code: bool = False,
    extra: Mapping[str, object] | None = None,
) -> str:
    """Render the Jinja in `text`; RenderError(task, field, ...) on any failure, sandbox ones included.

    `extra`: variables besides the documented ones (a condition's `tasks`, conditions.py).
    """
    if "{{" not in text and "{%" not in text and "{#" not in text:
        return text
    try:
        return render_bounded(text, {**_variables(ctx, inputs, code=code), **(extra or {})})
    except RenderCancelled:
        raise
    except Exception as exc:  # user text may raise anything; each becomes a RenderError
        raise RenderError(task, field, f"{type(exc).__name__}: {exc}") from exc


def _variables(ctx: RenderContext, inputs: Mapping[str, str], *, code: bool) -> dict[str, object]:
    return {
        "creator": ctx.creator,
        "runner": ctx.runner,
        "pipeline_id": ctx.pipeline_id,
        "pipeline_name": ctx.pipeline_name,
        "run_id": ctx.run_id,
        "task_name": ctx.task_name,
        "cluster_name": ctx.cluster_name,
        "execution_date": ctx.execution_date,
        "params": dict(ctx.params),
        "inputs": _InputsInCode() if code else {"parameters": dict(inputs)},
        "datetime": DATETIME,
        "uuid": UUID,
    }


def render_global_params(
    params: Sequence[GlobalParam], supplied: Mapping[str, str], ctx: RenderContext
) -> dict[str, str]:
    """Return every global parameter's value: supplied as given, else its rendered default."""
    declared = [p.name for p in params]
    unknown = [name for name in supplied if name not in declared]
    if unknown:
        raise SpecError(f"params.{unknown[0]}", f"unknown parameter; declared: {', '.join(declared) or 'none'}")
    values: dict[str, str] = {}
    for param in params:
        if param.name in supplied:
            values[param.name] = supplied[param.name]
        elif param.default is not None:
            values[param.name] = _render_default(param, replace(ctx, params=dict(values)))
        elif param.required:
            raise SpecError(f"params.{param.name}", "is required and has no default")
        else:
            values[param.name] = ""
    return values


def _render_default(param: GlobalParam, ctx: RenderContext) -> str:
    try:
        return render_text(param.default or "", ctx, {}, task="", field=f"parameters[{param.name}].default")
    except RenderError as exc:
        raise SpecError(f"parameters[{param.name}].default", str(exc.args[0])) from exc


def render_task(
    task: TaskSpec,
    template: TemplateSpec | None,
    ctx: RenderContext,
    inputs: Mapping[str, str],
    secret_params: frozenset[str] | set[str] = frozenset(),
) -> RenderedTask:
    """Return argv, env, image and outputs of one attempt of `task` with these input values.

    `secret_params`: the pipeline's secret global parameters; inputs bound to them are secret too.
    """
    ctx = replace(ctx, task_name=task.name)
    missing = [b.name for b in task.inputs if b.name not in inputs]
    if missing:
        raise RenderError(task.name, f"inputs.{missing[0]}", "has no value")
    env: dict[str, str] = {}
    secret_env: set[str] = set()
    if template is None:
        argv = _custom_argv(task, ctx, inputs)
    else:
        argv, env = _template_argv(task, template, ctx, inputs)
        secrets = {p.name for p in template.parameters if p.type == "secret"}
        secret_env = {name for name in (*env, *inputs) if name in secrets}
        secret_env |= {param_env_name(name) for name in secrets if param_env_name(name) in env}
        env = {**_render_env(template.env, ctx, inputs, task.name, "template.env"), **env}
    secret_env |= {b.name for b in task.inputs if b.source == "param" and b.param in secret_params}
    if secret_env:  # also for pipelines saved before the rule (myapp/core/env_policy.py)
        for name in task.env:
            if loads_code(name):
                raise RenderError(
                    task.name,
                    f"env.{name}",
                    f"can load code into a task that receives secrets ({', '.join(sorted(secret_env))}); refused",
                )
    env.update(_render_env(task.env, ctx, inputs, task.name, "env"))
    env.update(inputs)
    image = render_text(task.image or (template.image if template else ""), ctx, inputs, task=task.name, field="image")
    rendered = RenderedTask(tuple(argv), env, image, effective_outputs(task, template), frozenset(secret_env))
    _check_nul(rendered, task.name)
    return rendered


def _custom_argv(task: TaskSpec, ctx: RenderContext, inputs: Mapping[str, str]) -> list[str]:
    slots = code_slots(task.command)
    rendered = _render_command(task.command, slots, frozenset(), ctx, inputs, task.name, "command")
    argv = [el if i in slots else expand(el, {}, inputs) for i, el in enumerate(rendered)]
    _refuse_values_in_code(task.name, "command", set(slots), rendered, argv)
    return argv


def _render_command(
    command: Sequence[str],
    slots: dict[int, CodeSlot],
    scripts: frozenset[str],
    ctx: RenderContext,
    inputs: Mapping[str, str],
    task: str,
    prefix: str,
) -> list[str]:
    """Render the Jinja of each element; interpreter code without `inputs`. Updates `slots` in place.

    Jinja may itself produce an interpreter's name (`{{ params.shell }} -c ...`): its code is then
    rendered again as code.
    """

    def render(i: int, el: str) -> str:
        code = i in slots or whole_param_ref(el) in scripts
        return render_text(el, ctx, inputs, task=task, field=f"{prefix}[{i}]", code=code)

    rendered = [render(i, el) for i, el in enumerate(command)]
    late = {i: slot for i, slot in code_slots(rendered).items() if i not in slots}
    if late:
        slots.update(late)
        rendered = [render(i, el) if i in late else rendered[i] for i, el in enumerate(command)]
    return rendered


def _refuse_values_in_code(
    task: str, prefix: str, treated_as_code: set[int], before: Sequence[str], after: Sequence[str]
) -> None:
    """Refuse an argv in which substituted text landed where an interpreter runs code."""
    for i in sorted(code_slots(after)):
        if i not in treated_as_code and (i >= len(before) or after[i] != before[i]):
            raise RenderError(
                task,
                f"{prefix}[{i}]",
                f"a value would be run as interpreter code here ({after[i][:40]!r}); {CODE_HINT}",
            )


def _template_argv(
    task: TaskSpec, template: TemplateSpec, ctx: RenderContext, inputs: Mapping[str, str]
) -> tuple[list[str], dict[str, str]]:
    problems = template_command_errors(template)
    if problems:
        raise RenderError(task.name, problems[0].field, problems[0].message)
    values = _param_values(task, template, ctx, inputs)
    spliced = {p.name: "" for p in template.parameters} | values  # an unset optional parameter is ""
    scripts = frozenset(p.name for p in template.parameters if p.script)
    slots = dict(code_slots(template.command))
    rendered = _render_command(template.command, slots, scripts, ctx, inputs, task.name, "template.command")
    argv: list[str] = []
    env: dict[str, str] = {}
    for i, text in enumerate(rendered):
        if whole_param_ref(template.command[i]) in scripts:
            argv.append(expand(text, spliced, inputs, code=True))  # the script is the code
        elif i in slots:
            # Code never receives a value as text: shell code reads `${MYAPP_PARAM_NAME}`.
            refs = param_refs(text)
            env.update({param_env_name(name): spliced.get(name, "") for name in refs})
            argv.append(expand(text, param_env_refs(refs) if slots[i].is_shell else {}, inputs, code=True))
        else:
            argv.append(expand(text, spliced, inputs))
    used = {name for el in template.command for name in param_refs(el)}
    rest = {name: value for name, value in values.items() if name not in used}
    if template.args_style == "env":
        _refuse_values_in_code(task.name, "template.command", set(slots), rendered, argv)
        return argv, {**rest, **env}
    # Secrets never go on the command line (visible in `ps`, /proc and pod specs): env only.
    secrets = {p.name for p in template.parameters if p.type == "secret"}
    cli = [f"--{name}={value}" for name, value in rest.items() if name not in secrets]
    _refuse_values_in_code(task.name, "template.command", set(slots), rendered, argv + cli)
    return argv + cli, {**{name: value for name, value in rest.items() if name in secrets}, **env}


def _param_values(
    task: TaskSpec, template: TemplateSpec, ctx: RenderContext, inputs: Mapping[str, str]
) -> dict[str, str]:
    bound = {b.name for b in task.inputs}
    values: dict[str, str] = {}
    for defn in template.parameters:
        field = f"args.{defn.name}"
        if defn.name in bound:
            raw: object = inputs[defn.name]
            field = f"inputs.{defn.name}"
        elif defn.name in task.args:
            raw = _authored_value(defn, task.args[defn.name], ctx, inputs, task.name)
        elif defn.default is not None:
            raw = _authored_value(defn, defn.default, ctx, inputs, task.name)
        elif defn.required:
            raise RenderError(task.name, field, f"required parameter of {template.ref} has no value")
        else:
            continue
        try:
            values[defn.name] = coerce_value(defn, raw)
        except ValueError as exc:
            raise RenderError(task.name, field, str(exc)) from None
    return values


def _authored_value(defn: ParamDef, raw: object, ctx: RenderContext, inputs: Mapping[str, str], task: str) -> object:
    # Text written by the pipeline or template author: Jinja, then `$name` (not inside code).
    if not isinstance(raw, str):
        return raw
    text = render_text(raw, ctx, inputs, task=task, field=f"args.{defn.name}", code=defn.script)
    return text if defn.script else expand(text, {}, inputs)


def _render_env(
    env: Mapping[str, str], ctx: RenderContext, inputs: Mapping[str, str], task: str, prefix: str
) -> dict[str, str]:
    return {name: render_text(value, ctx, inputs, task=task, field=f"{prefix}.{name}") for name, value in env.items()}


def _check_nul(rendered: RenderedTask, task: str) -> None:
    for i, el in enumerate(rendered.argv):
        if "\0" in el:
            raise RenderError(task, f"argv[{i}]", "contains a NUL character")
    for name, value in rendered.env.items():
        if "\0" in value or "\0" in name or "=" in name:
            raise RenderError(task, f"env.{name}", "contains a NUL character or a bad name")


def template_command_errors(template: TemplateSpec) -> list[SpecError]:
    """Return what is wrong with `$(params.NAME)` use in the template's command."""
    defs = {p.name: p for p in template.parameters}
    slots = code_slots(template.command)
    errors: list[SpecError] = []
    env_names: dict[str, str] = {}
    for i, el in enumerate(template.command):
        refs = param_refs(el)
        whole = whole_param_ref(el)
        field = f"command[{i}]"
        errors += [SpecError(field, f"unknown parameter {name!r}") for name in refs if name not in defs]
        if any(defs[n].script for n in refs if n in defs) and whole is None:
            errors.append(SpecError(field, "a script parameter must be a whole command element"))
        slot = slots.get(i)
        if slot is None or (whole in defs and defs[whole].script):
            continue
        if not slot.is_shell and refs:
            errors.append(
                SpecError(
                    field,
                    "parameters are not spliced into code: mark the parameter "
                    "`script: true`, or pass it as an argument or env",
                )
            )
        for name in refs:
            other = env_names.setdefault(param_env_name(name), name)
            if other != name:
                errors.append(
                    SpecError(
                        field,
                        f"parameters {other!r} and {name!r} both reach shell code as "
                        f"${param_env_name(name)}: rename one",
                    )
                )
    return errors
