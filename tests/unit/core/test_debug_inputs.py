"""A debug run's inputs: given values win, then bindings, then the latest succeeded run; the rest is listed."""

from __future__ import annotations

import json

import pytest

from myapp.core.debug_inputs import plan_debug_inputs, require_complete
from myapp.core.errors import SpecError
from myapp.core.inputs import InputValue, resolve_inputs
from tests.factories import from_param, from_task, literal, make_task

STEP2 = make_task(
    "step2",
    inputs=(from_task("text", "step1.t"), from_task("path", "step1.f"), from_param("day"), literal("mode", "fast")),
)
OUTPUTS = {"step1": {"t": {"type": "text", "value": "hello"}, "f": {"type": "file", "path": "/art/1/step1/1/f"}}}


def test_upstream_inputs_come_from_the_latest_succeeded_run() -> None:
    plan = plan_debug_inputs(STEP2, {}, OUTPUTS, 7)
    assert plan.missing == () and plan.source_run_id == 7
    assert plan.stored() == {"text": "hello", "path": {"type": "file", "path": "/art/1/step1/1/f"}, "mode": "fast"}
    values = resolve_inputs(STEP2, {}, {"day": "2026-01-02"}, plan.stored())
    assert values == {
        "text": InputValue("text", "hello"),
        "path": InputValue("file", "/art/1/step1/1/f"),
        "mode": InputValue("text", "fast"),
        "day": InputValue("text", "2026-01-02"),
    }


def test_a_given_value_overrides_each_source() -> None:
    plan = plan_debug_inputs(STEP2, {"text": "mine", "mode": "slow", "day": "d"}, OUTPUTS, 7)
    filled = {i.name: (i.filled_from, i.value) for i in plan.inputs}
    assert filled["text"] == ("given", "mine") and filled["mode"] == ("given", "slow")
    assert filled["day"] == ("given", "d") and filled["path"] == ("run", "/art/1/step1/1/f")


def test_without_a_succeeded_run_every_upstream_input_is_named() -> None:
    plan = plan_debug_inputs(STEP2, {"text": "x"}, {}, None)
    assert plan.missing == ("path",)
    with pytest.raises(SpecError) as err:
        require_complete(plan, "demo")
    assert (
        "path" in str(err.value)
        and "no succeeded run" in str(err.value)
        and "text" not in err.value.message.split(":")[1]
    )


def test_an_output_the_run_did_not_produce_is_missing() -> None:
    plan = plan_debug_inputs(STEP2, {}, {"step1": {"t": {"type": "text", "value": "v"}}}, 3)
    assert plan.missing == ("path",)
    with pytest.raises(SpecError, match="latest succeeded run has no output"):
        require_complete(plan, "demo")


def test_a_retried_debug_run_reads_what_the_attempt_showed() -> None:
    shown = {"text": {"type": "text", "value": "hello"}, "path": {"type": "file", "value": "/ws/in/path"}}
    values = resolve_inputs(STEP2, {}, {}, shown)
    assert values["text"] == InputValue("text", "hello") and values["path"] == InputValue("file", "/ws/in/path")


JOIN = make_task("join", inputs=(from_task("shards", "split.shards"),))
FILES = {"split": {"shards": {"type": "files", "paths": ["/art/1/split/1/shards/0", None, "/art/1/split/1/shards/2"]}}}


def test_a_list_of_files_comes_from_the_latest_succeeded_run_like_a_file() -> None:
    plan = plan_debug_inputs(JOIN, {}, FILES, 7)
    assert plan.missing == () and plan.source_run_id == 7
    (item,) = plan.inputs
    assert (item.filled_from, item.kind, item.binding) == ("run", "files", "split.shards")
    paths = ["/art/1/split/1/shards/0", None, "/art/1/split/1/shards/2"]
    assert plan.stored() == {"shards": {"type": "files", "paths": paths}}
    assert resolve_inputs(JOIN, {}, {}, plan.stored()) == {"shards": InputValue("files", json.dumps(paths))}
    # what the attempt showed (`paths` kept beside the local `value`): a retried or copied debug run
    shown = {"shards": {"type": "files", "value": '["/ws/in/0", null, "/ws/in/2"]', "paths": paths}}
    assert resolve_inputs(JOIN, {}, {}, shown) == {"shards": InputValue("files", json.dumps(paths))}
