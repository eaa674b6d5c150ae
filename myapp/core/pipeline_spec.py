"""The pipeline document (docs/rules.md P2) as a plain dict <-> PipelineSpec, and its content hash.

`parse_pipeline` checks structure only (types, unknown keys, enumerations) and raises the first
SpecError with its field path (`tasks[load].inputs.day.from`); the rules between fields live in
`validate.py`. `pipeline_to_dict` writes the canonical form: keys in the order of docs/rules.md P2,
defaults omitted, inputs in their short forms. Works on plain dicts: no YAML, no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import cast, get_args

from myapp.core.cron import year_problem
from myapp.core.errors import SpecError
from myapp.core.model import (
    AlertSpec,
    GlobalOutput,
    GlobalParam,
    PipelineSpec,
    ScheduleSpec,
    ScheduleType,
    TaskSpec,
)
from myapp.core.params import value_text
from myapp.core.spec_fields import (
    check_keys,
    put,
    read_bool,
    read_int,
    read_list,
    read_mapping,
    read_optional_str,
    read_str,
    read_str_list,
)
from myapp.core.task_spec import PARAMS_PREFIX, parse_task, split_ref, task_to_dict

MAX_TASKS = 10_000
PIPELINE_KEYS = (
    "name",
    "project",
    "description",
    "parameters",
    "outputs",
    "schedule",
    "timeout",
    "alerts",
    "tasks",
)
PARAM_KEYS = ("name", "default", "description", "required", "secret")
GLOBAL_OUTPUT_KEYS = ("name", "from")
SCHEDULE_KEYS = (
    "type",
    "cron",
    "timezone",
    "start_time",
    "depends_on_past",
    "expired_limit",
    "max_active_runs",
    "enabled",
)
ALERT_KEYS = ("webhooks", "on")


def parse_pipeline(data: Mapping[str, object], *, default_timezone: str = "UTC") -> PipelineSpec:
    """Build a PipelineSpec from the plain dict of docs/rules.md P2; SpecError on a structural error."""
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


def stored_schedule(data: Mapping[str, object]) -> ScheduleSpec:
    """Return the schedule of a stored (canonical) definition without parsing its tasks."""
    return _parse_schedule(read_mapping(data, "").get("schedule"), "UTC")


def pipeline_to_dict(spec: PipelineSpec) -> dict[str, object]:
    """Return the canonical plain-dict form of `spec` (defaults omitted, §2 key order)."""
    out: dict[str, object] = {"name": spec.name}
    put(out, "project", spec.project, "default")
    put(out, "description", spec.description, "")
    put(out, "parameters", [_param_to_dict(p) for p in spec.parameters], [])
    put(out, "outputs", [{"name": o.name, "from": f"{o.task}.{o.output}"} for o in spec.outputs], [])
    out["schedule"] = _schedule_to_dict(spec.schedule)
    put(out, "timeout", spec.timeout, 0)
    put(out, "alerts", _alerts_to_dict(spec.alerts), {})
    out["tasks"] = [task_to_dict(t) for t in spec.tasks]
    return out


def spec_hash(spec: PipelineSpec) -> str:
    """Return a stable sha256 (hex) of the canonical form: equal specs, equal hashes."""
    return canonical_hash(pipeline_to_dict(spec))


def canonical_hash(data: Mapping[str, object]) -> str:
    """Return spec_hash of the spec whose canonical form (pipeline_to_dict) is `data`."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def task_path(raw: object, index: int) -> str:
    """Return the field path of a task: `tasks[NAME]`, or `tasks[INDEX]` when it has no usable name."""
    name = raw.get("name") if isinstance(raw, Mapping) else None
    return f"tasks[{name}]" if isinstance(name, str) and name and "]" not in name else f"tasks[{index}]"


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
        secret=read_bool(data, "secret", path, default=False),
    )


def _param_to_dict(param: GlobalParam) -> dict[str, object]:
    out: dict[str, object] = {"name": param.name}
    put(out, "default", param.default, None)
    put(out, "description", param.description, "")
    put(out, "required", param.required, False)
    put(out, "secret", param.secret, False)
    return out


def _parse_global_output(raw: object, path: str) -> GlobalOutput:
    data = read_mapping(raw, path)
    check_keys(data, GLOBAL_OUTPUT_KEYS, path)
    task, output = split_ref(read_str(data, "from", path, required=True), f"{path}.from")
    if task == PARAMS_PREFIX:
        raise SpecError(f"{path}.from", "a global output comes from a task output (task.output)")
    return GlobalOutput(name=read_str(data, "name", path, required=True), task=task, output=output)


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
            raise SpecError(
                "schedule.start_time", f"{raw!r} is not an ISO date-time such as 2026-01-01T00:00:00"
            ) from None
    else:
        raise SpecError("schedule.start_time", "must be an ISO date-time text such as 2026-01-01T00:00:00")
    if value.tzinfo is not None:
        raise SpecError(
            "schedule.start_time", "must be a wall time without UTC offset; it is read in schedule.timezone"
        )
    problem = year_problem(value)
    if problem:
        raise SpecError("schedule.start_time", problem)
    return value


def _schedule_to_dict(schedule: ScheduleSpec) -> dict[str, object]:
    # timezone is always written: its default comes from the server's configuration.
    out: dict[str, object] = {}
    put(out, "type", schedule.type, "once")
    put(out, "cron", schedule.cron, None)
    out["timezone"] = schedule.timezone
    if schedule.start_time is not None:
        out["start_time"] = schedule.start_time.isoformat()
    put(out, "depends_on_past", schedule.depends_on_past, False)
    put(out, "expired_limit", schedule.expired_limit, 1)
    put(out, "max_active_runs", schedule.max_active_runs, 1)
    put(out, "enabled", schedule.enabled, True)
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
    put(out, "webhooks", list(alerts.webhooks), [])
    put(out, "on", list(alerts.on), list(AlertSpec().on))
    return out


def _parse_tasks(top: Mapping[str, object]) -> tuple[TaskSpec, ...]:
    items = read_list(top, "tasks", "")
    if len(items) > MAX_TASKS:
        raise SpecError("tasks", f"at most {MAX_TASKS} tasks, got {len(items)}")
    return tuple(parse_task(raw, task_path(raw, i)) for i, raw in enumerate(items))
