"""Slices (docs/rules.md R15), the pure part: the YAML block, names, items, a slice's spec, gathering, outcome."""

from __future__ import annotations

import json
from typing import Any

import pytest

from myapp.core import slices
from myapp.core.errors import SpecError
from myapp.core.model import SliceSpec
from myapp.core.pipeline_spec import parse_pipeline, pipeline_to_dict
from myapp.core.states import TaskState
from myapp.core.validate import validate_pipeline
from tests.factories import make_catalog, make_template

DOC: dict[str, Any] = {
    "name": "sweep",
    "parameters": [{"name": "lrs", "default": "[0.1, 0.2]"}],
    "tasks": [
        {"name": "grid", "image": "busybox", "command": ["true"], "outputs": [{"name": "lrs", "path": "/tmp/l"}]},
        {
            "name": "train",
            "image": "busybox",
            "command": ["echo", "$lr", "$seed"],
            "inputs": {"lr": {"from": "grid.lrs"}, "seed": [1, 2], "mode": "fast"},
            "outputs": [{"name": "score", "path": "/tmp/s", "type": "text"}],
            "slices": {"inputs": ["lr", "seed"], "parallelism": 4, "success_ratio": 0.5},
        },
    ],
}


def errors(doc: dict[str, Any]) -> dict[str, str]:
    return {e.field: e.message for e in validate_pipeline(parse_pipeline(doc), make_catalog(make_template()))}


def with_slices(**block: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(DOC))
    doc["tasks"][1]["slices"] = block
    return doc


def test_the_block_round_trips_and_validates() -> None:
    spec = parse_pipeline(DOC)
    assert spec.task("train").slices == SliceSpec(inputs=("lr", "seed"), parallelism=4, success_ratio=0.5)
    assert pipeline_to_dict(spec)["tasks"][1]["slices"] == DOC["tasks"][1]["slices"]
    assert parse_pipeline(pipeline_to_dict(spec)) == spec
    assert errors(DOC) == {}
    assert spec.sliced == frozenset({"train"})


@pytest.mark.parametrize(
    ("block", "field", "words"),
    [
        ({"inputs": ["nope"]}, "tasks[train].slices.inputs", "unknown input 'nope'"),
        ({"inputs": []}, "tasks[train].slices.inputs", "at least one input"),
        ({"inputs": ["mode"]}, "tasks[train].inputs.mode", "must be a list"),
        ({"inputs": ["lr"], "parallelism": -1}, "tasks[train].slices.parallelism", ">= 0"),
        ({"inputs": ["lr"], "success_ratio": 1.5}, "tasks[train].slices.success_ratio", "between 0 and 1"),
        (
            {"inputs": ["lr"], "success_ratio": 0.5, "continue_on_failed": True},
            "tasks[train].slices.success_ratio",
            "not both",
        ),
    ],
)
def test_mistakes_are_named(block: dict[str, Any], field: str, words: str) -> None:
    found = errors(with_slices(**block))
    assert words in found.get(field, ""), found


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ({"inputs": "lr"}, "tasks[t].slices.inputs"),
        ({"inputs": ["lr"], "each": 1}, "tasks[t].slices"),
        ({"inputs": ["lr"], "success_ratio": "most"}, "tasks[t].slices.success_ratio"),
    ],
)
def test_structure_errors_name_the_field(block: dict[str, Any], field: str) -> None:
    doc = {
        "name": "p",
        "tasks": [{"name": "t", "image": "i", "command": ["c"], "inputs": {"lr": [1]}, "slices": block}],
    }
    with pytest.raises(SpecError) as caught:
        parse_pipeline(doc)
    assert caught.value.field.startswith(field)


def test_long_names_leave_room_for_the_index() -> None:
    doc = with_slices(inputs=["lr"])
    doc["tasks"][1]["name"] = "t" * 51
    assert "at most 50" in errors(doc)["tasks[" + "t" * 51 + "].name"]


def test_names() -> None:
    assert slices.slice_name("train", 3) == "train[3]"
    assert slices.parent_of("train[3]") == ("train", 3)
    assert slices.parent_of("train") is None and slices.parent_of("a[b]") is None
    spec = parse_pipeline(DOC)
    assert slices.task_for(spec, "train[12]") is spec.task("train")


def test_lists_from_text_and_gathered_files_and_what_is_not_a_list() -> None:
    assert slices.as_list('[1, "a", {"k": 1}]', "x") == [
        {"type": "text", "value": "1"},
        {"type": "text", "value": "a"},
        {"type": "text", "value": '{"k": 1}'},
    ]
    assert slices.as_list({"type": "text", "value": "[]"}, "x") == []
    assert slices.as_list({"type": "files", "paths": ["p0", None]}, "x") == [{"type": "file", "path": "p0"}, None]
    for bad, words in [("3", "not a JSON list"), ({"type": "file", "path": "p"}, "one file"), (None, "not produced")]:
        with pytest.raises(slices.SliceError, match=words):
            slices.as_list(bad, "input 'lr' (grid.lrs)")


def test_items_zip_equal_lengths() -> None:
    task = parse_pipeline(DOC).task("train")
    a, b = slices.as_list("[1, 2]", "a"), slices.as_list("[3, 4]", "b")
    items = slices.slice_items(task, {"lr": a, "seed": b})
    assert [i["seed"]["value"] for i in items] == ["3", "4"]
    with pytest.raises(slices.SliceError, match="different lengths"):
        slices.slice_items(task, {"lr": a, "seed": b[:1]})


def test_a_slice_binds_its_items_and_keeps_the_rest() -> None:
    task = parse_pipeline(DOC).task("train")
    own, files = slices.slice_task(
        task, 1, {"lr": {"type": "file", "path": "runs/1/grid/lrs"}, "seed": {"type": "text", "value": "2"}}
    )
    assert own.name == "train[1]" and own.slices is None and own.command == task.command
    by_name = {b.name: b for b in own.inputs}
    assert by_name["seed"].source == "literal" and by_name["seed"].value == "2"
    assert by_name["mode"] == next(b for b in task.inputs if b.name == "mode")
    assert (by_name["lr"].source, by_name["lr"].task) == ("task", slices.ITEM_SOURCE)
    assert files == {slices.ITEM_SOURCE: {"lr": {"type": "file", "path": "runs/1/grid/lrs"}}}


def test_outcome_by_ratio_skips_and_empty() -> None:
    task = parse_pipeline(DOC).task("train")  # success_ratio 0.5
    ok, bad, skip = TaskState.SUCCEEDED, TaskState.FAILED, TaskState.SKIPPED
    assert slices.outcome(task, [ok, bad])[0] is ok
    state, message = slices.outcome(task, [ok, bad, bad])
    assert state is bad and "1 of 3 slices succeeded" in message and "0.5" in message
    assert slices.outcome(task, [skip, skip])[0] is skip
    assert slices.outcome(task, [skip, bad])[0] is ok
    assert slices.outcome(task, [])[0] is ok
    strict = parse_pipeline(with_slices(inputs=["lr"])).task("train")
    assert slices.outcome(strict, [ok, ok, bad])[0] is bad
    lenient = parse_pipeline(with_slices(inputs=["lr"], continue_on_failed=True)).task("train")
    assert slices.outcome(lenient, [bad, bad])[0] is ok


def test_gather_in_order_with_null_for_missing() -> None:
    task = parse_pipeline(DOC).task("train")
    out = slices.gather(
        task,
        [
            {"score": {"type": "text", "value": "a"}, "model": {"type": "file", "path": "m0"}},
            {},
            {"score": {"type": "text", "value": "c"}, "model": {"type": "file", "path": "m2"}},
        ],
    )
    assert json.loads(out["score"]["value"]) == ["a", None, "c"]
    assert out["model"] == {"type": "files", "paths": ["m0", None, "m2"]}
    assert slices.gather(task, []) == {"score": {"type": "text", "value": "[]"}}


def test_parallelism_queues_at_most_the_cap() -> None:
    assert slices.initial_queued(10, SliceSpec(inputs=("x",), parallelism=3)) == 3
    assert slices.initial_queued(10, SliceSpec(inputs=("x",))) == 10


def _over(kind: str, sliced_producer: bool = False) -> dict[str, Any]:
    doc = json.loads(json.dumps(DOC))
    doc["tasks"][0]["outputs"] = [{"name": "lrs", "path": "out", "type": kind}]
    if sliced_producer:
        doc["tasks"][0]["inputs"] = {"k": [1, 2]}
        doc["tasks"][0]["slices"] = {"inputs": ["k"]}
    return doc


def test_slicing_over_one_file_is_refused_at_save_and_a_list_of_files_is_not() -> None:
    problems = errors(_over("file"))
    assert "tasks[train].inputs.lr" in problems, problems
    assert "grid.lrs is one file" in problems["tasks[train].inputs.lr"]
    assert "type: files" in problems["tasks[train].inputs.lr"]
    assert errors(_over("files")) == {}
    assert errors(_over("file", sliced_producer=True)) == {}  # a sliced task's file output is gathered: a list
    assert errors(_over("text")) == {}
    with pytest.raises(SpecError, match="text, file or files"):
        parse_pipeline(_over("filez"))


def test_a_files_output_round_trips() -> None:
    doc = pipeline_to_dict(parse_pipeline(_over("files")))
    assert doc["tasks"][0]["outputs"] == [{"name": "lrs", "path": "out", "type": "files"}]


def test_gather_concatenates_the_slices_lists_of_files() -> None:
    task = parse_pipeline(DOC).task("train")
    out = slices.gather(
        task,
        [{"parts": {"type": "files", "paths": ["a0", "a1"]}}, {}, {"parts": {"type": "files", "paths": ["c0"]}}],
    )
    assert out["parts"] == {"type": "files", "paths": ["a0", "a1", "c0"]}
