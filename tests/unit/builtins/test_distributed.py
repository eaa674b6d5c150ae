"""The `distributed` built-in: settings, per-rank pods and rendezvous env as pure data."""

from __future__ import annotations

import json

import pytest

from myapp.builtins.distributed import (
    Rendezvous,
    build_distributed,
    pod_prefix,
    rank_env,
    rendezvous_settings,
    resource_requirements,
)
from myapp.builtins.values import template_values
from myapp.catalog.plugins import TemplateError, parse_template
from myapp.core.errors import SpecError
from myapp.core.model import Resources, TaskSpec
from myapp.core.render import render_task
from tests.factories import from_param, make_catalog, make_context

DISTRIBUTED = make_catalog().get("distributed")
CTX = make_context(params={"n": "3"})


def plan_for(task: TaskSpec, inputs: dict[str, str] | None = None) -> object:
    assert DISTRIBUTED is not None
    inputs = inputs or {}
    rendered = render_task(task, DISTRIBUTED, CTX, inputs)
    settings = rendezvous_settings(DISTRIBUTED, template_values(task, DISTRIBUTED, CTX, inputs))
    return build_distributed(
        rendered,
        settings,
        prefix=pod_prefix(7, task.name, 1),
        namespace="ml",
        labels={"myapp.io/run-id": "7"},
        resources=Resources(cpu="2", memory="4Gi", gpu=1),
    )


def test_pods_per_rank_with_rendezvous_env() -> None:
    task = TaskSpec(name="train", template="distributed", args={"script": "python train.py", "workers": 3})
    plan = plan_for(task)
    pods = plan.pods  # type: ignore[attr-defined]
    assert [p["metadata"]["name"] for p in pods] == ["myapp-7-train-1-0", "myapp-7-train-1-1", "myapp-7-train-1-2"]
    assert [p["metadata"]["labels"]["myapp.io/role"] for p in pods] == ["master", "worker", "worker"]
    for rank, pod in enumerate(pods):
        container = pod["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["MASTER_ADDR"] == "myapp-7-train-1-0.myapp-7-train-1.ml.svc"
        assert (env["MASTER_PORT"], env["WORLD_SIZE"], env["RANK"], env["NODE_RANK"]) == (
            "29500",
            "3",
            str(rank),
            str(rank),
        )
        assert container["command"] == ["bash", "-c", "python train.py"]
        assert container["image"] == "python:3.12-slim"
        assert container["resources"]["limits"] == {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}
        assert pod["spec"]["hostname"] == f"myapp-7-train-1-{rank}" and pod["spec"]["subdomain"] == "myapp-7-train-1"
    service = plan.service  # type: ignore[attr-defined]
    assert service["spec"]["clusterIP"] == "None" and service["metadata"]["name"] == "myapp-7-train-1"
    assert service["spec"]["selector"]["myapp.io/job"] == "myapp-7-train-1"


def test_workers_can_come_from_a_global_parameter() -> None:
    task = TaskSpec(name="t", template="distributed", args={"script": "x"}, inputs=(from_param("workers", "n"),))
    assert len(plan_for(task, {"workers": "3"}).pods) == 3  # type: ignore[attr-defined]


def test_tensorflow_gets_tf_config() -> None:
    env = rank_env(Rendezvous(2, 2222, "tensorflow"), 1, ("a", "b"))
    assert json.loads(env["TF_CONFIG"]) == {
        "cluster": {"worker": ["a:2222", "b:2222"]},
        "task": {"type": "worker", "index": 1},
    }
    assert "TF_CONFIG" not in rank_env(Rendezvous(2, 2222, "pytorch"), 0, ("a", "b"))


def test_locally_the_template_is_a_world_of_one() -> None:
    assert DISTRIBUTED is not None
    rendered = render_task(
        TaskSpec(name="t", template="distributed", args={"script": "echo $RANK"}), DISTRIBUTED, CTX, {}
    )
    assert {k: rendered.env[k] for k in ("MASTER_ADDR", "WORLD_SIZE", "RANK")} == {
        "MASTER_ADDR": "127.0.0.1",
        "WORLD_SIZE": "1",
        "RANK": "0",
    }
    assert rendered.argv == ("bash", "-c", "echo $RANK")


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"workers": "0"}, "workers"),
        ({"workers": "1000"}, "workers"),
        ({"master_port": "x"}, "master_port"),
        ({"framework": "mpi"}, "framework"),
    ],
)
def test_bad_settings(values: dict[str, str], field: str) -> None:
    assert DISTRIBUTED is not None
    with pytest.raises(SpecError) as err:
        rendezvous_settings(DISTRIBUTED, values)
    assert err.value.field == field


def test_fixed_settings_in_extra_are_checked_at_registration() -> None:
    good = parse_template(
        {"name": "ddp", "kind": "distributed", "command": ["torchrun", "train.py"], "extra": {"workers": 4}}
    )
    assert rendezvous_settings(good, {}) == Rendezvous(4, 29500, "pytorch")
    with pytest.raises(TemplateError) as err:
        parse_template({"name": "ddp", "kind": "distributed", "extra": {"workers": 0}})
    assert err.value.field == "extra.workers"


def test_long_names_are_cut_to_dns_labels() -> None:
    prefix = pod_prefix(123456, "A_Very_Long_Task_Name_" * 4, 12)
    assert len(prefix) <= 50 and prefix == prefix.lower() and "_" not in prefix
    assert pod_prefix(123456, "A_Very_Long_Task_Name_" * 4, 13) != prefix
    assert resource_requirements(Resources()) == {}
