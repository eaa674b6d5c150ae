"""One container's process, as a container runtime runs it: in new PID, mount and UTS namespaces
(`unshare --pid --mount --uts --fork --kill-child` forks tests/k8ssim/nsinit.py as the namespace's
PID 1, which sets the container up and execs the command; the small `unshare` parent stays as the
shim that waits for it), stdout and stderr copied into a CRI log file by the node's one I/O thread
(tests/k8ssim/reactor.py), which also notices the end, the termination-message file bound from the
host.

Signals go to PID 1 only, as the runtime sends them: SIGTERM is dropped by the kernel unless PID 1
handles it, SIGKILL always works, and when PID 1 ends the kernel kills the rest of the namespace.
The exit code is the runtime's: the process's own, or 128 + signal. Needs root (or unprivileged
user namespaces) for the namespaces; `available()` says whether this machine has them.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.k8ssim.crilog import LogFile
from tests.k8ssim.reactor import Reactor

NSINIT = Path(__file__).with_name("nsinit.py")
UNSHARE = ["unshare", "--pid", "--mount", "--uts", "--propagation", "private"]
SHIM = [*UNSHARE, "--fork", "--kill-child"]


def _pdeathsig() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


_available: bool | None = None


def available() -> tuple[bool, str]:
    """Whether containers can run here (namespaces allowed), and why not."""
    global _available
    if shutil.which("unshare") is None:
        return False, "util-linux's unshare is not installed"
    if _available is None:
        probe = subprocess.run([*UNSHARE, "--fork", "--mount-proc", "true"], capture_output=True, text=True)
        _available = probe.returncode == 0
        if not _available:
            return False, f"cannot create namespaces here (unshare: {probe.stderr.strip()}); run as root"
    return _available, "" if _available else "cannot create namespaces here; run as root"


@dataclass
class Mount:
    source: str
    target: str
    readonly: bool = False


@dataclass
class ContainerSpec:
    argv: list[str]
    env: dict[str, str]
    workdir: str
    mounts: list[Mount]
    hostname: str
    termination_path: str
    uid: int | None = None
    gid: int | None = None


@dataclass
class Process:
    """A started container process; `exit_code` is set once it ended (exited, reaped, output drained)."""

    popen: subprocess.Popen[bytes]
    log: LogFile
    started_at: float
    init_pid: int = 0
    exit_code: int | None = None
    signalled: list[int] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def running(self) -> bool:
        """Whether the container has not ended yet (the reactor reports its end)."""
        return not self.done.is_set()

    def ended(self) -> None:
        """The reactor saw the exit and the end of the output: reap and record the runtime's code."""
        rc = self.popen.wait()
        self.exit_code = rc if rc >= 0 else 128 - rc
        self.done.set()

    def signal(self, sig: int) -> None:
        """Send `sig` to the container's PID 1, as the runtime does."""
        self.signalled.append(sig)
        pid = self.init_pid or self.popen.pid
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float | None = None) -> int | None:
        self.done.wait(timeout)
        return self.exit_code

    def kill_all(self) -> None:
        """SIGKILL PID 1 (the kernel takes the namespace's other processes with it)."""
        self.signal(signal.SIGKILL)
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class StartError(Exception):
    """The runtime could not start the container (exit code 128, reason StartError)."""


def start(spec: ContainerSpec, workdir: Path, log: LogFile, reactor: Reactor, on_end: Callable[[], None]) -> Process:
    """Start the container (its output and end watched by `reactor`, which calls `on_end` once it
    ended); raise StartError when its command cannot be executed."""
    if not spec.argv:
        raise StartError("failed to create containerd task: OCI runtime create failed: no command specified")
    workdir.mkdir(parents=True, exist_ok=True)
    dev_dir = workdir / f"dev-{secrets.token_hex(4)}"
    dev_dir.mkdir()
    termination = workdir / "termination-log"
    termination.touch()
    read_end, write_end = os.pipe()
    in_dev = spec.termination_path.startswith("/dev/")
    config: dict[str, Any] = {
        "argv": spec.argv,
        "env": spec.env,
        "workdir": spec.workdir,
        "hostname": spec.hostname,
        "mounts": [vars(m) for m in spec.mounts],
        "dev_dir": str(dev_dir),
        "status_fd": write_end,
        "dev_files": [[str(termination), spec.termination_path]] if in_dev else [],
        "files": [] if in_dev else [[str(termination), spec.termination_path]],
        "uid": spec.uid,
        "gid": spec.gid,
    }
    spec_file = workdir / "nsinit.json"
    spec_file.write_text(json.dumps(config))
    try:
        popen = subprocess.Popen(
            [*SHIM, sys.executable, "-I", "-S", str(NSINIT), str(spec_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(write_end,),
            start_new_session=True,
            preexec_fn=_pdeathsig,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )
    finally:
        os.close(write_end)
    try:
        answer = os.read(read_end, 4096)  # NUL right before the exec, or the error text (see nsinit.py)
    finally:
        os.close(read_end)
    if answer != b"\0":
        popen.kill()
        popen.communicate()
        spec_file.unlink(missing_ok=True)
        failure = answer.decode(errors="replace") or "the container's init ended before its command"
        raise StartError(
            "failed to create containerd task: OCI runtime create failed: container_linux.go:370: "
            f"starting container process caused: {failure}: unknown"
        )
    process = Process(popen, log, time.time())
    process.init_pid = _child_of(popen.pid)
    reactor.watch(process, on_end)
    return process


def termination_message(workdir: Path) -> bytes:
    path = workdir / "termination-log"
    try:
        with path.open("rb") as f:
            return f.read(4096)  # kubelet reads at most 4096 bytes of it
    except OSError:
        return b""


def _child_of(pid: int) -> int:
    """The host pid of the shim's child (the container's PID 1)."""
    for _ in range(200):
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return 0
        if children:
            return int(children[0])
        time.sleep(0.005)
    return 0
