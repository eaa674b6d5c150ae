"""The node simulator against the real kube-apiserver: what kubelet and the scheduler would do,
seen through the official client with the Role-only user of docker/k8s/rbac.yaml."""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import pytest
from kubernetes import client

from tests.k8ssim.testenv import TestEnv, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
STAMP = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ")


def manifest(name: str, script: str, **spec: Any) -> dict[str, Any]:
    container = {
        "name": "main",
        "image": "busybox:1.36",
        "command": ["/bin/sh", "-c", script],
        **spec.pop("container", {}),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


def pod(core: client.CoreV1Api, ns: str, name: str) -> dict[str, Any] | None:
    try:
        return core.api_client.sanitize_for_serialization(core.read_namespaced_pod(name, ns))  # type: ignore[no-any-return]
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def wait_phase(core: client.CoreV1Api, ns: str, name: str, *phases: str, timeout: float = 60) -> dict[str, Any]:
    return dict(
        wait_for(
            lambda: (p := pod(core, ns, name)) and p["status"].get("phase") in phases and p,
            f"pod {name} in {phases}",
            timeout,
        )
    )


def state(p: dict[str, Any], index: int = 0) -> dict[str, Any]:
    statuses = (p.get("status") or {}).get("containerStatuses") or []
    return dict(statuses[index]["state"]) if len(statuses) > index else {}


def events(testenv: TestEnv, ns: str, name: str) -> list[tuple[str, str]]:
    assert testenv.admin is not None
    items = (testenv.admin.get(f"/api/v1/namespaces/{ns}/events") or {}).get("items", [])
    return [(e["reason"], e.get("message", "")) for e in items if e["involvedObject"]["name"] == name]


def test_a_pod_runs_to_its_exit_code_with_kubelet_status_events_and_log(
    testenv: TestEnv, core: client.CoreV1Api, namespace: str
) -> None:
    # an image no earlier test pulled on this (shared) node: a present image gives no Pulling event
    core.create_namespaced_pod(
        namespace,
        manifest(
            "basic",
            "echo out; echo err >&2; echo 'the end' > /dev/termination-log; printf partial; exit 3",
            container={"image": f"example.test/basic-{namespace}:1"},
        ),
    )
    p = wait_phase(core, namespace, "basic", "Failed")
    term = state(p)["terminated"]
    assert (term["exitCode"], term["reason"], term["message"]) == (3, "Error", "the end\n")
    assert p["spec"]["nodeName"] == "sim-node" and p["status"]["podIP"].startswith("127.1.")
    assert {c["type"]: c["status"] for c in p["status"]["conditions"]} == {
        "Initialized": "True",
        "Ready": "False",
        "ContainersReady": "False",
        "PodScheduled": "True",
    }
    log = core.read_namespaced_pod_log("basic", namespace)
    assert sorted(log.splitlines()) == ["err", "out", "partial"]
    reasons = [r for r, _ in events(testenv, namespace, "basic")]
    assert {"Scheduled", "Pulling", "Pulled", "Created", "Started"} <= set(reasons), reasons


def test_log_options_follow_the_kubelet_rules(testenv: TestEnv, core: client.CoreV1Api, namespace: str) -> None:
    long = "x" * 20000
    core.create_namespaced_pod(
        namespace, manifest("logs", f"for i in 1 2 3 4 5; do echo line $i; sleep 0.3; done; echo {long}; sleep 1")
    )
    wait_phase(core, namespace, "logs", "Running")
    stream = core.read_namespaced_pod_log("logs", namespace, follow=True, _preload_content=False)
    followed = b"".join(stream.stream(1024))
    assert followed.split(b"\n")[:5] == [f"line {i}".encode() for i in range(1, 6)]
    assert followed.split(b"\n")[5] == long.encode(), "a long line comes back whole without timestamps"
    wait_phase(core, namespace, "logs", "Succeeded")
    stamped = core.read_namespaced_pod_log("logs", namespace, timestamps=True, _preload_content=False).data
    lines = stamped.splitlines()
    assert all(STAMP.match(line) for line in lines)
    assert len(STAMP.findall(lines[5])) == 1 and lines[5].count(b"Z x") == 2, "parts of a long line keep their stamps"
    # tailLines counts records of the file: a long line's last part alone is its last "line"
    assert core.read_namespaced_pod_log("logs", namespace, tail_lines=1) == long[16384:] + "\n"
    assert core.read_namespaced_pod_log("logs", namespace, tail_lines=2) == long + "\n"
    # sinceTime is compared per line, but the API server forwards it with second precision (metav1.Time)
    last = lines[4].split(b" ", 1)[0].decode()
    since = raw_log(testenv, namespace, "logs", sinceTime=last, timestamps="true").splitlines()
    assert since and all(line.split(b" ", 1)[0].decode() >= last[:19] for line in since)
    assert since[-1] == lines[-1] and len(since) < len(lines)
    assert testenv.sim is not None and testenv.sim.log_requests()[-1][3]["sinceTime"] == last[:19] + "Z"


def raw_log(testenv: TestEnv, ns: str, name: str, **query: str) -> bytes:
    """pods/log with any query (the typed client has no sinceTime), as the admin."""
    assert testenv.admin is not None
    response = testenv.admin.http.request(
        "GET", testenv.admin.url(f"/api/v1/namespaces/{ns}/pods/{name}/log", query), headers=testenv.admin.headers
    )
    assert response.status == 200, response.data
    return bytes(response.data)


def test_graceful_delete_signals_pid_1_only(testenv: TestEnv, core: client.CoreV1Api, namespace: str) -> None:
    assert testenv.sim is not None
    core.create_namespaced_pod(namespace, manifest("ignores", "sleep 60", terminationGracePeriodSeconds=3))
    core.create_namespaced_pod(
        namespace, manifest("traps", "trap 'echo got TERM; exit 0' TERM; while :; do sleep 0.1; done")
    )
    for name in ("ignores", "traps"):
        wait_phase(core, namespace, name, "Running")
    started = time.monotonic()
    core.delete_namespaced_pod("traps", namespace)
    core.delete_namespaced_pod("ignores", namespace)
    wait_for(lambda: pod(core, namespace, "traps") is None, "the trapping pod to go")
    assert time.monotonic() - started < 2.5
    wait_for(lambda: pod(core, namespace, "ignores") is None, "the ignoring pod to go")
    assert time.monotonic() - started >= 3, "sleep as PID 1 ignores SIGTERM: the grace period must pass"
    reasons = [r for r, _ in events(testenv, namespace, "ignores")]
    assert "Killing" in reasons


def test_deadline_unschedulable_and_image_errors(testenv: TestEnv, core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_pod(
        namespace, manifest("deadline", "sleep 60", activeDeadlineSeconds=1, terminationGracePeriodSeconds=1)
    )
    core.create_namespaced_pod(namespace, manifest("nowhere", "true", nodeSelector={"disk": "ssd"}))
    core.create_namespaced_pod(namespace, manifest("nopull", "true", container={"image": "fail-pull/x:1"}))
    p = wait_phase(core, namespace, "deadline", "Failed")
    assert p["status"]["reason"] == "DeadlineExceeded"
    wait_for(
        lambda: any(
            r == "FailedScheduling" and "didn't match node selector" in m
            for r, m in events(testenv, namespace, "nowhere")
        ),
        "FailedScheduling",
    )
    cond = next(c for c in pod(core, namespace, "nowhere")["status"]["conditions"] if c["type"] == "PodScheduled")  # type: ignore[index]
    assert cond["reason"] == "Unschedulable"
    assert cond["message"] == "0/1 nodes are available: 1 node(s) didn't match node selector."
    wait_for(
        lambda: state(pod(core, namespace, "nopull") or {}).get("waiting", {}).get("reason") == "ErrImagePull",  # type: ignore[arg-type]
        "ErrImagePull",
    )
    wait_for(
        lambda: state(pod(core, namespace, "nopull") or {}).get("waiting", {}).get("reason") == "ImagePullBackOff",  # type: ignore[arg-type]
        "ImagePullBackOff",
    )
    with pytest.raises(client.ApiException) as refused:
        core.read_namespaced_pod_log("nopull", namespace)
    assert refused.value.status == 400 and "is waiting to start" in refused.value.body


def test_env_from_secrets_waits_for_a_missing_one(testenv: TestEnv, core: client.CoreV1Api, namespace: str) -> None:
    assert testenv.admin is not None
    env = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "GREETING", "value": "token=$(TOKEN)"},
    ]
    core.create_namespaced_pod(namespace, manifest("secret", 'echo "$GREETING"', container={"env": env}))
    wait_for(
        lambda: (
            state(pod(core, namespace, "secret") or {}).get("waiting", {}).get("reason")  # type: ignore[arg-type]
            == "CreateContainerConfigError"
        ),
        "CreateContainerConfigError",
    )
    assert state(pod(core, namespace, "secret") or {})["waiting"]["message"] == 'secret "creds" not found'  # type: ignore[arg-type]
    testenv.admin.create(
        f"/api/v1/namespaces/{namespace}/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "data": {"token": base64.b64encode(b"s3cret").decode()},
        },
    )
    wait_phase(core, namespace, "secret", "Succeeded")
    assert core.read_namespaced_pod_log("secret", namespace) == "token=s3cret\n"


def test_eviction_oom_and_a_lost_node(testenv: TestEnv, core: client.CoreV1Api, namespace: str) -> None:
    sim = testenv.sim
    assert sim is not None
    for name in ("evicted", "oom", "lost"):
        core.create_namespaced_pod(namespace, manifest(name, "sleep 60"))
    for name in ("evicted", "oom", "lost"):
        wait_phase(core, namespace, name, "Running")
    sim.evict(namespace, "evicted")
    sim.oom_kill(namespace, "oom")
    p = wait_phase(core, namespace, "evicted", "Failed")
    assert (p["status"]["reason"], p["status"]["message"]) == ("Evicted", "The node was low on resource: memory. ")
    assert state(wait_phase(core, namespace, "oom", "Failed"))["terminated"]["reason"] == "OOMKilled"
    sim.lose_node()
    core.delete_namespaced_pod("lost", namespace, grace_period_seconds=1)
    time.sleep(3)  # longer than the grace period: nothing may finish the deletion
    stuck = pod(core, namespace, "lost")
    assert stuck is not None and stuck["metadata"]["deletionTimestamp"] and stuck["status"]["phase"] == "Running"
    sim.restore_node()
    wait_for(lambda: pod(core, namespace, "lost") is None, "the deletion to finish once the node is back")


def test_an_injected_sidecar_keeps_the_pod_running(testenv: TestEnv, core: client.CoreV1Api, namespace: str) -> None:
    assert testenv.sim is not None
    testenv.sim.inject_sidecar(f"{namespace}/mesh")
    core.create_namespaced_pod(namespace, manifest("mesh", "echo done"))
    p = wait_for(
        lambda: (
            (q := pod(core, namespace, "mesh"))
            and len(q["status"].get("containerStatuses") or []) == 2
            and "terminated" in state(q)
            and q
        ),
        "the main container to end",
    )
    assert [c["name"] for c in p["spec"]["containers"]] == ["main", "sidecar"]
    assert p["status"]["phase"] == "Running" and "running" in state(p, 1)


def test_rotation_and_stalled_follows(testenv: TestEnv, core: client.CoreV1Api, namespace: str) -> None:
    sim = testenv.sim
    assert sim is not None
    core.create_namespaced_pod(namespace, manifest("rotated", "echo before; sleep 1; echo after; sleep 60"))
    wait_phase(core, namespace, "rotated", "Running")
    wait_for(lambda: "after" in (core.read_namespaced_pod_log("rotated", namespace) or ""), "the second line")
    sim.rotate_logs(namespace, "rotated")
    assert core.read_namespaced_pod_log("rotated", namespace) == "", "only the current file is served"
    sim.stall_logs(f"{namespace}/rotated")
    stream = core.read_namespaced_pod_log(
        "rotated", namespace, follow=True, _preload_content=False, _request_timeout=(5, 2)
    )
    with pytest.raises(Exception):  # noqa: B017,PT011  urllib3's ReadTimeoutError, wrapped or not
        stream.read(1)
    core.delete_namespaced_pod("rotated", namespace, grace_period_seconds=0)


def test_a_watch_from_a_lists_version_gets_a_pod_created_and_deleted_in_between(
    core: client.CoreV1Api, namespace: str
) -> None:
    """What the watcher's readiness relies on (it says "watching" once its first list is applied):
    the watch from that list's resourceVersion delivers every later change, even of a pod whose
    whole life fell between the list and the watch (FakeKubeServer: tests/k8sfake/test_watch.py)."""
    import json

    listed = json.loads(core.list_namespaced_pod(namespace, _preload_content=False).data)
    version = listed["metadata"]["resourceVersion"]
    core.create_namespaced_pod(namespace, manifest("between", "sleep 60"))
    core.delete_namespaced_pod("between", namespace, grace_period_seconds=0)
    wait_for(lambda: pod(core, namespace, "between") is None, "the pod to go", 30)
    response = core.list_namespaced_pod(
        namespace, watch=True, resource_version=version, timeout_seconds=2, _preload_content=False
    )
    kinds = [
        event["type"]
        for event in (json.loads(line) for line in response.data.splitlines() if line.strip())
        if event["object"]["metadata"].get("name") == "between"
    ]
    assert kinds[0] == "ADDED" and kinds[-1] == "DELETED", kinds
