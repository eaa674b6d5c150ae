"""The one pipeline checker behind save, import and `pipeline validate` (docs/rules.md P2 and R12).

`validate_pipeline` returns every broken rule as a SpecError whose field names the task and field
(`tasks[load].inputs.day.from`); callers show the first (CLI) or all (API, 4xx). The cron dialect
is injected (`cron_check`), so this module needs nothing but the model, the graph and params.py.
Near-linear in the number of tasks: a binding adds a graph edge (Dag.from_spec), so "from names an
ancestor" holds exactly when the graph is acyclic and the producer exists.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from myapp.core.conditions import condition_problem, referenced_tasks
from myapp.core.dag import Dag
from myapp.core.env_policy import loads_code
from myapp.core.errors import SpecError
from myapp.core.model import (
    InputBinding,
    OutputSpec,
    ParamDef,
    PipelineSpec,
    TaskSpec,
    TemplateSpec,
)
from myapp.core.nesting import MAX_NESTING, nesting_problem
from myapp.core.output_paths import DEFAULT_ROOTS, output_path_problem
from myapp.core.params import coerce_value, is_deferred
from myapp.core.pipeline_spec import MAX_TASKS
from myapp.core.ports import TemplateCatalog
from myapp.core.slices import sliced_source_problems, slices_problems
from myapp.core.task_spec import PARAMS_PREFIX
from myapp.core.trigger_rules import NEED_UPSTREAM, TriggerRule, parse_rule
from myapp.core.workspaces import workspace_errors

CronCheck = Callable[[str, str], None]
UrlCheck = Callable[[str], "str | None"]  # why a webhook URL is refused (myapp/core/webhook_policy.py), or None
# A check the core cannot make itself (e.g. what a resource manifest asks of the cluster): task,
# its template, the pipeline's project -> errors naming the task and field.
TaskCheck = Callable[[TaskSpec, "TemplateSpec | None", str], list[SpecError]]
PIPELINE_NAME = re.compile(r"[a-z0-9-]{1,63}")
TASK_NAME = re.compile(r"[A-Za-z0-9_-]{1,63}")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
OUTPUT_NAME = re.compile(r"[A-Za-z0-9_-]{1,63}")
RESERVED_ENV_PREFIX = "MYAPP_"
# Inputs become environment variables whose values are data; these names would make data code.
UNSAFE_INPUT_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "IFS",
        "ENV",
        "BASH_ENV",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "PROMPT_COMMAND",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "PERL5LIB",
        "PERL5OPT",
        "RUBYOPT",
        "NODE_OPTIONS",
    }
)
ALERT_EVENTS = frozenset({"failed", "succeeded", "timeout", "stopped"})
ARGS_LEVEL = 3  # pipeline -> tasks -> task -> args
MAX_RETRIES = 100


def validate_pipeline(
    spec: PipelineSpec,
    catalog: TemplateCatalog,
    *,
    cron_check: CronCheck | None = None,
    output_roots: Sequence[str] = DEFAULT_ROOTS,
    task_check: TaskCheck | None = None,
    webhook_check: UrlCheck | None = None,
) -> list[SpecError]:
    """Return every rule `spec` breaks, in document order (empty when valid)."""
    if len(spec.tasks) > MAX_TASKS:
        return [SpecError("tasks", f"at most {MAX_TASKS} tasks, got {len(spec.tasks)}")]
    errors = _check_pipeline_fields(spec)
    if webhook_check is not None:
        errors += [
            SpecError("alerts.webhooks", problem)
            for url in spec.alerts.webhooks
            if url.startswith(("http://", "https://")) and (problem := webhook_check(url))
        ]
    errors += _check_schedule(spec, cron_check)
    errors += _check_task_names(spec)
    templates = {t.template: catalog.get(t.template) for t in spec.tasks if t.template}
    outputs = {t.name: effective_outputs(t, templates.get(t.template or "")) for t in spec.tasks}
    params = {p.name for p in spec.parameters}
    secret_params = {p.name for p in spec.parameters if p.secret}
    tasks_by_name = {t.name: t for t in spec.tasks}
    for task in spec.tasks:
        errors += _check_task(task, templates.get(task.template or ""), outputs, params)
        errors += [
            SpecError(f"tasks[{task.name}].{field}", message)
            for field, message in sliced_source_problems(task, tasks_by_name, outputs)
        ]
        errors += _check_code_loading_env(task, templates.get(task.template or ""), secret_params)
        errors += _check_output_paths(outputs[task.name], f"tasks[{task.name}]", output_roots)
        if task_check is not None:
            errors += task_check(task, templates.get(task.template or ""), spec.project)
    errors += _check_global_outputs(spec, outputs)
    errors += _check_cycle(spec)
    return errors


def effective_outputs(task: TaskSpec, template: TemplateSpec | None) -> tuple[OutputSpec, ...]:
    """Return the template's outputs overridden (by name) and extended by the task's own."""
    merged = {o.name: o for o in (template.outputs if template else ())}
    merged.update({o.name: o for o in task.outputs})
    return tuple(merged.values())


def _check_pipeline_fields(spec: PipelineSpec) -> list[SpecError]:
    errors: list[SpecError] = []
    if not PIPELINE_NAME.fullmatch(spec.name):
        errors.append(SpecError("name", f"{spec.name!r} must be 1-63 characters of a-z, 0-9 and -"))
    if not spec.project:
        errors.append(SpecError("project", "must not be empty"))
    if spec.timeout < 0:
        errors.append(SpecError("timeout", "must be >= 0 seconds (0 = none)"))
    errors += _duplicates((p.name for p in spec.parameters), "parameters", "parameter")
    errors += [
        SpecError(f"parameters[{p.name}].name", f"{p.name!r} must be an identifier ([A-Za-z_][A-Za-z0-9_]*)")
        for p in spec.parameters
        if not IDENTIFIER.fullmatch(p.name)
    ]
    errors += [
        SpecError("alerts.on", f"unknown event {e!r}; use {', '.join(sorted(ALERT_EVENTS))}")
        for e in spec.alerts.on
        if e not in ALERT_EVENTS
    ]
    errors += [
        SpecError("alerts.webhooks", f"{url!r} must be an http:// or https:// URL")
        for url in spec.alerts.webhooks
        if not url.startswith(("http://", "https://"))
    ]
    return errors


def _check_schedule(spec: PipelineSpec, cron_check: CronCheck | None) -> list[SpecError]:
    schedule = spec.schedule
    errors: list[SpecError] = []
    if schedule.expired_limit < 0:
        errors.append(SpecError("schedule.expired_limit", "must be >= 0 (0 = keep all)"))
    if schedule.max_active_runs < 1:
        errors.append(SpecError("schedule.max_active_runs", "must be >= 1"))
    zone_error = _check_timezone(schedule.timezone)
    if zone_error:
        return [*errors, zone_error]
    if schedule.type == "crontab" and not schedule.cron:
        errors.append(SpecError("schedule.cron", "a crontab schedule needs a cron expression"))
    elif schedule.cron and cron_check is not None:
        try:
            cron_check(schedule.cron, schedule.timezone)
        except ValueError as exc:
            errors.append(SpecError("schedule.cron", str(exc)))
    return errors


def _check_timezone(name: str) -> SpecError | None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return SpecError("schedule.timezone", f"{name!r} is not an IANA time zone such as Asia/Shanghai")
    return None


def _check_task_names(spec: PipelineSpec) -> list[SpecError]:
    errors = _duplicates((t.name for t in spec.tasks), "tasks", "task")
    for task in spec.tasks:
        if not TASK_NAME.fullmatch(task.name):
            errors.append(
                SpecError(
                    f"tasks[{task.name}].name", f"{task.name!r} must be 1-63 characters of A-Z, a-z, 0-9, _ and -"
                )
            )
        elif task.name == PARAMS_PREFIX:
            errors.append(SpecError(f"tasks[{task.name}].name", "'params' is reserved for global parameters"))
    return errors


def _duplicates(names: Iterable[str], field: str, what: str) -> list[SpecError]:
    counts = Counter(names)
    return [SpecError(f"{field}[{n}]", f"duplicate {what} name {n!r}") for n, c in counts.items() if c > 1]


def _check_task(
    task: TaskSpec,
    template: TemplateSpec | None,
    outputs: Mapping[str, tuple[OutputSpec, ...]],
    params: set[str],
) -> list[SpecError]:
    where = f"tasks[{task.name}]"
    errors = _check_kind(task, template, where)
    # the args mapping sits 3 levels down in the exported document: keep the whole within MAX_NESTING
    deep = nesting_problem(dict(task.args), MAX_NESTING - ARGS_LEVEL) if task.args else None
    errors += (
        [SpecError(f"{where}.args", f"{deep}: the whole pipeline may nest at most {MAX_NESTING} levels")]
        if deep
        else []
    )
    errors += _check_numbers(task, where)
    errors += _check_outputs(task.outputs, where)
    errors += _check_env(task.env, f"{where}.env")
    errors += [SpecError(f"{where}.depends_on", f"unknown task {d!r}") for d in task.depends_on if d not in outputs]
    errors += _check_trigger_rule(task, where)
    errors += _check_when(task, where, outputs)
    errors += workspace_errors(task, template, where)
    errors += [SpecError(f"{where}.{field}", message) for field, message in slices_problems(task)]
    for binding in task.inputs:
        errors += _check_binding(task, binding, outputs, params)
    if template is not None:
        errors += _check_args(task, template, where)
    elif task.args:
        errors.append(SpecError(f"{where}.args", "args need a template; a custom task takes inputs"))
    return errors


def _check_trigger_rule(task: TaskSpec, where: str) -> list[SpecError]:
    """R13: a known rule, and one that can run this task (one_failed/all_skipped need an upstream)."""
    rule = parse_rule(task.trigger_rule)
    if rule is None:
        names = ", ".join(r.value for r in TriggerRule)
        return [SpecError(f"{where}.trigger_rule", f"unknown trigger rule {task.trigger_rule!r}; use one of {names}")]
    has_upstream = bool(task.depends_on) or any(b.source == "task" for b in task.inputs)
    if rule in NEED_UPSTREAM and not has_upstream:
        return [
            SpecError(
                f"{where}.trigger_rule",
                f"{rule.value} needs an upstream task (depends_on); without one the task could never run",
            )
        ]
    return []


def _check_when(task: TaskSpec, where: str, outputs: Mapping[str, tuple[OutputSpec, ...]]) -> list[SpecError]:
    """R14: a Jinja expression whose `tasks.NAME` are upstream tasks of this one."""
    if not task.when:
        return []
    problem = condition_problem(task.when)
    if problem:
        return [SpecError(f"{where}.when", problem)]
    upstream = set(task.depends_on) | {b.task for b in task.inputs if b.source == "task"}
    return [
        SpecError(
            f"{where}.when",
            f"unknown task {name!r}"
            if name not in outputs
            else f"task {name!r} is not an upstream task of {task.name!r}: add it to depends_on",
        )
        for name in referenced_tasks(task.when)
        if name not in upstream
    ]


def _check_kind(task: TaskSpec, template: TemplateSpec | None, where: str) -> list[SpecError]:
    if task.template:
        errors = [] if template else [SpecError(f"{where}.template", f"unknown template {task.template!r}")]
        if task.command:
            errors.append(SpecError(f"{where}.command", "a template task takes its command from the template"))
        return errors
    missing = [f for f, v in (("image", task.image), ("command", task.command)) if not v]
    return [SpecError(f"{where}.{f}", "a task needs a template, or an image and a command") for f in missing]


def _check_numbers(task: TaskSpec, where: str) -> list[SpecError]:
    rules = (
        ("retries", task.retries, 0 <= task.retries <= MAX_RETRIES, f"must be 0..{MAX_RETRIES}"),
        ("retry_delay", task.retry_delay, task.retry_delay >= 0, "must be >= 0 seconds"),
        ("timeout", task.timeout, task.timeout >= 0, "must be >= 0 seconds (0 = none)"),
        ("resources.gpu", task.resources.gpu, task.resources.gpu >= 0, "must be >= 0"),
    )
    return [SpecError(f"{where}.{field}", f"{value} {message}") for field, value, ok, message in rules if not ok]


def _check_outputs(outputs: tuple[OutputSpec, ...], where: str) -> list[SpecError]:
    errors = _duplicates((o.name for o in outputs), f"{where}.outputs", "output")
    for output in outputs:
        at = f"{where}.outputs[{output.name}]"
        if not OUTPUT_NAME.fullmatch(output.name):
            errors.append(SpecError(f"{at}.name", f"{output.name!r} must be 1-63 characters of A-Z, a-z, 0-9, _ and -"))
        if not output.path.strip():
            errors.append(SpecError(f"{at}.path", "must not be empty"))
        if output.type not in ("text", "file", "files"):
            errors.append(SpecError(f"{at}.type", "must be text, file or files"))
    return errors


def _check_output_paths(outputs: tuple[OutputSpec, ...], where: str, roots: Sequence[str]) -> list[SpecError]:
    # The task's own outputs and those it inherits from its template (effective_outputs).
    return [
        SpecError(f"{where}.outputs[{o.name}].path", problem)
        for o in outputs
        if o.path.strip() and (problem := output_path_problem(o.path, roots))
    ]


def _check_env(env: Mapping[str, str], where: str) -> list[SpecError]:
    errors: list[SpecError] = []
    for name in env:
        if not IDENTIFIER.fullmatch(name):
            errors.append(SpecError(f"{where}.{name}", "an environment variable name is [A-Za-z_][A-Za-z0-9_]*"))
        elif name.startswith(RESERVED_ENV_PREFIX):
            errors.append(SpecError(f"{where}.{name}", f"names starting with {RESERVED_ENV_PREFIX} are reserved"))
    return errors


def _check_code_loading_env(task: TaskSpec, template: TemplateSpec | None, secret_params: set[str]) -> list[SpecError]:
    """A task receiving secrets takes no environment variable that loads code (issue 13 B7)."""
    if template is not None and (names := [p.name for p in template.parameters if p.type == "secret"]):
        why = f"the process of template {template.ref}, which receives the secret parameter {names[0]!r}"
    elif names := [b.param for b in task.inputs if b.source == "param" and b.param in secret_params]:
        why = f"a task that receives the secret global parameter {names[0]!r}"
    else:
        return []
    return [
        SpecError(f"tasks[{task.name}].env.{name}", f"{name} can load code into {why}; remove it")
        for name in task.env
        if loads_code(name)
    ]


def _check_binding(
    task: TaskSpec, binding: InputBinding, outputs: Mapping[str, tuple[OutputSpec, ...]], params: set[str]
) -> list[SpecError]:
    at = f"tasks[{task.name}].inputs.{binding.name}"
    errors = _check_env({binding.name: ""}, f"tasks[{task.name}].inputs")
    if binding.name in UNSAFE_INPUT_NAMES or loads_code(binding.name):
        errors.append(SpecError(at, f"{binding.name!r} would let the input's value change what runs; rename it"))
    if binding.source == "param" and binding.param not in params:
        errors.append(SpecError(f"{at}.from", f"unknown global parameter {binding.param!r}"))
    if binding.source != "task":
        return errors
    producer = binding.task or ""
    if producer == task.name:
        errors.append(SpecError(f"{at}.from", "a task cannot read its own output"))
    elif producer not in outputs:
        errors.append(SpecError(f"{at}.from", f"unknown task {producer!r}"))
    elif all(o.name != binding.output for o in outputs[producer]):
        errors.append(SpecError(f"{at}.from", f"task {binding.task!r} has no output {binding.output!r}"))
    return errors


def _check_args(task: TaskSpec, template: TemplateSpec, where: str) -> list[SpecError]:
    bound = {b.name: b for b in task.inputs}
    errors: list[SpecError] = []
    for name, value in task.args.items():
        defn = template.param(name)
        if defn is None:
            errors.append(SpecError(f"{where}.args.{name}", f"template {template.ref} has no parameter {name!r}"))
        elif name in bound:
            errors.append(SpecError(f"{where}.args.{name}", "is also bound in inputs; keep one"))
        elif not is_deferred(value):
            errors += _check_value(defn, value, f"{where}.args.{name}")
    for defn in template.parameters:
        literal = bound.get(defn.name)
        if literal is not None and literal.source == "literal" and not is_deferred(literal.value):
            errors += _check_value(defn, literal.value, f"{where}.inputs.{defn.name}")
        missing = defn.name not in task.args and literal is None and defn.default is None
        if defn.required and missing:
            errors.append(
                SpecError(
                    f"{where}.args.{defn.name}", f"required parameter of {template.ref} has no arg, binding or default"
                )
            )
    return errors


def _check_value(defn: ParamDef, value: object, field: str) -> list[SpecError]:
    try:
        coerce_value(defn, value)
    except ValueError as exc:
        return [SpecError(field, str(exc))]
    return []


def _check_global_outputs(spec: PipelineSpec, outputs: Mapping[str, tuple[OutputSpec, ...]]) -> list[SpecError]:
    errors = _duplicates((o.name for o in spec.outputs), "outputs", "global output")
    for out in spec.outputs:
        at = f"outputs[{out.name}].from"
        if out.task not in outputs:
            errors.append(SpecError(at, f"unknown task {out.task!r}"))
        elif all(o.name != out.output for o in outputs[out.task]):
            errors.append(SpecError(at, f"task {out.task!r} has no output {out.output!r}"))
    return errors


def _check_cycle(spec: PipelineSpec) -> list[SpecError]:
    cycle = Dag.from_spec(spec).find_cycle()
    if cycle is None:
        return []
    # An edge of the cycle that only an input binding makes (rules P2) is named by that binding, so
    # that two tasks bound to each other's outputs read as such, not as a `depends_on` nobody wrote.
    by_name = {t.name: t for t in spec.tasks}
    bound: list[str] = []
    field = f"tasks[{cycle[0]}].depends_on"
    for up, down in zip(cycle, cycle[1:], strict=False):
        task = by_name[down]
        if up in task.depends_on:
            continue
        binding = next(b for b in task.inputs if b.source == "task" and b.task == up)
        bound.append(f"{down}'s input {binding.name} is bound to {up}.{binding.output}")
        if down == cycle[0]:
            field = f"tasks[{down}].inputs.{binding.name}.from"
    why = f" ({'; '.join(bound)})" if bound else ""
    return [SpecError(field, f"the graph has a cycle: {' -> '.join(cycle)}{why}")]
