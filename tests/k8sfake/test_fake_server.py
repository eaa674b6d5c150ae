# The client types every model field Optional and annotates bodies as models while accepting
# dict manifests at run time (pydantic validate_call); asserting each away would drown the tests.
# mypy: disable-error-code="union-attr, arg-type, no-untyped-call, index, operator, attr-defined, type-var"
"""Pods through the official client: CRUD, errors, selectors, patches, deletion, model shapes."""

from __future__ import annotations

import json
import time

import pytest
from kubernetes import client

from tests.k8sfake import FakeKubeServer
from tests.k8sfake.manifests import assert_model, make_pod, raw_get


def _status(error: client.ApiException) -> dict[str, object]:
    body: dict[str, object] = json.loads(error.body)
    return body


def test_create_read_list_delete_pod(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_pod("team", make_pod("pod-a"))
    assert isinstance(created, client.V1Pod)
    assert created.kind == "Pod" and created.api_version == "v1"
    assert created.metadata.uid and created.metadata.creation_timestamp is not None
    assert created.metadata.namespace == "team"
    assert created.status.phase == "Pending" and created.status.qos_class == "BestEffort"
    assert created.spec.containers[0].termination_message_path == "/dev/termination-log"
    assert created.spec.containers[0].image_pull_policy == "IfNotPresent"

    read = core.read_namespaced_pod("pod-a", "team")
    assert read.metadata.resource_version == created.metadata.resource_version

    second = core.create_namespaced_pod("team", make_pod("pod-b"))
    assert int(second.metadata.resource_version) > int(created.metadata.resource_version)
    listed = core.list_namespaced_pod("team")
    assert [p.metadata.name for p in listed.items] == ["pod-a", "pod-b"]
    assert int(listed.metadata.resource_version) >= int(second.metadata.resource_version)

    deleted = core.delete_namespaced_pod("pod-a", "team")
    assert isinstance(deleted, client.V1Pod) and deleted.metadata.name == "pod-a"
    with pytest.raises(client.ApiException) as missing:
        core.read_namespaced_pod("pod-a", "team")
    assert missing.value.status == 404


def test_not_found_is_a_404_status(core: client.CoreV1Api) -> None:
    with pytest.raises(client.ApiException) as caught:
        core.read_namespaced_pod("nope", "team")
    assert (caught.value.status, caught.value.reason) == (404, "Not Found")
    assert _status(caught.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "kind": "pods"},
        "code": 404,
    }


def test_creating_twice_is_a_409_already_exists(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("team", make_pod("pod-a"))
    with pytest.raises(client.ApiException) as caught:
        core.create_namespaced_pod("team", make_pod("pod-a"))
    assert (caught.value.status, caught.value.reason) == (409, "Conflict")
    assert _status(caught.value)["reason"] == "AlreadyExists"
    assert _status(caught.value)["message"] == 'pods "pod-a" already exists'


def test_pod_without_containers_is_422_invalid(core: client.CoreV1Api) -> None:
    manifest = make_pod("empty")
    manifest["spec"]["containers"] = []
    with pytest.raises(client.ApiException) as caught:
        core.create_namespaced_pod("team", manifest)
    status = _status(caught.value)
    assert (caught.value.status, status["reason"]) == (422, "Invalid")
    assert status["message"] == 'Pod "empty" is invalid: spec.containers: Required value'
    assert status["details"] == {
        "name": "empty",
        "kind": "Pod",
        "causes": [{"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers"}],
    }


def test_bad_name_is_422_with_the_rfc1123_message(core: client.CoreV1Api) -> None:
    with pytest.raises(client.ApiException) as caught:
        core.create_namespaced_pod("team", make_pod("Bad_Name"))
    assert _status(caught.value)["message"] == (
        'Pod "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain '
        "must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    )


def test_several_errors_are_listed_in_brackets(core: client.CoreV1Api) -> None:
    manifest = make_pod("two-errors")
    manifest["spec"]["containers"] = [{"name": "main"}, {"name": "main", "image": "x"}]
    with pytest.raises(client.ApiException) as caught:
        core.create_namespaced_pod("team", manifest)
    assert _status(caught.value)["message"] == (
        'Pod "two-errors" is invalid: [spec.containers[0].image: Required value, '
        'spec.containers[1].name: Duplicate value: "main"]'
    )


def test_generate_name_appends_five_characters(core: client.CoreV1Api) -> None:
    manifest = make_pod("")
    manifest["metadata"] = {"generateName": "task-"}
    created = core.create_namespaced_pod("team", manifest)
    assert created.metadata.name.startswith("task-") and len(created.metadata.name) == 10


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["web-a", "web-b"]),
        ("app==web", ["web-a", "web-b"]),
        ("app!=web", ["db", "plain"]),
        ("tier in (front, back)", ["db", "web-a"]),
        ("tier notin (front)", ["db", "plain", "web-b"]),
        ("tier", ["db", "web-a"]),
        ("!tier", ["plain", "web-b"]),
        ("app=web,tier in (front)", ["web-a"]),
        ("index>1", ["web-b"]),
    ],
)
def test_label_selectors(core: client.CoreV1Api, selector: str, expected: list[str]) -> None:
    for name, labels in (
        ("web-a", {"app": "web", "tier": "front", "index": "1"}),
        ("web-b", {"app": "web", "index": "2"}),
        ("db", {"app": "db", "tier": "back"}),
        ("plain", {}),
    ):
        core.create_namespaced_pod("team", make_pod(name, labels=labels))
    found = core.list_namespaced_pod("team", label_selector=selector)
    assert sorted(p.metadata.name for p in found.items) == expected


def test_malformed_label_selector_is_400(core: client.CoreV1Api) -> None:
    with pytest.raises(client.ApiException) as caught:
        core.list_namespaced_pod("team", label_selector="app in web")
    assert caught.value.status == 400 and _status(caught.value)["reason"] == "BadRequest"


def test_field_selectors_on_name_and_phase(kube: FakeKubeServer, core: client.CoreV1Api) -> None:
    for name in ("a", "b", "c"):
        core.create_namespaced_pod("team", make_pod(name))
    kube.set_pod_phase("team", "b", "Running")
    by_name = core.list_namespaced_pod("team", field_selector="metadata.name=a")
    running = core.list_namespaced_pod("team", field_selector="status.phase=Running")
    not_running = core.list_namespaced_pod("team", field_selector="status.phase!=Running,metadata.name!=a")
    assert [p.metadata.name for p in by_name.items] == ["a"]
    assert [p.metadata.name for p in running.items] == ["b"]
    assert [p.metadata.name for p in not_running.items] == ["c"]
    with pytest.raises(client.ApiException) as caught:
        core.list_namespaced_pod("team", field_selector="spec.image=busybox")
    assert (caught.value.status, _status(caught.value)["message"]) == (400, "field label not supported: spec.image")


def test_list_across_namespaces_and_paging(core: client.CoreV1Api) -> None:
    for namespace, name in (("one", "a"), ("two", "b"), ("two", "c")):
        core.create_namespaced_pod(namespace, make_pod(name))
    everywhere = core.list_pod_for_all_namespaces(label_selector="app=demo")
    assert [(p.metadata.namespace, p.metadata.name) for p in everywhere.items] == [
        ("one", "a"),
        ("two", "b"),
        ("two", "c"),
    ]
    first = core.list_pod_for_all_namespaces(limit=2)
    assert len(first.items) == 2 and first.metadata.remaining_item_count == 1
    rest = core.list_pod_for_all_namespaces(limit=2, _continue=first.metadata._continue)
    assert [p.metadata.name for p in rest.items] == ["c"] and rest.metadata._continue is None


def test_delete_collection_by_label(core: client.CoreV1Api) -> None:
    for name, run in (("a", "1"), ("b", "1"), ("c", "2")):
        core.create_namespaced_pod("team", make_pod(name, labels={"run": run}))
    core.delete_collection_namespaced_pod("team", label_selector="run=1")
    assert [p.metadata.name for p in core.list_namespaced_pod("team").items] == ["c"]


def test_merge_strategic_and_json_patches(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_pod("team", make_pod("a"))
    merged = core.patch_namespaced_pod("a", "team", {"metadata": {"labels": {"stage": "two", "app": None}}})
    assert merged.metadata.labels == {"stage": "two"}
    assert int(merged.metadata.resource_version) > int(created.metadata.resource_version)
    patched = core.patch_namespaced_pod(
        "a", "team", [{"op": "add", "path": "/metadata/annotations", "value": {"k": "v"}}]
    )
    assert patched.metadata.annotations == {"k": "v"}
    same = core.patch_namespaced_pod("a", "team", {"metadata": {"labels": {"stage": "two"}}})
    assert same.metadata.resource_version == patched.metadata.resource_version  # no-op: no new version


def test_stale_resource_version_is_409_conflict(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_pod("team", make_pod("a"))
    core.patch_namespaced_pod("a", "team", {"metadata": {"labels": {"x": "1"}}})
    stale = {"metadata": {"resourceVersion": created.metadata.resource_version, "labels": {"x": "2"}}}
    with pytest.raises(client.ApiException) as caught:
        core.patch_namespaced_pod("a", "team", stale)
    assert _status(caught.value)["reason"] == "Conflict"
    assert _status(caught.value)["message"] == (
        'Operation cannot be fulfilled on pods "a": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


def test_status_changes_only_through_the_status_subresource(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("team", make_pod("a"))
    ignored = core.patch_namespaced_pod("a", "team", {"status": {"phase": "Running"}})
    assert ignored.status.phase == "Pending"
    applied = core.patch_namespaced_pod_status("a", "team", {"status": {"phase": "Running"}})
    assert applied.status.phase == "Running"


def test_pod_spec_is_immutable_except_images(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("team", make_pod("a"))
    image = [{"op": "replace", "path": "/spec/containers/0/image", "value": "busybox:1.37"}]
    assert core.patch_namespaced_pod("a", "team", image).spec.containers[0].image == "busybox:1.37"
    with pytest.raises(client.ApiException) as caught:
        core.patch_namespaced_pod("a", "team", {"spec": {"restartPolicy": "Always"}})
    assert caught.value.status == 422
    assert str(_status(caught.value)["message"]).startswith(
        'Pod "a" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`'
    )


def test_deleting_a_running_pod_is_graceful(kube: FakeKubeServer, core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("team", make_pod("a"))
    kube.set_pod_phase("team", "a", "Running")
    kube.settings.hold_pod_deletions = True
    terminating = core.delete_namespaced_pod("a", "team")
    assert terminating.metadata.deletion_timestamp is not None
    assert terminating.metadata.deletion_grace_period_seconds == 30
    assert core.read_namespaced_pod("a", "team").metadata.deletion_timestamp is not None
    kube.complete_pod_deletion("team", "a")
    assert core.list_namespaced_pod("team").items == []


def test_missing_namespace_is_404_without_auto_creation() -> None:
    with FakeKubeServer(auto_create_namespaces=False) as kube:
        core = client.CoreV1Api(kube.api_client())
        with pytest.raises(client.ApiException) as caught:
            core.create_namespaced_pod("nowhere", make_pod("a"))
        assert _status(caught.value)["message"] == 'namespaces "nowhere" not found'
        core.create_namespace({"metadata": {"name": "nowhere"}})
        assert core.create_namespaced_pod("nowhere", make_pod("a")).metadata.namespace == "nowhere"


def test_served_objects_match_the_client_models(
    kube: FakeKubeServer, api_client: client.ApiClient, core: client.CoreV1Api
) -> None:
    core.create_namespaced_pod("team", make_pod("a", containers=("main", "side")))
    assert_model(api_client, raw_get(api_client, "/api/v1/namespaces/team/pods/a")[1], "V1Pod")
    for step in (
        lambda: kube.set_pod_phase("team", "a", "Pending"),
        lambda: kube.set_pod_phase("team", "a", "Running"),
        lambda: kube.finish_pod("team", "a", 3, "boom", container="side"),
        lambda: kube.finish_pod("team", "a", 0),
    ):
        step()
        assert_model(api_client, raw_get(api_client, "/api/v1/namespaces/team/pods/a")[1], "V1Pod")
    assert_model(api_client, raw_get(api_client, "/api/v1/namespaces/team/pods")[1], "V1PodList")
    assert_model(api_client, raw_get(api_client, "/api/v1/namespaces/team")[1], "V1Namespace")
    code, missing = raw_get(api_client, "/api/v1/namespaces/team/pods/zzz")
    assert code == 404
    assert_model(api_client, missing, "V1Status")


def test_finished_pod_reports_exit_codes_and_phase(kube: FakeKubeServer, core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("team", make_pod("a", containers=("main", "side")))
    kube.set_pod_phase("team", "a", "Running")
    kube.finish_pod("team", "a", 0, container="side")
    assert core.read_namespaced_pod("a", "team").status.phase == "Running"
    kube.finish_pod("team", "a", 2, "termination message text", container="main")
    pod = core.read_namespaced_pod("a", "team")
    states = {s.name: s.state.terminated for s in pod.status.container_statuses}
    assert pod.status.phase == "Failed"
    assert (states["main"].exit_code, states["main"].reason, states["main"].message) == (
        2,
        "Error",
        "termination message text",
    )
    assert (states["side"].exit_code, states["side"].reason) == (0, "Completed")


def test_strategic_merge_matches_containers_by_name(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("team", make_pod("a", containers=("main", "side")))
    patched = core.patch_namespaced_pod("a", "team", {"spec": {"containers": [{"name": "side", "image": "alpine:3"}]}})
    assert [(c.name, c.image) for c in patched.spec.containers] == [("main", "busybox:1.36"), ("side", "alpine:3")]
    assert patched.spec.containers[1].termination_message_path == "/dev/termination-log"


def test_server_side_apply_creates_then_merges(core: client.CoreV1Api) -> None:
    manifest = make_pod("applied")
    apply = {"field_manager": "myapp", "_content_type": "application/apply-patch+yaml"}
    first = core.patch_namespaced_pod("applied", "team", manifest, **apply)
    again = core.patch_namespaced_pod("applied", "team", manifest, **apply)
    assert first.metadata.uid == again.metadata.uid
    assert again.metadata.resource_version == first.metadata.resource_version  # nothing changed


def test_dry_run_create_validates_without_storing(core: client.CoreV1Api) -> None:
    checked = core.create_namespaced_pod("team", make_pod("a"), dry_run="All")
    assert checked.metadata.uid and checked.metadata.resource_version is None
    assert core.list_namespaced_pod("team").items == []
    with pytest.raises(client.ApiException) as caught:
        core.create_namespaced_pod("team", make_pod("Bad"), dry_run="All")
    assert caught.value.status == 422


def test_a_held_request_waits_until_released_then_is_served(kube: FakeKubeServer, core: client.CoreV1Api) -> None:
    import threading

    hold = kube.hold_requests("GET", r"^/api/v1/namespaces/default/pods$", watch=False)
    answers: list[int] = []
    lister = threading.Thread(target=lambda: answers.append(len(core.list_namespaced_pod("default").items)))
    lister.start()
    deadline = time.monotonic() + 10
    while not hold.waiting and time.monotonic() < deadline:
        time.sleep(0.01)
    assert hold.waiting and answers == []
    core.create_namespaced_pod("default", make_pod("made-while-held"))  # other requests are served meanwhile
    hold.release()
    lister.join(10)
    assert answers == [1], "the held list is served after its release, with the state at that time"
    assert len(core.list_namespaced_pod("default").items) == 1, "only `times` requests are held"
