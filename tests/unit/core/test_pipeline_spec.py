"""Pipeline document <-> PipelineSpec: structure errors with field paths, canonical form, hash."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import pytest

from myapp.core.errors import SpecError
from myapp.core.model import GlobalOutput, GlobalParam, InputBinding, OutputSpec, Resources, ScheduleSpec
from myapp.core.pipeline_spec import parse_pipeline, pipeline_to_dict, spec_hash


def product_example() -> dict[str, Any]:
    """The pipeline of docs/rules.md P2, as yaml.safe_load gives it."""
    return {
        "name": "daily-etl",
        "project": "default",
        "description": "Nightly extract and load",
        "parameters": [{"name": "day", "default": "{{ execution_date[:10] }}", "description": "business day"}],
        "outputs": [{"name": "report", "from": "load.report"}],
        "schedule": {
            "type": "crontab",
            "cron": "0 2 * * *",
            "timezone": "Asia/Shanghai",
            "start_time": "2026-01-01T00:00:00",
            "depends_on_past": False,
            "expired_limit": 1,
            "max_active_runs": 1,
            "enabled": True,
        },
        "timeout": 3600,
        "tasks": [
            {
                "name": "extract",
                "template": "shell",
                "args": {"script": 'echo "{{ execution_date }}" > /tmp/day.txt'},
                "outputs": [
                    {"name": "day", "path": "/tmp/day.txt", "type": "text"},
                    {"name": "raw", "path": "/tmp/raw", "type": "file"},
                ],
                "retries": 2,
                "timeout": 600,
                "resources": {"cpu": "1", "memory": "1Gi", "gpu": 0},
            },
            {
                "name": "load",
                "image": "python:3.12-slim",
                "command": ["python", "-c", "import sys; print(sys.argv[1:])", "$day", "$raw"],
                "depends_on": ["extract"],
                "inputs": {
                    "day": {"from": "extract.day"},
                    "raw": {"from": "extract.raw"},
                    "when": {"from": "params.day"},
                    "mode": "fast",
                },
                "env": {"LOG_LEVEL": "info"},
            },
        ],
    }


def normalized_example() -> dict[str, Any]:
    """The canonical form of the example: defaults gone, everything else as written."""
    data = product_example()
    del data["project"]
    data["schedule"] = {
        "type": "crontab",
        "cron": "0 2 * * *",
        "timezone": "Asia/Shanghai",
        "start_time": "2026-01-01T00:00:00",
    }
    data["tasks"][0]["resources"] = {"cpu": "1", "memory": "1Gi"}
    return data


def test_parse_the_product_example() -> None:
    spec = parse_pipeline(product_example())
    assert spec.name == "daily-etl"
    assert spec.parameters == (GlobalParam("day", "{{ execution_date[:10] }}", "business day"),)
    assert spec.outputs == (GlobalOutput("report", "load", "report"),)
    assert spec.schedule == ScheduleSpec("crontab", "0 2 * * *", "Asia/Shanghai", datetime(2026, 1, 1))
    extract, load = spec.tasks
    assert extract.outputs[1] == OutputSpec("raw", "/tmp/raw", "file")
    assert extract.resources == Resources(cpu="1", memory="1Gi")
    assert load.command[-2:] == ("$day", "$raw")
    assert load.inputs == (
        InputBinding("day", "task", task="extract", output="day"),
        InputBinding("raw", "task", task="extract", output="raw"),
        InputBinding("when", "param", param="day"),
        InputBinding("mode", "literal", value="fast"),
    )


def test_canonical_form_omits_defaults_and_keeps_short_forms() -> None:
    assert pipeline_to_dict(parse_pipeline(product_example())) == normalized_example()


def test_canonical_form_is_a_fixed_point() -> None:
    normalized = normalized_example()
    assert pipeline_to_dict(parse_pipeline(normalized)) == normalized
    once = parse_pipeline(product_example())
    assert parse_pipeline(pipeline_to_dict(once)) == once


def test_canonical_key_order_follows_the_product_page() -> None:
    out: Any = pipeline_to_dict(parse_pipeline(product_example()))
    assert list(out) == ["name", "description", "parameters", "outputs", "schedule", "timeout", "tasks"]
    assert list(out["tasks"][1]) == ["name", "image", "command", "depends_on", "inputs", "env"]


def test_minimal_pipeline_gets_the_default_timezone() -> None:
    spec = parse_pipeline({"name": "x", "tasks": []}, default_timezone="Europe/Paris")
    assert spec.schedule == ScheduleSpec(timezone="Europe/Paris")
    assert pipeline_to_dict(spec) == {"name": "x", "schedule": {"timezone": "Europe/Paris"}, "tasks": []}


def test_other_input_forms_and_scalars_become_text() -> None:
    data = {
        "name": "x",
        "tasks": [
            {
                "name": "a",
                "image": "i",
                "command": ["c"],
                "inputs": {"n": 5, "f": 1.5, "b": True, "v": {"value": 3}, "j": {"value": {"k": [1]}}},
            }
        ],
    }
    inputs = parse_pipeline(data).tasks[0].inputs
    assert [b.value for b in inputs] == ["5", "1.5", "true", "3", '{"k":[1]}']
    out: Any = pipeline_to_dict(parse_pipeline(data))
    assert out["tasks"][0]["inputs"] == {"n": "5", "f": "1.5", "b": "true", "v": "3", "j": '{"k":[1]}'}


def test_position_alerts_retry_delay_and_start_time_forms() -> None:
    data = {
        "name": "x",
        "schedule": {"start_time": datetime(2026, 3, 1, 2, 30)},
        "alerts": {"webhooks": ["https://hooks.example/a"], "on": ["failed", "succeeded"]},
        "tasks": [{"name": "a", "image": "i", "command": ["c"], "retry_delay": 30, "position": {"x": 10, "y": 20.5}}],
    }
    spec = parse_pipeline(data)
    assert spec.tasks[0].position == (10.0, 20.5)
    assert spec.tasks[0].retry_delay == 30
    out: Any = pipeline_to_dict(spec)
    assert out["tasks"][0]["position"] == [10, 20.5]
    assert out["schedule"]["start_time"] == "2026-03-01T02:30:00"
    assert out["alerts"] == {"webhooks": ["https://hooks.example/a"], "on": ["failed", "succeeded"]}
    assert parse_pipeline(out) == spec


def test_nulls_count_as_absent() -> None:
    data = {
        "name": "x",
        "description": None,
        "schedule": None,
        "tasks": [{"name": "a", "image": "i", "command": ["c"], "env": None, "args": None, "retries": None}],
    }
    spec = parse_pipeline(data)
    assert spec.description == "" and spec.tasks[0].retries == 0


def _broken(path: str, value: object) -> dict[str, Any]:
    data = product_example()
    target: Any = data
    keys = path.split("/")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    last = keys[-1]
    if value is DELETE:
        del target[last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return data


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("colour", "red", "colour"),
        ("name", 3, "name"),
        ("name", DELETE, "name"),
        ("tasks", {"a": 1}, "tasks"),
        ("tasks/1/inputs/day/from", "extract", "tasks[load].inputs.day.from"),
        ("tasks/1/inputs/day/from", "extract.", "tasks[load].inputs.day.from"),
        ("tasks/1/inputs/day", {"from": "extract.day", "value": 1}, "tasks[load].inputs.day"),
        ("tasks/1/inputs/day", {"form": "extract.day"}, "tasks[load].inputs.day.form"),
        ("tasks/1/inputs/day", None, "tasks[load].inputs.day"),
        ("tasks/1/retries", "3", "tasks[load].retries"),
        ("tasks/1/retries", True, "tasks[load].retries"),
        ("tasks/1/command", "python -c x", "tasks[load].command"),
        ("tasks/1/command/0", 5, "tasks[load].command[0]"),
        ("tasks/1/env/LOG_LEVEL", {"a": 1}, "tasks[load].env.LOG_LEVEL"),
        ("tasks/1/position", [1], "tasks[load].position"),
        ("tasks/1/depends_on", "extract", "tasks[load].depends_on"),
        ("tasks/1/imagee", "x", "tasks[load].imagee"),
        ("tasks/0/outputs/0/type", "blob", "tasks[extract].outputs[0].type"),
        ("tasks/0/outputs/0/size", 1, "tasks[extract].outputs[0].size"),
        ("tasks/0/resources/gpu", "one", "tasks[extract].resources.gpu"),
        ("tasks/0/resources/disk", "1Gi", "tasks[extract].resources.disk"),
        ("tasks/0/args/script", object(), "tasks[extract].args.script"),
        ("schedule/cron", 5, "schedule.cron"),
        ("schedule/type", "weekly", "schedule.type"),
        ("schedule/start_time", "yesterday", "schedule.start_time"),
        ("schedule/start_time", "2026-01-01T00:00:00+08:00", "schedule.start_time"),
        ("schedule/enabled", "yes", "schedule.enabled"),
        ("parameters/0/default", ["a"], "parameters[0].default"),
        ("parameters/0/kind", "x", "parameters[0].kind"),
        ("outputs/0/from", "params.day", "outputs[0].from"),
        ("alerts", {"webhooks": "https://x"}, "alerts.webhooks"),
    ],
)
def test_structural_errors_name_the_field(path: str, value: object, field: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_pipeline(_broken(path, value))
    assert err.value.field == field


def test_unknown_keys_are_all_named() -> None:
    with pytest.raises(SpecError, match="'colour', 'size'"):
        parse_pipeline({"name": "x", "colour": 1, "size": 2})


def test_a_task_without_a_usable_name_is_named_by_index() -> None:
    with pytest.raises(SpecError) as err:
        parse_pipeline({"name": "x", "tasks": [{"image": "i"}]})
    assert err.value.field == "tasks[0].name"


def test_at_most_ten_thousand_tasks() -> None:
    data = {"name": "x", "tasks": [{"name": f"t{i}"} for i in range(10_001)]}
    with pytest.raises(SpecError, match="at most 10000"):
        parse_pipeline(data)


def test_hash_is_stable_and_tells_changed_from_unchanged() -> None:
    spec = parse_pipeline(product_example())
    assert spec_hash(spec) == spec_hash(parse_pipeline(copy.deepcopy(product_example())))
    assert spec_hash(spec) == spec_hash(parse_pipeline(pipeline_to_dict(spec)))
    assert len(spec_hash(spec)) == 64
    changed = _broken("tasks/0/retries", 3)
    assert spec_hash(parse_pipeline(changed)) != spec_hash(spec)


def test_trigger_rule_and_when_round_trip_and_defaults_are_omitted() -> None:
    doc = {
        "name": "p",
        "tasks": [
            {"name": "a", "image": "x", "command": ["true"]},
            {
                "name": "b",
                "image": "x",
                "command": ["true"],
                "depends_on": ["a"],
                "trigger_rule": "all_done",
                "when": "{{ params.go }}",
            },
        ],
    }
    spec = parse_pipeline(doc)
    assert (spec.tasks[0].trigger_rule, spec.tasks[0].when) == ("all_success", "")
    assert (spec.tasks[1].trigger_rule, spec.tasks[1].when) == ("all_done", "{{ params.go }}")
    out = pipeline_to_dict(spec)
    assert "trigger_rule" not in out["tasks"][0] and "when" not in out["tasks"][0]
    assert out["tasks"][1]["trigger_rule"] == "all_done" and out["tasks"][1]["when"] == "{{ params.go }}"
    assert parse_pipeline(out) == spec
