"""The files that deploy myapp itself (docker/): the compose file parses and wires every process,
and every Kubernetes manifest deserializes into the official client's model of its kind.

No Docker engine or cluster runs here, so these are checks of the files, not of a deployment.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from myapp.settings import Settings
from tests.k8sfake.manifests import assert_model

DOCKER = Path(__file__).resolve().parents[2] / "docker"
MODELS = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Secret"): "V1Secret",
    ("v1", "Service"): "V1Service",
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("batch/v1", "Job"): "V1Job",
    ("rbac.authorization.k8s.io/v1", "Role"): "V1Role",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "V1RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "V1ClusterRoleBinding",
}
SETTINGS = {f"MYAPP_{f.name.upper()}" for f in dataclasses.fields(Settings)} | {"MYAPP_ADMIN_PASSWORD"}


def manifests() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((DOCKER / "k8s" / "kustomization.yaml").read_text())
    docs = [d for name in kustomization["resources"] for d in yaml.safe_load_all((DOCKER / "k8s" / name).read_text())]
    return [d for d in docs if d]


@pytest.mark.parametrize("doc", manifests(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_is_a_valid_model(doc: dict[str, Any]) -> None:
    model = MODELS[(doc["apiVersion"], doc["kind"])]
    assert_model(client.ApiClient(), doc, model)


def test_the_workers_may_manage_pods_services_events_logs_and_custom_resources() -> None:
    role = next(d for d in manifests() if d["kind"] == "Role")
    granted = {
        (g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
    }
    for verb in ("create", "get", "list", "watch", "delete"):
        assert ("", "pods", verb) in granted
    assert ("", "pods/log", "get") in granted and ("", "events", "watch") in granted
    assert {("", "services", v) for v in ("create", "delete")} <= granted
    assert any(g not in ("", "batch") and v == "create" for g, _, v in granted), "no custom resource group"
    binding = next(d for d in manifests() if d["kind"] == "RoleBinding")
    assert binding["subjects"][0]["name"] == "myapp" and binding["roleRef"]["name"] == role["metadata"]["name"]


def test_deployments_run_the_product_commands_with_known_settings() -> None:
    docs = manifests()
    commands = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["args"][0]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
    }
    assert commands == {
        "myapp-init": "init",
        "myapp-web": "webserver",
        "myapp-worker": "worker",
        "myapp-beat": "beat",
        "myapp-k8s-watcher": "k8s-watcher",
    }
    env = {k for d in docs if d["kind"] in ("ConfigMap", "Secret") for k in (d.get("data") or d.get("stringData"))}
    assert env <= SETTINGS, env - SETTINGS
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert config["MYAPP_K8S_WORKFLOW_SPACE_PVC"] in claims and config["MYAPP_EXECUTOR"] == "kubernetes"


def test_the_compose_file_wires_postgres_redis_web_beat_and_two_workers() -> None:
    compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "init", "web", "beat", "worker-1", "worker-2"} <= set(services)
    assert services["web"]["command"][0] == "webserver" and services["beat"]["command"] == ["beat"]
    assert services["worker-1"]["command"][0] == services["worker-2"]["command"][0] == "worker"
    for name in ("web", "beat", "worker-1", "worker-2", "init", "k8s-watcher"):
        svc = services[name]
        assert svc["image"] == "myapp:latest" and svc["build"]["dockerfile"] == "docker/Dockerfile"
        assert set(svc["environment"]) <= SETTINGS
        assert svc["environment"]["MYAPP_DATABASE_URL"].startswith("postgresql://")
    assert services["init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["web"]["depends_on"]["init"]["condition"] == "service_completed_successfully"


def test_the_dockerfile_builds_one_image_for_every_process() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", text, re.M) and "npm run build" in text
    assert 'ENTRYPOINT ["myapp"]' in text
    extras = re.search(r'pip install "\.\[([a-z0-9,]+)\]"', text)
    assert extras and {"postgres", "s3"} <= set(extras.group(1).split(",")), (
        "the image needs PostgreSQL's driver and the S3 artifact repository's (docs/artifacts.md)"
    )
    for copied in ("myapp", "config", "plugins"):
        assert re.search(rf"^COPY {copied} {copied}$", text, re.M)
