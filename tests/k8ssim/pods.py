"""kubelet's part for one pod: a worker that pulls (pretends to), starts the containers as local
processes (tests/k8ssim/sandbox.py), posts status through `pods/status`, emits the kubelet's
events, enforces `activeDeadlineSeconds`, honours graceful deletion and finally deletes the pod with
a uid precondition, as kubelet's status manager does.

A worker owns no thread: the node's work queue (tests/k8ssim/workqueue.py, a few threads for all
pods) calls `sync()` when the worker is kicked (its pod changed, a container ended, a knob) or when
the time its last sync asked for is due (a back-off, a grace period, a deadline). Nothing in a sync
waits: a graceful kill sends SIGTERM and comes back at the end of the grace period or when the
containers ended, whichever is first.

Images are not pulled: the host filesystem is every image. An image name containing `fail-pull`
never pulls (ErrImagePull, then ImagePullBackOff with kubelet's doubling back-off, retried for as
long as the pod exists); one containing `config-error` fails with CreateContainerConfigError (as a
missing ConfigMap does). `restartPolicy` Always/OnFailure are not simulated (no restarts).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.k8ssim import sandbox
from tests.k8ssim.client import ApiError, pod_path
from tests.k8ssim.crilog import LogFile
from tests.k8ssim.envvars import ConfigError, container_env, expand
from tests.k8ssim.scheduler import pod_requests
from tests.k8ssim.status import ContainerState, conditions, get_phase

if TYPE_CHECKING:
    from tests.k8ssim.simulator import NodeSimulator

Obj = dict[str, Any]
log = logging.getLogger("k8ssim.pods")
_WORKER_SERIAL = itertools.count(1)  # names each pod worker's directory (PodWorker.dir)
MIN_GRACE = 2  # kubelet's minimumGracePeriodInSeconds
RESYNC = 10.0  # a pod is synced at least this often (kubelet: --sync-frequency, 1 min)
HOST_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "VIRTUAL_ENV")


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Runtime:
    """The runtime side of one container."""

    spec: Obj
    state: ContainerState
    workdir: Path
    log: LogFile | None = None
    process: sandbox.Process | None = None
    pulled: bool = False
    pull_failures: int = 0
    next_try: float = 0.0
    backoff: float = 0.0
    backoff_at: float = 0.0
    pull_until: float = 0.0  # a pull in progress ends then (SimConfig.pull_seconds)
    pull_started: float = 0.0
    pull_fails: bool = False
    oom: bool = False
    exit_noted: bool = False


class PodWorker:
    """Plays one pod bound to the node, from its first sync to its final delete."""

    def __init__(self, sim: NodeSimulator, pod: Obj) -> None:
        self.sim, self.pod = sim, pod
        meta = pod["metadata"]
        self.uid, self.namespace, self.name = meta["uid"], meta["namespace"], meta["name"]
        self.key = f"{self.namespace}/{self.name}"
        # One directory per worker, not per pod: a pod whose worker ended can get a second worker (a
        # late event, e.g. its graceful deletion), and the first one's removal of its directory must
        # not race the second one's creation of it (FileExistsError from mkdir(exist_ok=True)).
        self.dir = sim.state_dir / "pods" / f"{self.uid}-{next(_WORKER_SERIAL)}"
        self.ip = sim.allocate_ip()
        self.lock = threading.RLock()
        self.requests = pod_requests(pod["spec"])
        self.gone = False  # DELETED seen (the API object is gone)
        self.terminal = False
        self.reason = self.message = ""  # pod-level (DeadlineExceeded, Evicted)
        self.evict_request: tuple[str, int] | None = None
        self.start_time = ""
        self.started_mono = 0.0
        self.posted: Obj | None = None
        self.kill_deadline = 0.0  # a graceful kill in progress: SIGKILL then
        self.kill_grace = 0
        self.finished = threading.Event()
        spec = pod["spec"]
        self.init = [self._runtime(c, True) for c in spec.get("initContainers") or []]
        self.main = [self._runtime(c, False) for c in spec.get("containers") or []]

    def _runtime(self, spec: Obj, init: bool) -> Runtime:
        return Runtime(
            spec,
            ContainerState(spec["name"], spec.get("image", ""), init=init),
            self.dir / f"{'init-' if init else ''}{spec['name']}",
        )

    # --- inputs from the kubelet loop and the control API -------------------------------------
    def kick(self) -> None:
        """Sync this pod soon (the work queue runs one sync of it at a time)."""
        if not self.finished.is_set():
            self.sim.syncs.kick(self)

    def update(self, pod: Obj) -> None:
        with self.lock:
            if pod["metadata"]["uid"] == self.uid:
                self.pod = pod
        self.kick()

    def deleted(self) -> None:
        self.gone = True
        self.kick()

    def containers(self) -> list[Runtime]:
        return self.init + self.main

    def container(self, name: str) -> Runtime | None:
        return next((r for r in self.containers() if r.spec["name"] == name), None)

    # --- the sync --------------------------------------------------------------------------------
    def sync(self) -> float | None:
        """One sync (the work queue calls it); return the seconds until the next one is due."""
        if self.finished.is_set():
            return None
        try:
            if not self.start_time:
                self.dir.mkdir(parents=True, exist_ok=True)
                self.start_time = now_rfc3339()
                self.started_mono = time.monotonic()
                self._sync_status()
            if not self._step():
                return self._next_wake()
        except Exception as exc:  # noqa: BLE001  reported by the simulator's errors
            log.exception("pod %s", self.key)
            self.sim.errors.append(f"pod {self.key}: {type(exc).__name__}: {exc}")
        self._cleanup()
        self.finished.set()
        return None

    def _next_wake(self) -> float:
        now = time.monotonic()
        due = [
            t
            for r in self.main + self.init
            if r.state.state == "waiting"
            for t in (r.next_try, r.backoff_at, r.pull_until)
            if t > now
        ]
        if self.kill_deadline > now:
            due.append(self.kill_deadline)
        deadline = self.pod["spec"].get("activeDeadlineSeconds")
        if deadline and not self.terminal:
            due.append(self.started_mono + deadline)
        return max(0.01, min([now + RESYNC, *due]) - now)

    def _step(self) -> bool:
        """One sync; True when the worker is done (the pod is gone from the API)."""
        if self.sim.node_lost.is_set():
            return False  # a lost node syncs nothing, deletes nothing
        if self.gone:  # force-deleted: the API object is gone already
            return self._kill_all(MIN_GRACE)
        pod = self.pod
        if pod["metadata"].get("deletionTimestamp"):
            grace = pod["metadata"].get("deletionGracePeriodSeconds") or 0
            if not self._kill_all(grace):
                return False
            self._sync_status()
            return self._finalize()
        if not self.terminal:
            self._sync_containers()
            self._sync_status()
        return False

    def _sync_containers(self) -> None:
        spec = self.pod["spec"]
        deadline = spec.get("activeDeadlineSeconds")
        if self.reason:  # DeadlineExceeded or Evicted: the containers are being killed
            self.terminal = self._kill_all(self.kill_grace)
            return
        if deadline and time.monotonic() - self.started_mono >= deadline:
            self.reason, self.message = (
                "DeadlineExceeded",
                "Pod was active on the node longer than the specified deadline",
            )
            self.sim.recorder.kubelet(self.pod, "Normal", "DeadlineExceeded", self.message)
            self._sync_status()  # kubelet sets the status first, then kills the containers
            self.terminal = self._kill_all(_grace(spec))
            return
        if self.evict_request:
            message, grace = self.evict_request
            self.reason, self.message = "Evicted", message
            self.sim.recorder.kubelet(self.pod, "Warning", "Evicted", message)
            self._sync_status()
            self.terminal = self._kill_all(max(grace, MIN_GRACE))
            return
        for r in self.containers():
            self._reap(r)
        pending_init = [r for r in self.init if not (r.state.state == "terminated" and r.state.exit_code == 0)]
        if pending_init:
            r = pending_init[0]
            if r.state.state == "terminated":  # a failed init container fails the pod (Never)
                self.terminal = True
                return
            if r.state.state == "waiting":
                self._try_start(r)
            return
        for r in self.main:
            if r.state.state == "waiting" and r.state.reason == "ErrImagePull" and time.monotonic() >= r.backoff_at:
                self._back_off(r)
            if r.state.state == "waiting" and time.monotonic() >= r.next_try:
                self._try_start(r)

    def _back_off(self, r: Runtime) -> None:
        image = r.spec.get("image", "")
        path = f"spec.{'initContainers' if r.state.init else 'containers'}{{{r.spec['name']}}}"
        r.state.reason, r.state.message = "ImagePullBackOff", f'Back-off pulling image "{image}"'
        self.sim.recorder.kubelet(self.pod, "Normal", "BackOff", f'Back-off pulling image "{image}"', path)
        self.sim.recorder.kubelet(self.pod, "Warning", "Failed", "Error: ImagePullBackOff", path)

    # --- starting a container ----------------------------------------------------------------------
    def _try_start(self, r: Runtime) -> None:
        image, cname = r.spec.get("image", ""), r.spec["name"]
        path = f"spec.{'initContainers' if r.state.init else 'containers'}{{{cname}}}"
        hold = self.sim.faults.start_delay(self.pod)
        if hold and time.monotonic() - self.started_mono < hold:
            r.next_try = self.started_mono + hold
            return
        if not r.pulled:
            if not self._pull(r, image, path):
                return
        try:
            env = self._env(r.spec)
        except ConfigError as exc:
            r.state.reason, r.state.message = "CreateContainerConfigError", str(exc)
            self.sim.recorder.kubelet(self.pod, "Warning", "Failed", f"Error: {exc}", path)
            r.next_try = time.monotonic() + self.sim.config.retry_interval
            return
        if "config-error" in image:
            message = 'configmap "config-error" not found'
            r.state.reason, r.state.message = "CreateContainerConfigError", message
            self.sim.recorder.kubelet(self.pod, "Warning", "Failed", f"Error: {message}", path)
            r.next_try = time.monotonic() + self.sim.config.retry_interval
            return
        argv = [expand(a, env) for a in [*(r.spec.get("command") or []), *(r.spec.get("args") or [])]]
        r.state.container_id = (
            "containerd://" + hashlib.sha256(f"{self.uid}/{cname}/{time.time_ns()}".encode()).hexdigest()
        )
        r.log = LogFile(
            self.sim.log_path(self.namespace, self.name, self.uid, cname),
            max_size=self.sim.config.log_max_size,
            max_files=self.sim.config.log_max_files,
        )
        self.sim.recorder.kubelet(self.pod, "Normal", "Created", f"Created container {cname}", path)
        security = {**(self.pod["spec"].get("securityContext") or {}), **(r.spec.get("securityContext") or {})}
        spec = sandbox.ContainerSpec(
            argv=argv,
            env=env,
            workdir=r.spec.get("workingDir") or "/",
            mounts=self._mounts(r.spec),
            hostname=self.pod["spec"].get("hostname") or self.name,
            termination_path=r.spec.get("terminationMessagePath") or "/dev/termination-log",
            uid=security.get("runAsUser"),
            gid=security.get("runAsGroup"),
        )
        now = now_rfc3339()
        try:
            r.process = sandbox.start(spec, r.workdir, r.log, self.sim.reactor, self.kick)
        except sandbox.StartError as exc:
            r.state.state, r.state.reason, r.state.message = "terminated", "StartError", str(exc)
            r.state.exit_code, r.state.started_at, r.state.finished_at = 128, "", now
            self.sim.recorder.kubelet(self.pod, "Warning", "Failed", f"Error: {exc}", path)
            return
        r.state.state, r.state.reason, r.state.message, r.state.started_at = "running", "", "", now
        self.sim.recorder.kubelet(self.pod, "Normal", "Started", f"Started container {cname}", path)
        self.sim.faults.on_start(self, r)

    def _pull(self, r: Runtime, image: str, path: str) -> bool:
        if r.pull_started:
            return self._pulled(r, image, path)
        if time.monotonic() < r.next_try:
            return False
        policy = r.spec.get("imagePullPolicy", "IfNotPresent")
        fails = "fail-pull" in image or self.sim.faults.pull_fails(image, r.pull_failures)
        if not fails and policy != "Always" and self.sim.image_present(image):
            self.sim.recorder.kubelet(
                self.pod, "Normal", "Pulled", f'Container image "{image}" already present on machine', path
            )
            r.pulled = True
            return True
        if policy == "Never":
            message = f'Container image "{image}" is not present with pull policy of Never'
            r.state.reason, r.state.message = "ErrImageNeverPull", message
            self.sim.recorder.kubelet(self.pod, "Warning", "ErrImageNeverPull", message, path)
            r.next_try = time.monotonic() + self.sim.config.retry_interval
            return False
        self.sim.recorder.kubelet(self.pod, "Normal", "Pulling", f'Pulling image "{image}"', path)
        r.pull_started = time.monotonic()
        r.pull_until = r.pull_started + self.sim.config.pull_seconds
        r.pull_fails = fails
        return self._pulled(r, image, path)

    def _pulled(self, r: Runtime, image: str, path: str) -> bool:
        """The pull in progress: False until it took `pull_seconds`; then it failed or succeeded."""
        now = time.monotonic()
        if now < r.pull_until:
            return False
        took, r.pull_started, r.pull_until = now - r.pull_started, 0.0, 0.0
        if r.pull_fails:
            r.pull_failures += 1
            ref = _reference(image)
            message = (
                f'rpc error: code = Unknown desc = failed to pull and unpack image "{ref}": failed to resolve '
                f'reference "{ref}": pull access denied, repository does not exist or may require '
                "authorization: server message: insufficient_scope: authorization failed"
            )
            r.state.reason, r.state.message = "ErrImagePull", message
            self.sim.recorder.kubelet(self.pod, "Warning", "Failed", f'Failed to pull image "{image}": {message}', path)
            self.sim.recorder.kubelet(self.pod, "Warning", "Failed", "Error: ErrImagePull", path)
            # ErrImagePull shows until the next sync; the syncs after it report the back-off.
            initial, cap = self.sim.config.pull_backoff
            r.backoff = min(cap, r.backoff * 2) if r.backoff else initial
            r.backoff_at = time.monotonic() + self.sim.config.retry_interval
            r.next_try = r.backoff_at + r.backoff
            return False
        self.sim.image_pulled(image)
        self.sim.recorder.kubelet(
            self.pod, "Normal", "Pulled", f'Successfully pulled image "{image}" in {go_duration(took)}', path
        )
        r.pulled = True
        r.state.image_id = f"{_reference(image).rsplit(':', 1)[0]}@sha256:" + hashlib.sha256(image.encode()).hexdigest()
        return True

    def _env(self, container: Obj) -> dict[str, str]:
        base = {k: os.environ[k] for k in HOST_ENV if k in os.environ}
        base.update(HOME="/root", HOSTNAME=self.pod["spec"].get("hostname") or self.name, **self.sim.service_env())
        return container_env(self.pod, container, self.sim.lookup, base=base, allocatable=self.sim.allocatable)

    def _mounts(self, container: Obj) -> list[sandbox.Mount]:
        volumes = {v["name"]: v for v in self.pod["spec"].get("volumes") or []}
        mounts = []
        for m in container.get("volumeMounts") or []:
            source = self.sim.volume_dir(self, volumes[m["name"]])
            if m.get("subPath"):
                source = source / m["subPath"]
                source.mkdir(parents=True, exist_ok=True)
            mounts.append(sandbox.Mount(str(source), m["mountPath"], bool(m.get("readOnly"))))
        return mounts

    # --- container ends -----------------------------------------------------------------------------
    def _reap(self, r: Runtime) -> None:
        if r.process is None or r.state.state != "running" or r.process.exit_code is None:
            return
        self._terminated(r, r.process.exit_code)

    def _terminated(self, r: Runtime, code: int) -> None:
        r.state.state, r.state.exit_code, r.state.finished_at = "terminated", code, now_rfc3339()
        r.state.reason = "OOMKilled" if r.oom else ("Completed" if code == 0 else "Error")
        message = sandbox.termination_message(r.workdir).decode("utf-8", "replace")
        if not message and code != 0 and r.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError" and r.log:
            message = self.sim.tail_log(r.log.path, 80, 2048)
        r.state.message = message
        if r.log:
            r.log.close()

    def _kill_all(self, grace: int) -> bool:
        """Stop every running container as kubelet's killContainer does: SIGTERM to PID 1, then
        SIGKILL after the grace period (at least 2 s). Called on each sync until it returns True
        (no container runs any more); a shorter grace of a later call shortens the wait."""
        running = [r for r in self.containers() if r.process is not None and r.state.state == "running"]
        now = time.monotonic()
        if running and not self.kill_deadline:
            for r in running:
                path = f"spec.{'initContainers' if r.state.init else 'containers'}{{{r.spec['name']}}}"
                self.sim.recorder.kubelet(self.pod, "Normal", "Killing", f"Stopping container {r.spec['name']}", path)
                assert r.process is not None
                r.process.signal(signal.SIGTERM)
            self.kill_grace, self.kill_deadline = grace, now + max(grace, MIN_GRACE)
        elif running and grace < self.kill_grace:  # a second delete with a shorter grace
            self.kill_grace = grace
            self.kill_deadline = min(self.kill_deadline, now + max(grace, MIN_GRACE))
        for r in running:
            assert r.process is not None
            if r.process.exit_code is not None:
                self._terminated(r, r.process.exit_code)
            elif (self.gone or now >= self.kill_deadline) and signal.SIGKILL not in r.process.signalled:
                r.process.kill_all()  # the reactor reports the end, which syncs the pod again
        if any(r.state.state == "running" for r in running):
            return False
        self.kill_deadline = 0.0
        return True

    # --- status -----------------------------------------------------------------------------------
    def _sync_status(self) -> None:
        status = self.status()
        if status == self.posted or self.gone:
            return
        try:
            answer = self.sim.api.merge_patch(
                pod_path(self.namespace, self.name, "status"), {"metadata": {"uid": self.uid}, "status": status}
            )
        except ApiError as exc:
            if exc.status in (409, 422):  # the uid precondition: another pod of that name now
                self.gone = True
                return
            raise
        if answer is None:
            self.gone = True
            return
        self.posted = status
        if status["phase"] in ("Succeeded", "Failed"):
            self.terminal = True

    def status(self) -> Obj:
        spec = self.pod["spec"]
        on_pod = (self.pod.get("status") or {}).get("conditions") or []
        mine = (self.posted or {}).get("conditions") or on_pod  # what we wrote (the watch may lag)
        old = [c for c in mine if c["type"] != "PodScheduled"] + [c for c in on_pod if c["type"] == "PodScheduled"]
        init_failed = any(r.state.state == "terminated" and r.state.exit_code != 0 for r in self.init)
        phase = get_phase(spec, [r.state for r in self.main])
        if self.reason or (init_failed and spec.get("restartPolicy") == "Never"):
            phase = "Failed"
        elif any(r.state.state != "terminated" for r in self.init) and self.init:
            phase = "Pending"
        now = now_rfc3339()
        status: Obj = {
            "phase": phase,
            "conditions": conditions(phase, [r.state for r in self.init], [r.state for r in self.main], old, now),
            "hostIP": self.sim.config.node_ip,
            "podIP": self.ip,
            "podIPs": [{"ip": self.ip}],
            "startTime": self.start_time,
            "containerStatuses": [r.state.as_status() for r in self.main],
            "reason": self.reason or None,
            "message": self.message or None,  # null: absent (merge patch)
        }
        if self.init:
            status["initContainerStatuses"] = [r.state.as_status() for r in self.init]
        return status

    def _finalize(self) -> bool:
        """Delete the pod for good (grace 0, uid precondition); False while the node is lost."""
        try:
            self.sim.api.delete(
                pod_path(self.namespace, self.name),
                {
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "gracePeriodSeconds": 0,
                    "preconditions": {"uid": self.uid},
                },
            )
        except ApiError as exc:
            if exc.status != 409:
                raise
        return True

    def _cleanup(self) -> None:
        for r in self.containers():
            if r.process is not None and r.process.running():
                r.process.kill_all()
                r.process.wait(10)  # rare: an error, or the node stopping
            if r.log:
                r.log.close()
        self.sim.forget(self)
        if not self.sim.config.keep_pod_dirs:
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- knobs -------------------------------------------------------------------------------------
    def oom_kill(self, container: str) -> None:
        r = self.container(container)
        if r is None or r.process is None:
            raise KeyError(f"{self.key}: no running container {container!r}")
        r.oom = True
        r.process.kill_all()

    def evict(self, message: str, grace: int) -> None:
        self.evict_request = (message, grace)
        self.kick()


def go_duration(seconds: float) -> str:
    """Go's time.Duration String() (as kubelet prints pull times): 1.5s, 2.25ms, 800µs."""
    ns = int(seconds * 1e9)
    for unit, size in (("s", 10**9), ("ms", 10**6), ("µs", 10**3)):
        if ns >= size:
            return f"{ns / size:.9f}".rstrip("0").rstrip(".") + unit
    return f"{ns}ns"


def _grace(spec: Obj) -> int:
    value = spec.get("terminationGracePeriodSeconds")
    return 30 if value is None else int(value)


def _reference(image: str) -> str:
    from tests.k8ssim.status import normalize_image

    return normalize_image(image)
