"""The pipeline document (PRODUCT.md §2) as a plain dict <-> PipelineSpec, and its content hash.

`parse_pipeline` checks structure only (types, unknown keys, enumerations) and raises the first
SpecError with its field path (`tasks[load].inputs.day.from`); the rules between fields live in
`validate.py`. `pipeline_to_dict` writes the canonical form: keys in the order of PRODUCT.md §2,
defaults omitted, inputs in their short forms. Works on plain dicts: no YAML, no I/O.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import cast, get_args

from myapp.core.errors import SpecError
from myapp.core.model import (
    AlertSpec,
    GlobalOutput,
    GlobalParam,
    InputBinding,
    OutputSpec,
    OutputType,
    PipelineSpec,
    Resources,
    ScheduleSpec,
    ScheduleType,
    TaskSpec,
)
from myapp.core.params import value_text
from myapp.core.spec_fields import (
    check_keys,
    read_bool,
    read_int,
    read_list,
    read_mapping,
    read_optional_str,
    read_str,
    read_str_list,
    read_text_map,
)

MAX_TASKS = 10_000
PIPELINE_KEYS = (
    "name", "project", "description", "parameters", "outputs", "schedule", "timeout", "alerts", "tasks",
)
PARAM_KEYS = ("name", "default", "description", "required")
GLOBAL_OUTPUT_KEYS = ("name", "from")
SCHEDULE_KEYS = (
    "type", "cron", "timezone", "start_time", "depends_on_past", "expired_limit", "max_active_runs", "enabled",
)
TASK_KEYS = (
    "name", "description", "template", "image", "command", "args", "depends_on", "inputs", "outputs",
    "retries", "retry_delay", "timeout", "resources", "env", "position",
)
OUTPUT_KEYS = ("name", "path", "type", "description")
RESOURCE_KEYS = ("cpu", "memory", "gpu", "package")
ALERT_KEYS = ("webhooks", "on")
PARAMS_PREFIX = "params"


def parse_pipeline(data: Mapping[str, object], *, default_timezone: str = "UTC") -> PipelineSpec:
    """Build a PipelineSpec from the plain dict of PRODUCT.md §2; SpecError on a structural error."""
    top = read_mapping(data, "")
    check_keys(top, PIPELINE_KEYS, "")
    return PipelineSpec(
        name=read_str(top, "name", "", required=True),
        project=read_str(top, "project", "", default="default"),
        description=read_str(top, "description", ""),
        parameters=tuple(_parse_param(p, f"parameters[{i}]") for i, p in enumerate(read_list(top, "parameters", ""))),
        outputs=tuple(_parse_global_output(o, f"outputs[{i}]") for i, o in enumerate(read_list(top, "outputs", ""))),
        schedule=_parse_schedule(top.get("schedule"), default_timezone),
        timeout=read_int(top, "timeout", "", default=0),
        alerts=_parse_alerts(top.get("alerts")),
        tasks=_parse_tasks(top),
    )


def pipeline_to_dict(spec: PipelineSpec) -> dict[str, object]:
    """Return the canonical plain-dict form of `spec` (defaults omitted, §2 key order)."""
    out: dict[str, object] = {"name": spec.name}
    _put(out, "project", spec.project, "default")
    _put(out, "description", spec.description, "")
    _put(out, "parameters", [_param_to_dict(p) for p in spec.parameters], [])
    _put(out, "outputs", [{"name": o.name, "from": f"{o.task}.{o.output}"} for o in spec.outputs], [])
    out["schedule"] = _schedule_to_dict(spec.schedule)
    _put(out, "timeout", spec.timeout, 0)
    _put(out, "alerts", _alerts_to_dict(spec.alerts), {})
    out["tasks"] = [task_to_dict(t) for t in spec.tasks]
    return out


def spec_hash(spec: PipelineSpec) -> str:
    """Return a stable sha256 (hex) of the canonical form: equal specs, equal hashes."""
    text = json.dumps(pipeline_to_dict(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def task_path(raw: object, index: int) -> str:
    """Return the field path of a task: `tasks[NAME]`, or `tasks[INDEX]` when it has no usable name."""
    name = raw.get("name") if isinstance(raw, Mapping) else None
    return f"tasks[{name}]" if isinstance(name, str) and name and "]" not in name else f"tasks[{index}]"


def _put(out: dict[str, object], key: str, value: object, default: object) -> None:
    if value != default:
        out[key] = value


def _parse_param(raw: object, path: str) -> GlobalParam:
    data = read_mapping(raw, path)
    check_keys(data, PARAM_KEYS, path)
    default = data.get("default")
    if default is not None and not isinstance(default, (str, int, float, bool)):
        raise SpecError(f"{path}.default", "must be a single value (text, number or boolean)")
    return GlobalParam(
        name=read_str(data, "name", path, required=True),
        default=None if default is None else value_text(default),
        description=read_str(data, "description", path),
        required=read_bool(data, "required", path, default=False),
    )


def _param_to_dict(param: GlobalParam) -> dict[str, object]:
    out: dict[str, object] = {"name": param.name}
    _put(out, "default", param.default, None)
    _put(out, "description", param.description, "")
    _put(out, "required", param.required, False)
    return out


def _parse_global_output(raw: object, path: str) -> GlobalOutput:
    data = read_mapping(raw, path)
    check_keys(data, GLOBAL_OUTPUT_KEYS, path)
    task, output = _split_ref(read_str(data, "from", path, required=True), f"{path}.from")
    if task == PARAMS_PREFIX:
        raise SpecError(f"{path}.from", "a global output comes from a task output (task.output)")
    return GlobalOutput(name=read_str(data, "name", path, required=True), task=task, output=output)


def _split_ref(ref: str, path: str) -> tuple[str, str]:
    head, dot, tail = ref.partition(".")
    if not dot or not head or not tail:
        raise SpecError(path, f"{ref!r} must be TASK.OUTPUT or params.NAME")
    return head, tail


def _parse_schedule(raw: object, default_timezone: str) -> ScheduleSpec:
    if raw is None:
        return ScheduleSpec(timezone=default_timezone)
    data = read_mapping(raw, "schedule")
    check_keys(data, SCHEDULE_KEYS, "schedule")
    kind = data.get("type", "once")
    if kind not in get_args(ScheduleType):
        raise SpecError("schedule.type", f"must be once or crontab, not {kind!r}")
    return ScheduleSpec(
        type=cast(ScheduleType, kind),
        cron=read_optional_str(data, "cron", "schedule"),
        timezone=read_str(data, "timezone", "schedule", default=default_timezone),
        start_time=_parse_start_time(data.get("start_time")),
        depends_on_past=read_bool(data, "depends_on_past", "schedule", default=False),
        expired_limit=read_int(data, "expired_limit", "schedule", default=1),
        max_active_runs=read_int(data, "max_active_runs", "schedule", default=1),
        enabled=read_bool(data, "enabled", "schedule", default=True),
    )


def _parse_start_time(raw: object) -> datetime | None:
    if raw is None:
        return None
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, date):
        value = datetime(raw.year, raw.month, raw.day)
    elif isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw.strip())
        except ValueError:
            raise SpecError("schedule.start_time", f"{raw!r} is not an ISO date-time such as 2026-01-01T00:00:00") from None
    else:
        raise SpecError("schedule.start_time", "must be an ISO date-time text such as 2026-01-01T00:00:00")
    if value.tzinfo is not None:
        raise SpecError("schedule.start_time", "must be a wall time without UTC offset; it is read in schedule.timezone")
    return value


def _schedule_to_dict(schedule: ScheduleSpec) -> dict[str, object]:
    # timezone is always written: its default comes from the server's configuration.
    out: dict[str, object] = {}
    _put(out, "type", schedule.type, "once")
    _put(out, "cron", schedule.cron, None)
    out["timezone"] = schedule.timezone
    if schedule.start_time is not None:
        out["start_time"] = schedule.start_time.isoformat()
    _put(out, "depends_on_past", schedule.depends_on_past, False)
    _put(out, "expired_limit", schedule.expired_limit, 1)
    _put(out, "max_active_runs", schedule.max_active_runs, 1)
    _put(out, "enabled", schedule.enabled, True)
    return out


def _parse_alerts(raw: object) -> AlertSpec:
    if raw is None:
        return AlertSpec()
    data = read_mapping(raw, "alerts")
    check_keys(data, ALERT_KEYS, "alerts")
    on = data.get("on")
    return AlertSpec(
        webhooks=read_str_list(data, "webhooks", "alerts"),
        on=AlertSpec().on if on is None else read_str_list(data, "on", "alerts"),
    )


def _alerts_to_dict(alerts: AlertSpec) -> dict[str, object]:
    out: dict[str, object] = {}
    _put(out, "webhooks", list(alerts.webhooks), [])
    _put(out, "on", list(alerts.on), list(AlertSpec().on))
    return out


def _parse_tasks(top: Mapping[str, object]) -> tuple[TaskSpec, ...]:
    items = read_list(top, "tasks", "")
    if len(items) > MAX_TASKS:
        raise SpecError("tasks", f"at most {MAX_TASKS} tasks, got {len(items)}")
    return tuple(parse_task(raw, task_path(raw, i)) for i, raw in enumerate(items))


def parse_task(raw: object, path: str) -> TaskSpec:
    """Build one TaskSpec from its plain dict; `path` prefixes every field in errors."""
    data = read_mapping(raw, path)
    check_keys(data, TASK_KEYS, path)
    return TaskSpec(
        name=read_str(data, "name", path, required=True),
        description=read_str(data, "description", path),
        template=read_optional_str(data, "template", path),
        image=read_optional_str(data, "image", path),
        command=read_str_list(data, "command", path),
        args=_parse_args(data.get("args"), f"{path}.args"),
        depends_on=read_str_list(data, "depends_on", path),
        inputs=_parse_inputs(data.get("inputs"), f"{path}.inputs"),
        outputs=parse_outputs(data.get("outputs"), f"{path}.outputs"),
        retries=read_int(data, "retries", path, default=0),
        retry_delay=read_int(data, "retry_delay", path, default=0),
        timeout=read_int(data, "timeout", path, default=0),
        resources=parse_resources(data.get("resources"), f"{path}.resources"),
        env=read_text_map(data, "env", path),
        position=_parse_position(data.get("position"), f"{path}.position"),
    )


def task_to_dict(task: TaskSpec) -> dict[str, object]:
    """Return the canonical plain-dict form of one task."""
    out: dict[str, object] = {"name": task.name}
    _put(out, "description", task.description, "")
    _put(out, "template", task.template, None)
    _put(out, "image", task.image, None)
    _put(out, "command", list(task.command), [])
    _put(out, "args", dict(task.args), {})
    _put(out, "depends_on", list(task.depends_on), [])
    _put(out, "inputs", {b.name: _binding_to_short(b) for b in task.inputs}, {})
    _put(out, "outputs", [output_to_dict(o) for o in task.outputs], [])
    _put(out, "retries", task.retries, 0)
    _put(out, "retry_delay", task.retry_delay, 0)
    _put(out, "timeout", task.timeout, 0)
    _put(out, "resources", resources_to_dict(task.resources), {})
    _put(out, "env", dict(task.env), {})
    if task.position is not None:
        out["position"] = [_compact_number(v) for v in task.position]
    return out


def _parse_args(raw: object, path: str) -> dict[str, object]:
    if raw is None:
        return {}
    data = read_mapping(raw, path)
    args: dict[str, object] = {}
    for key, value in data.items():
        if value is None:
            continue
        _check_json_value(value, f"{path}.{key}")
        args[key] = value
    return args


def _check_json_value(value: object, path: str) -> None:
    todo: list[tuple[object, str]] = [(value, path)]
    while todo:
        item, where = todo.pop()
        if isinstance(item, Mapping):
            todo.extend((v, f"{where}.{k}") for k, v in item.items() if isinstance(k, str))
            if not all(isinstance(k, str) for k in item):
                raise SpecError(where, "mapping keys must be text")
        elif isinstance(item, list):
            todo.extend((v, f"{where}[{i}]") for i, v in enumerate(item))
        elif item is not None and not isinstance(item, (str, int, float, bool)):
            raise SpecError(where, f"a {type(item).__name__} is not a JSON value")


def _parse_inputs(raw: object, path: str) -> tuple[InputBinding, ...]:
    if raw is None:
        return ()
    data = read_mapping(raw, path)
    return tuple(_parse_binding(name, value, f"{path}.{name}") for name, value in data.items())


def _parse_binding(name: str, raw: object, path: str) -> InputBinding:
    if isinstance(raw, Mapping):
        return _parse_binding_mapping(name, raw, path)
    if raw is None:
        raise SpecError(path, "needs a value: {from: task.output}, {from: params.name}, or a literal")
    if not isinstance(raw, (str, int, float, bool, list)):
        raise SpecError(path, f"a {type(raw).__name__} is not a valid input")
    _check_json_value(raw, path)
    return InputBinding(name=name, source="literal", value=value_text(raw))


def _parse_binding_mapping(name: str, raw: Mapping[str, object], path: str) -> InputBinding:
    data = read_mapping(raw, path)
    check_keys(data, ("from", "value"), path)
    if ("from" in data) == ("value" in data):
        raise SpecError(path, "give exactly one of `from` (task.output or params.name) or `value`")
    if "value" in data:
        value = data["value"]
        if value is None:
            raise SpecError(f"{path}.value", "must not be empty")
        _check_json_value(value, f"{path}.value")
        return InputBinding(name=name, source="literal", value=value_text(value))
    head, tail = _split_ref(read_str(data, "from", path, required=True), f"{path}.from")
    if head == PARAMS_PREFIX:
        return InputBinding(name=name, source="param", param=tail)
    return InputBinding(name=name, source="task", task=head, output=tail)


def _binding_to_short(binding: InputBinding) -> object:
    if binding.source == "task":
        return {"from": f"{binding.task}.{binding.output}"}
    if binding.source == "param":
        return {"from": f"{PARAMS_PREFIX}.{binding.param}"}
    return binding.value


def parse_outputs(raw: object, path: str) -> tuple[OutputSpec, ...]:
    """Parse a list of declared outputs (tasks and templates share the form)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SpecError(path, "must be a list")
    return tuple(_parse_output(item, f"{path}[{i}]") for i, item in enumerate(raw))


def _parse_output(raw: object, path: str) -> OutputSpec:
    data = read_mapping(raw, path)
    check_keys(data, OUTPUT_KEYS, path)
    kind = data.get("type", "text")
    if kind not in get_args(OutputType):
        raise SpecError(f"{path}.type", f"must be text or file, not {kind!r}")
    return OutputSpec(
        name=read_str(data, "name", path, required=True),
        path=read_str(data, "path", path, required=True),
        type=cast(OutputType, kind),
        description=read_str(data, "description", path),
    )


def output_to_dict(output: OutputSpec) -> dict[str, object]:
    """Return an output declaration; `type` is always written, as in PRODUCT.md §2."""
    out: dict[str, object] = {"name": output.name, "path": output.path, "type": output.type}
    _put(out, "description", output.description, "")
    return out


def parse_resources(raw: object, path: str) -> Resources:
    """Parse `{cpu, memory, gpu, package}`; cpu and memory are kept as quantity text."""
    if raw is None:
        return Resources()
    data = read_mapping(raw, path)
    check_keys(data, RESOURCE_KEYS, path)
    for key in ("cpu", "memory"):
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, (str, int, float, type(None))):
            raise SpecError(f"{path}.{key}", "must be a quantity such as 500m, 2 or 1Gi")
    return Resources(
        cpu=None if data.get("cpu") is None else value_text(data["cpu"]),
        memory=None if data.get("memory") is None else value_text(data["memory"]),
        gpu=read_int(data, "gpu", path, default=0),
        package=read_optional_str(data, "package", path),
    )


def resources_to_dict(resources: Resources) -> dict[str, object]:
    """Return the resources block with defaults omitted."""
    out: dict[str, object] = {}
    _put(out, "cpu", resources.cpu, None)
    _put(out, "memory", resources.memory, None)
    _put(out, "gpu", resources.gpu, 0)
    _put(out, "package", resources.package, None)
    return out


def _parse_position(raw: object, path: str) -> tuple[float, float] | None:
    if raw is None:
        return None
    if isinstance(raw, Mapping):
        check_keys(read_mapping(raw, path), ("x", "y"), path)
        pair: object = [raw.get("x"), raw.get("y")]
    else:
        pair = raw
    if not isinstance(pair, list) or len(pair) != 2 or not all(_is_number(v) for v in pair):
        raise SpecError(path, "must be [x, y] or {x: .., y: ..} with two numbers")
    return float(pair[0]), float(pair[1])


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _compact_number(value: float) -> int | float:
    return int(value) if value.is_integer() else value
