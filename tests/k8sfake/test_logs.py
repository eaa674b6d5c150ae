# The client types every model field Optional and annotates bodies as models while accepting
# dict manifests at run time (pydantic validate_call); asserting each away would drown the tests.
# mypy: disable-error-code="union-attr, arg-type, no-untyped-call, index, operator, attr-defined, type-var"
"""Pod logs through read_namespaced_pod_log: options, follow streams, kubelet errors, broken streams."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import urllib3
from kubernetes import client, watch

from tests.k8sfake import FakeKubeServer
from tests.k8sfake.manifests import make_pod, raw_get


class SteppingClock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def running_pod(kube: FakeKubeServer, core: client.CoreV1Api, name: str = "a", **kwargs: object) -> None:
    core.create_namespaced_pod("team", make_pod(name, **kwargs))
    kube.set_pod_phase("team", name, "Running")


def _message(error: client.ApiException) -> str:
    return str(json.loads(error.body)["message"])


def test_log_options_tail_since_timestamps_and_limit() -> None:
    clock = SteppingClock()
    with FakeKubeServer(clock=clock) as kube:
        api_client = kube.api_client()
        core = client.CoreV1Api(api_client)
        running_pod(kube, core)
        kube.append_log("team", "a", "one\n")
        clock.advance(10.25)
        kube.append_log("team", "a", "two\nthree\n")
        assert core.read_namespaced_pod_log("a", "team") == "one\ntwo\nthree\n"
        assert core.read_namespaced_pod_log("a", "team", tail_lines=2) == "two\nthree\n"
        assert core.read_namespaced_pod_log("a", "team", since_seconds=5) == "two\nthree\n"
        assert core.read_namespaced_pod_log("a", "team", limit_bytes=6) == "one\ntw"
        assert (
            core.read_namespaced_pod_log("a", "team", timestamps=True, tail_lines=1)
            == "2026-01-01T00:00:10.25Z three\n"
        )
        assert raw_get(api_client, "/api/v1/namespaces/team/pods/a/log", sinceTime="2026-01-01T00:00:05Z") == (
            200,
            "two\nthree\n",
        )


def test_follow_streams_new_lines_until_the_container_terminates(kube: FakeKubeServer, core: client.CoreV1Api) -> None:
    running_pod(kube, core)
    kube.append_log("team", "a", "one\n")
    response = core.read_namespaced_pod_log("a", "team", follow=True, _preload_content=False)
    chunks: Iterator[bytes] = response.stream()
    assert next(chunks) == b"one\n"
    kube.append_log("team", "a", "two\n")
    assert next(chunks) == b"two\n"
    kube.append_log("team", "a", "three\n")
    kube.finish_pod("team", "a", 0, "done")
    assert b"".join(chunks) == b"three\n"  # the rest, then the stream ends


def test_follow_through_watch_yields_lines_and_ends_when_the_pod_is_deleted(
    kube: FakeKubeServer, core: client.CoreV1Api
) -> None:
    running_pod(kube, core)
    kube.append_log("team", "a", "first\n")
    lines = watch.Watch().stream(core.read_namespaced_pod_log, name="a", namespace="team")
    assert next(lines) == "first"
    kube.append_log("team", "a", "second\n")
    assert next(lines) == "second"
    core.delete_namespaced_pod("a", "team")
    assert list(lines) == []


def test_a_container_must_be_named_when_there_are_several(kube: FakeKubeServer, core: client.CoreV1Api) -> None:
    running_pod(kube, core, containers=("main", "side"))
    with pytest.raises(client.ApiException) as caught:
        core.read_namespaced_pod_log("a", "team")
    assert caught.value.status == 400
    assert _message(caught.value) == "a container name must be specified for pod a, choose one of: [main side]"
    with pytest.raises(client.ApiException) as wrong:
        core.read_namespaced_pod_log("a", "team", container="nope")
    assert _message(wrong.value) == "container nope is not valid for pod a"
    kube.append_log("team", "a", "from side\n", container="side")
    assert core.read_namespaced_pod_log("a", "team", container="side") == "from side\n"
    assert core.read_namespaced_pod_log("a", "team", container="main") == ""


@pytest.mark.parametrize(
    ("reason", "detail"),
    [
        ("ContainerCreating", "ContainerCreating"),
        ("ImagePullBackOff", "trying and failing to pull image"),
        ("ErrImagePull", "image can't be pulled"),
    ],
)
def test_a_waiting_container_is_400(kube: FakeKubeServer, core: client.CoreV1Api, reason: str, detail: str) -> None:
    core.create_namespaced_pod("team", make_pod("a"))
    kube.set_pod_phase("team", "a", "Pending", reason=reason)
    with pytest.raises(client.ApiException) as caught:
        core.read_namespaced_pod_log("a", "team")
    assert (caught.value.status, json.loads(caught.value.body)["reason"]) == (400, "BadRequest")
    assert _message(caught.value) == f'container "main" in pod "a" is waiting to start: {detail}'


def test_unscheduled_pod_has_an_empty_log_and_no_previous(kube: FakeKubeServer, core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("team", make_pod("a"))
    assert core.read_namespaced_pod_log("a", "team", follow=True) == ""
    kube.set_pod_phase("team", "a", "Running")
    with pytest.raises(client.ApiException) as caught:
        core.read_namespaced_pod_log("a", "team", previous=True)
    assert _message(caught.value) == 'previous terminated container "main" in pod "a" not found'


def test_a_broken_follow_stream_fails_the_read_and_a_new_one_works(
    kube: FakeKubeServer, core: client.CoreV1Api
) -> None:
    running_pod(kube, core)
    kube.append_log("team", "a", "one\n")
    response = core.read_namespaced_pod_log("a", "team", follow=True, _preload_content=False)
    chunks = response.stream()
    assert next(chunks) == b"one\n"
    kube.wait_for_log_follows(1)
    assert kube.break_log_streams() == 1
    with pytest.raises(urllib3.exceptions.ProtocolError):
        next(chunks)
    kube.append_log("team", "a", "two\n")
    kube.finish_pod("team", "a", 0)
    assert core.read_namespaced_pod_log("a", "team", follow=True) == "one\ntwo\n"


def test_logs_belong_to_one_pod_incarnation(kube: FakeKubeServer, core: client.CoreV1Api) -> None:
    running_pod(kube, core)
    kube.append_log("team", "a", "old\n")
    core.delete_namespaced_pod("a", "team", grace_period_seconds=0)
    with pytest.raises(client.ApiException) as gone:
        core.read_namespaced_pod_log("a", "team")
    assert gone.value.status == 404
    running_pod(kube, core)
    assert core.read_namespaced_pod_log("a", "team") == ""


def test_an_accept_the_api_server_refuses_is_406(kube: FakeKubeServer, core: client.CoreV1Api) -> None:
    """As kube-apiserver 1.20 answers (checked with curl against scripts/k8s-testenv's server)."""
    running_pod(kube, core)
    kube.append_log("team", "a", "hello\n")
    http = urllib3.PoolManager()
    url = f"{kube.url}/api/v1/namespaces/team/pods/a/log"
    answers = {
        accept: http.request("GET", url, headers={"Accept": accept} if accept else {})
        for accept in (
            "text/plain",
            "text/*",
            "application/*",
            "application/json;as=Table;v=v1;g=meta.k8s.io",
            "",
            "*/*",
            "application/json",
            "application/json, */*",
            "text/plain, */*",
            "application/json;q=0.9",
            "application/yaml",
        )
    }
    refused = {a for a, r in answers.items() if r.status == 406}
    assert refused == {"text/plain", "text/*", "application/*", "application/json;as=Table;v=v1;g=meta.k8s.io"}
    assert all(r.data == b"hello\n" for a, r in answers.items() if a not in refused)
    status = json.loads(answers["text/plain"].data)
    assert (status["reason"], status["message"]) == (
        "NotAcceptable",
        "only the following media types are accepted: application/json, application/yaml, "
        "application/vnd.kubernetes.protobuf",
    )
    listed = http.request("GET", f"{kube.url}/api/v1/namespaces/team/pods", headers={"Accept": "text/plain"})
    assert listed.status == 406 and json.loads(listed.data)["message"] == "406: Not Acceptable"
