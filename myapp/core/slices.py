"""Slices (docs/rules.md R15): a task fanned out over lists, one task instance per item.

A sliced task names inputs whose values are lists (a literal, a global parameter, an upstream
output holding a JSON list, a `files` output or a gathered list of files). When the task becomes ready its list
is read and one task instance per item is made, `NAME[i]`, each with its own attempts; the task
itself ends when its slices have all ended, with each output gathered, in order, into a list.

Pure: the YAML block, names, the items of a run, a slice's own task spec, the gathered outputs
and the outcome. Imports only the core model and states.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from myapp.core.errors import SpecError
from myapp.core.model import InputBinding, OutputSpec, PipelineSpec, SliceSpec, TaskSpec
from myapp.core.spec_fields import check_keys, put, read_bool, read_int, read_mapping, read_str_list
from myapp.core.states import TaskState

SLICES_KEYS = ("inputs", "parallelism", "continue_on_failed", "success_ratio")
MAX_SLICED_NAME = 50  # a slice is NAME[i] and task names are stored in at most 63 characters
MAX_SLICES = 10_000  # items of one sliced task in one run
ITEM_SOURCE = "[item]"  # the upstream a file item is read from: no task can have this name
_SLICE_NAME = re.compile(r"^(?P<task>[A-Za-z0-9_-]+)\[(?P<index>\d+)\]$")


class SliceError(Exception):
    """A sliced task's lists cannot be sliced (not a list, lengths differ): the task fails saying so."""


def slice_name(task: str, index: int) -> str:
    """Return the name of slice `index` of `task`: `train[3]`."""
    return f"{task}[{index}]"


def parent_of(name: str) -> tuple[str, int] | None:
    """Return (task, index) when `name` is a slice's name, else None (task names have no brackets)."""
    match = _SLICE_NAME.match(name)
    return None if match is None else (match["task"], int(match["index"]))


def task_for(spec: PipelineSpec, name: str) -> TaskSpec:
    """Return the task spec of a task instance: its task's, for a slice its sliced task's."""
    owner = parent_of(name)
    return spec.task(name if owner is None else owner[0])


def is_sliced(task: TaskSpec) -> bool:
    """Return True when the task is fanned out over lists."""
    return task.slices is not None


def parse_slices(raw: object, path: str) -> SliceSpec | None:
    """Parse a task's `slices` block (structure only; validate.py checks it against the task)."""
    if raw is None:
        return None
    where = f"{path}.slices"
    data = read_mapping(raw, where)
    check_keys(data, SLICES_KEYS, where)
    ratio = data.get("success_ratio")
    if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, (int, float))):
        raise SpecError(f"{where}.success_ratio", "must be a number between 0 and 1")
    return SliceSpec(
        inputs=read_str_list(data, "inputs", where),
        parallelism=read_int(data, "parallelism", where, default=0),
        continue_on_failed=read_bool(data, "continue_on_failed", where, default=False),
        success_ratio=None if ratio is None else float(ratio),
    )


def slices_to_dict(spec: SliceSpec) -> dict[str, object]:
    """Return the canonical `slices` block (defaults omitted)."""
    out: dict[str, object] = {"inputs": list(spec.inputs)}
    put(out, "parallelism", spec.parallelism, 0)
    put(out, "continue_on_failed", spec.continue_on_failed, False)
    if spec.success_ratio is not None:
        out["success_ratio"] = int(spec.success_ratio) if spec.success_ratio.is_integer() else spec.success_ratio
    return out


def slices_problems(task: TaskSpec) -> list[tuple[str, str]]:
    """Return (field, message) for each mistake in a task's `slices` block (R12)."""
    sl = task.slices
    if sl is None:
        return []
    problems: list[tuple[str, str]] = []
    if len(task.name) > MAX_SLICED_NAME:
        problems.append(("name", f"a sliced task's name has at most {MAX_SLICED_NAME} characters (slices are NAME[i])"))
    bound = {b.name: b for b in task.inputs}
    if not sl.inputs:
        problems.append(("slices.inputs", "name at least one input whose value is a list"))
    for name in sl.inputs:
        binding = bound.get(name)
        if binding is None:
            known = ", ".join(bound) or "none"
            problems.append(("slices.inputs", f"unknown input {name!r}: slice an input of this task (bound: {known})"))
        elif binding.source == "literal" and not isinstance(_json(binding.value or ""), list):
            problems.append((f"inputs.{name}", f"is sliced, so its value must be a list, not {binding.value!r}"))
    if len(set(sl.inputs)) != len(sl.inputs):
        problems.append(("slices.inputs", "an input is named twice"))
    if sl.parallelism < 0:
        problems.append(("slices.parallelism", f"{sl.parallelism} must be >= 0 (0 = no cap)"))
    if sl.success_ratio is not None and not 0 <= sl.success_ratio <= 1:
        problems.append(("slices.success_ratio", f"{sl.success_ratio} must be between 0 and 1"))
    if sl.success_ratio is not None and sl.continue_on_failed:
        problems.append(("slices.success_ratio", "give continue_on_failed or success_ratio, not both"))
    return problems


def sliced_source_problems(
    task: TaskSpec, producers: Mapping[str, TaskSpec], outputs: Mapping[str, Sequence[OutputSpec]]
) -> list[tuple[str, str]]:
    """Return (field, message) for a sliced input bound to an upstream output that is one file (R12).

    A `file` output of a task that is not sliced is one file or directory, never a list: slice over
    a `files` output (a list of files), a `text` output holding a JSON list, or a sliced task's
    gathered output. `producers` and `outputs` are the pipeline's tasks and their effective outputs.
    """
    if task.slices is None:
        return []
    bound = {b.name: b for b in task.inputs}
    problems: list[tuple[str, str]] = []
    for name in task.slices.inputs:
        binding = bound.get(name)
        if binding is None or binding.source != "task" or binding.task not in producers:
            continue
        declared = next((o for o in outputs.get(binding.task or "", ()) if o.name == binding.output), None)
        if declared is not None and declared.type == "file" and not is_sliced(producers[binding.task or ""]):
            problems.append(
                (
                    f"inputs.{name}",
                    f"is sliced, but {binding.task}.{binding.output} is one file (type: file), not a list: "
                    "declare it type: files (a directory whose files are the items)",
                )
            )
    return problems


def _json(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return None


def as_list(value: object, source: str) -> list[Any]:
    """Return the items a sliced input's value holds; SliceError saying why it is not a list.

    `value`: a literal's or parameter's text, or an upstream output as stored
    (`{type: text, value}`, or `{type: files, paths}` gathered from a sliced task).
    """
    if isinstance(value, Mapping):
        if value.get("type") == "files":
            return [None if p is None else {"type": "file", "path": p} for p in value.get("paths") or []]
        if value.get("type") == "file":
            raise SliceError(
                f"{source} is one file, not a list: declare the output type: files, or slice over a "
                "sliced task's gathered file output"
            )
        value = value.get("value", "")
    if value is None:
        raise SliceError(f"{source} was not produced")
    parsed = _json(str(value))
    if not isinstance(parsed, list):
        shown = str(value) if len(str(value)) <= 60 else str(value)[:57] + "..."
        raise SliceError(f"{source} is not a JSON list: {shown!r}")
    return [_text_item(item) for item in parsed]


def _text_item(item: object) -> dict[str, Any]:
    return {"type": "text", "value": item if isinstance(item, str) else json.dumps(item)}


def slice_items(task: TaskSpec, lists: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """Return each slice's items, {input: item}, zipping the sliced inputs' lists (equal lengths)."""
    assert task.slices is not None
    sizes = {name: len(lists[name]) for name in task.slices.inputs}
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{name}: {n}" for name, n in sizes.items())
        raise SliceError(f"task {task.name!r}: sliced inputs have different lengths ({shown})")
    count = next(iter(sizes.values()), 0)
    if count > MAX_SLICES:
        raise SliceError(f"task {task.name!r}: {count} items; at most {MAX_SLICES} slices")
    return [{name: lists[name][i] or _text_item(None) for name in task.slices.inputs} for i in range(count)]


def slice_task(task: TaskSpec, index: int, items: Mapping[str, Any]) -> tuple[TaskSpec, dict[str, dict[str, Any]]]:
    """Return slice `index`'s own task spec and the upstream outputs its file items are read from.

    Each sliced input is bound to its item: a text item as a literal, a file item as an output
    of the pseudo-task ITEM_SOURCE. The slice runs as `NAME[i]`, with the task's other fields.
    """
    inputs: list[InputBinding] = []
    files: dict[str, Any] = {}
    for binding in task.inputs:
        item = items.get(binding.name)
        if not isinstance(item, Mapping):
            inputs.append(binding)
        elif item.get("type") == "file":
            files[binding.name] = dict(item)
            inputs.append(InputBinding(name=binding.name, source="task", task=ITEM_SOURCE, output=binding.name))
        else:
            inputs.append(InputBinding(name=binding.name, source="literal", value=str(item.get("value", ""))))
    own = replace(task, name=slice_name(task.name, index), inputs=tuple(inputs), slices=None)
    return own, ({ITEM_SOURCE: files} if files else {})


def initial_queued(count: int, sl: SliceSpec) -> int:
    """Return how many slices are queued when the task starts (all, or `parallelism`)."""
    return count if sl.parallelism <= 0 else min(count, sl.parallelism)


def outcome(task: TaskSpec, states: Sequence[TaskState]) -> tuple[TaskState, str]:
    """Return the sliced task's end from its slices' ends, with a message.

    Skipped slices (their `when` was false) count as succeeded; the task is skipped when every
    slice was. It succeeds when the succeeded fraction is at least `success_ratio` (1: all;
    0 with continue_on_failed), else fails. No slices: succeeded.
    """
    assert task.slices is not None
    total = len(states)
    ok = sum(1 for s in states if s in (TaskState.SUCCEEDED, TaskState.SKIPPED))
    if total and all(s is TaskState.SKIPPED for s in states):
        return TaskState.SKIPPED, f"all {total} slices were skipped"
    need = (
        0.0
        if task.slices.continue_on_failed
        else (task.slices.success_ratio if task.slices.success_ratio is not None else 1.0)
    )
    said = f"{ok} of {total} slices succeeded"
    if not total or ok >= need * total:
        return TaskState.SUCCEEDED, "" if ok == total else said
    return TaskState.FAILED, f"{said}; {'all' if need >= 1 else f'success_ratio {need:g}'} needed"


def gather(task: TaskSpec, slices: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Return the task's outputs gathered from its slices' outputs, in slice order.

    A text output becomes a JSON list of the slices' texts, a file output `{type: files, paths}`;
    a slice that did not produce the output (it failed or was skipped) gives null in its place.
    A `files` output (each slice's own list) becomes one list, the slices' lists one after another.
    The outputs are those declared on the task and those any slice produced (a template's).
    """
    names = dict.fromkeys([o.name for o in task.outputs] + [n for produced in slices for n in produced])
    declared = {o.name: o.type for o in task.outputs}
    out: dict[str, Any] = {}
    for name in names:
        values = [produced.get(name) or {} for produced in slices]
        kind = next((v.get("type") for v in values if v), declared.get(name, "text"))
        if kind == "file":
            out[name] = {"type": "files", "paths": [v.get("path") for v in values]}
        elif kind == "files":
            out[name] = {"type": "files", "paths": [p for v in values for p in v.get("paths") or []]}
        else:
            out[name] = {"type": "text", "value": json.dumps([v.get("value") for v in values])}
    return out
