# The client types every model field Optional and annotates bodies as models while accepting
# dict manifests at run time (pydantic validate_call); asserting each away would drown the tests.
# mypy: disable-error-code="union-attr, arg-type, no-untyped-call, index, operator, attr-defined, type-var"
"""Watches through kubernetes.watch.Watch: order, replay, selectors, 410 Gone, bookmarks, endings."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from kubernetes import client, watch

from tests.k8sfake import FakeKubeServer
from tests.k8sfake.manifests import assert_model, make_pod

Event = dict[str, Any]


def take(stream: Iterator[Event], count: int) -> list[Event]:
    """Return the first `count` events, then close the stream."""
    events: list[Event] = []
    for event in stream:
        events.append(event)
        if len(events) == count:
            break
    return events


def summary(events: list[Event]) -> list[tuple[str, str, str]]:
    return [(e["type"], e["object"].metadata.name, e["object"].status.phase) for e in events]


def collect_in_background(stream: Iterator[Event], count: int) -> tuple[threading.Thread, list[Event]]:
    events: list[Event] = []
    thread = threading.Thread(target=lambda: events.extend(take(stream, count)), daemon=True)
    thread.start()
    return thread, events


def test_events_replay_in_order_from_a_listed_resource_version(kube: FakeKubeServer, core: client.CoreV1Api) -> None:
    since = core.list_namespaced_pod("team", label_selector="app=demo").metadata.resource_version
    core.create_namespaced_pod("team", make_pod("a"))
    core.create_namespaced_pod("team", make_pod("other", labels={"app": "other"}))
    kube.set_pod_phase("team", "a", "Running")
    core.delete_namespaced_pod("a", "team")
    stream = watch.Watch().stream(
        core.list_namespaced_pod, "team", label_selector="app=demo", resource_version=since, timeout_seconds=5
    )
    events = take(stream, 4)
    assert summary(events) == [
        ("ADDED", "a", "Pending"),
        ("MODIFIED", "a", "Running"),
        ("MODIFIED", "a", "Running"),
        ("DELETED", "a", "Running"),
    ]
    assert events[2]["object"].metadata.deletion_timestamp is not None  # graceful deletion first
    versions = [int(e["object"].metadata.resource_version) for e in events]
    assert versions == sorted(versions) and len(set(versions)) == 4


def test_live_events_reach_an_open_watch(kube: FakeKubeServer, core: client.CoreV1Api) -> None:
    since = core.list_namespaced_pod("team").metadata.resource_version
    stream = watch.Watch().stream(core.list_namespaced_pod, "team", resource_version=since, timeout_seconds=5)
    thread, events = collect_in_background(stream, 4)
    kube.wait_for_watches(1, "pods")
    core.create_namespaced_pod("team", make_pod("a"))
    kube.finish_pod("team", "a", 0)
    core.delete_namespaced_pod("a", "team")  # terminated: grace 0, yet deletionTimestamp is written first
    thread.join(5)
    assert summary(events) == [
        ("ADDED", "a", "Pending"),
        ("MODIFIED", "a", "Succeeded"),
        ("MODIFIED", "a", "Succeeded"),
        ("DELETED", "a", "Succeeded"),
    ]
    assert events[2]["object"].metadata.deletion_grace_period_seconds == 0


def test_watch_without_resource_version_starts_with_the_current_state(core: client.CoreV1Api) -> None:
    for name in ("a", "b"):
        core.create_namespaced_pod("team", make_pod(name))
    events = take(watch.Watch().stream(core.list_namespaced_pod, "team", timeout_seconds=5), 2)
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "a"), ("ADDED", "b")]


def test_objects_entering_and_leaving_a_selector(kube: FakeKubeServer, core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("team", make_pod("a", labels={"stage": "one"}))
    since = kube.resource_version
    core.patch_namespaced_pod("a", "team", {"metadata": {"labels": {"stage": "two"}}})
    core.patch_namespaced_pod("a", "team", {"metadata": {"labels": {"stage": "one"}}})
    stream = watch.Watch().stream(
        core.list_namespaced_pod, "team", label_selector="stage=one", resource_version=since, timeout_seconds=5
    )
    events = take(stream, 2)
    assert [e["type"] for e in events] == ["DELETED", "ADDED"]
    assert events[0]["object"].metadata.labels == {"stage": "one"}  # the last state that matched


def test_compacted_history_makes_the_client_raise_410(kube: FakeKubeServer, core: client.CoreV1Api) -> None:
    since = core.list_namespaced_pod("team").metadata.resource_version
    core.create_namespaced_pod("team", make_pod("a"))
    kube.compact()
    current = kube.resource_version
    with pytest.raises(client.ApiException) as caught:
        take(watch.Watch().stream(core.list_namespaced_pod, "team", resource_version=since), 1)
    assert caught.value.status == 410
    assert caught.value.reason == f"Expired: too old resource version: {since} ({current})"
    # Recovering as an informer does: list again, then watch from the new version.
    fresh = core.list_namespaced_pod("team").metadata.resource_version
    stream = watch.Watch().stream(core.list_namespaced_pod, "team", resource_version=fresh, timeout_seconds=5)
    thread, events = collect_in_background(stream, 1)
    kube.wait_for_watches(1, "pods")
    core.create_namespaced_pod("team", make_pod("b"))
    thread.join(5)
    assert summary(events) == [("ADDED", "b", "Pending")]


def test_too_old_watch_answers_200_with_an_error_event(kube: FakeKubeServer, core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("team", make_pod("a"))
    kube.compact()
    response = core.list_namespaced_pod("team", watch=True, resource_version="2", _preload_content=False)
    assert response.status == 200
    line = json.loads(response.data.splitlines()[0])
    assert line == {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"too old resource version: 2 ({kube.resource_version})",
            "reason": "Expired",
            "code": 410,
        },
    }


def test_bookmarks_advance_the_watch_resource_version(kube: FakeKubeServer, core: client.CoreV1Api) -> None:
    watcher = watch.Watch()
    since = core.list_namespaced_pod("team").metadata.resource_version
    core.create_namespaced_service("team", {"metadata": {"name": "svc"}, "spec": {"clusterIP": "None"}})
    stream = watcher.stream(
        core.list_namespaced_pod, "team", resource_version=since, allow_watch_bookmarks=True, timeout_seconds=5
    )
    thread, events = collect_in_background(stream, 1)
    kube.wait_for_watches(1, "pods")
    kube.send_bookmarks()
    thread.join(5)
    assert [e["type"] for e in events] == ["BOOKMARK"]
    assert watcher.resource_version == kube.resource_version != since


def test_timeout_seconds_ends_the_stream_cleanly(core: client.CoreV1Api) -> None:
    events = list(
        watch.Watch().stream(
            core.list_namespaced_pod, "team", allow_watch_bookmarks=True, resource_version="1", timeout_seconds=1
        )
    )
    assert [e["type"] for e in events] == ["BOOKMARK"]  # sent as the watch expires


def test_a_server_side_close_is_resumed_from_the_last_version(kube: FakeKubeServer, core: client.CoreV1Api) -> None:
    since = core.list_namespaced_pod("team").metadata.resource_version
    thread, events = collect_in_background(
        watch.Watch().stream(core.list_namespaced_pod, "team", resource_version=since), 2
    )
    kube.wait_for_watches(1, "pods")
    core.create_namespaced_pod("team", make_pod("a"))
    first_version = kube.resource_version
    assert kube.end_watches("pods") == 1  # like the apiserver's request timeout
    core.create_namespaced_pod("team", make_pod("b"))
    thread.join(5)
    assert [e["object"].metadata.name for e in events] == ["a", "b"]
    watches = [r.query for r in kube.requests if r.query.get("watch") == "true"]
    assert [q["resourceVersion"] for q in watches] == [since, first_version]


def test_an_aborted_watch_surfaces_as_a_protocol_error(kube: FakeKubeServer, core: client.CoreV1Api) -> None:
    failures: list[BaseException] = []

    def run() -> None:
        try:
            take(watch.Watch().stream(core.list_namespaced_pod, "team", resource_version="1"), 1)
        except Exception as error:  # what the caller's reconnect logic sees
            failures.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    kube.wait_for_watches(1, "pods")
    kube.end_watches("pods", abrupt=True)
    thread.join(5)
    assert len(failures) == 1 and isinstance(failures[0], urllib3.exceptions.ProtocolError)


def test_watch_across_namespaces_and_initial_events(kube: FakeKubeServer, core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("one", make_pod("a"))
    core.create_namespaced_pod("two", make_pod("b"))
    stream = watch.Watch().stream(
        core.list_pod_for_all_namespaces,
        allow_watch_bookmarks=True,
        send_initial_events=True,
        resource_version_match="NotOlderThan",
        timeout_seconds=5,
    )
    events = take(stream, 3)
    assert [(e["type"], e["raw_object"]["metadata"].get("name")) for e in events] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("BOOKMARK", None),
    ]
    assert events[2]["raw_object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_watch_event_objects_match_the_model(
    kube: FakeKubeServer, api_client: client.ApiClient, core: client.CoreV1Api
) -> None:
    since = kube.resource_version
    core.create_namespaced_pod("team", make_pod("a"))
    kube.set_pod_phase("team", "a", "Running")
    kube.finish_pod("team", "a", 1, "failed")
    core.delete_namespaced_pod("a", "team")
    events = take(watch.Watch().stream(core.list_namespaced_pod, "team", resource_version=since, timeout_seconds=5), 5)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]
    for event in events:
        assert event["raw_object"]["kind"] == "Pod" and event["raw_object"]["apiVersion"] == "v1"
        assert_model(api_client, event["raw_object"], "V1Pod")
