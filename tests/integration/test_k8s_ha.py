"""Watcher HA (issue 12, item 6): several `myapp k8s-watcher` processes elect one leader through a
coordination.k8s.io/v1 Lease; the others stand by, and one takes over when the leader dies,
adopting the running attempts without declaring them lost. Lease duration 10 s here: short for a
quick failover, long enough that a leader slowed down by a loaded machine still renews in time (at
3 s one could lose its Lease to the standby before the test stopped it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from myapp.executor.kubernetes.pod_watch import lease_name
from myapp.k8s.config import kube_config
from tests.integration.engine_helpers import log_text, poll, save, start, task_lines, wait_finished, wait_until
from tests.integration.k8s_env import Cluster, WatcherProcess, backends, k8s_cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture(scope="module", params=backends())
def cluster(request: pytest.FixtureRequest, services: Any, broker_url: str) -> Iterator[Cluster]:
    with k8s_cluster(services, broker_url, backend=request.param, MYAPP_K8S_LEASE_DURATION="10") as running:
        yield running


def _holder(cluster: Cluster) -> str:
    settings = replace(cluster.services.settings, k8s_group=cluster.watcher.env["MYAPP_K8S_GROUP"])
    lease = cluster.launcher.get_lease(lease_name(kube_config(settings))) or {}
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def test_one_watcher_leads_and_a_standby_takes_over_running_attempts_when_it_dies(cluster: Cluster) -> None:
    svc = cluster.services
    leader = cluster.watcher
    poll(lambda: b"leading as" in leader.log.read_bytes(), "the first watcher to lead", timeout=60)
    first = _holder(cluster)
    assert first, "no Lease names the leader"
    standby = WatcherProcess(leader.env)
    standby.start()
    try:
        poll(lambda: b"standing by" in standby.log.read_bytes(), "the second watcher to stand by", timeout=60)
        if cluster.kube is not None:
            assert sum(s.key == "pods" for s in cluster.kube.store.subscriptions) == 1, "the standby watches pods too"
        pid = save(
            svc,
            """
            name: failover
            tasks:
              - name: held
                template: shell
                args: {script: 'echo "before the failover"; while [ ! -e go ]; do sleep 0.2; done; echo "after the failover"; echo 42 > a.txt'}
                outputs: [{name: answer, path: a.txt}]
              - {name: next, template: shell, args: {script: 'echo "got $answer"'}, inputs: {answer: {from: held.answer}}}
        """,
        )
        run_id = start(svc, pid)
        running = wait_until(
            svc,
            run_id,
            lambda d: any(
                p.get("phase") == "Running"
                for a in d["by_name"]["held"]["attempts"]
                for p in a["container"].get("pods") or []
            ),
            what="the leader's status",
            timeout=120,
        )
        workdir = Path(running["by_name"]["held"]["attempts"][0]["container"]["launch"]["workdir"])
        assert leader.proc is not None
        leader.proc.kill()  # no clean stop: the Lease must expire
        leader.proc.wait()
        poll(lambda: b"leading as" in standby.log.read_bytes(), "the standby to take over", timeout=60)
        assert _holder(cluster) not in ("", first)
        (workdir / "go").touch()
        run = wait_finished(svc, run_id, timeout=120)
    finally:
        standby.stop()
        leader.start()  # the module's cluster keeps one watcher
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
        leader.stop()  # SIGTERM: releases the Lease
        poll(lambda: _holder(cluster) not in ("", before), "the standby to take the released lease", timeout=60)
    finally:
        standby.stop()
        leader.start()
