"""The watch stream and the log aggregation through the official client against FakeKubeServer
(no database, no worker): 410 Gone and broken connections, broken and late log streams.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from myapp.k8s.launcher import Launcher
from myapp.k8s.logs import LogHub
from myapp.k8s.pods import parse_pod
from myapp.k8s.stream import ListWatch
from myapp.logs.attempt_logs import LogKey
from tests.k8sfake import FakeKubeServer
from tests.k8sfake.manifests import make_pod

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
NS = "team"


@pytest.fixture
def kube() -> Iterator[FakeKubeServer]:
    with FakeKubeServer() as server:
        yield server
        assert server.server_errors == []


def until(predicate: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []
        self.syncs: list[list[str]] = []

    def on_event(self, kind: str, raw: dict[str, Any]) -> None:
        self.events.append((kind, raw["metadata"]["name"], (raw.get("status") or {}).get("phase", "")))

    def on_sync(self, items: list[dict[str, Any]]) -> None:
        self.syncs.append(sorted(i["metadata"]["name"] for i in items))


def test_list_then_watch_resumes_and_relists_after_410(kube: FakeKubeServer) -> None:
    launcher = Launcher(kube.api_client(), NS)
    launcher.create(make_pod("before", labels={"app": "x"}))
    stream, seen, stop = (
        ListWatch(launcher, "pods", "app=x", timeout_seconds=30, backoff=0.05),
        Recorder(),
        threading.Event(),
    )
    thread = threading.Thread(target=stream.run, args=(stop, seen.on_event, seen.on_sync), daemon=True)
    thread.start()
    kube.wait_for_watches(1)
    assert seen.syncs == [["before"]]
    launcher.create(make_pod("a", labels={"app": "x"}))
    kube.set_pod_phase(NS, "a", "Running")
    until(lambda: ("MODIFIED", "a", "Running") in seen.events, "the live events")
    kube.end_watches("pods", abrupt=True)  # a cut connection: resume, no relist
    kube.wait_for_watches(1)
    kube.set_pod_phase(NS, "a", "Succeeded")
    until(lambda: ("MODIFIED", "a", "Succeeded") in seen.events, "events after the cut")
    assert stream.stats.lists == 1
    launcher.delete("Pod", "before")
    until(lambda: ("DELETED", "before", "Pending") in seen.events, "the deletion")
    kube.create("namespaces", None, {"metadata": {"name": "elsewhere"}})  # history the watch does not see...
    kube.compact()  # ...is compacted: 410, list again
    kube.end_watches("pods")
    until(lambda: stream.stats.lists == 2, "the relist after 410")
    assert seen.syncs[-1] == ["a"] and stream.stats.expired == 1
    launcher.create(make_pod("b", labels={"app": "x"}))
    until(lambda: ("ADDED", "b", "Pending") in seen.events, "events after the relist")
    stop.set()
    stream.close()
    thread.join(5)
    assert not thread.is_alive()


class Sink:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.closed = False

    def write(self, line: str) -> None:
        assert not self.closed, "written after close"
        self.lines.append(line)

    def note(self, text: str) -> None:
        self.write(f"[sys] {text}")

    def close(self) -> None:
        self.closed = True


def test_logs_of_every_container_are_merged_prefixed_resumed_and_archived(kube: FakeKubeServer) -> None:
    launcher = Launcher(kube.api_client(), NS)
    sinks: dict[LogKey, Sink] = {}
    hub = LogHub(launcher, lambda key: sinks.setdefault(key, Sink()), sleep=lambda s: time.sleep(min(s, 0.05)))
    labels = {"myapp/attempt": "5", "myapp/run": "1", "myapp/try": "1"}
    for name in ("job-0", "job-1"):
        pod = make_pod(name, labels={**labels, "myapp/rank": name[-1]}, containers=("main", "side"))
        pod["metadata"]["annotations"] = {"myapp/task-name": "train"}
        launcher.create(pod)

    def observe(name: str) -> None:
        raw = launcher.get_pod(name)
        assert raw is not None
        hub.observe(parse_pod(raw))

    kube.set_pod_phase(NS, "job-0", "Running")
    kube.append_log(NS, "job-0", "m1\n", container="main")
    kube.append_log(NS, "job-0", "s1\n", container="side")
    observe("job-0")
    observe("job-1")  # still Pending: not followed yet
    kube.wait_for_log_follows(2)
    kube.append_log(NS, "job-0", "m2\n", container="main")
    time.sleep(0.2)
    assert kube.break_log_streams() == 2  # both streams cut: resumed with sinceTime
    kube.append_log(NS, "job-0", "m3\n", container="main")
    kube.set_pod_phase(NS, "job-1", "Running")  # the late pod starts
    kube.append_log(NS, "job-1", "late\n", container="main")
    observe("job-1")
    kube.wait_for_log_follows(4)
    kube.finish_pod(NS, "job-0", 0)
    kube.finish_pod(NS, "job-1", 0)
    pods = [parse_pod(p) for p in (launcher.get_pod("job-0"), launcher.get_pod("job-1")) if p]
    hub.close(5, LogKey(1, "train", 1), pods)
    sink = sinks[LogKey(1, "train", 1)]
    assert sink.closed
    by_stream: dict[str, list[str]] = {}
    for line in sink.lines:
        prefix, _, text = line.partition(" ")
        by_stream.setdefault(prefix, []).append(text)
    assert by_stream == {"job-0/main": ["m1", "m2", "m3"], "job-0/side": ["s1"], "job-1/main": ["late"]}
    assert any("sinceTime" in r.query for r in kube.requests if r.path.endswith("/log"))
    hub.observe(pods[0])  # a late event never reopens an archived log
    assert len(sinks) == 1 and not hub.has_stream(5)


def test_a_resource_version_from_the_future_leads_to_a_fresh_list(kube: FakeKubeServer) -> None:
    # The API server's storage was restored from a backup (or a lagging server answers): the version
    # the stream holds is newer than the server's; it answers 504 "Too large resource version".
    kube.settings.too_new_wait = 0.2
    launcher = Launcher(kube.api_client(), NS)
    launcher.create(make_pod("before", labels={"app": "x"}))
    for i in range(5):
        launcher.create(make_pod(f"churn-{i}", labels={"app": "y"}))
    stream, seen, stop = (
        ListWatch(launcher, "pods", "app=x", timeout_seconds=30, backoff=0.05),
        Recorder(),
        threading.Event(),
    )
    thread = threading.Thread(target=stream.run, args=(stop, seen.on_event, seen.on_sync), daemon=True)
    thread.start()
    try:
        kube.wait_for_watches(1)
        kube.restore_backup(4)
        launcher.create(make_pod("after", labels={"app": "x"}))  # at a version the stream thinks it has seen
        until(lambda: seen.syncs and "after" in seen.syncs[-1], "a fresh list that shows the new pod")
        # healthy again once the watch from that list opens, a moment after the list (later on a loaded machine)
        until(lambda: stream.healthy, "the watch open again after the fresh list")
        assert stream.stats.too_new >= 1
    finally:
        stop.set()
        stream.close()
        thread.join(5)


def test_a_resource_version_from_the_future_makes_the_real_server_answer_and_the_stream_relists(tmp_path: Any) -> None:
    """The same against kube-apiserver 1.20: the stream's first list hands it a version ten million
    ahead (as after an etcd restore). 1.20 keeps that watch open and silent, so a pod created
    meanwhile is missed: the silent watch's end makes the stream list again, which shows it."""
    from tests.integration.k8s_env import api_client, backends
    from tests.k8ssim.testenv import shared_testenv

    if "real" not in [p.values[0] for p in backends()]:
        pytest.skip("real API server only (MYAPP_TEST_K8S_BACKENDS leaves it out)")
    env = shared_testenv()
    ns = env.namespace("rv")
    api = api_client(env.myapp_kubeconfig(ns, tmp_path / "kubeconfig.json"))
    launcher = Launcher(api, ns)
    nowhere = {"nodeSelector": {"myapp-test/nowhere": "x"}}  # stays Pending: no container runs

    class FromTheFuture:
        def __init__(self) -> None:
            self.lists = 0

        def list_raw(self, what: str, **kw: Any) -> dict[str, Any]:
            data = launcher.list_raw(what, **kw)
            self.lists += 1
            if self.lists == 1:
                data["metadata"]["resourceVersion"] = str(int(data["metadata"]["resourceVersion"]) + 10_000_000)
            return data

        def watch_raw(self, what: str, **kw: Any) -> Any:
            return launcher.watch_raw(what, **kw)

    launcher.create(make_pod("before", labels={"app": "x"}, **nowhere))
    source = FromTheFuture()
    stream, seen, stop = (
        ListWatch(source, "pods", "app=x", timeout_seconds=3, backoff=0.05),
        Recorder(),
        threading.Event(),
    )
    thread = threading.Thread(target=stream.run, args=(stop, seen.on_event, seen.on_sync), daemon=True)
    thread.start()
    try:
        launcher.create(make_pod("after", labels={"app": "x"}, **nowhere))  # the blind watch misses it
        until(lambda: source.lists >= 2, "the stream to list again", timeout=60)
        # 1.20 keeps such a watch open and silent (newer servers answer "Too large resource version")
        assert stream.stats.silent + stream.stats.too_new >= 1, stream.stats
        until(
            lambda: ("ADDED", "after", "Pending") in seen.events or any("after" in s for s in seen.syncs),
            "the new pod through the fresh watch",
            timeout=60,
        )
        assert stream.healthy
    finally:
        stop.set()
        stream.close()
        thread.join(5)
        env.clean_namespace(ns)
        api.close()
