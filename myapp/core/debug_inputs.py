"""The inputs of a debug run of one task (docs/rules.md P4 "Debug run"): what fills each one.

A debug run executes one task alone, so its upstream tasks do not run. Each input is, in order:
the value the user gave (`--input NAME=VALUE`, the editor's dialog), else what its binding gives
without upstream tasks (a literal; a global parameter, rendered at run time), else the output
its upstream task produced in the pipeline's latest succeeded run. An upstream input with none
of these is *missing*: the run is refused with the list of names that need a value.

Pure: the adapter reads the latest succeeded run's outputs and passes them in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from myapp.core.errors import SpecError
from myapp.core.model import TaskSpec

FilledFrom = Literal["given", "literal", "param", "run"]


@dataclass(frozen=True)
class DebugInput:
    """One input of a debug run and where its value comes from.

    `value` is the text (a `text` value), the stored artifact path of a `file` output taken from an
    earlier run, or the JSON list of the artifact paths of a `files` output (a list of files, or a
    sliced task's gathered files, R15; null where a slice produced none). A `param` input has no
    value here: it is rendered when the task starts.
    """

    name: str
    filled_from: FilledFrom
    kind: Literal["text", "file", "files"] = "text"
    value: str = ""
    binding: str = ""  # "step1.output_param1", "params.day", or "" for a literal/given


@dataclass(frozen=True)
class DebugPlan:
    """Every input of the task, the run its upstream values come from, and what is missing."""

    task: str
    inputs: tuple[DebugInput, ...]
    missing: tuple[str, ...]
    source_run_id: int | None

    def stored(self) -> dict[str, Any]:
        """Return the debug run's stored inputs: text values, `{type: file, path}` for a file and
        `{type: files, paths}` for a list of files.

        Inputs bound to a global parameter are left out: they resolve from the run's parameters.
        """
        out: dict[str, Any] = {}
        for item in self.inputs:
            if item.filled_from == "param":
                continue
            if item.kind == "file":
                out[item.name] = {"type": "file", "path": item.value}
            elif item.kind == "files":
                out[item.name] = {"type": "files", "paths": json.loads(item.value)}
            else:
                out[item.name] = item.value
        return out

    def as_dict(self) -> dict[str, Any]:
        """Return the plan as JSON-ready data (the REST API and `--json`)."""
        return {
            "task": self.task,
            "source_run_id": self.source_run_id,
            "missing": list(self.missing),
            "inputs": [
                {"name": i.name, "filled_from": i.filled_from, "kind": i.kind, "value": i.value, "binding": i.binding}
                for i in self.inputs
            ],
        }


def plan_debug_inputs(
    task: TaskSpec, given: Mapping[str, str], upstream: Mapping[str, Mapping[str, Any]], source_run_id: int | None
) -> DebugPlan:
    """Return how each input of `task` is filled for a debug run.

    `upstream` maps each upstream task to the outputs it produced in run `source_run_id` (the
    pipeline's latest succeeded run; empty when there is none).
    """
    items: list[DebugInput] = []
    missing: list[str] = []
    for b in task.inputs:
        binding = f"{b.task}.{b.output}" if b.source == "task" else f"params.{b.param}" if b.source == "param" else ""
        if b.name in given:
            items.append(DebugInput(b.name, "given", "text", given[b.name], binding))
        elif b.source == "literal":
            items.append(DebugInput(b.name, "literal", "text", "" if b.value is None else str(b.value)))
        elif b.source == "param":
            items.append(DebugInput(b.name, "param", "text", "", binding))
        else:
            produced = upstream.get(b.task or "", {}).get(b.output or "")
            if isinstance(produced, Mapping) and produced.get("type") == "file" and produced.get("path"):
                items.append(DebugInput(b.name, "run", "file", str(produced["path"]), binding))
            elif isinstance(produced, Mapping) and produced.get("type") == "files":
                paths = json.dumps(list(produced.get("paths") or []))
                items.append(DebugInput(b.name, "run", "files", paths, binding))
            elif isinstance(produced, Mapping) and produced.get("type") == "text":
                items.append(DebugInput(b.name, "run", "text", str(produced.get("value", "")), binding))
            else:
                missing.append(b.name)
    bound = {b.name for b in task.inputs}
    items += [DebugInput(name, "given", "text", value) for name, value in given.items() if name not in bound]
    return DebugPlan(task.name, tuple(items), tuple(missing), source_run_id if upstream else None)


def require_complete(plan: DebugPlan, pipeline: str) -> None:
    """Raise a SpecError naming every input that still needs a value."""
    if not plan.missing:
        return
    where = (
        "the latest succeeded run has no output for them"
        if plan.source_run_id is not None
        else f"pipeline {pipeline!r} has no succeeded run to take upstream outputs from"
    )
    raise SpecError(
        f"tasks[{plan.task}].inputs", f"give a value (--input NAME=VALUE) for: {', '.join(plan.missing)} ({where})"
    )
