"""One task of a pipeline document (docs/rules.md P2) as a plain dict <-> TaskSpec.

Inputs come in four forms: `{from: task.output}`, `{from: params.name}`, a bare literal, or
`{value: x}`; the canonical form writes them back short. Outputs and resources share their form
with templates (catalog/plugins.py). Structure only; rules between fields live in validate.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import cast, get_args

from myapp.core.errors import SpecError
from myapp.core.model import InputBinding, OutputSpec, OutputType, Resources, TaskSpec
from myapp.core.params import value_text
from myapp.core.slices import parse_slices, slices_to_dict
from myapp.core.spec_fields import (
    check_keys,
    put,
    read_int,
    read_mapping,
    read_optional_str,
    read_str,
    read_str_list,
    read_text_map,
)
from myapp.core.workspaces import parse_workspaces, workspaces_to_dict

TASK_KEYS = (
    "name",
    "description",
    "template",
    "image",
    "command",
    "args",
    "depends_on",
    "inputs",
    "outputs",
    "retries",
    "retry_delay",
    "timeout",
    "resources",
    "env",
    "position",
    "trigger_rule",
    "when",
    "workspaces",
    "slices",
)
OUTPUT_KEYS = ("name", "path", "type", "description")
RESOURCE_KEYS = ("cpu", "memory", "gpu", "package")
PARAMS_PREFIX = "params"


def split_ref(ref: str, path: str) -> tuple[str, str]:
    """Split `TASK.OUTPUT` / `params.NAME` at the first dot; SpecError at `path` when malformed."""
    head, dot, tail = ref.partition(".")
    if not dot or not head or not tail:
        raise SpecError(path, f"{ref!r} must be TASK.OUTPUT or params.NAME")
    return head, tail


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
        trigger_rule=read_str(data, "trigger_rule", path) or "all_success",
        when=read_str(data, "when", path).strip(),
        workspaces=parse_workspaces(data.get("workspaces"), path),
        slices=parse_slices(data.get("slices"), path),
    )


def task_to_dict(task: TaskSpec) -> dict[str, object]:
    """Return the canonical plain-dict form of one task."""
    out: dict[str, object] = {"name": task.name}
    put(out, "description", task.description, "")
    put(out, "template", task.template, None)
    put(out, "image", task.image, None)
    put(out, "command", list(task.command), [])
    put(out, "args", dict(task.args), {})
    put(out, "depends_on", list(task.depends_on), [])
    put(out, "inputs", {b.name: _binding_to_short(b) for b in task.inputs}, {})
    put(out, "outputs", [output_to_dict(o) for o in task.outputs], [])
    put(out, "retries", task.retries, 0)
    put(out, "retry_delay", task.retry_delay, 0)
    put(out, "timeout", task.timeout, 0)
    put(out, "resources", resources_to_dict(task.resources), {})
    put(out, "env", dict(task.env), {})
    put(out, "trigger_rule", task.trigger_rule, "all_success")
    put(out, "when", task.when, "")
    put(out, "workspaces", workspaces_to_dict(task.workspaces), {})
    if task.slices is not None:
        out["slices"] = slices_to_dict(task.slices)
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
    head, tail = split_ref(read_str(data, "from", path, required=True), f"{path}.from")
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
        raise SpecError(f"{path}.type", f"must be text, file or files, not {kind!r}")
    return OutputSpec(
        name=read_str(data, "name", path, required=True),
        path=read_str(data, "path", path, required=True),
        type=cast(OutputType, kind),
        description=read_str(data, "description", path),
    )


def output_to_dict(output: OutputSpec) -> dict[str, object]:
    """Return an output declaration; `type` is always written, as in docs/rules.md P2."""
    out: dict[str, object] = {"name": output.name, "path": output.path, "type": output.type}
    put(out, "description", output.description, "")
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
    put(out, "cpu", resources.cpu, None)
    put(out, "memory", resources.memory, None)
    put(out, "gpu", resources.gpu, 0)
    put(out, "package", resources.package, None)
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
