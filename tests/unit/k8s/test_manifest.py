"""Pure manifests of myapp/k8s/manifest.py, each validated through the official client's models."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from myapp.core.model import OutputSpec, Resources
from myapp.k8s.config import Placement
from myapp.k8s.manifest import (
    AttemptRef,
    PodPlan,
    attempt_labels,
    attempt_name,
    distributed_manifests,
    group_selector,
    pod_manifest,
    rank_addresses,
    resolve_resources,
    resource_manifest,
)
from tests.k8sfake.manifests import assert_model

API = client.ApiClient()
REF = AttemptRef(pipeline_id=7, run_id=12, task="Extract_Day", try_number=2, attempt_id=345, group="gpu")


def make_plan(**overrides: Any) -> PodPlan:
    values: dict[str, Any] = dict(
        ref=REF,
        namespace="pipelines",
        name=attempt_name("myapp", 12, "Extract_Day", 2),
        image="python:3.12-slim",
        argv=("python3", "-c", "print(1)"),
        env={"MYAPP_RUN_ID": "12", "day": "2026-01-01"},
        workdir="/tmp/workflow_space/12/Extract_Day/2",
        outputs=(OutputSpec("day", "/tmp/day.txt"),),
        resources=Resources(cpu="1", memory="1Gi", gpu=2),
        timeout=600,
        pvc="shared-space",
        placement=Placement(
            node_selector={"pool": "gpu"},
            service_account="runner",
            image_pull_secrets=("regcred",),
            tolerations=({"key": "gpu", "operator": "Exists", "effect": "NoSchedule"},),
        ),
    )
    values.update(overrides)
    return PodPlan(**values)


def test_names_derive_from_ids_and_stay_apart() -> None:
    assert attempt_name("myapp", 12, "extract", 1) == "myapp-12-extract-1"
    lossy = attempt_name("myapp", 12, "Extract_Day", 1)
    assert lossy.startswith("myapp-12-extract-day-") and lossy.endswith("-1")
    assert lossy != attempt_name("myapp", 12, "extract-day", 1) != attempt_name("myapp", 12, "extract_day", 1)
    long = attempt_name("myapp", 123456, "t" * 63, 17)
    assert len(long) <= 52 and long.endswith("-17") and long == attempt_name("myapp", 123456, "t" * 63, 17)


def test_labels_carry_pipeline_run_task_try_and_group() -> None:
    labels = attempt_labels(REF)
    assert labels["myapp/pipeline"] == "7" and labels["myapp/run"] == "12"
    assert labels["myapp/task"] == "Extract_Day" and labels["myapp/try"] == "2"
    assert labels["myapp/attempt"] == "345" and labels["myapp/group"] == "gpu"
    assert group_selector("gpu") == "app.kubernetes.io/managed-by=myapp,myapp/group=gpu"


def test_pod_manifest_is_a_valid_v1_pod() -> None:
    pod = pod_manifest(make_plan())
    assert_model(API, pod, "V1Pod")
    spec = pod["spec"]
    main = spec["containers"][0]
    assert spec["restartPolicy"] == "Never" and spec["activeDeadlineSeconds"] == 600
    assert spec["serviceAccountName"] == "runner" and spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert spec["nodeSelector"] == {"pool": "gpu"} and spec["tolerations"][0]["key"] == "gpu"
    assert spec["volumes"] == [{"name": "workflow-space", "persistentVolumeClaim": {"claimName": "shared-space"}}]
    assert main["volumeMounts"] == [{"name": "workflow-space", "mountPath": "/tmp/workflow_space"}]
    assert main["resources"]["limits"] == {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "2"}
    assert main["command"][:2] == ["/bin/sh", "-c"] and main["args"] == ["python3", "-c", "print(1)"]
    env = {e["name"]: e["value"] for e in main["env"]}
    assert env["MYAPP_WORKDIR"] == main["workingDir"] == "/tmp/workflow_space/12/Extract_Day/2"
    assert env["MYAPP_OUTPUTS"] == "text:day:/tmp/day.txt" and env["day"] == "2026-01-01"


def test_without_a_claim_or_timeout_the_pod_uses_an_empty_dir_and_no_deadline() -> None:
    pod = pod_manifest(make_plan(pvc="", timeout=0, resources=Resources(), placement=Placement()))
    assert_model(API, pod, "V1Pod")
    assert pod["spec"]["volumes"] == [{"name": "workflow-space", "emptyDir": {}}]
    assert "activeDeadlineSeconds" not in pod["spec"] and pod["spec"]["containers"][0]["resources"] == {}


def test_distributed_manifests_are_a_headless_service_and_one_pod_per_rank() -> None:
    plan = make_plan()
    addresses = rank_addresses(plan, 3)
    envs = [{"RANK": str(r), "MASTER_ADDR": addresses[0]} for r in range(3)]
    service, pods = distributed_manifests(plan, 29500, envs)
    assert_model(API, service, "V1Service")
    for pod in pods:
        assert_model(API, pod, "V1Pod")
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"] == {"myapp/attempt": "345", "app.kubernetes.io/managed-by": "myapp"}
    assert [p["metadata"]["name"] for p in pods] == [f"{plan.name}-{r}" for r in range(3)]
    assert all(p["spec"]["hostname"] == p["metadata"]["name"] and p["spec"]["subdomain"] == plan.name for p in pods)
    assert addresses[0] == f"{plan.name}-0.{plan.name}.pipelines.svc"
    envs_of = [{e["name"]: e["value"] for e in p["spec"]["containers"][0]["env"]} for p in pods]
    assert [e["RANK"] for e in envs_of] == ["0", "1", "2"]
    assert "MYAPP_OUTPUTS" in envs_of[0] and all("MYAPP_OUTPUTS" not in e for e in envs_of[1:])
    assert [p["metadata"]["labels"]["myapp/role"] for p in pods] == ["master", "worker", "worker"]


def test_a_resource_gets_the_attempt_labels_and_namespace() -> None:
    job = {
        "apiVersion": "batch.example.com/v1",
        "kind": "TrainingJob",
        "metadata": {"name": "mnist", "labels": {"a": "b"}},
    }
    out = resource_manifest(job, make_plan())
    assert out["metadata"]["namespace"] == "pipelines" and out["metadata"]["labels"]["a"] == "b"
    assert out["metadata"]["labels"]["myapp/attempt"] == "345"
    assert job["metadata"]["labels"] == {"a": "b"}, "the template's manifest was changed in place"


def test_resources_come_from_task_package_template_then_config() -> None:
    packages = {"big": Resources(cpu="8", memory="32Gi", gpu=1)}
    default = Resources(cpu="500m", memory="512Mi")
    assert resolve_resources(Resources(), None, default, packages) == default
    assert resolve_resources(Resources(memory="2Gi"), Resources(cpu="1"), default, packages) == Resources(
        cpu="1", memory="2Gi"
    )
    assert resolve_resources(
        Resources(cpu="2", package="big"), Resources(cpu="1", memory="1Gi"), default, packages
    ) == Resources(cpu="2", memory="32Gi", gpu=1)
    assert resolve_resources(Resources(gpu=4), None, default, packages, monitoring=True) == Resources(
        cpu="100m", memory="128Mi"
    )
    with pytest.raises(KeyError, match="'small' is unknown; known: big"):
        resolve_resources(Resources(package="small"), None, default, packages)


def test_a_pod_names_its_secret_env_vars_and_the_watcher_reads_their_values_back() -> None:
    from myapp.k8s.pods import parse_pod

    plan = make_plan(
        env={"MYAPP_RUN_ID": "12", "password": "correct-horse", "day": "2026-01-01"}, secret_env=("password",)
    )
    pod = pod_manifest(plan)
    assert pod["metadata"]["annotations"]["myapp/secret-env"] == "password"  # the name, never the value
    assert "correct-horse" not in str(pod["metadata"])
    view = parse_pod(pod)
    assert view.secrets == ("correct-horse",) and "correct-horse" not in repr(view)
    assert parse_pod(pod_manifest(make_plan())).secrets == ()


def test_every_object_carries_the_installation_and_the_watcher_selects_on_it() -> None:
    from dataclasses import replace

    from myapp.k8s.config import installation_id, make_url_safe
    from myapp.settings import Settings

    ref = replace(REF, installation="prod-a")
    assert attempt_labels(ref)["myapp/installation"] == "prod-a"
    assert (
        group_selector("gpu", "prod-a")
        == "app.kubernetes.io/managed-by=myapp,myapp/group=gpu,myapp/installation=prod-a"
    )
    one = Settings(database_url="postgresql://app:s3cret@db1/myapp")
    assert installation_id(one) == installation_id(Settings(database_url="postgresql://app:other@db1/myapp")), (
        "the password is no part of the id"
    )
    assert installation_id(one) != installation_id(Settings(database_url="postgresql://app:s3cret@db2/myapp"))
    assert make_url_safe("postgresql://app:s3cret@db1/myapp") == "postgresql://app@db1/myapp"
    assert installation_id(Settings(installation_id="staging")) == "staging"


def test_pods_mount_only_their_projects_part_of_the_workflow_space() -> None:
    from dataclasses import replace

    from myapp.k8s.manifest import PodPlan, pod_manifest, project_subpath

    plan = PodPlan(
        ref=REF,
        namespace="ns",
        name="p",
        image="x",
        argv=("true",),
        env={},
        workdir="/space/ml/12/t/1",
        mount="/space",
        pvc="shared",
        subpath=project_subpath("ml"),
    )
    mounts = pod_manifest(plan)["spec"]["containers"][0]["volumeMounts"]
    assert mounts == [{"name": "workflow-space", "mountPath": "/space/ml", "subPath": "ml"}]
    assert project_subpath("../etc") == "etc" and project_subpath("") == "default"
    assert pod_manifest(replace(plan, subpath=""))["spec"]["containers"][0]["volumeMounts"][0] == {
        "name": "workflow-space",
        "mountPath": "/space",
    }


def test_seqpod_steps_of_other_images_are_init_containers_before_the_last_step() -> None:
    pod = pod_manifest(
        make_plan(
            init_steps=(("step-fetch", "busybox:1.36", ("sh", "-c", "echo 1")), ("step-b", "python:3", ("true",))),
            steps=("fetch", "b", "last"),
            workspaces=(("data", "default-data", "/mnt/data"),),
        )
    )
    assert_model(API, pod, "V1Pod")
    spec, main = pod["spec"], pod["spec"]["containers"][0]
    assert [(c["name"], c["image"]) for c in spec["initContainers"]] == [
        ("step-fetch", "busybox:1.36"),
        ("step-b", "python:3"),
    ]
    first = spec["initContainers"][0]
    assert first["args"] == ["sh", "-c", "echo 1"] and first["command"] == main["command"]
    assert first["workingDir"] == main["workingDir"] and first["volumeMounts"] == main["volumeMounts"]
    assert first["resources"] == main["resources"]
    assert "MYAPP_OUTPUTS" not in {e["name"] for e in first["env"]}  # only the last step hands outputs over
    assert "MYAPP_OUTPUTS" in {e["name"] for e in main["env"]}
    assert pod["metadata"]["annotations"]["myapp/steps"] == "fetch,b,last"
    assert "initContainers" not in pod_manifest(make_plan())["spec"]
