"""Pod parsing (myapp/k8s/pods.py) and the attempt outcome it adds up to (myapp/k8s/outcome.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from myapp.k8s.config import PodRules
from myapp.k8s.outcome import attempt_outcome
from myapp.k8s.pods import Outcome, parse_pod, pod_summary

CREATED = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
RULES = PodRules(image_pull_grace=30, startup_timeout=600, lost_node_timeout=300)


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def raw_pod(
    name: str,
    phase: str,
    *,
    rank: int | None = None,
    reason: str = "",
    message: str = "",
    container: dict[str, Any] | None = None,
) -> dict[str, Any]:
    labels = {"myapp/attempt": "9", "myapp/run": "3", "myapp/try": "1"}
    if rank is not None:
        labels["myapp/rank"] = str(rank)
    status: dict[str, Any] = {"phase": phase, "containerStatuses": [{"name": "main", "state": container or {}}]}
    if reason:
        status.update(reason=reason, message=message)
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": "u-" + name,
            "labels": labels,
            "annotations": {"myapp/task-name": "train"},
            "creationTimestamp": stamp(CREATED),
        },
        "spec": {"nodeName": "node-1", "containers": [{"name": "main"}]},
        "status": status,
    }


def terminated(code: int, message: str = "", reason: str = "") -> dict[str, Any]:
    return {
        "terminated": {"exitCode": code, "message": message, "reason": reason or ("Completed" if not code else "Error")}
    }


def outcome(
    *pods: dict[str, Any], expected: int = 1, gone: bool = False, after: float = 1, notes: dict[str, str] | None = None
) -> Outcome | None:
    return attempt_outcome(
        [parse_pod(p, gone=gone) for p in pods],
        expected,
        task="train",
        timeout=60,
        now=CREATED + timedelta(seconds=after),
        rules=RULES,
        notes=notes,
    )


def test_parse_keeps_what_the_watcher_needs() -> None:
    pod = parse_pod(raw_pod("p", "Running", rank=1, container={"running": {"startedAt": "t"}}))
    assert (pod.attempt_id, pod.run_id, pod.try_number, pod.task, pod.rank) == (9, 3, 1, "train", 1)
    assert pod.containers[0].has_log and pod.node == "node-1" and not pod.is_terminal


def test_single_pod_outcomes() -> None:
    assert outcome(raw_pod("p", "Running", container={"running": {}})) is None
    assert outcome(raw_pod("p", "Succeeded", container=terminated(0, "myapp-outputs 1\n"))) == Outcome(
        True, 0, "", "myapp-outputs 1\n"
    )
    assert outcome(raw_pod("p", "Failed", container=terminated(3))) == Outcome(False, 3, "exit code 3")
    assert outcome(raw_pod("p", "Failed", container=terminated(137, reason="OOMKilled"))) == Outcome(
        False, 137, "exit code 137 (OOMKilled)"
    )
    assert outcome(raw_pod("p", "Failed", container=terminated(2, "disk full"))) == Outcome(
        False, 2, "exit code 2: disk full"
    )


def test_eviction_deadline_deletion_and_bad_images_fail_the_attempt() -> None:
    evicted = outcome(raw_pod("p", "Failed", reason="Evicted", message="The node was low on resource: memory."))
    assert evicted == Outcome(False, None, "pod p was evicted: The node was low on resource: memory.")
    assert outcome(raw_pod("p", "Failed", reason="DeadlineExceeded")) == Outcome(
        False, None, "task 'train' timed out after 60 s"
    )
    assert outcome(raw_pod("p", "Running", container={"running": {}}), gone=True) == Outcome(
        False, None, "pod p was deleted by someone else while running"
    )
    backoff = raw_pod("p", "Pending", container={"waiting": {"reason": "ImagePullBackOff", "message": "no"}})
    assert outcome(backoff, after=29) is None, "an image pull error fails only after its grace"
    assert outcome(backoff, after=30) == Outcome(
        False, None, "container main cannot start: ImagePullBackOff: no (for 30 s)"
    )
    assert outcome(raw_pod("p", "Pending", container={"waiting": {"reason": "ContainerCreating"}})) is None


def test_a_pod_deleted_or_evicted_by_someone_else_says_so() -> None:
    # A real kubelet reports the killed container (137) and phase Failed before the DELETED event.
    killed = raw_pod("p", "Failed", container=terminated(137))
    killed["metadata"]["deletionTimestamp"] = stamp(CREATED + timedelta(seconds=30))
    assert outcome(killed) == Outcome(
        False, None, "pod p was deleted by someone else while running (the task was killed: exit code 137)"
    )
    evicted = raw_pod("p", "Failed", container=terminated(143))
    evicted["metadata"]["deletionTimestamp"] = stamp(CREATED)
    evicted["status"]["conditions"] = [
        {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "EvictionByEvictionAPI",
            "message": "Eviction API: evicting",
        }
    ]
    assert outcome(evicted) == Outcome(False, None, "pod p was evicted (Eviction API): Eviction API: evicting")
    finished = raw_pod("p", "Succeeded", container=terminated(0))
    finished["metadata"]["deletionTimestamp"] = stamp(CREATED)
    assert outcome(finished) == Outcome(True, 0, "", ""), "a pod deleted after its task succeeded succeeded"


def test_the_task_container_decides_and_sidecars_are_not_waited_for() -> None:
    pod = raw_pod("p", "Running", container=terminated(0, "myapp-outputs 1\n"))
    pod["spec"]["containers"].append({"name": "istio-proxy"})
    pod["status"]["containerStatuses"].append({"name": "istio-proxy", "state": {"running": {}}})
    assert outcome(pod) == Outcome(True, 0, "", "myapp-outputs 1\n")
    pod["status"]["containerStatuses"][0]["state"] = terminated(4)
    assert outcome(pod) == Outcome(False, 4, "exit code 4")
    pod["status"]["containerStatuses"][0]["state"] = {"running": {}}
    assert outcome(pod) is None


def test_a_pod_that_never_starts_fails_after_the_startup_timeout_with_the_schedulers_reason() -> None:
    pending = raw_pod("p", "Pending")
    pending["status"]["containerStatuses"] = []
    pending["status"]["conditions"] = [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient cpu.",
        }
    ]
    assert outcome(pending, after=599) is None
    assert outcome(pending, after=600) == Outcome(
        False, None, "pod p did not start within 600 s: 0/1 nodes are available: 1 Insufficient cpu."
    )
    noted = outcome(pending, after=601, notes={"p": "0/3 nodes are available: 3 node(s) had taint {gpu: }."})
    assert noted == Outcome(
        False, None, "pod p did not start within 600 s: 0/3 nodes are available: 3 node(s) had taint {gpu: }."
    )


def test_a_pod_on_a_lost_node_is_force_deleted_after_the_timeout() -> None:
    stuck = raw_pod("p", "Running", container={"running": {}})
    stuck["metadata"]["deletionTimestamp"] = stamp(CREATED + timedelta(seconds=30))
    assert outcome(stuck, after=329) is None, "a graceful deletion in progress is no loss"
    lost = outcome(stuck, after=330)
    assert lost is not None and lost.force_delete and not lost.succeeded
    assert (
        lost.message == "pod p was still terminating 300 s after its deletion (node node-1 lost?); it was force-deleted"
    )
    unready = raw_pod("p", "Running", container={"running": {}})
    unready["status"]["conditions"] = [
        {"type": "Ready", "status": "False", "lastTransitionTime": stamp(CREATED + timedelta(seconds=10))}
    ]
    assert outcome(unready, after=309) is None
    gone_node = outcome(unready, after=310)
    assert gone_node is not None and gone_node.force_delete
    assert gone_node.message == "node node-1 of pod p has not been ready for 300 s (lost?); the pod was force-deleted"
    unready["status"]["conditions"][0]["reason"] = "ContainersNotReady"  # the kubelet's own word: not a lost node
    assert outcome(unready, after=1000) is None


def test_distributed_needs_every_rank_and_fails_with_the_first_failing_one() -> None:
    ok = [raw_pod(f"p-{r}", "Succeeded", rank=r, container=terminated(0)) for r in range(3)]
    assert outcome(*ok[:2], expected=3) is None
    assert outcome(*ok, expected=3) == Outcome(True, 0, "", "")
    failing = raw_pod("p-1", "Failed", rank=1, container=terminated(7))
    running = raw_pod("p-2", "Running", rank=2, container={"running": {}})
    assert outcome(ok[0], failing, running, expected=3) == Outcome(False, 7, "pod p-1: exit code 7")


def test_summary_for_the_run_page() -> None:
    summary = pod_summary(parse_pod(raw_pod("p", "Failed", container=terminated(1, "boom"))))
    assert summary["phase"] == "Failed" and summary["node"] == "node-1"
    assert summary["containers"] == [
        {
            "name": "main",
            "state": "terminated",
            "reason": "Error",
            "exit_code": 1,
            "message": "boom",
            "started_at": "",
            "finished_at": "",
        }
    ]


def test_a_stream_masks_the_secrets_of_its_pods_from_then_on() -> None:
    from myapp.k8s.logs import AttemptStream

    class Sink:
        def __init__(self) -> None:
            self.lines: list[str] = []

        def write(self, line: str) -> None:
            self.lines.append(line)

        def note(self, text: str) -> None:
            self.lines.append(f"sys: {text}")

        def close(self) -> None:
            pass

    sink = Sink()
    stream = AttemptStream(sink)
    stream.write("pw=correct-horse")
    stream.mask(("correct-horse",))
    stream.write("pw=correct-horse, again correct-horse")
    stream.mask(("correct-horse", "tok-12345"))
    stream.write("tok-12345 correct-horse")
    stream.note("failed: tok-12345")
    assert sink.lines == ["pw=correct-horse", "pw=******, again ******", "****** ******", "sys: failed: ******"]


def test_the_hubs_own_lines_go_to_the_sys_stream_of_the_attempt_log(tmp_path: Path) -> None:
    from myapp.k8s.logs import LogHub
    from myapp.logs.attempt_logs import AttemptLog, LogKey, LogReader, Stream

    key = LogKey(7, "t", 1)
    hub = LogHub(None, lambda k: AttemptLog(k, tmp_path, None))  # type: ignore[arg-type]  no pod is followed
    hub.note(9, key, "pod p: exit code 3")
    hub.close(9, key, [])
    entries, archived = LogReader(tmp_path, None).entries(key)
    assert archived and [(e.stream, e.text) for e in entries] == [(Stream.SYS, "pod p: exit code 3\n")]
    assert [e.plain for e in entries] == ["[myapp] pod p: exit code 3\n"]


def test_partial_chunks_of_a_long_line_are_joined_without_their_timestamps() -> None:
    from myapp.k8s.logs import join_partials

    first, second, third = b"a" * 16384, b"b" * 16384, b"c" * 10
    line = (
        b"2026-12-06T12:00:00.000000001Z "
        + first
        + b"2026-12-06T12:00:00.000000002Z "
        + second
        + b"2026-12-06T12:00:00.000000003Z "
        + third
    )
    assert join_partials(line) == b"2026-12-06T12:00:00.000000001Z " + first + second + third
    printed = b"2026-12-06T12:00:00Z said 2026-12-06T12:00:00Z at noon"
    assert join_partials(printed) == printed, "a timestamp the task printed is kept"
    short = b"2026-12-06T12:00:00Z " + b"x" * 100
    assert join_partials(short) == short


def seqpod(phase: str, init: list[dict[str, Any]], main: dict[str, Any] | None = None) -> dict[str, Any]:
    pod = raw_pod("p", phase, container=main or {"waiting": {"reason": "PodInitializing"}})
    pod["metadata"]["annotations"]["myapp/steps"] = "fetch,compute,report"
    pod["spec"]["initContainers"] = [{"name": "step-fetch"}, {"name": "step-compute"}]
    pod["status"]["initContainerStatuses"] = [
        {"name": n, "state": s} for n, s in zip(["step-fetch", "step-compute"], init, strict=False)
    ]
    return pod


def test_a_seqpod_init_container_that_fails_names_its_step() -> None:
    said = "step 'compute' failed with exit code 4\n"
    failed = seqpod("Failed", [terminated(0), terminated(4, said)])
    assert outcome(failed) == Outcome(False, 4, "exit code 4: step 'compute' failed with exit code 4")
    killed = seqpod("Failed", [terminated(137, reason="OOMKilled")])
    assert outcome(killed) == Outcome(False, 137, "init container step-fetch exit code 137 (OOMKilled)")
    pod = parse_pod(failed)
    assert pod.steps == ("fetch", "compute", "report") and pod.several_containers
    assert [c["name"] for c in pod_summary(pod)["containers"]] == ["step-fetch", "step-compute", "main"]


def test_a_pending_pod_running_its_init_containers_has_started() -> None:
    running = seqpod("Pending", [terminated(0), {"running": {"startedAt": "t"}}])
    assert outcome(running, after=RULES.startup_timeout + 1) is None
    pulling = seqpod("Pending", [{"waiting": {"reason": "ErrImagePull", "message": "no such image"}}])
    failed = outcome(pulling, after=RULES.image_pull_grace + 1)
    assert failed is not None and "container step-fetch cannot start: ErrImagePull" in failed.message


def test_a_pod_whose_claim_does_not_exist_fails_after_the_grace_naming_the_claim() -> None:
    pod = raw_pod("p", "Pending")
    pod["spec"].pop("nodeName")
    pod["status"] = {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": 'persistentvolumeclaim "default-missing" not found',
                "lastTransitionTime": stamp(CREATED),
            }
        ],
    }
    assert outcome(pod, after=RULES.image_pull_grace - 1) is None
    failed = outcome(pod, after=RULES.image_pull_grace + 1)
    assert failed is not None and not failed.succeeded
    assert failed.message.startswith(
        "pod p cannot be scheduled: its PersistentVolumeClaim 'default-missing' does not exist in namespace ns (for 30 s"
    )
    wrapped = '0/1 nodes are available: 1 persistentvolumeclaim "default-x" not found.'
    failed = outcome(
        raw_pod("p", "Pending") | {"spec": {"containers": [{"name": "main"}]}}, after=31, notes={"p": wrapped}
    )
    assert failed is not None and "PersistentVolumeClaim 'default-x'" in failed.message
