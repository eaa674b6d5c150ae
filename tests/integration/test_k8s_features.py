"""Kubernetes executor features beyond the foundation scenarios (issue 5), on FakeKubeServer with
the official client, a real Celery worker and a real `myapp k8s-watcher`.

Distributed attempts (rendezvous env, headless service, prefixed interleaved logs, one failing
rank), log streams that break or start late, 410 Gone on the pod watch, eviction and image
errors, outputs handed over by the termination message, pod status and events in the REST run
detail, and resource templates (custom resource with success/failure conditions, deleted on stop).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from myapp.logs.attempt_logs import LogKey
from tests.integration.engine_helpers import detail, log_text, poll, save, start, task_lines, wait_finished, wait_until
from tests.integration.k8s_env import Cluster, backends, k8s_cluster
from tests.integration.k8s_kubelet import Kubelet

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
GROUP = "batch.example.com"


@pytest.fixture(scope="module", params=backends())
def cluster(request: pytest.FixtureRequest, services: Any, broker_url: str) -> Iterator[Cluster]:
    with k8s_cluster(services, broker_url, backend=request.param) as running:
        if running.kube is not None:
            running.kube.register_crd(GROUP, "v1", "TrainingJob", "trainingjobs")
        yield running


def _pod_names(cluster: Cluster, run_id: int, task: str) -> list[str]:
    data = wait_until(
        cluster.services,
        run_id,
        lambda d: d["by_name"][task]["attempts"] and d["by_name"][task]["attempts"][-1]["pods"],
        what=f"pods of {task}",
    )
    return list(data["by_name"][task]["attempts"][-1]["pods"])


# --- distributed -------------------------------------------------------------------------


def test_distributed_attempt_shows_interleaved_prefixed_logs(cluster: Cluster) -> None:
    svc = cluster.services
    pid = save(
        svc,
        """
        name: dist-ok
        tasks:
          - name: train
            template: distributed
            args:
              workers: 3
              script: |
                echo "rank $RANK of $WORLD_SIZE master $MASTER_ADDR:$MASTER_PORT"
                for i in 1 2 3 4 5 6; do echo "rank $RANK step $i"; sleep 0.3; done
    """,
    )
    run = wait_finished(svc, start(svc, pid))
    assert run["state"] == "succeeded", run
    attempt = run["by_name"]["train"]["attempts"][0]
    pods = attempt["pods"]
    assert len(pods) == 3 and pods[0].endswith("-0")
    lines = task_lines(svc, run["id"], "train")
    prefixed = [re.fullmatch(r"(\S+)/main (.*)", line) for line in lines]
    assert all(prefixed), lines
    by_pod = {p: [m.group(2) for m in prefixed if m and m.group(1) == p] for p in pods}
    for rank, pod in enumerate(pods):
        assert by_pod[pod][0] == f"rank {rank} of 3 master {pods[0]}.{pods[0][:-2]}.{cluster.namespace}.svc:29500"
        assert by_pod[pod][1:] == [f"rank {rank} step {i}" for i in range(1, 7)]
    switches = sum(1 for a, b in zip(prefixed, prefixed[1:], strict=False) if a and b and a.group(1) != b.group(1))
    print("\n".join(lines))
    assert switches >= 4, f"the pods' lines are not interleaved: {lines}"
    poll(
        lambda: cluster.launcher.get_object("v1", "Service", pods[0][:-2]) is None,
        "the headless service to go with the attempt (deleted right after its end is recorded)",
    )


def test_one_failing_rank_fails_the_attempt_and_deletes_the_others(cluster: Cluster) -> None:
    svc = cluster.services
    pid = save(
        svc,
        """
        name: dist-fail
        tasks:
          - name: train
            template: distributed
            args:
              workers: 3
              script: 'if [ "$RANK" = 1 ]; then sleep 0.5; echo "rank 1 gives up"; exit 7; fi; echo "rank $RANK waits"; sleep 60'
    """,
    )
    run_id = start(svc, pid)
    pods = _pod_names(cluster, run_id, "train")
    service = poll(lambda: cluster.launcher.get_object("v1", "Service", pods[0][:-2]), "the headless service")
    assert service["spec"]["clusterIP"] == "None"
    run = wait_finished(svc, run_id)
    ti = run["by_name"]["train"]
    assert run["state"] == "failed" and ti["state"] == "failed"
    assert ti["message"] == f"pod {pods[1]}: exit code 7", ti["message"]
    # (on a real node the ranks' sh, PID 1, ignores SIGTERM: they go after the 30 s grace period)
    poll(lambda: all(cluster.get_pod(p) is None for p in pods), "the other ranks to be deleted", timeout=120)
    assert f"{pods[1]}/main rank 1 gives up" in log_text(svc, run_id, "train")


def test_a_late_pod_is_followed_when_it_starts(cluster: Cluster) -> None:
    svc, (_, kubelet) = (
        cluster.services,
        cluster.fake("the fake's kubelet starts one pod late, on cue, while its sibling runs"),
    )

    def late(kubelet: Kubelet, pod: dict[str, Any]) -> None:
        time.sleep(1.5)
        kubelet.play(pod)

    kubelet.behave("myapp-", lambda k, p: late(k, p) if p["metadata"]["name"].endswith("late-1-1") else k.play(p))
    try:
        pid = save(
            svc,
            """
            name: dist-late
            tasks:
              - {name: late, template: distributed, args: {workers: 2, script: 'echo "hello from $RANK"'}}
        """,
        )
        run = wait_finished(svc, start(svc, pid))
    finally:
        kubelet.behaviours.clear()
    assert run["state"] == "succeeded"
    pods = run["by_name"]["late"]["attempts"][0]["pods"]
    assert sorted(task_lines(svc, run["id"], "late")) == [
        f"{pods[0]}/main hello from 0",
        f"{pods[1]}/main hello from 1",
    ]


# --- logs ----------------------------------------------------------------------------------


def test_a_broken_log_stream_resumes_without_loss_or_duplicates(cluster: Cluster) -> None:
    svc, (kube, _) = (
        cluster.services,
        cluster.fake("the fake cuts a log stream mid-line on cue (the real server's resume: the stalled-follow test)"),
    )
    pid = save(
        svc,
        """
        name: chatty
        tasks:
          - {name: talk, template: shell, args: {script: 'for i in $(seq 1 30); do echo "line $i"; sleep 0.05; done'}}
    """,
    )
    run_id = start(svc, pid)
    _pod_names(cluster, run_id, "talk")
    kube.wait_for_log_follows(1, timeout=60)
    time.sleep(0.5)
    assert kube.break_log_streams() >= 1
    run = wait_finished(svc, run_id)
    assert run["state"] == "succeeded"
    assert task_lines(svc, run_id, "talk") == [f"line {i}" for i in range(1, 31)]
    assert any("sinceTime" in r.query for r in kube.requests if r.path.endswith("/log")), "no resume with sinceTime"
    final = LogKey(run_id, "talk", 1).path(svc.settings.logs_dir)
    assert final.exists() and not final.with_suffix(".live").exists(), "the log was not archived"


# --- watch, eviction, image errors ---------------------------------------------------------


def test_the_watch_resumes_after_410_gone_with_a_fresh_list(cluster: Cluster) -> None:
    svc, (kube, kubelet) = (
        cluster.services,
        cluster.fake("410 Gone needs etcd compacted past the watcher's version, which the fake does on demand"),
    )
    release = threading.Event()

    def hold(kubelet: Kubelet, pod: dict[str, Any]) -> None:
        kube.set_pod_phase(cluster.namespace, pod["metadata"]["name"], "Running")
        release.wait(20)
        kube.finish_pod(cluster.namespace, pod["metadata"]["name"], exit_code=0)

    kubelet.behave("myapp-", hold)
    try:
        pid = save(svc, "name: gone-410\ntasks:\n  - {name: wait, template: shell, args: {script: 'true'}}\n")
        run_id = start(svc, pid)
        _pod_names(cluster, run_id, "wait")
        lists = sum(1 for r in kube.requests if r.path.endswith("/pods") and "watch" not in r.query)
        kube.create("namespaces", None, {"metadata": {"name": f"elsewhere-{run_id}"}})  # history moves on...
        kube.compact()  # ...and is compacted: the watcher's version is now too old
        kube.end_watches("pods")
        poll(
            lambda: sum(1 for r in kube.requests if r.path.endswith("/pods") and "watch" not in r.query) > lists,
            "the watcher to list again after 410",
        )
        release.set()
        run = wait_finished(svc, run_id)
    finally:
        release.set()
        kubelet.behaviours.clear()
    assert run["state"] == "succeeded"


def test_an_evicted_pod_is_retried(cluster: Cluster) -> None:
    svc = cluster.services
    if cluster.kube is not None and cluster.kubelet is not None:
        kube = cluster.kube

        def evict(kubelet: Kubelet, pod: dict[str, Any]) -> None:
            name = pod["metadata"]["name"]
            if not name.endswith("-1"):
                kubelet.play(pod)
                return
            kube.set_pod_phase(cluster.namespace, name, "Running")
            kube.set_pod_phase(
                cluster.namespace, name, "Failed", reason="Evicted", message="The node was low on resource: memory."
            )

        cluster.kubelet.behave("myapp-", evict)
    try:
        pid = save(
            svc,
            """
            name: evicted
            tasks:
              - {name: work, template: shell, args: {script: 'echo "try $MYAPP_TRY_NUMBER"; if [ "$MYAPP_TRY_NUMBER" = 1 ]; then sleep 120; fi'}, retries: 1}
        """,
        )
        run_id = start(svc, pid)
        if cluster.sim is not None:  # kubelet's node-pressure eviction of the first try's pod
            name = _pod_names(cluster, run_id, "work")[0]
            poll(
                lambda: ((cluster.get_pod(name) or {}).get("status") or {}).get("phase") == "Running",
                "the first try to run",
                timeout=120,
            )
            cluster.sim.evict(cluster.namespace, name, message="The node was low on resource: memory. ")
        run = wait_finished(svc, run_id, timeout=120)
    finally:
        if cluster.kubelet is not None:
            cluster.kubelet.behaviours.clear()
    ti = run["by_name"]["work"]
    assert run["state"] == "succeeded" and [a["state"] for a in ti["attempts"]] == ["failed", "succeeded"]
    assert "evicted: The node was low on resource: memory." in ti["attempts"][0]["message"]
    assert task_lines(svc, run["id"], "work", 2) == ["try 2"]


def test_an_image_that_cannot_be_pulled_fails_the_attempt(cluster: Cluster) -> None:
    svc, (kube, kubelet) = (
        cluster.services,
        cluster.fake(
            "the fake's kubelet reports a registry's ErrImagePull (real server: the image pull tests of test_k8s_failures)"
        ),
    )

    def bad_image(kubelet: Kubelet, pod: dict[str, Any]) -> None:
        kube.set_pod_phase(
            cluster.namespace,
            pod["metadata"]["name"],
            "Pending",
            reason="ErrImagePull",
            message="pull access denied for nope, repository does not exist",
        )

    kubelet.behave("myapp-", bad_image)
    try:
        pid = save(svc, "name: bad-image\ntasks:\n  - {name: x, image: 'nope:1', command: ['true']}\n")
        run = wait_finished(svc, start(svc, pid))
    finally:
        kubelet.behaviours.clear()
    assert run["state"] == "failed"
    assert "cannot start: ErrImagePull: pull access denied" in run["by_name"]["x"]["message"]


# --- myapp's own lines in an attempt's log ---------------------------------------------------


def test_myapps_own_lines_are_the_sys_stream_and_the_tasks_lines_stay_its_output(cluster: Cluster) -> None:
    from myapp.logs.attempt_logs import Stream

    svc = cluster.services
    pid = save(
        svc,
        'name: sys-lines\ntasks:\n  - {name: t, template: shell, args: {script: \'echo "[myapp] not me"; '
        "echo done; exit 3'}}\n",
    )
    run = wait_finished(svc, start(svc, pid))
    message = run["by_name"]["t"]["message"]
    assert run["state"] == "failed" and message.endswith("exit code 3"), message
    entries, archived = svc.logs.entries(LogKey(run["id"], "t", 1))
    assert archived
    shown = [(e.stream, e.text.rstrip("\n")) for e in entries]
    assert (Stream.OUT, "[myapp] not me") in shown and (Stream.OUT, "done") in shown, shown
    assert (Stream.SYS, message) in shown, shown  # the watcher's failure note: myapp's, not the task's
    assert [text for stream, text in shown if stream is Stream.SYS] == [message], shown


# --- outputs through the termination message -------------------------------------------------


def test_outputs_from_the_termination_message_and_the_workflow_space(cluster: Cluster) -> None:
    svc, (kube, kubelet) = (
        cluster.services,
        cluster.fake(
            "the fake's kubelet plays an image's `train` command: files and a termination message written on cue"
        ),
    )

    def container(kubelet: Kubelet, pod: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        if "-produce-" not in name:
            kubelet.play(pod)
            return
        main = pod["spec"]["containers"][0]
        env = {e["name"]: e.get("value", "") for e in main["env"]}
        kept = Path(env["MYAPP_WORKDIR"]) / ".myapp" / "outputs" / "model" / "model"
        kept.mkdir(parents=True)
        (kept / "weights.bin").write_bytes(b"\x00\x01")
        kube.set_pod_phase(cluster.namespace, name, "Running")
        kube.append_log(cluster.namespace, name, "trained\n")
        message = "myapp-outputs 1\nscore 5\n0.93\n\n"  # the entrypoint's format, text "0.93\n"
        kube.finish_pod(cluster.namespace, name, exit_code=0, message=message)

    kubelet.behave("myapp-", container)
    try:
        pid = save(
            svc,
            """
            name: termination-outputs
            tasks:
              - name: produce
                image: trainer:1
                command: [train]
                outputs:
                  - {name: score, path: /tmp/out/score.txt, type: text}
                  - {name: model, path: /tmp/out/model, type: file}
              - name: consume
                template: shell
                args: {script: 'echo "score=$score"; ls "$model"'}
                inputs: {score: {from: produce.score}, model: {from: produce.model}}
        """,
        )
        run = wait_finished(svc, start(svc, pid))
    finally:
        kubelet.behaviours.clear()
    assert run["state"] == "succeeded", run
    assert run["by_name"]["produce"]["outputs"]["score"] == {"type": "text", "value": "0.93"}
    assert task_lines(svc, run["id"], "consume") == ["score=0.93", "weights.bin"]


# --- status and events on the run page -------------------------------------------------------


def test_pod_status_and_events_are_served_by_the_rest_api(cluster: Cluster) -> None:
    from myapp.web.app import create_app

    svc, (kube, kubelet) = (
        cluster.services,
        cluster.fake("it expects the fake kubelet's exact event sequence (Scheduled, Pulled, BackOff)"),
    )

    def with_events(kubelet: Kubelet, pod: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        kube.add_event(
            cluster.namespace,
            ("Pod", name),
            "Scheduled",
            f"Successfully assigned {cluster.namespace}/{name} to fake-node",
            component="default-scheduler",
        )
        kube.add_event(
            cluster.namespace, ("Pod", name), "Pulled", 'Container image "debian:bookworm-slim" already present'
        )
        kube.add_event(cluster.namespace, ("Pod", name), "BackOff", "Back-off pulling image", type="Warning")
        time.sleep(0.6)
        kubelet.play(pod)

    kubelet.behave("myapp-", with_events)
    try:
        pid = save(svc, "name: eventful\ntasks:\n  - {name: ev, template: shell, args: {script: 'echo hi'}}\n")
        run_id = wait_finished(svc, start(svc, pid))["id"]
    finally:
        kubelet.behaviours.clear()
    app = create_app(svc.settings, svc)
    client = app.test_client()
    login = client.post(
        "/api/v1/security/login", json={"username": "admin", "password": "admin-pass", "provider": "db"}
    )
    auth = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    body = client.get(f"/api/v1/runs/{run_id}", headers=auth).get_json()["result"]
    attempt = body["tasks"][0]["attempts"][0]
    assert [(e["reason"], e["type"]) for e in attempt["events"]] == [
        ("Scheduled", "Normal"),
        ("Pulled", "Normal"),
        ("BackOff", "Warning"),
    ]
    assert attempt["events"][0]["object"] == f"pod/{attempt['pods'][0]}"
    pod = attempt["container"]["pods"][0]
    assert pod["phase"] == "Succeeded" and pod["node"] == "fake-node"
    assert pod["containers"][0]["state"] == "terminated" and pod["containers"][0]["exit_code"] == 0
    assert attempt["container"]["launch"]["kind"] == "pod"


# --- resource templates ----------------------------------------------------------------------

RESOURCE = """
    name: train-job
    tasks:
      - name: job
        template: k8s-resource
        args:
          manifest: |
            apiVersion: batch.example.com/v1
            kind: TrainingJob
            metadata: {name: "mnist-{{ run_id }}"}
            spec: {replicas: $(params.replicas)}
          params: '{"replicas": 4}'
          success_condition: status.succeeded > 0
          failure_condition: status.failed > 0
"""


def test_a_resource_succeeds_fails_and_is_deleted_on_stop(cluster: Cluster) -> None:
    svc, (kube, _) = (
        cluster.services,
        cluster.fake(
            "it needs a custom resource whose status a controller sets on cue; the real test server runs no controller"
        ),
    )
    pid = save(svc, RESOURCE)

    def created(run_id: int) -> dict[str, Any]:
        return dict(
            poll(
                lambda: kube.get("trainingjobs", cluster.namespace, f"mnist-{run_id}", group=GROUP), "the training job"
            )
        )

    ok = start(svc, pid)
    job = created(ok)
    assert job["spec"] == {"replicas": 4} and job["metadata"]["labels"]["myapp/run"] == str(ok)
    kube.set_status(cluster.namespace, "trainingjobs", f"mnist-{ok}", {"succeeded": 1}, group=GROUP)
    finished = wait_finished(svc, ok)
    assert finished["state"] == "succeeded", finished["by_name"]["job"]["message"]

    bad = start(svc, pid)
    created(bad)
    kube.set_status(cluster.namespace, "trainingjobs", f"mnist-{bad}", {"failed": 2}, group=GROUP)
    failed = wait_finished(svc, bad)
    assert failed["state"] == "failed"
    assert (
        failed["by_name"]["job"]["message"] == f"TrainingJob mnist-{bad} met its failure condition (status.failed > 0)"
    )

    stopped = start(svc, pid)
    created(stopped)
    wait_until(
        svc,
        stopped,
        lambda d: d["by_name"]["job"]["attempts"] and d["by_name"]["job"]["attempts"][0]["container"].get("launch"),
        what="the launch record",
    )
    svc.runs.stop_run(stopped, svc.clock.now(), by="tester")
    poll(
        lambda: kube.get("trainingjobs", cluster.namespace, f"mnist-{stopped}", group=GROUP) is None,
        "stop to delete the training job",
    )
    assert detail(svc, stopped)["state"] == "stopped"
    events = json.dumps(detail(svc, ok)["by_name"]["job"]["attempts"][0]["container"])
    assert '"succeeded": 1' in events


# --- the watcher process -----------------------------------------------------------------------


def test_a_restarted_watcher_picks_up_running_attempts(cluster: Cluster) -> None:
    svc = cluster.services
    go = Path(svc.settings.workflow_space) / f"release-{time.monotonic_ns()}"
    pid = save(
        svc,
        f"""
        name: survives
        tasks:
          - name: held
            image: 'busybox:1.36'
            command: ['sh', '-c', 'echo before the restart; while [ ! -e {go} ]; do sleep 0.1; done;
                      echo after the restart; echo 42 > a.txt']
            outputs: [{{name: answer, path: a.txt}}]
          - {{name: next, template: shell, args: {{script: 'echo "got $answer"'}}, inputs: {{answer: {{from: held.answer}}}}}}
    """,
    )
    run_id = start(svc, pid)
    name = _pod_names(cluster, run_id, "held")[0]
    poll(lambda: "before the restart" in log_text(svc, run_id, "held"), "the pod to run and be followed", timeout=120)
    cluster.watcher.stop()
    go.touch()
    poll(
        lambda: ((cluster.get_pod(name) or {}).get("status") or {}).get("phase") == "Succeeded",
        "the pod to finish while no watcher runs",
        timeout=60,
    )
    cluster.watcher.start()
    run = wait_finished(svc, run_id, timeout=120)
    assert run["state"] == "succeeded", run
    assert [a["state"] for a in run["by_name"]["held"]["attempts"]] == ["succeeded"], "the restart cost a retry"
    assert run["by_name"]["held"]["outputs"]["answer"] == {"type": "text", "value": "42"}
    assert "after the restart" in log_text(svc, run_id, "held")
    assert task_lines(svc, run_id, "next") == ["got 42"]
