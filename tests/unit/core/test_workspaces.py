"""Workspaces: bindings parsed and exported, unknown `$(workspaces.NAME.path)` references refused
with the task and field named (task, template and SeqPod step texts), and references replaced
before rendering."""

from __future__ import annotations

from typing import Any

import pytest

from myapp.catalog.plugins import parse_template
from myapp.core.errors import SpecError
from myapp.core.model import WorkspaceBinding
from myapp.core.pipeline_spec import parse_pipeline
from myapp.core.task_spec import parse_task, task_to_dict
from myapp.core.validate import validate_pipeline
from myapp.core.workspaces import apply_workspaces, mount_path
from tests.factories import make_catalog

SEQ = parse_template(
    {
        "name": "seq",
        "kind": "seqpod",
        "image": "alpine:3",
        "extra": {
            "steps": [
                {"name": "a", "command": ["ls", "$(workspaces.data.path)"]},
                {"name": "b", "script": "cat $(workspaces.models.path)/m"},
            ]
        },
    }
)


def test_bindings_parse_and_round_trip() -> None:
    task = parse_task(
        {
            "name": "t",
            "image": "i",
            "command": ["ls"],
            "workspaces": {"data": {"claim": "nb-pvc", "path": "/mnt/data"}, "scratch": {}},
        },
        "tasks[0]",
    )
    assert task.workspaces == (WorkspaceBinding("data", "nb-pvc", "/mnt/data"), WorkspaceBinding("scratch"))
    assert parse_task(task_to_dict(task), "tasks[0]") == task
    assert [mount_path(b) for b in task.workspaces] == ["/mnt/data", "/workspaces/scratch"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"Bad_Name": {}}, "tasks[0].workspaces.Bad_Name"),
        ({"data": {"claim": "x", "mount": "/m"}}, "tasks[0].workspaces.data.mount"),
        ({"data": {"path": "relative/p"}}, "tasks[0].workspaces.data.path"),
        ({"data": {"path": "/a/../etc"}}, "tasks[0].workspaces.data.path"),
    ],
)
def test_bad_bindings_name_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_task({"name": "t", "image": "i", "command": ["ls"], "workspaces": raw}, "tasks[0]")
    assert caught.value.field == field


def test_unknown_references_are_refused_with_task_and_field() -> None:
    spec = parse_pipeline(
        {
            "name": "p",
            "tasks": [
                {
                    "name": "custom",
                    "image": "i",
                    "command": ["ls", "$(workspaces.data.path)"],
                    "env": {"OUT": "$(workspaces.out.path)/x"},
                    "workspaces": {"data": {"claim": "c"}},
                },
                {"name": "steps", "template": "seq", "workspaces": {"data": {"claim": "c"}}},
            ],
        }
    )
    errors = {e.field: e.message for e in validate_pipeline(spec, make_catalog(SEQ))}
    assert set(errors) == {"tasks[custom].env.OUT", "tasks[steps].template.extra.steps[1].script"}, errors
    assert "unknown workspace 'out' (the task binds: data)" in errors["tasks[custom].env.OUT"]
    assert "unknown workspace 'models'" in errors["tasks[steps].template.extra.steps[1].script"]


def test_references_are_replaced_in_task_template_and_steps() -> None:
    task = parse_task(
        {
            "name": "t",
            "template": "seq",
            "env": {"D": "$(workspaces.data.path)/in"},
            "workspaces": {"data": {}, "models": {}},
        },
        "tasks[0]",
    )
    new_task, new_template = apply_workspaces(task, SEQ, {"data": "/w/data", "models": "/w/models"})
    assert new_task.env == {"D": "/w/data/in"}
    assert new_template is not None
    assert new_template.extra["steps"] == [
        {"name": "a", "command": ["ls", "/w/data"]},
        {"name": "b", "script": "cat /w/models/m"},
    ]
    assert SEQ.extra["steps"][0]["command"] == ["ls", "$(workspaces.data.path)"]  # type: ignore[index]
