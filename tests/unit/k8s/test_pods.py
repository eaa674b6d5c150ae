"""Pod parsing and the attempt outcome it adds up to (myapp/k8s/pods.py)."""

from __future__ import annotations

from typing import Any

from myapp.k8s.pods import Outcome, attempt_outcome, parse_pod, pod_summary


def raw_pod(name: str, phase: str, *, rank: int | None = None, reason: str = "", message: str = "",
            container: dict[str, Any] | None = None) -> dict[str, Any]:
    labels = {"myapp/attempt": "9", "myapp/run": "3", "myapp/try": "1"}
    if rank is not None:
        labels["myapp/rank"] = str(rank)
    status: dict[str, Any] = {"phase": phase, "containerStatuses": [{"name": "main", "state": container or {}}]}
    if reason:
        status.update(reason=reason, message=message)
    return {"metadata": {"name": name, "namespace": "ns", "uid": "u-" + name, "labels": labels,
                         "annotations": {"myapp/task-name": "train"}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "main"}]}, "status": status}


def terminated(code: int, message: str = "", reason: str = "") -> dict[str, Any]:
    return {"terminated": {"exitCode": code, "message": message, "reason": reason or ("Completed" if not code else "Error")}}


def outcome(*pods: dict[str, Any], expected: int = 1, gone: bool = False) -> Outcome | None:
    return attempt_outcome([parse_pod(p, gone=gone) for p in pods], expected, task="train", timeout=60)


def test_parse_keeps_what_the_watcher_needs() -> None:
    pod = parse_pod(raw_pod("p", "Running", rank=1, container={"running": {"startedAt": "t"}}))
    assert (pod.attempt_id, pod.run_id, pod.try_number, pod.task, pod.rank) == (9, 3, 1, "train", 1)
    assert pod.containers[0].has_log and pod.node == "node-1" and not pod.is_terminal


def test_single_pod_outcomes() -> None:
    assert outcome(raw_pod("p", "Running", container={"running": {}})) is None
    assert outcome(raw_pod("p", "Succeeded", container=terminated(0, "myapp-outputs 1\n"))) == \
        Outcome(True, 0, "", "myapp-outputs 1\n")
    assert outcome(raw_pod("p", "Failed", container=terminated(3))) == Outcome(False, 3, "exit code 3")
    assert outcome(raw_pod("p", "Failed", container=terminated(137, reason="OOMKilled"))) == \
        Outcome(False, 137, "exit code 137 (OOMKilled)")
    assert outcome(raw_pod("p", "Failed", container=terminated(2, "disk full"))) == \
        Outcome(False, 2, "exit code 2: disk full")


def test_eviction_deadline_deletion_and_bad_images_fail_the_attempt() -> None:
    evicted = outcome(raw_pod("p", "Failed", reason="Evicted", message="The node was low on resource: memory."))
    assert evicted == Outcome(False, None, "pod p was evicted: The node was low on resource: memory.")
    assert outcome(raw_pod("p", "Failed", reason="DeadlineExceeded")) == \
        Outcome(False, None, "task 'train' timed out after 60 s")
    assert outcome(raw_pod("p", "Running", container={"running": {}}), gone=True) == \
        Outcome(False, None, "pod p was deleted while running")
    pulled = outcome(raw_pod("p", "Pending", container={"waiting": {"reason": "ImagePullBackOff", "message": "no"}}))
    assert pulled == Outcome(False, None, "container main cannot start: ImagePullBackOff: no")
    assert outcome(raw_pod("p", "Pending", container={"waiting": {"reason": "ContainerCreating"}})) is None


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
    assert summary["containers"] == [{"name": "main", "state": "terminated", "reason": "Error", "exit_code": 1,
                                      "message": "boom", "started_at": "", "finished_at": ""}]


def test_a_stream_masks_the_secrets_of_its_pods_from_then_on() -> None:
    from myapp.k8s.logs import AttemptStream

    class Sink:
        def __init__(self) -> None:
            self.lines: list[str] = []

        def write(self, line: str) -> None:
            self.lines.append(line)

        def close(self) -> None:
            pass

    sink = Sink()
    stream = AttemptStream(sink)
    stream.write("pw=correct-horse")
    stream.mask(("correct-horse",))
    stream.write("pw=correct-horse, again correct-horse")
    stream.mask(("correct-horse", "tok-12345"))
    stream.write("tok-12345 correct-horse")
    assert sink.lines == ["pw=correct-horse", "pw=******, again ******", "****** ******"]
