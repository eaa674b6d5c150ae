"""Resolve a task's input values from upstream outputs, global parameters and literals (§2, R11)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from myapp.core.errors import MyappError
from myapp.core.model import TaskSpec


@dataclass(frozen=True)
class InputValue:
    """One resolved input: text, or a file/directory stored at `value` (an artifact path)."""

    kind: Literal["text", "file"]
    value: str


def resolve_inputs(
    task: TaskSpec,
    upstream_outputs: Mapping[str, Mapping[str, Any]],
    params: Mapping[str, str],
    debug_inputs: Mapping[str, Any] | None = None,
) -> dict[str, InputValue]:
    """Return every bound input of `task`.

    A debug run (`debug_inputs`, see core/debug_inputs.py) takes its stored values first: text,
    or `{type: file, path}` for an upstream file output of an earlier run; inputs bound to a
    global parameter still resolve from `params`.
    """
    if debug_inputs is not None:
        return _debug_values(task, debug_inputs, params)
    out: dict[str, InputValue] = {}
    for b in task.inputs:
        if b.source == "literal":
            out[b.name] = InputValue("text", "" if b.value is None else str(b.value))
        elif b.source == "param":
            out[b.name] = InputValue("text", params.get(b.param or "", ""))
        else:
            produced = upstream_outputs.get(b.task or "", {}).get(b.output or "")
            if not isinstance(produced, Mapping):
                raise MyappError(
                    f"task {task.name!r}: input {b.name!r} needs output {b.task}.{b.output}, which was not produced"
                )
            kind: Literal["text", "file"] = "file" if produced.get("type") == "file" else "text"
            out[b.name] = InputValue(kind, str(produced.get("path") if kind == "file" else produced.get("value", "")))
    return out


def _debug_values(task: TaskSpec, stored: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, InputValue]:
    out: dict[str, InputValue] = {}
    for name, value in stored.items():
        # {type, path}: a plan's file; {type, value}: what an attempt showed (a retried debug run).
        if isinstance(value, Mapping) and value.get("type") == "file":
            out[name] = InputValue("file", str(value.get("path") or value.get("value") or ""))
        elif isinstance(value, Mapping):
            out[name] = InputValue("text", str(value.get("value", "")))
        else:
            out[name] = InputValue("text", str(value))
    for b in task.inputs:
        if b.name not in out and b.source == "param":
            out[b.name] = InputValue("text", params.get(b.param or "", ""))
        elif b.name not in out and b.source == "literal":
            out[b.name] = InputValue("text", "" if b.value is None else str(b.value))
    return out
