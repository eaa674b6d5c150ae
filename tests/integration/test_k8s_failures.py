"""What real clusters do to pods, and what the attempt then says (issue 12, item 5).

A real Celery worker and a real `myapp k8s-watcher` on FakeKubeServer; the kubelet simulator
plays the pods faithfully (SIGTERM to PID 1 on deletion, then SIGKILL after the grace period,
terminal status before the final delete). Short limits keep the time rules quick:
image pull grace 8 s, startup timeout 30 s, lost-node timeout 15 s; a 30 s kill grace shows that a
stop no longer waits it out; a log follow silent for 2 s is resumed. The startup and lost-node
limits apply to every pod of the module: shorter, a pod slow to start or to end on a loaded
machine (4 s and 3 s were) would be failed or force-deleted as if it never started or its node
were lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from myapp.k8s.launcher import LaunchError
from tests.integration.engine_helpers import (
    detail,
    log_text,
    poll,
    save,
    start,
    task_lines,
    wait_finished,
    wait_until,
)
from tests.integration.k8s_env import NAMESPACE, Cluster, backends, k8s_cluster
from tests.integration.k8s_kubelet import Kubelet

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
STARTUP_TIMEOUT, LOST_NODE_TIMEOUT = 30, 15
LIMITS = {
    "MYAPP_K8S_IMAGE_PULL_GRACE": "8",
    "MYAPP_K8S_STARTUP_TIMEOUT": str(STARTUP_TIMEOUT),
    "MYAPP_K8S_LOST_NODE_TIMEOUT": str(LOST_NODE_TIMEOUT),
    "MYAPP_KILL_GRACE": "30",
    "MYAPP_K8S_LOG_READ_TIMEOUT": "2",
}


@pytest.fixture(scope="module", params=backends())
def cluster(request: pytest.FixtureRequest, services: Any, broker_url: str) -> Iterator[Cluster]:
    with k8s_cluster(services, broker_url, backend=request.param, **LIMITS) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_fake(cluster: Cluster) -> Iterator[None]:
    yield
    if cluster.kube is not None and cluster.kubelet is not None:
        cluster.kubelet.behaviours.clear()
        cluster.kube.settings.hold_pod_deletions = False
        cluster.kube.settings.admission.clear()
        cluster.kube.clear_faults()
    sim = cluster.sim
    if sim is not None:  # the knobs these tests use, released one by one
        sim.release_scheduling()
        sim.resume_logs()
        if sim.node_lost.is_set():
            sim.restore_node()
        with sim.faults.lock:
            sim.faults.sidecars.clear()
            sim.faults.pull_failures.clear()


def _running_pod(cluster: Cluster, run_id: int, task: str) -> str:
    data = wait_until(
        cluster.services,
        run_id,
        lambda d: d["by_name"][task]["attempts"] and d["by_name"][task]["attempts"][-1]["pods"],
        what=f"the pod of {task}",
    )
    name = str(data["by_name"][task]["attempts"][-1]["pods"][0])
    poll(
        lambda: ((cluster.get_pod(name) or {}).get("status") or {}).get("phase") == "Running",
        f"pod {name} to run",
        timeout=120,
    )
    if cluster.kubelet is not None:
        poll(lambda: f"{name}/main" in cluster.kubelet.pids, "the kubelet to start the container")
    return name


def _message(run: dict[str, Any], task: str) -> str:
    return str(run["by_name"][task]["message"])


# --- deleted or evicted by someone else -------------------------------------------------------


def test_a_pod_deleted_by_someone_else_says_so_instead_of_an_exit_code(cluster: Cluster) -> None:
    svc = cluster.services
    pid = save(svc, "name: deleted-by-other\ntasks:\n  - {name: long, template: shell, args: {script: 'sleep 120'}}\n")
    run_id = start(svc, pid)
    name = _running_pod(cluster, run_id, "long")
    if cluster.kube is not None:
        cluster.kube.settings.hold_pod_deletions = True  # Terminating until the kubelet is done, as for real
    cluster.launcher.delete("Pod", name, grace_seconds=5)  # kubectl delete pod, a descheduler, an operator...
    run = wait_finished(svc, run_id)
    assert run["state"] == "failed"
    message = _message(run, "long")
    assert message.startswith(f"pod {name} was deleted by someone else while running"), message


def test_the_watcher_is_ready_only_once_it_has_listed_its_pods(cluster: Cluster) -> None:
    # The flake of the test above (1 in 3 loaded CI runs): the watcher printed "watching" at start,
    # before its Lease and its first pod list, and the fixture trusted it; on a loaded machine the
    # test's pod was created, run and deleted before that list, so the watcher never saw it and the
    # run stayed running. Here the watcher's first pod list is held, as a loaded start delays it.
    kube, _ = cluster.fake("it holds the watcher's pod list in FakeKubeServer")
    cluster.watcher.stop()
    held = kube.hold_requests("GET", rf"^/api/v1/namespaces/{NAMESPACE}/pods$", watch=False)
    ready = threading.Thread(target=cluster.watcher.start, name="start-watcher")
    ready.start()
    try:
        poll(lambda: held.waiting or not ready.is_alive(), "the watcher to list its pods", timeout=120)
        assert ready.is_alive(), "the watcher said it was watching before its pods were listed"
    finally:
        held.release()
        ready.join(150)  # WatcherProcess.start gives up after 120 s
    assert not ready.is_alive()
    test_a_pod_deleted_by_someone_else_says_so_instead_of_an_exit_code(cluster)


# --- graceful stop ------------------------------------------------------------------------------


def test_stop_sends_sigterm_to_the_task_and_does_not_wait_out_the_grace_period(cluster: Cluster) -> None:
    svc = cluster.services
    pid = save(
        svc,
        """
        name: graceful-stop
        tasks:
          - name: serve
            template: shell
            args: {script: 'trap "echo bye > \\"$MYAPP_WORKDIR/got-term\\"; exit 143" TERM; while :; do sleep 0.1; done'}
    """,
    )
    run_id = start(svc, pid)
    name = _running_pod(cluster, run_id, "serve")
    workdir = Path(detail(svc, run_id)["by_name"]["serve"]["attempts"][0]["container"]["launch"]["workdir"])
    if cluster.kube is not None:
        cluster.kube.settings.hold_pod_deletions = True
    stopped_at = time.monotonic()
    svc.runs.stop_run(run_id, svc.clock.now(), by="tester")
    poll(lambda: cluster.get_pod(name) is None, "the stopped pod to go", timeout=60)
    took = time.monotonic() - stopped_at
    assert (workdir / "got-term").read_text() == "bye\n", "the task never received SIGTERM"
    assert took < 20, f"the stop waited {took:.1f} s: the grace period (30 s) instead of the task's exit"
    assert detail(svc, run_id)["state"] == "stopped"


# --- pods that cannot start ---------------------------------------------------------------------


def test_an_image_pull_error_is_waited_out_within_its_grace_and_shown(cluster: Cluster) -> None:
    svc = cluster.services
    recovered = threading.Event()
    if cluster.kube is not None and cluster.kubelet is not None:
        kube = cluster.kube

        def flaky_registry(k: Kubelet, pod: dict[str, Any]) -> None:
            kube.set_pod_phase(
                NAMESPACE,
                pod["metadata"]["name"],
                "Pending",
                reason="ErrImagePull",
                message="rpc error: code = Unknown desc = 503 Service Unavailable",
            )
            recovered.wait(60)
            k.play(pod)

        cluster.kubelet.behave("myapp-", flaky_registry)
    else:  # the node's registry refuses the image's first pulls (ErrImagePull, then back-off), until told
        sim = cluster.node()
        sim.fail_pulls("flaky-registry")
    pid = save(
        svc,
        "name: flaky-registry\ntasks:\n  - {name: pull, image: 'flaky-registry/sh:1', "
        "command: ['sh', '-c', 'echo pulled']}\n",
    )
    run_id = start(svc, pid)
    shown = wait_until(
        svc,
        run_id,
        lambda d: any(
            c.get("reason") in ("ErrImagePull", "ImagePullBackOff")
            for a in d["by_name"]["pull"]["attempts"]
            for p in a["container"].get("pods") or []
            for c in p["containers"]
        ),
        what="the waiting reason on the run page",
    )
    assert shown["by_name"]["pull"]["state"] == "running", shown["by_name"]["pull"]["message"]
    recovered.set()
    if cluster.sim is not None:
        with cluster.sim.faults.lock:  # the registry recovers: the next pull (after the back-off) works
            cluster.sim.faults.pull_failures.clear()
    run = wait_finished(svc, run_id)
    assert run["state"] == "succeeded", run
    assert len(run["by_name"]["pull"]["attempts"]) == 1, "a registry hiccup cost a retry"
    assert task_lines(svc, run_id, "pull") == ["pulled"]


def test_an_image_that_never_pulls_fails_after_the_grace(cluster: Cluster) -> None:
    svc = cluster.services
    if cluster.kube is not None and cluster.kubelet is not None:
        kube = cluster.kube

        def missing(k: Kubelet, pod: dict[str, Any]) -> None:
            kube.set_pod_phase(
                NAMESPACE,
                pod["metadata"]["name"],
                "Pending",
                reason="ImagePullBackOff",
                message='Back-off pulling image "fail-pull:1"',
            )

        cluster.kubelet.behave("myapp-", missing)
    # On the real server the node simulator never pulls an image named *fail-pull*.
    pid = save(svc, "name: never-pulls\ntasks:\n  - {name: x, image: 'fail-pull:1', command: ['true']}\n")
    run = wait_finished(svc, start(svc, pid), timeout=120)
    assert run["state"] == "failed"
    message = _message(run, "x")
    assert message.startswith("container main cannot start: ") and message.endswith("(for 8 s)"), message
    assert "ImagePullBackOff" in message or "ErrImagePull" in message, message


def test_a_pod_that_never_starts_fails_with_the_schedulers_reason(cluster: Cluster) -> None:
    svc = cluster.services
    why = "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."
    if cluster.kube is not None and cluster.kubelet is not None:
        kube = cluster.kube

        def unschedulable(k: Kubelet, pod: dict[str, Any]) -> None:
            name = pod["metadata"]["name"]
            kube.set_pod_phase(NAMESPACE, name, "Pending", reason="Unschedulable", message=why)
            kube.add_event(
                NAMESPACE, ("Pod", name), "FailedScheduling", why, type="Warning", component="default-scheduler"
            )

        cluster.kubelet.behave("myapp-", unschedulable)
    else:
        cluster.node().hold_scheduling(f"{cluster.namespace}/myapp-", message=why)
    pid = save(svc, "name: no-gpu\ntasks:\n  - {name: train, template: shell, args: {script: 'true'}}\n")
    run = wait_finished(svc, start(svc, pid))
    assert run["state"] == "failed"
    assert _message(run, "train").endswith(f"did not start within {STARTUP_TIMEOUT} s: {why}"), _message(run, "train")


# --- lost nodes ---------------------------------------------------------------------------------


def _lost_kubelet(kube: Any) -> Any:
    def play(k: Kubelet, pod: dict[str, Any]) -> None:  # runs, then its node stops answering: nothing more
        kube.set_pod_phase(NAMESPACE, pod["metadata"]["name"], "Running")

    return play


def test_a_pod_stuck_terminating_on_a_lost_node_is_force_deleted(cluster: Cluster) -> None:
    svc = cluster.services
    if cluster.kube is not None and cluster.kubelet is not None:
        cluster.kubelet.behave("myapp-", _lost_kubelet(cluster.kube))
        cluster.kube.settings.hold_pod_deletions = True
    pid = save(svc, "name: lost-node\ntasks:\n  - {name: stuck, template: shell, args: {script: 'sleep 120'}}\n")
    run_id = start(svc, pid)
    data = wait_until(
        svc,
        run_id,
        lambda d: d["by_name"]["stuck"]["attempts"] and d["by_name"]["stuck"]["attempts"][0]["pods"],
        what="the pod",
    )
    name = data["by_name"]["stuck"]["attempts"][0]["pods"][0]
    poll(lambda: ((cluster.get_pod(name) or {}).get("status") or {}).get("phase") == "Running", "running", timeout=60)
    node = ((cluster.get_pod(name) or {}).get("spec") or {}).get("nodeName")
    if cluster.sim is not None:
        cluster.sim.lose_node()  # its kubelet stops answering: deletions are never finished
    cluster.launcher.delete("Pod", name, grace_seconds=1)  # the taint manager, say: no kubelet will ever confirm
    run = wait_finished(svc, run_id)
    assert run["state"] == "failed"
    assert _message(run, "stuck") == (
        f"pod {name} was still terminating {LOST_NODE_TIMEOUT} s after its deletion (node {node} lost?); "
        "it was force-deleted"
    )
    poll(lambda: cluster.get_pod(name) is None, "the force deletion")


def test_a_pod_on_a_not_ready_node_is_force_deleted(cluster: Cluster) -> None:
    svc, (kube, kubelet) = (
        cluster.services,
        cluster.fake("the node controller's Ready=False (no controller-manager runs with the real test server)"),
    )
    kubelet.behave("myapp-", _lost_kubelet(kube))
    kube.settings.hold_pod_deletions = True
    pid = save(svc, "name: not-ready-node\ntasks:\n  - {name: stuck, template: shell, args: {script: 'true'}}\n")
    run_id = start(svc, pid)
    data = wait_until(
        svc,
        run_id,
        lambda d: d["by_name"]["stuck"]["attempts"] and d["by_name"]["stuck"]["attempts"][0]["pods"],
        what="the pod",
    )
    name = data["by_name"]["stuck"]["attempts"][0]["pods"][0]
    poll(lambda: ((kube.get("pods", NAMESPACE, name) or {}).get("status") or {}).get("phase") == "Running", "running")
    kube.mark_pod_not_ready(NAMESPACE, name)
    run = wait_finished(svc, run_id)
    assert run["state"] == "failed"
    assert (
        _message(run, "stuck") == f"node fake-node of pod {name} has not been ready for {LOST_NODE_TIMEOUT} s (lost?); "
        "the pod was force-deleted"
    )
    poll(lambda: kube.get("pods", NAMESPACE, name) is None, "the force deletion")


# --- sidecars -----------------------------------------------------------------------------------


def test_an_injected_sidecar_does_not_keep_the_attempt_running(cluster: Cluster) -> None:
    svc = cluster.services
    if cluster.kube is not None:

        def inject(pod: dict[str, Any]) -> None:  # what a service mesh's mutating webhook does
            pod["spec"]["containers"].append({"name": "proxy", "image": "proxy:1", "command": ["sleep", "300"]})

        cluster.kube.add_admission("pods", inject)
    else:
        cluster.node().inject_sidecar(f"{cluster.namespace}/myapp-", name="proxy")
    pid = save(
        svc,
        """
        name: with-sidecar
        tasks:
          - {name: work, template: shell, args: {script: 'echo 7 > n.txt'}, outputs: [{name: n, path: n.txt}]}
    """,
    )
    run = wait_finished(svc, start(svc, pid))
    assert run["state"] == "succeeded", run
    assert run["by_name"]["work"]["outputs"]["n"] == {"type": "text", "value": "7"}
    name = run["by_name"]["work"]["attempts"][0]["pods"][0]
    poll(lambda: cluster.get_pod(name) is None, "the pod (and its sidecar) to be deleted", timeout=60)


# --- create refused by a throttled, overloaded or over-quota API server ---------------------------


def test_a_throttled_or_over_quota_create_is_retried_without_using_a_task_retry(cluster: Cluster) -> None:
    from tests.k8sfake.faults import exceeded_quota, service_unavailable, too_many_requests

    svc, (kube, _) = cluster.services, cluster.fake("429/503 on create cannot be provoked on the real server")
    pods = rf"/namespaces/{NAMESPACE}/pods$"
    kube.inject_fault("POST", pods, service_unavailable(), times=1)
    kube.inject_fault("POST", pods, too_many_requests(1), times=1, retry_after=1)
    quota = kube.inject_fault("POST", pods, exceeded_quota("pods", "x"), times=2)
    pid = save(svc, "name: throttled\ntasks:\n  - {name: t, template: shell, args: {script: 'echo made it'}}\n")
    run_id = start(svc, pid)
    waiting = wait_until(
        svc,
        run_id,
        lambda d: (
            "exceeded quota" in str((d["by_name"]["t"]["attempts"] or [{}])[-1].get("container", {}).get("waiting", ""))
        ),
        what="the create's waiting reason on the run page",
    )
    assert waiting["by_name"]["t"]["state"] == "running"
    run = wait_finished(svc, run_id)
    assert run["state"] == "succeeded", run
    assert len(run["by_name"]["t"]["attempts"]) == 1, "the throttled create cost a task retry"
    assert quota.hits == 2
    assert "waiting" not in run["by_name"]["t"]["attempts"][0]["container"]
    posts = [r for r in kube.requests if r.method == "POST" and r.path.endswith(f"/namespaces/{NAMESPACE}/pods")]
    assert len([r for r in posts]) >= 5


def test_an_over_quota_create_waits_for_the_quota_without_using_a_task_retry(cluster: Cluster) -> None:
    """403 `exceeded quota` from the quota admission plugin: tried again until the quota allows it."""
    svc = cluster.services
    restore: Any = None
    if cluster.kube is not None:
        from tests.k8sfake.faults import exceeded_quota

        quota = cluster.kube.inject_fault(
            "POST", rf"/namespaces/{NAMESPACE}/pods$", exceeded_quota("pods", "x"), times=-1
        )
        restore = cluster.kube.clear_faults
    else:  # a ResourceQuota that allows no more pods (its usage is what the quota controller would write)
        admin = cluster.admin("it creates a ResourceQuota and writes its status (the quota controller's part)")
        path = f"/api/v1/namespaces/{cluster.namespace}/resourcequotas"
        admin.create(
            path,
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {"name": "no-pods"},
                "spec": {"hard": {"pods": "0"}},
            },
        )
        admin.merge_patch(f"{path}/no-pods/status", {"status": {"hard": {"pods": "0"}, "used": {"pods": "0"}}})

        def restore() -> None:
            admin.delete(f"{path}/no-pods")

    try:
        pid = save(svc, "name: over-quota\ntasks:\n  - {name: t, template: shell, args: {script: 'echo made it'}}\n")
        run_id = start(svc, pid)
        waiting = wait_until(
            svc,
            run_id,
            lambda d: (
                "exceeded quota"
                in str((d["by_name"]["t"]["attempts"] or [{}])[-1].get("container", {}).get("waiting", ""))
            ),
            what="the create's waiting reason on the run page",
        )
        assert waiting["by_name"]["t"]["state"] == "running"
        text = waiting["by_name"]["t"]["attempts"][-1]["container"]["waiting"]
        assert text.startswith("cannot create Pod ") and "trying again in" in text, text
    finally:
        restore()
    run = wait_finished(svc, run_id, timeout=120)
    assert run["state"] == "succeeded", run
    assert len(run["by_name"]["t"]["attempts"]) == 1, "the over-quota create cost a task retry"
    assert "waiting" not in run["by_name"]["t"]["attempts"][0]["container"]
    if cluster.kube is not None:
        assert quota.hits >= 1


def test_a_create_refused_for_good_fails_at_once(cluster: Cluster) -> None:
    from tests.k8sfake.errors import StatusError

    svc, (kube, _) = cluster.services, cluster.fake("an injected 422 on create")
    kube.inject_fault(
        "POST",
        rf"/namespaces/{NAMESPACE}/pods$",
        StatusError(422, "Invalid", 'Pod "x" is invalid: spec.containers[0].image: Required value'),
        times=1,
    )
    pid = save(svc, "name: refused\ntasks:\n  - {name: t, template: shell, args: {script: 'true'}}\n")
    run = wait_finished(svc, start(svc, pid))
    assert run["state"] == "failed"
    assert "is invalid" in _message(run, "t") and "tries" not in _message(run, "t")


# --- two installations in one namespace ---------------------------------------------------------


def test_pods_of_another_installation_in_the_same_namespace_and_group_are_left_alone(cluster: Cluster) -> None:
    # Two pods that look like leftovers of an ended attempt 7 in the same group: one labelled with
    # this installation, one with another. The watcher's orphan sweep must delete the first (which
    # proves a sweep ran while both existed) and leave the second alone.
    from myapp.k8s.config import installation_id

    svc = cluster.services

    def leftover(name: str, installation: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": cluster.namespace,
                "labels": {
                    "app.kubernetes.io/managed-by": "myapp",
                    "myapp/group": "test",
                    "myapp/attempt": "7",
                    "myapp/run": "7",
                    "myapp/try": "1",
                    "myapp/installation": installation,
                },
            },
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "debian:bookworm-slim", "command": ["sleep", "60"]}],
            },
        }

    ours = installation_id(svc.settings)
    assert ours != "staging"
    assert cluster.launcher.create(leftover("other-install-7-work-1", "staging")) == "created"
    assert cluster.launcher.create(leftover("own-leftover-7-work-1", ours)) == "created"
    try:
        pid = save(svc, "name: own-work\ntasks:\n  - {name: w, template: shell, args: {script: 'echo mine'}}\n")
        run = wait_finished(svc, start(svc, pid))
        assert run["state"] == "succeeded"

        def own_leftover_deleted() -> bool:
            pod = cluster.get_pod("own-leftover-7-work-1")
            return pod is None or bool(pod["metadata"].get("deletionTimestamp"))

        poll(own_leftover_deleted, "the orphan sweep to delete this installation's leftover pod", timeout=120)
        pod = cluster.get_pod("other-install-7-work-1")
        assert pod is not None and not pod["metadata"].get("deletionTimestamp"), (
            "the watcher deleted another installation's pod as an orphan"
        )
    finally:
        for name in ("other-install-7-work-1", "own-leftover-7-work-1"):
            cluster.launcher.delete("Pod", name, grace_seconds=0)


# --- outputs confined to the attempt's workspace --------------------------------------------------


def test_an_output_linking_out_of_the_workspace_is_refused_by_the_watcher(cluster: Cluster) -> None:
    svc = cluster.services
    secret = svc.settings.home / "watcher-secret.txt"  # a file of the server, not of the pod
    secret.write_text("kube-token-s3cret")
    pid = save(
        svc,
        f"""
        name: link-out
        tasks:
          - name: steal
            template: shell
            args: {{script: 'ln -s {secret} cfg'}}
            outputs: [{{name: cfg, path: cfg, type: file}}]
    """,
    )
    run = wait_finished(svc, start(svc, pid))
    assert run["state"] == "failed"
    assert f"output 'cfg' at cfg resolves to {secret}" in _message(run, "steal"), _message(run, "steal")
    stored = list((svc.settings.artifacts_dir / str(run["id"])).rglob("*"))
    assert not any(p.is_file() and "s3cret" in p.read_text(errors="replace") for p in stored)


# --- resource manifests may not borrow the executor's rights ------------------------------------


def test_a_resource_manifest_borrowing_the_executors_rights_is_refused_on_save_and_at_render(cluster: Cluster) -> None:
    from myapp.core.errors import MyappError

    svc = cluster.services
    with pytest.raises(MyappError) as refused:
        save(
            svc,
            """
            name: borrow
            tasks:
              - name: apply
                template: k8s-resource
                args:
                  manifest: |
                    apiVersion: v1
                    kind: Pod
                    metadata: {name: "borrow-{{ run_id }}"}
                    spec:
                      containers: [{name: c, image: busybox, command: [cat, /home/kubeconfig.json]}]
                      volumes: [{name: home, hostPath: {path: /}}]
        """,
        )
    assert "tasks[apply].args.manifest.spec.volumes[0]" in str(refused.value)
    assert "hostPath is not allowed" in str(refused.value)
    pid = save(
        svc,
        """
        name: borrow-late
        tasks:
          - name: apply
            template: k8s-resource
            args:
              manifest: |
                apiVersion: v1
                kind: Pod
                metadata: {name: "borrow-late-{{ run_id }}"}
                spec:
                  serviceAccountName: "{{ 'my' ~ 'app' }}"
                  containers: [{name: c, image: busybox, command: ['true']}]
    """,
    )
    run = wait_finished(svc, start(svc, pid))
    assert run["state"] == "failed"
    assert "args.manifest.spec.serviceAccountName: may not name service account 'myapp'" in _message(run, "apply")
    assert cluster.get_pod(f"borrow-late-{run['id']}") is None, "the pod was created"


# --- each project mounts only its own part of the workflow space ---------------------------------


def test_a_pod_mounts_only_its_projects_subpath_of_the_workflow_space(cluster: Cluster) -> None:
    svc = cluster.services
    pid = save(
        svc,
        """
        name: own-space
        project: vision
        tasks:
          - {name: t, template: shell, args: {script: 'echo "$MYAPP_WORKDIR"; sleep 30'}}
    """,
    )
    run_id = start(svc, pid)
    name = _running_pod(cluster, run_id, "t")
    pod = cluster.get_pod(name) or {}
    mounts = pod["spec"]["containers"][0]["volumeMounts"]
    space = [m for m in mounts if m["name"] == "workflow-space"]
    assert len(space) == 1 and space[0]["subPath"] == "vision", mounts
    workdir = pod["spec"]["containers"][0]["workingDir"]
    assert workdir.startswith(space[0]["mountPath"] + "/"), (workdir, space)
    svc.runs.stop_run(run_id, svc.clock.now(), by="tester")


# --- a failing or forbidden watch -------------------------------------------------------------------


def _forbid_pod_watch(cluster: Cluster) -> Any:
    """Take `watch` on pods away from the watcher; return what gives it back."""
    if cluster.kube is not None:
        from tests.k8sfake.faults import forbidden

        cluster.kube.inject_fault(
            "GET",
            rf"/namespaces/{NAMESPACE}/pods$",
            forbidden("system:serviceaccount:myapp:myapp", "watch", "pods", NAMESPACE),
            times=-1,
            watch=True,
        )
        cluster.kube.end_watches("pods")  # the open watch ends; every new one is refused
        return cluster.kube.clear_faults
    # The real server: docker/k8s/rbac.yaml's Role without `watch` on pods (list, get stay). RBAC is
    # checked when a watch opens, so the watcher is restarted once the server refuses watches.
    admin = cluster.admin("it changes the executor's Role, which the test user may not do on your cluster")
    role = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{cluster.namespace}/roles/myapp-executor"
    rules = admin.get(role)["rules"]
    admin.merge_patch(
        role,
        {
            "rules": [
                {**r, "verbs": [v for v in r["verbs"] if v != "watch"]} if r.get("resources") == ["pods"] else r
                for r in rules
            ]
        },
    )

    def refused() -> bool:
        try:
            cluster.launcher.watch_raw("pods", resource_version="", timeout_seconds=1).close()
        except LaunchError as exc:
            return exc.status == 403
        return False

    poll(refused, "the API server to refuse the watch", timeout=60)
    cluster.watcher.stop()
    cluster.watcher.start()
    return lambda: admin.merge_patch(role, {"rules": rules})


def _health(cluster: Cluster) -> Any:
    """Return a function answering GET /health of a web app on the test's database and Redis."""
    import dataclasses

    from myapp.web.app import create_app

    svc = cluster.services
    settings = dataclasses.replace(svc.settings, executor="kubernetes", k8s_group="test")
    app = create_app(settings, dataclasses.replace(svc, settings=settings))
    client = app.test_client()
    return lambda: client.get("/health").get_json()


def test_a_forbidden_pod_watch_is_shown_and_attempts_are_still_decided(cluster: Cluster) -> None:
    svc = cluster.services
    if cluster.kube is None:
        cluster.admin("it changes the executor's Role, which the test user may not do on your cluster")
    health = _health(cluster)
    poll(lambda: health()["status"] == "ok", "/health to show the watcher's working watch", timeout=60)
    restore = _forbid_pod_watch(cluster)
    try:
        poll(lambda: b"the pod watch fails" in cluster.watcher.log.read_bytes(), "the watcher to say so", timeout=60)
        report = poll(lambda: (h := health())["status"] == "degraded" and h, "/health to say so", timeout=60)
        [entry] = report["k8s_watchers"]
        assert entry["group"] == "test" and entry["status"] == "degraded", report
        assert entry["watches"] == {"events": "ok", "pods": "failing"}, report
        assert "the pods watch fails (HTTP 403 Forbidden) since" in entry["problem"], report
        assert "pods read one by one" in entry["problem"], report
        pid = save(
            svc, "name: no-watch\ntasks:\n  - {name: t, template: shell, args: {script: 'sleep 1; echo done'}}\n"
        )
        run = wait_finished(svc, start(svc, pid), timeout=120)
        assert run["state"] == "succeeded", run["by_name"]["t"]["message"]
        notice = run["by_name"]["t"]["attempts"][0]["container"].get("watcher", "")
        assert "the pod watch fails" in notice and "forbidden" in notice, notice
        assert task_lines(svc, run["id"], "t") == ["done"]
    finally:
        restore()
    poll(lambda: b"the pod watch works again" in cluster.watcher.log.read_bytes(), "the watch to recover", timeout=90)
    poll(lambda: health()["status"] == "ok", "/health to recover", timeout=60)


@pytest.mark.timeout(300)
def test_a_pod_deleted_while_its_watch_is_forbidden_is_still_found_missing(cluster: Cluster) -> None:
    """Loss detection without a watch: the pods are read one by one, and one that is gone (deleted
    with grace 0, so no terminal status is ever seen) fails its attempt as not found."""
    svc = cluster.services
    if cluster.kube is None:
        cluster.admin("it changes the executor's Role, which the test user may not do on your cluster")
    pid = save(svc, "name: no-watch-lost\ntasks:\n  - {name: t, template: shell, args: {script: 'sleep 300'}}\n")
    run_id = start(svc, pid)
    name = _running_pod(cluster, run_id, "t")
    restore = _forbid_pod_watch(cluster)
    try:
        poll(lambda: b"the pod watch fails" in cluster.watcher.log.read_bytes(), "the watcher to say so", timeout=60)
        cluster.launcher.delete("Pod", name, grace_seconds=0)
        if cluster.kube is None:  # the real kubelet-less server removes a grace-0 pod at once
            poll(lambda: cluster.get_pod(name) is None, "the pod to be gone", timeout=60)
        run = wait_finished(svc, run_id, timeout=150)
    finally:
        restore()
    assert run["state"] == "failed"
    message = _message(run, "t")
    assert name in message and ("not found" in message or "deleted" in message), message
    poll(lambda: b"the pod watch works again" in cluster.watcher.log.read_bytes(), "the watch to recover", timeout=90)


# --- secrets and the run token through a per-attempt Secret ----------------------------------------


def test_secrets_and_the_run_token_reach_the_pod_through_its_own_secret_never_inline(cluster: Cluster) -> None:
    import json

    from kubernetes import client as k8s

    from myapp.catalog.plugins import parse_template

    svc = cluster.services
    svc.templates.sync(
        [
            parse_template(
                {
                    "name": "secret-user",
                    "version": "1",
                    "args_style": "env",
                    "image": "bash:5",
                    "command": [
                        "bash",
                        "-c",
                        'n=$(printf %s "$password" | wc -c); echo "pw=$password token=$MYAPP_TOKEN len=$n"; '
                        "sleep 2; echo done",
                    ],
                    "parameters": {"password": {"type": "secret", "required": True}},
                }
            )
        ],
        "test",
        svc.clock.now(),
    )
    pid = save(
        svc,
        """
        name: secret-delivery
        parameters: [{name: pw}]
        tasks:
          - {name: use, template: secret-user, inputs: {password: {from: params.pw}}}
    """,
    )
    run_id = start(svc, pid, {"pw": "correct-horse-battery"})
    token = svc.runs.run_token(run_id)
    name = _running_pod(cluster, run_id, "use")
    pod = cluster.get_pod(name) or {}
    assert "correct-horse-battery" not in json.dumps(pod) and token not in json.dumps(pod)
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    for key in ("MYAPP_TOKEN", "password"):
        assert env[key]["valueFrom"]["secretKeyRef"] == {"name": f"{name}-secret", "key": key}, env[key]
    secret = k8s.CoreV1Api(cluster.launcher.api).read_namespaced_secret(f"{name}-secret", cluster.namespace)
    owners = [(o.kind, o.name, o.uid) for o in secret.metadata.owner_references or []]
    assert owners == [("Pod", name, pod["metadata"]["uid"])], "the Secret must go with its pod"
    assert cluster.launcher.get_secret_data(f"{name}-secret") == {
        "MYAPP_TOKEN": token,
        "password": "correct-horse-battery",
    }
    run = wait_finished(svc, run_id)
    text = log_text(svc, run_id, "use")
    assert run["state"] == "succeeded", text
    assert "pw=****** token=****** len=21" in text and "correct-horse-battery" not in text
    poll(lambda: cluster.launcher.get_secret_data(f"{name}-secret") == {}, "the Secret to be deleted with the attempt")


# --- deletes after the finish ----------------------------------------------------------------------


def _objects_of(cluster: Cluster, run_id: int, tasks: list[str]) -> list[str]:
    data = detail(cluster.services, run_id)
    pods = [str(p) for t in tasks for a in data["by_name"][t]["attempts"] for p in a["pods"]]
    return [n for n in pods if cluster.get_pod(n)] + [
        f"{n}-secret" for n in pods if cluster.launcher.get_secret_data(f"{n}-secret")
    ]


def test_a_slow_delete_holds_no_finish(cluster: Cluster) -> None:
    # 1,000 pods on a loaded API server: the 8 finisher threads spent half their time waiting on the
    # deletes that follow a recorded end, and finishes queued behind them. Every pod and Secret
    # delete is held here: more attempts than finisher threads must still all finish meanwhile.
    kube, _ = cluster.fake("it holds DELETE requests in FakeKubeServer")
    svc = cluster.services
    tasks = [f"t{i}" for i in range(10)]
    body = "".join(f"\n  - {{name: {t}, template: shell, args: {{script: 'echo {t}'}}}}" for t in tasks)
    run_id = start(svc, save(svc, f"name: slow-deletes\ntasks:{body}\n"))
    held = kube.hold_requests("DELETE", rf"^/api/v1/namespaces/{NAMESPACE}/(pods|secrets)/", times=-1, limit=150)
    try:
        run = wait_finished(svc, run_id, timeout=120)
        assert run["state"] == "succeeded", run
        assert held.waiting, "the attempts finished while their deletes were held"
        assert len(_objects_of(cluster, run_id, tasks)) == 20, "nothing was deleted yet"
    finally:
        held.release()
    poll(lambda: not _objects_of(cluster, run_id, tasks), "the pods and Secrets to be deleted once released", 120)


def test_deletes_refused_after_the_finish_are_done_by_the_next_watcher(cluster: Cluster) -> None:
    # A watcher that died (or gave up) with deletes still to do leaves pods and Secrets behind; the
    # next one (a restart, or the standby taking over) deletes them in its first sweep.
    kube, _ = cluster.fake("it refuses DELETE requests in FakeKubeServer")
    from tests.k8sfake.faults import forbidden

    svc = cluster.services
    refusal = forbidden("myapp", "delete", "pods", NAMESPACE)
    refused = kube.inject_fault("DELETE", rf"^/api/v1/namespaces/{NAMESPACE}/(pods|secrets)/", refusal, times=-1)
    run_id = start(
        svc, save(svc, "name: refused-deletes\ntasks:\n  - {name: t, template: shell, args: {script: 'echo t'}}\n")
    )
    run = wait_finished(svc, run_id)
    assert run["state"] == "succeeded", run
    poll(lambda: refused.hits >= 2, "the pod and Secret deletes to be refused")
    assert len(_objects_of(cluster, run_id, ["t"])) == 2
    kube.clear_faults()
    cluster.watcher.stop()
    cluster.watcher.start()
    poll(lambda: not _objects_of(cluster, run_id, ["t"]), "the next watcher to delete the pod and its Secret")


# --- logs: long lines, stalled follows ------------------------------------------------------------


def test_a_line_longer_than_the_runtimes_16_kib_arrives_whole(cluster: Cluster) -> None:
    svc = cluster.services
    pid = save(
        svc,
        """
        name: long-line
        tasks:
          - {name: t, template: shell, args: {script: 'head -c 40000 /dev/zero | tr "\\0" x; echo; echo end'}}
    """,
    )
    run = wait_finished(svc, start(svc, pid))
    assert run["state"] == "succeeded"
    lines = task_lines(svc, run["id"], "t")
    assert lines == ["x" * 40000, "end"], [len(line) for line in lines]


def test_a_stalled_log_follow_is_resumed_and_loses_nothing(cluster: Cluster) -> None:
    svc = cluster.services
    pid = save(
        svc,
        """
        name: stalled-log
        tasks:
          - {name: t, template: shell, args: {script: 'for i in $(seq 1 40); do echo "line $i"; sleep 0.1; done'}}
    """,
    )
    run_id = start(svc, pid)
    name = _running_pod(cluster, run_id, "t")
    poll(lambda: "line 2" in log_text(svc, run_id, "t"), "the follow to deliver lines", timeout=60)
    if cluster.kube is not None:
        assert cluster.kube.stall_log_streams() >= 1  # the kubelet's stream goes silent; the connection stays open
    else:
        sim = cluster.node()
        sim.stall_logs(f"{cluster.namespace}/{name}")  # the node's streams of the pod go silent, stay open
        poll(
            lambda: any(r[1] == name and "sinceTime" in r[3] for r in sim.log_requests()),
            "the silent follow to be resumed with sinceTime",
            timeout=60,
        )
        sim.resume_logs()
    run = wait_finished(svc, run_id)
    assert run["state"] == "succeeded"
    assert task_lines(svc, run_id, "t") == [f"line {i}" for i in range(1, 41)]
    if cluster.kube is not None:
        resumed = [r for r in cluster.kube.requests if r.path.endswith(f"/pods/{name}/log") and "sinceTime" in r.query]
        assert resumed, "the stalled follow was never resumed"


def test_a_log_rotated_by_the_node_while_followed_loses_nothing(cluster: Cluster) -> None:
    sim = cluster.node("log files and their rotation are the node's (the fake keeps one log per container)")
    svc = cluster.services
    go = Path(cluster.services.settings.workflow_space) / f"rotate-{time.monotonic_ns()}"
    pid = save(
        svc,
        f"""
        name: rotated-log
        tasks:
          - {{name: t, template: shell, args: {{script: 'for i in $(seq 1 20); do echo "line $i"; done;
              while [ ! -e {go} ]; do sleep 0.1; done; for i in $(seq 21 40); do echo "line $i"; done'}}}}
    """,
    )
    run_id = start(svc, pid)
    name = _running_pod(cluster, run_id, "t")
    poll(lambda: "line 20" in log_text(svc, run_id, "t"), "the first lines to be followed", timeout=60)
    sim.rotate_logs(cluster.namespace, name)  # as kubelet at containerLogMaxSize: a fresh file from now on
    go.touch()
    run = wait_finished(svc, run_id)
    assert run["state"] == "succeeded"
    assert task_lines(svc, run_id, "t") == [f"line {i}" for i in range(1, 41)]
