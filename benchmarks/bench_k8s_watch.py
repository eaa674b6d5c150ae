"""Kubernetes watcher benchmark: 1,000 running pods, against the fake API server or a real one.

    python3 benchmarks/bench_k8s_watch.py [--pods 1000] [--rate 100] [--server fake|real]
                                          [--database postgresql://postgres@127.0.0.1/postgres]

The pods are launched as the Celery task does it (claim, launch record, create through the
official client). A real `myapp k8s-watcher` process (one watch stream for the group, one live log
stream per container) watches them; its CPU and memory are read from /proc. Then the pods
complete: the first half at `--rate` per second, the rest all at once. Latency is the attempt's
`ended_at` (written by the watcher when the engine records the end) minus the instant the pod's
task was ended.

- `--server fake` (default): tests/k8sfake in this process; a simulated kubelet marks the pods
  Running with a log line each and terminated on cue (no process runs).
- `--server real`: kube-apiserver v1.20.2 + etcd of scripts/k8s-testenv (built once per machine)
  and the node simulator of tests/k8ssim in this process (scheduler and kubelet through the API).
  Every pod runs its container for real (`unshare`, root), prints a line and waits; a pod completes
  when the benchmark sends its task SIGUSR1 (the task exits 0, the node posts the terminated status,
  the API server sends the watch event). The watcher authenticates as docker/k8s/rbac.yaml's Role.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.databases import drop_database, fresh_database  # noqa: E402

NAMESPACE = "bench"
TICK = os.sysconf("SC_CLK_TCK")


class Proc:
    """CPU seconds, memory and threads of a process, from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def status(self, key: str) -> str:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].strip()
        return "?"

    def rss_mib(self, key: str = "VmRSS") -> float:
        return int(self.status(key).split()[0]) / 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def ended(services: Any) -> dict[int, datetime]:
    from sqlalchemy import select

    from myapp.db.tables import TaskAttempt

    with services.db.read() as s:
        return {
            i: e
            for i, e in s.execute(
                select(TaskAttempt.id, TaskAttempt.ended_at).where(TaskAttempt.ended_at.is_not(None))
            ).all()
        }


def wait_for(what: str, predicate: Any, timeout: float, every: float = 0.1) -> float:
    began = time.perf_counter()
    while not predicate():
        if time.perf_counter() - began > timeout:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(every)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="completions per second in the steady phase")
    parser.add_argument("--database", default="sqlite", help="sqlite (default) or a PostgreSQL server URL")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle measurement")
    parser.add_argument(
        "--log-streams",
        type=int,
        default=2000,
        help="live log streams of the watcher (0: read each log once at the end)",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13", help="live logs; '' for files only")
    parser.add_argument(
        "--server",
        choices=("fake", "real"),
        default="fake",
        help="fake: tests/k8sfake; real: kube-apiserver of scripts/k8s-testenv + the node simulator",
    )
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="myapp-bench-k8s-"))
    if args.server == "real":
        real(args, home)
        return
    from tests.k8sfake import FakeKubeServer

    with FakeKubeServer() as kube:
        run(args, home, FakeCluster(kube, home))


class FakeCluster:
    """The fake API server in this process; the benchmark plays the kubelet."""

    namespace = NAMESPACE
    side = "the fake API server and its kubelet"

    def __init__(self, kube: Any, home: Path) -> None:
        from tests.integration.k8s_env import write_kubeconfig

        self.kube = kube
        self.kubeconfig = write_kubeconfig(home / "kubeconfig.json", kube.url, NAMESPACE)
        self.workflow_space = home / "workflow-space"

    def api_client(self) -> Any:
        return self.kube.api_client()

    def task(self) -> str:
        return "{name: work, image: 'busybox:1.36', command: ['true']}"

    def pods(self) -> dict[str, int]:
        return {
            p["metadata"]["name"]: int(p["metadata"]["labels"]["myapp/attempt"])
            for p in self.kube.store.items("pods", NAMESPACE)
        }

    def run_all(self, pods: dict[str, int]) -> None:
        for name in pods:
            self.kube.set_pod_phase(NAMESPACE, name, "Running")
            self.kube.append_log(NAMESPACE, name, f"{name} started\n")

    def follows(self) -> int:
        return len(self.kube.logs.follows)

    def finish(self, name: str) -> None:
        self.kube.finish_pod(NAMESPACE, name, exit_code=0)

    def requests(self) -> str:
        requests = self.kube.requests
        watches = sum(1 for r in requests if r.path.endswith("/pods") and r.query.get("watch") == "true")
        lists = sum(1 for r in requests if r.method == "GET" and r.path.endswith("/pods") and "watch" not in r.query)
        return (
            f"{watches} pod watch(es), {lists} pod list(s), "
            f"{sum(1 for r in requests if r.path.endswith('/log'))} log requests, "
            f"{sum(1 for r in requests if r.method == 'DELETE')} deletes"
        )


def real(args: argparse.Namespace, home: Path) -> None:
    from dataclasses import replace

    from tests.k8ssim.testenv import TestEnv, missing_binaries, test_config

    why = missing_binaries()
    if why:
        raise SystemExit(f"--server real cannot run here: {why}")
    # kubelet's maxPods is 110: this node takes them all (--max-pods on a real node)
    config = replace(
        test_config(),
        capacity={"cpu": "1000", "memory": "4000Gi", "pods": str(args.pods + 10), "ephemeral-storage": "100Ti"},
    )
    env = TestEnv(home / "testenv", config).start()
    try:
        run(args, home, RealCluster(env, home))
    finally:
        env.stop()


class RealCluster:
    """kube-apiserver + etcd (scripts/k8s-testenv) and the node simulator, in this process."""

    side = "the node simulator"

    def __init__(self, env: Any, home: Path) -> None:
        self.env = env
        self.workflow_space = home / "workflow-space"
        self.namespace = env.namespace("bench", workflow_space=self.workflow_space, pvc="ws")
        self.kubeconfig = env.myapp_kubeconfig(self.namespace, home / "kubeconfig.json")

    def api_client(self) -> Any:
        from tests.integration.k8s_env import api_client

        return api_client(self.kubeconfig)

    def task(self) -> str:
        # Prints a line, then waits; SIGUSR1 ends it with exit code 0 (see finish).
        return (
            "{name: work, image: 'busybox:1.36', command: ['sh', '-c', "
            '\'echo "$MYAPP_ATTEMPT_ID started"; trap "exit 0" USR1; sleep 86400 & wait\']}'
        )

    def pods(self) -> dict[str, int]:
        listed = self.env.admin.get(f"/api/v1/namespaces/{self.namespace}/pods") or {}
        return {p["metadata"]["name"]: int(p["metadata"]["labels"]["myapp/attempt"]) for p in listed.get("items", [])}

    def run_all(self, pods: dict[str, int]) -> None:
        def running() -> bool:
            listed = self.env.admin.get(f"/api/v1/namespaces/{self.namespace}/pods") or {}
            phases = [(p.get("status") or {}).get("phase") for p in listed.get("items", [])]
            return phases.count("Running") >= len(pods)

        took = wait_for("every pod to run on the simulated node", running, 1800, every=1.0)  # lists every pod
        print(f"all {len(pods)} pods Running on the simulated node {took:.1f} s after their creation")

    def follows(self) -> int:
        return sum(1 for r in self.env.sim.log_requests() if r[3].get("follow") == "true")

    def finish(self, name: str) -> None:
        # The task is the child of the container's PID 1 (myapp's entrypoint wrapper).
        init = self.env.sim.pid(self.namespace, name, "main")
        for child in Path(f"/proc/{init}/task/{init}/children").read_text().split():
            os.kill(int(child), signal.SIGUSR1)

    def status_posted(self, pods: dict[str, int], after: dict[int, datetime]) -> dict[int, datetime]:
        """attempt -> when the API server took the node's first status post after the task was ended
        (the audit log's stageTimestamp of the `pods/status` patch): where the watcher's part begins."""
        import json

        posts: dict[str, list[datetime]] = {}
        audit = self.env.cluster_dir / "audit.log"
        for line in audit.read_text().splitlines() if audit.exists() else []:
            event = json.loads(line)
            ref = event.get("objectRef") or {}
            if (
                event.get("stage") == "ResponseComplete"
                and event.get("verb") == "patch"
                and ref.get("subresource") == "status"
                and ref.get("namespace") == self.namespace
            ):
                at = datetime.fromisoformat(str(event["stageTimestamp"]).replace("Z", "+00:00"))
                posts.setdefault(str(ref.get("name")), []).append(at)
        out = {}
        for name, attempt in pods.items():
            later = sorted(t for t in posts.get(name, []) if attempt in after and t >= after[attempt])
            if later:
                out[attempt] = later[0]
        return out

    def requests(self) -> str:
        import json

        counts: dict[str, int] = {}
        audit = self.env.cluster_dir / "audit.log"
        for line in audit.read_text().splitlines() if audit.exists() else []:
            event = json.loads(line)
            ref = event.get("objectRef") or {}
            # a watch is counted when it opens (ResponseStarted), everything else when it completes
            stage = "ResponseStarted" if event.get("verb") == "watch" else "ResponseComplete"
            if (
                event.get("stage") != stage
                or ref.get("namespace") != self.namespace
                or "system:masters" in (event.get("user") or {}).get("groups", [])
            ):
                continue
            what = ref.get("resource", "") + ("/" + ref["subresource"] if ref.get("subresource") else "")
            key = f"{event.get('verb')} {what}"
            counts[key] = counts.get(key, 0) + 1
        return ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + " (audit log, the Role-only user)"


def run(args: argparse.Namespace, home: Path, cluster: Any) -> None:
    from myapp.cli.process import init_database
    from myapp.executor.kubernetes.launch import KubernetesExecutor, launch_task_instance
    from myapp.k8s.config import kube_config
    from myapp.k8s.launcher import Launcher
    from myapp.services import build_services
    from tests.conftest import make_settings, worker_env
    from tests.integration.engine_helpers import save, start
    from tests.integration.k8s_env import k8s_env

    url = fresh_database(args.database, home)
    kubeconfig, namespace = cluster.kubeconfig, cluster.namespace
    settings = make_settings(
        home,
        url,
        heartbeat_interval=2.0,
        executor="kubernetes",
        k8s_namespace=namespace,
        k8s_kubeconfig=str(kubeconfig),
        k8s_group="bench",
        k8s_workflow_space_pvc="ws",
        workflow_space=cluster.workflow_space,
    )
    services = build_services(settings)
    init_database(services, admin_user="admin", admin_password="bench", admin_email="a@b.c", quiet=True)
    env = k8s_env(
        worker_env(settings, "filesystem://"),
        kubeconfig,
        namespace,
        MYAPP_K8S_NAMESPACE=namespace,
        MYAPP_K8S_GROUP="bench",
        MYAPP_HEARTBEAT_INTERVAL="2",
        MYAPP_HEARTBEAT_TIMEOUT="60",
        MYAPP_K8S_LOG_STREAMS=str(args.log_streams),
    )
    env.pop("MYAPP_BROKER_URL")
    env.pop("MYAPP_REDIS_URL", None)
    if args.redis:
        env["MYAPP_REDIS_URL"] = args.redis  # live log lines go to Redis as in production
    watcher_log = home / "watcher.log"
    watcher = subprocess.Popen(
        [sys.executable, "-m", "myapp", "k8s-watcher"], env=env, stdout=watcher_log.open("ab"), stderr=subprocess.STDOUT
    )
    try:
        wait_for("the watcher", lambda: b"watching" in watcher_log.read_bytes(), 60)
        proc = Proc(watcher.pid)
        base_rss = proc.rss_mib()
        pid = save(services, f"name: bench-k8s\ntasks:\n  - {cluster.task()}\n")
        for _ in range(args.pods):
            start(services, pid)
        executor = KubernetesExecutor(
            kube_config(settings), services.templates, Launcher(cluster.api_client(), namespace)
        )
        began = time.perf_counter()
        for ti_id in services.attempts.claimable(limit=args.pods * 2):
            launch_task_instance(ti_id, services, executor)
        launched = time.perf_counter() - began
        pods = cluster.pods()
        cluster.run_all(pods)
        streams = min(len(pods), args.log_streams)
        settle = wait_for("the live log streams", lambda: cluster.follows() >= streams, 600)
        own = Proc(os.getpid())  # this process: the fake server, or the node simulator
        cpu0, own0 = proc.cpu(), own.cpu()
        time.sleep(args.idle)
        idle_cpu, own_cpu = proc.cpu() - cpu0, own.cpu() - own0
        idle_rss, threads = proc.rss_mib(), proc.status("Threads")
        print(
            f"pods: {len(pods)} running (launched through the client in {launched:.1f} s, "
            f"{len(pods) / launched:.0f} pods/s); {streams} live log streams open {settle:.1f} s after Running"
        )
        print(
            f"watcher idle with {len(pods)} running pods: CPU {idle_cpu / args.idle * 100:.1f}% of one core, "
            f"RSS {idle_rss:.0f} MiB (empty: {base_rss:.0f} MiB, "
            f"{(idle_rss - base_rss) * 1024 / len(pods):.0f} KiB per pod), {threads} threads"
        )
        print(
            f"this process ({cluster.side}) meanwhile: CPU {own_cpu / args.idle * 100:.1f}% of one core, "
            f"{own.status('Threads')} threads, RSS {own.rss_mib():.0f} MiB"
        )
        complete(args, cluster, services, proc, pods)
        print(f"API requests: {cluster.requests()}")
        print(
            f"server: {args.server}, database: {services.db.engine.dialect.name}, python {sys.version.split()[0]}, "
            f"cpus {os.cpu_count()}, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
        )
    finally:
        watcher.terminate()
        watcher.wait(30)
        services.db.dispose()
        drop_database(args.database, url)


def complete(args: argparse.Namespace, cluster: Any, services: Any, proc: Proc, pods: dict[str, int]) -> None:
    names = list(pods)
    half = len(names) // 2
    finished_at: dict[int, datetime] = {}
    cpu0, began = proc.cpu(), time.perf_counter()
    for i, name in enumerate(names[:half]):  # steady: `rate` completions per second
        delay = began + i / args.rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        finished_at[pods[name]] = datetime.now(UTC)
        cluster.finish(name)
    issued = time.perf_counter() - began
    wait_for("the steady half to finish", lambda: len(ended(services)) >= half, 300)
    steady_cpu, steady_wall = proc.cpu() - cpu0, time.perf_counter() - began
    report("steady", finished_at, ended(services))
    cpu0, began = proc.cpu(), time.perf_counter()
    for name in names[half:]:  # burst: everything else as fast as the fake server takes it
        finished_at[pods[name]] = datetime.now(UTC)
        cluster.finish(name)
    burst_issued = time.perf_counter() - began
    wait_for("every attempt to finish", lambda: len(ended(services)) >= len(names), 600)
    drain = time.perf_counter() - began
    burst_cpu = proc.cpu() - cpu0
    report("burst", {k: finished_at[pods[n]] for n in names[half:] for k in [pods[n]]}, ended(services))
    # The pod and Secret deletes run after the finishes, on the watcher's cleanup threads: their lag.
    cleaned = wait_for("every pod to be deleted", lambda: not cluster.pods(), 600, every=0.5)
    print(
        f"  cleanup: every pod deleted {drain + cleaned:.1f} s after the burst began ({cleaned:.1f} s after its last finish)"
    )
    if hasattr(cluster, "status_posted"):  # the real server: the watcher's part alone, from the API server's side
        time.sleep(2)  # the audit log is written in batches (1 s)
        posted = cluster.status_posted(pods, finished_at)
        steady = {pods[n] for n in names[:half]}
        report(
            "steady, from the terminated status at the API server",
            {i: t for i, t in posted.items() if i in steady},
            ended(services),
        )
        report(
            "burst, from the terminated status at the API server",
            {i: t for i, t in posted.items() if i not in steady},
            ended(services),
        )
    print(
        f"  steady phase: {half} completions at {args.rate:g}/s (achieved {half / issued:.0f}/s), "
        f"watcher CPU {steady_cpu:.1f} s "
        f"({steady_cpu / steady_wall * 100:.0f}% of one core, {steady_cpu / half * 1000:.1f} ms per attempt)"
    )
    print(
        f"  burst phase: {len(names) - half} completions issued in {burst_issued:.1f} s, all finished "
        f"{drain:.1f} s after the first "
        f"({(len(names) - half) / drain:.0f} attempts/s), watcher CPU {burst_cpu:.1f} s; "
        f"peak RSS {proc.rss_mib('VmHWM'):.0f} MiB"
    )


def report(phase: str, finished_at: dict[int, datetime], ends: dict[int, datetime]) -> None:
    latencies = [(ends[i] - t).total_seconds() * 1000 for i, t in finished_at.items() if i in ends]
    print(
        f"latency pod terminated -> attempt finished ({phase}, n={len(latencies)}): "
        f"p50 {statistics.median(latencies):.0f} ms, p95 {percentile(latencies, 0.95):.0f} ms, "
        f"max {max(latencies):.0f} ms"
    )


if __name__ == "__main__":
    main()
