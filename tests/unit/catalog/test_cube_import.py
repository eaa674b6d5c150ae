"""Cube Studio job templates -> myapp templates: the mapping of every field and type."""

from __future__ import annotations

from typing import Any

import pytest

from myapp.catalog.cube_import import cube_records, cube_to_template, plain_text
from myapp.catalog.plugins import parse_template, template_to_dict
from myapp.core.errors import SpecError
from myapp.core.model import TaskSpec
from myapp.core.render import render_task
from tests.factories import make_context


def arg(type_: str = "str", **over: Any) -> dict[str, Any]:
    """One Cube parameter in the shape of job_template_args."""
    base = {
        "type": type_,
        "item_type": "str",
        "label": "",
        "require": 0,
        "choice": [],
        "range": "",
        "default": "",
        "placeholder": "",
        "describe": "",
        "editable": 1,
    }
    return base | over


RAY_SKLEARN = {
    "project_name": "机器学习框架",
    "image_name": "ccr.ccs.tencentyun.com/cube-studio/ray-sklearn:20240101",
    "gitpath": "https://github.com/tencentmusic/cube-studio/tree/master/job-template/job/ray_sklearn",
    "job_template_name": "ray-sklearn",
    "job_template_describe": "sklearn基于ray的分布式",
    "job_template_command": "python3 launcher.py",
    "job_template_volume": "kubeflow-user-workspace(pvc):/mnt, 4G(memory):/dev/shm",
    "job_template_account": "kubeflow-pipeline",
    "job_template_env": "NO_RESOURCE_CHECK=true\nTASK_RESOURCE_CPU=2\n",
    "job_template_expand": {"index": 1, "help_url": "https://example.org/ray_sklearn"},
    "job_template_args": {
        "训练": {
            "--train_csv_file_path": arg(
                label="训练集csv", default="/mnt/{{creator}}/ml-label.csv", describe="训练集csv，逗号分割符"
            ),
            "--model_name": arg(
                label="模型名称",
                require=1,
                choice=["LogisticRegression", "SVC"],
                default="SVC",
                describe="<b>模型</b> <a target='_blank' href='https://x.y/z'>docs</a>",
            ),
            "--model_args_dict": arg("json", default={"max_depth": 5, "min_samples_leaf": 10}),
        },
        "公共配置": {
            "--num_worker": arg("int", require=1, range="1,11", default="2", placeholder="2-10"),
            "--learning_rate": arg("float", range="0,1", default=0.1),
            "--verbose": arg("bool", default=True, editable=0),
            "--metrics": arg("multiple", choice=["auc", "f1"], default=["auc", "f1"]),
            "--day": arg("date", default="{{ execution_date[:10] }}"),
            "--script": arg("text", default="print(1)\nprint(2)"),
            "-n": arg("list", default=["a", "b"]),
        },
    },
}


def by_name(spec: Any) -> dict[str, Any]:
    return {p.name: p for p in spec.parameters}


def test_a_real_shaped_record_maps_every_field() -> None:
    spec = cube_to_template(RAY_SKLEARN)
    assert (spec.ref, spec.kind, spec.category, spec.args_style) == ("ray-sklearn@1", "pod", "机器学习框架", "cli")
    assert spec.image == RAY_SKLEARN["image_name"] and spec.command == ("python3", "launcher.py")
    assert spec.env == {"NO_RESOURCE_CHECK": "true", "TASK_RESOURCE_CPU": "2"}
    assert spec.mounts == ("kubeflow-user-workspace(pvc):/mnt", "4G(memory):/dev/shm")
    cube = spec.extra["cube"]
    assert cube["groups"]["训练"] == ["train_csv_file_path", "model_name", "model_args_dict"]  # type: ignore[index]
    assert cube["flags"] == {"n": "-n"} and cube["service_account"] == "kubeflow-pipeline"  # type: ignore[index]
    assert cube["ui"]["num_worker"]["placeholder"] == "2-10" and cube["ui"]["verbose"]["editable"] == 0  # type: ignore[index]
    assert "Upstream documentation: https://example.org/ray_sklearn" in spec.readme
    assert "| model_name | choice | yes | SVC |" in spec.readme


def test_parameter_types_choices_ranges_and_defaults() -> None:
    p = by_name(cube_to_template(RAY_SKLEARN))
    assert (p["model_name"].type, p["model_name"].choices, p["model_name"].required) == (
        "choice",
        ("LogisticRegression", "SVC"),
        True,
    )
    assert p["model_name"].description == "模型 docs (https://x.y/z)" and p["model_name"].label == "模型名称"
    assert (p["model_args_dict"].type, p["model_args_dict"].default) == (
        "json",
        {"max_depth": 5, "min_samples_leaf": 10},
    )
    assert (p["num_worker"].type, p["num_worker"].minimum, p["num_worker"].maximum, p["num_worker"].default) == (
        "integer",
        1,
        10,
        2,
    )  # Cube's max is exclusive
    assert (p["learning_rate"].type, p["learning_rate"].minimum, p["learning_rate"].maximum) == ("number", 0, 1)
    assert (p["verbose"].type, p["verbose"].default) == ("boolean", True)
    assert (p["metrics"].type, p["metrics"].default, p["metrics"].pattern) == (
        "string",
        "auc,f1",
        "(auc|f1)(,(auc|f1))*",
    )
    assert (p["day"].type, p["day"].pattern) == ("string", r"\d{4}-\d{2}-\d{2}")
    assert (p["script"].type, p["n"].type, p["n"].default) == ("text", "string", "a,b")
    assert p["train_csv_file_path"].default == "/mnt/{{creator}}/ml-label.csv" and not p["train_csv_file_path"].required


def test_imported_template_renders_cube_style_flags() -> None:
    spec = cube_to_template(RAY_SKLEARN)
    task = TaskSpec(name="fit", template="ray-sklearn", args={"num_worker": 4})
    argv = render_task(task, spec, make_context(), {}).argv
    assert argv[:2] == ("python3", "launcher.py")
    assert "--num_worker=4" in argv and "--model_name=SVC" in argv and "--verbose=true" in argv
    assert "--train_csv_file_path=/mnt/alice/ml-label.csv" in argv  # {{creator}} rendered at run time
    assert '--model_args_dict={"max_depth":5,"min_samples_leaf":10}' in argv


def test_round_trip_through_template_yaml() -> None:
    spec = cube_to_template(RAY_SKLEARN)
    assert parse_template(template_to_dict(spec)) == spec


def test_records_from_a_file_shape() -> None:
    assert cube_records(RAY_SKLEARN) == [("", RAY_SKLEARN)]
    assert cube_records({"a": RAY_SKLEARN, "b": RAY_SKLEARN}) == [("a", RAY_SKLEARN), ("b", RAY_SKLEARN)]
    assert cube_records([RAY_SKLEARN]) == [("", RAY_SKLEARN)]
    with pytest.raises(SpecError):
        cube_records(["x"])


def test_names_from_the_key_or_given() -> None:
    chinese = RAY_SKLEARN | {"job_template_name": "自定义镜像"}
    assert cube_to_template(chinese, key="custom-image").name == "custom-image"
    assert cube_to_template(chinese, name="mine", version="2").ref == "mine@2"
    with pytest.raises(SpecError, match="give --name"):
        cube_to_template(chinese)
    assert cube_to_template(RAY_SKLEARN | {"job_template_name": "Ray_SKLearn v2"}).name == "ray-sklearn-v2"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"image_name": ""}, "image_name"),
        ({"job_template_env": "not a pair"}, "job_template_env"),
        ({"job_template_command": "python 'unclosed"}, "job_template_command"),
        ({"job_template_args": {"g": {"--x": arg("colour")}}}, "job_template_args.g.--x.type"),
        ({"job_template_args": {"g": {"--x": arg("int", default="many")}}}, "job_template_args.g.--x.default"),
        ({"job_template_args": {"g": {"--a-b": arg(), "--a_b": arg()}}}, "job_template_args.g.--a_b"),
        ({"job_template_args": {"g": ["--x"]}}, "job_template_args.g"),
        ({"job_template_args": {"g": {"--x": arg(choice=["a"], default="b")}}}, "job_template_args.g.--x.default"),
    ],
)
def test_errors_name_the_cube_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as err:
        cube_to_template(RAY_SKLEARN | change)
    assert err.value.field == field


def test_plain_text() -> None:
    assert plain_text("a <a target='_blank' href='https://u'>link<a> &amp; <i>b</i>") == "a link & b"
    assert plain_text('<a href="https://u">docs</a>') == "docs (https://u)"
