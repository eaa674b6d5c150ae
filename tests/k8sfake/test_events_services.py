# The client types every model field Optional and annotates bodies as models while accepting
# dict manifests at run time (pydantic validate_call); asserting each away would drown the tests.
# mypy: disable-error-code="union-attr, arg-type, no-untyped-call, index, operator, attr-defined, type-var"
"""Core v1 events (listing by field selector, aggregation, watch) and services."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, watch

from tests.k8sfake import FakeKubeServer
from tests.k8sfake.manifests import assert_model, make_pod, make_service, raw_get


def test_events_are_listed_by_involved_object(
    kube: FakeKubeServer, api_client: client.ApiClient, core: client.CoreV1Api
) -> None:
    pod = core.create_namespaced_pod("team", make_pod("pod-a"))
    core.create_namespaced_pod("team", make_pod("pod-b"))
    kube.add_event(
        "team",
        ("Pod", "pod-a"),
        "Scheduled",
        "Successfully assigned team/pod-a to fake-node",
        component="default-scheduler",
    )
    kube.add_event("team", ("Pod", "pod-a"), "BackOff", "Back-off pulling image", type="Warning")
    kube.add_event("team", ("Pod", "pod-b"), "Pulled", "Container image pulled")
    found = core.list_namespaced_event("team", field_selector="involvedObject.name=pod-a,involvedObject.kind=Pod")
    assert [(e.reason, e.type) for e in found.items] == [("Scheduled", "Normal"), ("BackOff", "Warning")]
    first = found.items[0]
    assert isinstance(first, client.CoreV1Event)
    assert (first.involved_object.uid, first.involved_object.namespace) == (pod.metadata.uid, "team")
    assert first.source.component == "default-scheduler" and first.count == 1
    warnings = core.list_namespaced_event("team", field_selector="type=Warning")
    assert [e.involved_object.name for e in warnings.items] == ["pod-a"]
    assert_model(api_client, raw_get(api_client, "/api/v1/namespaces/team/events")[1], "CoreV1EventList")


def test_repeated_events_are_aggregated(kube: FakeKubeServer, core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("team", make_pod("a"))
    for _ in range(3):
        kube.add_event("team", ("Pod", "a"), "BackOff", "Back-off restarting failed container", type="Warning")
    (event,) = core.list_namespaced_event("team").items
    assert event.count == 3


def test_events_can_be_watched(kube: FakeKubeServer, core: client.CoreV1Api) -> None:
    since = core.list_namespaced_event("team").metadata.resource_version
    kube.add_event("team", ("Pod", "a"), "Killing", "Stopping container main")
    stream = watch.Watch().stream(core.list_namespaced_event, "team", resource_version=since, timeout_seconds=5)
    event = next(iter(stream))
    assert (event["type"], event["object"].reason) == ("ADDED", "Killing")


def test_headless_service_lifecycle(api_client: client.ApiClient, core: client.CoreV1Api) -> None:
    created = core.create_namespaced_service("team", make_service("workers"))
    assert isinstance(created, client.V1Service)
    assert created.spec.cluster_ip == "None" and created.spec.type == "ClusterIP"
    assert created.spec.ports[0].protocol == "TCP"
    assert core.read_namespaced_service("workers", "team").metadata.uid == created.metadata.uid
    core.create_namespaced_service("team", make_service("api", headless=False))
    listed = core.list_namespaced_service("team")
    assert [s.metadata.name for s in listed.items] == ["api", "workers"]
    assert listed.items[0].spec.cluster_ip.startswith("10.96.")
    assert_model(api_client, raw_get(api_client, "/api/v1/namespaces/team/services/api")[1], "V1Service")
    deleted = core.delete_namespaced_service("workers", "team")
    assert isinstance(deleted, client.V1Service) and deleted.metadata.name == "workers"
    with pytest.raises(client.ApiException) as caught:
        core.read_namespaced_service("workers", "team")
    assert json.loads(caught.value.body)["message"] == 'services "workers" not found'


def test_service_names_are_dns1035_labels(core: client.CoreV1Api) -> None:
    with pytest.raises(client.ApiException) as caught:
        core.create_namespaced_service("team", make_service("1workers"))
    assert caught.value.status == 422
    assert json.loads(caught.value.body)["message"].startswith(
        'Service "1workers" is invalid: metadata.name: Invalid value: "1workers": a DNS-1035 label'
    )
