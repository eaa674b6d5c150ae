"""A kubelet simulator for FakeKubeServer: it plays the containers of the pods it finds.

No container runs on this machine, so each container's command runs as a local process group:
with the pod's env, in its workingDir (the workflow space, a local directory shared with the
worker), its output appended to the pod log line by line, its termination message read from
the file kubelet would mount at `terminationMessagePath`, and `finish_pod` with its exit code.
Deleting a pod kills its processes; `activeDeadlineSeconds` fails the pod with DeadlineExceeded.
A test can take over a pod with `kubelet.behave(prefix, fn)` (fn(kubelet, pod_dict) plays it, and
may call `kubelet.play(pod)` to run it normally). Every pod and service it sees is checked against
the client's models (V1Pod, V1Service): a misspelled or invented field fails the test.

Like a real kubelet, it resolves `valueFrom.secretKeyRef` env values (a missing Secret leaves the
container waiting with CreateContainerConfigError until it appears), runs every container of the
pod (sidecars a mutating admission added too), and on a graceful deletion sends SIGTERM to each
container's first process only (a container's PID 1), SIGKILLs what is left when the grace period
ends, reports the containers terminated (128 + signal), then completes the deletion.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.k8sfake import FakeKubeServer
from tests.k8sfake.manifests import assert_model

Behaviour = Callable[["Kubelet", dict[str, Any]], None]
HOST_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


class Kubelet:
    """Runs the pods of one namespace of a FakeKubeServer."""

    def __init__(self, kube: FakeKubeServer, namespace: str, *, poll: float = 0.05) -> None:
        self.kube, self.namespace, self.poll = kube, namespace, poll
        self.started: dict[str, threading.Thread] = {}
        self.behaviours: list[tuple[str, Behaviour]] = []
        self.pids: dict[str, int] = {}
        self.errors: list[str] = []
        self.validated: set[str] = set()
        self._api = kube.api_client()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kubelet", daemon=True)
        self._tmp = Path(tempfile.mkdtemp(prefix="kubelet-"))

    def start(self) -> Kubelet:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for pid in list(self.pids.values()):
            _kill_group(pid)
        shutil.rmtree(self._tmp, ignore_errors=True)  # termination-message files, one per container

    def behave(self, prefix: str, behaviour: Behaviour) -> None:
        """Play pods whose name starts with `prefix` with `behaviour` instead of running them."""
        self.behaviours.append((prefix, behaviour))

    # --- the loop ----------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            self._validate("services", "V1Service")
            for pod in self._pods():
                self._check_model(pod, "V1Pod")
                name = pod["metadata"]["name"]
                if (
                    name not in self.started
                    and not pod["metadata"].get("deletionTimestamp")
                    and pod.get("status", {}).get("phase") == "Pending"
                ):
                    thread = threading.Thread(target=self._play, args=(pod,), name=f"pod {name}", daemon=True)
                    self.started[name] = thread
                    thread.start()
            self._stop.wait(self.poll)

    def _pods(self) -> list[dict[str, Any]]:
        return self._items("pods")

    def _items(self, plural: str) -> list[dict[str, Any]]:
        with self.kube.store.lock:
            return [json.loads(json.dumps(p)) for p in self.kube.store.items(plural, self.namespace)]

    def _validate(self, plural: str, model: str) -> None:
        for obj in self._items(plural):
            self._check_model(obj, model)

    def _check_model(self, obj: dict[str, Any], model: str) -> None:
        uid = obj["metadata"]["uid"]
        if uid in self.validated:
            return
        self.validated.add(uid)
        try:
            assert_model(self._api, obj, model)
        except AssertionError as exc:
            self.errors.append(f"{model} {obj['metadata']['name']} does not match the model: {exc}")

    def alive(self, name: str) -> bool:
        """Return True while the pod exists and is not being deleted."""
        pod = self.kube.get("pods", self.namespace, name)
        return pod is not None and not pod["metadata"].get("deletionTimestamp")

    def _play(self, pod: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        try:
            for prefix, behaviour in self.behaviours:
                if name.startswith(prefix):
                    behaviour(self, pod)
                    return
            self.play(pod)
        except Exception as exc:  # noqa: BLE001  reported by the tests' teardown
            if self.alive(name):
                self.errors.append(f"{name}: {type(exc).__name__}: {exc}")

    def play(self, pod: dict[str, Any]) -> None:
        """Run the pod's containers to their end (the default behaviour)."""
        name = pod["metadata"]["name"]
        envs = self._resolve_env(pod)
        if envs is None:
            return
        for init in pod["spec"].get("initContainers") or []:  # one at a time, in order; a failure ends the pod
            self.kube.run_init_container(self.namespace, name, init["name"])
            code = self._run_container(pod, init, envs[init["name"]], init=True)
            if code != 0:
                now = self.kube.get("pods", self.namespace, name)
                if now is not None and now["metadata"].get("deletionTimestamp"):
                    self.kube.complete_pod_deletion(self.namespace, name)
                return
        self.kube.set_pod_phase(self.namespace, name, "Running")
        threads = [
            threading.Thread(target=self._run_container, args=(pod, c, envs[c["name"]]), daemon=True)
            for c in pod["spec"]["containers"]
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        now = self.kube.get("pods", self.namespace, name)
        if now is not None and now["metadata"].get("deletionTimestamp"):
            self.kube.complete_pod_deletion(self.namespace, name)  # the kubelet's final delete

    def _resolve_env(self, pod: dict[str, Any]) -> dict[str, dict[str, str]] | None:
        """Return each container's env with Secret references resolved; wait while a Secret is missing."""
        name = pod["metadata"]["name"]
        while True:
            try:
                return {
                    c["name"]: self._env_of(c)
                    for c in [*(pod["spec"].get("initContainers") or []), *pod["spec"]["containers"]]
                }
            except LookupError as missing:
                self.kube.set_pod_phase(
                    self.namespace, name, "Pending", reason="CreateContainerConfigError", message=str(missing.args[0])
                )
            if self._stop.wait(0.1) or not self.alive(name):
                return None

    def _env_of(self, container: dict[str, Any]) -> dict[str, str]:
        env: dict[str, str] = {}
        for item in container.get("env") or []:
            ref = (item.get("valueFrom") or {}).get("secretKeyRef")
            if ref is None:
                env[item["name"]] = item.get("value", "")
                continue
            secret = self.kube.get("secrets", self.namespace, ref["name"])
            if secret is None or ref["key"] not in (secret.get("data") or {}):
                what = (
                    f'secret "{ref["name"]}" not found'
                    if secret is None
                    else f"couldn't find key {ref['key']} in Secret {self.namespace}/{ref['name']}"
                )
                raise LookupError(what)
            env[item["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
        return env

    # --- one container -----------------------------------------------------------
    def _run_container(
        self, pod: dict[str, Any], container: dict[str, Any], own_env: dict[str, str], *, init: bool = False
    ) -> int | None:
        """Run one container to its end; return its exit code (None: the pod was deleted or timed out)."""
        name, cname = pod["metadata"]["name"], container["name"]

        def finish(code: int, message: str = "") -> None:
            if init:
                self.kube.finish_init_container(self.namespace, name, cname, code, message)
            else:
                self.kube.finish_pod(self.namespace, name, exit_code=code, message=message, container=cname)

        message_file = self._tmp / f"{name}.{cname}.termination"
        env = {k: os.environ[k] for k in HOST_ENV if k in os.environ}
        env.update(own_env)
        if container.get("terminationMessagePath") and "MYAPP_TERMINATION_LOG" in env:
            env["MYAPP_TERMINATION_LOG"] = str(message_file)  # kubelet mounts a host file there
        workdir = container.get("workingDir") or str(self._tmp)
        Path(workdir).mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [*container.get("command", []), *container.get("args", [])],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pids[f"{name}/{cname}"] = proc.pid
        pump = threading.Thread(target=self._pump, args=(proc, name, cname), daemon=True)
        pump.start()
        deadline = pod["spec"].get("activeDeadlineSeconds")
        started = time.monotonic()
        while proc.poll() is None:
            current = self.kube.get("pods", self.namespace, name)
            if current is None or current["metadata"].get("deletionTimestamp"):
                self._terminate(proc, current)
                pump.join(5)
                if current is not None and self.kube.get("pods", self.namespace, name) is not None:
                    code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
                    finish(code)
                return None
            if deadline and time.monotonic() - started > deadline:
                _kill_group(proc.pid)
                self.kube.set_pod_phase(
                    self.namespace,
                    name,
                    "Failed",
                    reason="DeadlineExceeded",
                    message="Pod was active on the node longer than the specified deadline",
                )
                return None
            time.sleep(0.05)
        _kill_group(proc.pid)  # leftovers of the container die with it
        pump.join(5)
        message = message_file.read_text(errors="replace")[:4096] if message_file.exists() else ""
        if self.alive(name):
            finish(proc.returncode, message)
        return proc.returncode

    def _terminate(self, proc: subprocess.Popen[bytes], pod: dict[str, Any] | None) -> None:
        """SIGTERM the container's first process (its PID 1) only; SIGKILL the rest after the grace period."""
        grace = float((pod or {}).get("metadata", {}).get("deletionGracePeriodSeconds") or 0)
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        _kill_group(proc.pid)
        proc.wait()

    def _pump(self, proc: subprocess.Popen[bytes], pod: str, container: str) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            try:
                self.kube.append_log(self.namespace, pod, raw.decode("utf-8", "replace"), container=container)
            except KeyError:
                return


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
