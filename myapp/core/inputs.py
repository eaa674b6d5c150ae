"""Resolve a task's input values from upstream outputs, global parameters and literals (§2, R11)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Literal

from myapp.core.errors import MyappError
from myapp.core.model import TaskSpec


@dataclass(frozen=True)
class InputValue:
    """One resolved input: text, a file/directory stored at `value` (an artifact path), or the
    files gathered from a sliced task (R15): `value` is the JSON list of their artifact paths."""

    kind: Literal["text", "file", "files"]
    value: str


def local_value(val: InputValue, dest: PurePath, fetch: Callable[[str, PurePath], str]) -> str:
    """Return what `$name` is for one input: text as is, a file fetched to `dest` (its local path),
    gathered files each fetched to `dest/INDEX` (the JSON list of their local paths, null where a
    slice produced none). `fetch(artifact, dest)` copies one artifact and returns its path as seen."""
    if val.kind == "text":
        return val.value
    if val.kind == "file":
        return fetch(val.value, dest)
    paths = json.loads(val.value)
    return json.dumps([None if p is None else fetch(str(p), dest / str(i)) for i, p in enumerate(paths)])


def resolve_inputs(
    task: TaskSpec,
    upstream_outputs: Mapping[str, Mapping[str, Any]],
    params: Mapping[str, str],
    debug_inputs: Mapping[str, Any] | None = None,
) -> dict[str, InputValue]:
    """Return every bound input of `task`.

    A debug run (`debug_inputs`, see core/debug_inputs.py) takes its stored values first: text,
    `{type: file, path}` for an upstream file output of an earlier run, `{type: files, paths}` for
    an upstream list of files; inputs bound to a global parameter still resolve from `params`.
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
            if produced.get("type") == "files":  # gathered from a sliced task (R15)
                out[b.name] = InputValue("files", json.dumps(list(produced.get("paths") or [])))
                continue
            kind: Literal["text", "file"] = "file" if produced.get("type") == "file" else "text"
            out[b.name] = InputValue(kind, str(produced.get("path") if kind == "file" else produced.get("value", "")))
    return out


def _debug_values(task: TaskSpec, stored: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, InputValue]:
    out: dict[str, InputValue] = {}
    for name, value in stored.items():
        # {type, path}: a plan's file; {type, value}: what an attempt showed (a retried debug run).
        if isinstance(value, Mapping) and value.get("type") == "files":
            # {type, paths}: a plan's list of files, or what an attempt showed (its `paths`).
            out[name] = InputValue("files", json.dumps(list(value.get("paths") or [])))
        elif isinstance(value, Mapping) and value.get("type") == "file":
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
