# The client types every model field Optional and annotates bodies as models while accepting
# dict manifests at run time (pydantic validate_call); asserting each away would drown the tests.
# mypy: disable-error-code="union-attr, arg-type, no-untyped-call, index, operator, attr-defined, type-var"
"""Discovery, custom resources through the dynamic client, and batch/v1 Jobs."""

from __future__ import annotations

import pytest
from kubernetes import client, watch
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError

from tests.k8sfake import FakeKubeServer
from tests.k8sfake.manifests import assert_model, make_pod, raw_get

GROUP, VERSION, KIND, PLURAL = "batch.tensorstack.dev", "v1beta1", "TensorFlowTrainingJob", "tensorflowtrainingjobs"


def tf_job(name: str, replicas: int = 2) -> dict[str, object]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name, "labels": {"run": "7"}},
        "spec": {"replicaSpecs": [{"type": "worker", "replicas": replicas, "template": make_pod("t")}]},
        "status": {"phase": "made-up"},
    }


@pytest.fixture
def dyn(kube: FakeKubeServer) -> DynamicClient:
    kube.register_crd(group=GROUP, version=VERSION, kind=KIND, plural=PLURAL)
    return kube.dynamic_client()


def test_discovery_documents_match_the_models(kube: FakeKubeServer, api_client: client.ApiClient) -> None:
    kube.register_crd(group=GROUP, version=VERSION, kind=KIND, plural=PLURAL)
    assert_model(api_client, raw_get(api_client, "/api")[1], "V1APIVersions")
    groups = assert_model(api_client, raw_get(api_client, "/apis")[1], "V1APIGroupList")
    assert {g.name for g in groups.groups} >= {"batch", "apiextensions.k8s.io", GROUP}
    core = assert_model(api_client, raw_get(api_client, "/api/v1")[1], "V1APIResourceList")
    assert {"pods", "pods/log", "pods/status", "services", "events", "namespaces"} <= {r.name for r in core.resources}
    custom = assert_model(api_client, raw_get(api_client, f"/apis/{GROUP}/{VERSION}")[1], "V1APIResourceList")
    assert [(r.name, r.kind, r.namespaced) for r in custom.resources] == [
        (PLURAL, KIND, True),
        (f"{PLURAL}/status", KIND, True),
    ]
    assert raw_get(api_client, "/apis/nope.example.com/v1")[0] == 404
    assert client.VersionApi(api_client).get_code().git_version.startswith("v1.")


def test_custom_resource_lifecycle_through_the_dynamic_client(kube: FakeKubeServer, dyn: DynamicClient) -> None:
    jobs = dyn.resources.get(api_version=f"{GROUP}/{VERSION}", kind=KIND)
    created = jobs.create(body=tf_job("tf-a"), namespace="team")
    assert created.metadata.uid and created.metadata.generation == 1
    assert created.status is None  # status is dropped on create when the subresource exists
    kube.set_status("team", PLURAL, "tf-a", {"conditions": [{"type": "Running", "status": "True"}]})
    fetched = jobs.get(name="tf-a", namespace="team")
    assert [(c.type, c.status) for c in fetched.status.conditions] == [("Running", "True")]
    patched = jobs.patch(
        body={"spec": {"replicaSpecs": []}}, name="tf-a", namespace="team", content_type="application/merge-patch+json"
    )
    assert patched.metadata.generation == 2 and patched.status.conditions[0].type == "Running"
    status_only = jobs.status.patch(
        body={"status": {"phase": "Succeeded"}},
        name="tf-a",
        namespace="team",
        content_type="application/merge-patch+json",
    )
    assert status_only.status.phase == "Succeeded" and status_only.metadata.generation == 2
    listed = jobs.get(namespace="team", label_selector="run=7")
    assert [item.metadata.name for item in listed.items] == ["tf-a"]
    assert listed.items[0].kind == KIND  # custom list items keep kind/apiVersion
    deleted = jobs.delete(name="tf-a", namespace="team")
    assert (deleted.kind, deleted.status, deleted.details.name) == ("Status", "Success", "tf-a")
    with pytest.raises(NotFoundError):
        jobs.get(name="tf-a", namespace="team")


def test_custom_resource_watch_and_finalizers(kube: FakeKubeServer, dyn: DynamicClient) -> None:
    jobs = dyn.resources.get(api_version=f"{GROUP}/{VERSION}", kind=KIND)
    since = jobs.get(namespace="team").metadata.resourceVersion
    body = tf_job("tf-b")
    body["metadata"]["finalizers"] = ["example.com/cleanup"]
    jobs.create(body=body, namespace="team")
    held = jobs.delete(name="tf-b", namespace="team")
    assert held.metadata.deletionTimestamp is not None  # kept until the finalizer is removed
    jobs.patch(
        body={"metadata": {"finalizers": None}},
        name="tf-b",
        namespace="team",
        content_type="application/merge-patch+json",
    )
    events = []
    for event in jobs.watch(namespace="team", resource_version=since, timeout=5):
        events.append(event["type"])
        if len(events) == 3:
            break
    assert events == ["ADDED", "MODIFIED", "DELETED"]


def test_custom_objects_api_and_a_crd_created_over_http(api_client: client.ApiClient) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                    "subresources": {"status": {}},
                }
            ],
        },
    }
    created = client.ApiextensionsV1Api(api_client).create_custom_resource_definition(crd)
    assert [c.type for c in created.status.conditions] == ["NamesAccepted", "Established"]
    custom = client.CustomObjectsApi(api_client)
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}}
    custom.create_namespaced_custom_object("example.com", "v1", "team", "widgets", widget)
    got = custom.get_namespaced_custom_object("example.com", "v1", "team", "widgets", "w")
    assert got["spec"] == {"size": 3} and got["kind"] == "Widget"
    with pytest.raises(client.ApiException) as caught:
        custom.create_namespaced_custom_object("example.com", "v1", "team", "widgets", widget)
    assert caught.value.status == 409
    assert '"widgets.example.com \\"w\\" already exists"' in caught.value.body


def test_batch_jobs_create_get_watch_delete(kube: FakeKubeServer, api_client: client.ApiClient) -> None:
    batch = client.BatchV1Api(api_client)
    since = batch.list_namespaced_job("team").metadata.resource_version
    template = make_pod("t")
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "job-a"},
        "spec": {"template": {"metadata": {}, "spec": template["spec"]}},
    }
    created = batch.create_namespaced_job("team", manifest)
    assert created.spec.backoff_limit == 6 and created.spec.completions == 1
    assert created.spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": created.metadata.uid}
    assert created.spec.template.metadata.labels["job-name"] == "job-a"
    assert_model(api_client, raw_get(api_client, "/apis/batch/v1/namespaces/team/jobs/job-a")[1], "V1Job")
    kube.set_status("team", "jobs", "job-a", {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]})
    assert batch.read_namespaced_job_status("job-a", "team").status.succeeded == 1
    status = batch.delete_namespaced_job("job-a", "team")  # typed as `object`: a Job or a Status
    assert (status["kind"], status["status"], status["details"]["group"]) == ("Status", "Success", "batch")
    stream = watch.Watch().stream(batch.list_namespaced_job, "team", resource_version=since, timeout_seconds=5)
    kinds = []
    for event in stream:
        kinds.append(event["type"])
        if len(kinds) == 3:
            break
    assert kinds == ["ADDED", "MODIFIED", "DELETED"]


def test_job_restart_policy_must_be_never_or_on_failure(api_client: client.ApiClient) -> None:
    template = make_pod("t", restart_policy="Always")
    manifest = {"metadata": {"name": "job-b"}, "spec": {"template": {"spec": template["spec"]}}}
    with pytest.raises(client.ApiException) as caught:
        client.BatchV1Api(api_client).create_namespaced_job("team", manifest)
    assert caught.value.status == 422
    assert (
        '"Job.batch \\"job-b\\" is invalid: spec.template.spec.restartPolicy: Unsupported value: '
        '\\"Always\\": supported values: \\"OnFailure\\", \\"Never\\""' in caught.value.body
    )


def test_strategic_merge_on_a_custom_resource_is_415(dyn: DynamicClient) -> None:
    jobs = dyn.resources.get(api_version=f"{GROUP}/{VERSION}", kind=KIND)
    jobs.create(body=tf_job("tf-c"), namespace="team")
    with pytest.raises(client.ApiException) as caught:  # the dynamic client's default patch type
        jobs.patch(body={"spec": {}}, name="tf-c", namespace="team")
    assert caught.value.status == 415
