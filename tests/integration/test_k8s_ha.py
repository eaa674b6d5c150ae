"""Watcher HA (issue 12, item 6): several `myapp k8s-watcher` processes elect one leader through a
coordination.k8s.io/v1 Lease; the others stand by, and one takes over when the leader dies,
adopting the running attempts without declaring them lost. Lease duration 3 s here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from myapp.executor.pod_watch import lease_name
from myapp.k8s.config import kube_config
from tests.integration.engine_helpers import log_text, poll, save, start, task_lines, wait_finished, wait_until
from tests.integration.k8s_env import NAMESPACE, Cluster, WatcherProcess, k8s_cluster
from tests.integration.k8s_kubelet import Kubelet

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def cluster(services: Any, broker_url: str) -> Iterator[Cluster]:
    with k8s_cluster(services, broker_url, MYAPP_K8S_LEASE_DURATION="3") as running:
        yield running


def _holder(cluster: Cluster) -> str:
    settings = replace(cluster.services.settings, k8s_group=cluster.watcher.env["MYAPP_K8S_GROUP"])
    lease = cluster.launcher.get_lease(lease_name(kube_config(settings))) or {}
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def test_one_watcher_leads_and_a_standby_takes_over_running_attempts_when_it_dies(cluster: Cluster) -> None:
    svc, (kube, kubelet) = cluster.services, cluster.fake("holds a pod Running across the failover with a kubelet behaviour of the fake")
    leader = cluster.watcher
    poll(lambda: b"leading as" in leader.log.read_bytes(), "the first watcher to lead", timeout=60)
    first = _holder(cluster)
    assert first, "no Lease names the leader"
    standby = WatcherProcess(leader.env)
    standby.start()
    release = threading.Event()

    def hold(k: Kubelet, pod: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        kube.set_pod_phase(NAMESPACE, name, "Running")
        kube.append_log(NAMESPACE, name, "before the failover\n")
        release.wait(60)
        kube.append_log(NAMESPACE, name, "after the failover\n")
        kube.finish_pod(NAMESPACE, name, exit_code=0, message="myapp-outputs 1\nanswer 2\n42\n")

    kubelet.behave("myapp-", hold)
    try:
        poll(lambda: b"standing by" in standby.log.read_bytes(), "the second watcher to stand by", timeout=60)
        assert sum(s.key == "pods" for s in kube.store.subscriptions) == 1, \
            "the standby watches pods too"
        pid = save(svc, """
            name: failover
            tasks:
              - {name: held, image: 'busybox:1.36', command: ['true'], outputs: [{name: answer, path: /tmp/a.txt}]}
              - {name: next, template: shell, args: {script: 'echo "got $answer"'}, inputs: {answer: {from: held.answer}}}
        """)
        run_id = start(svc, pid)
        wait_until(svc, run_id, lambda d: any(p.get("phase") == "Running" for a in d["by_name"]["held"]["attempts"]
                                              for p in a["container"].get("pods") or []), what="the leader's status")
        assert leader.proc is not None
        leader.proc.kill()                     # no clean stop: the Lease must expire
        leader.proc.wait()
        poll(lambda: b"leading as" in standby.log.read_bytes(), "the standby to take over", timeout=60)
        assert _holder(cluster) not in ("", first)
        kubelet.behaviours.clear()
        release.set()
        run = wait_finished(svc, run_id, timeout=120)
    finally:
        release.set()
        kubelet.behaviours.clear()
        standby.stop()
        leader.start()                         # the module's cluster keeps one watcher
    held = run["by_name"]["held"]
    assert run["state"] == "succeeded", held["attempts"]
    assert len(held["attempts"]) == 1, "the failover cost a retry (the attempt was declared lost)"
    assert held["outputs"]["answer"] == {"type": "text", "value": "42"}
    assert "after the failover" in log_text(svc, run_id, "held")
    assert task_lines(svc, run_id, "next") == ["got 42"]


def test_a_stopped_leader_hands_the_lease_over_at_once(cluster: Cluster) -> None:
    leader = cluster.watcher
    poll(lambda: b"leading as" in leader.log.read_bytes(), "the watcher to lead", timeout=60)
    standby = WatcherProcess(leader.env)
    standby.start()
    try:
        poll(lambda: b"standing by" in standby.log.read_bytes(), "the standby", timeout=60)
        before = _holder(cluster)
        leader.stop()                          # SIGTERM: releases the Lease
        poll(lambda: _holder(cluster) not in ("", before), "the standby to take the released lease", timeout=30)
    finally:
        standby.stop()
        leader.start()
