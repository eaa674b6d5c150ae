"""A container's runtime shim, exec'd by `unshare --pid --mount --uts` (so it is in the new mount and
UTS namespaces, and its first child is PID 1 of the new PID namespace): it sets up the container's
filesystem view, forks the container's PID 1 (which mounts its own /proc and execs the command),
waits for it and ends as it ended (same exit code, or killed by the same signal). The kernel drops
signals sent to a namespace's PID 1 unless it handles them, as in a real container.

The view: each volume mount bind-mounted at its mountPath (read-only when asked), a fresh /dev
(tmpfs with null, zero, full, random, urandom, tty, pts, shm and the usual symlinks, like a
container runtime's) holding the termination-message file bound from the host, the pod's
hostname. Standard library only; the spec comes as a JSON file. A failure before exec is written
to the status pipe (fd in the spec) and ends with exit code 128; a successful exec closes the pipe
(only PID 1 holds it, close-on-exec).
"""

import ctypes
import json
import os
import signal
import socket
import sys
from typing import Any, NoReturn

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC = 1, 2, 4, 8, 32, 4096, 8192, 16384
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
         "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"}
libc = ctypes.CDLL("libc.so.6", use_errno=True)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    if libc.mount(source.encode() if source else None, target.encode(), fstype.encode() if fstype else None,
                  flags, data.encode() if data else None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def make_target(path: str, is_dir: bool) -> None:
    if os.path.lexists(path):
        return
    if is_dir:
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "a").close()


def bind(source: str, target: str, readonly: bool = False) -> None:
    make_target(target, os.path.isdir(source))
    mount(source, target, None, MS_BIND | MS_REC)
    if readonly:
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def make_dev(spec: dict[str, Any]) -> None:
    dev = spec["dev_dir"]
    mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=755,size=65536k")
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            open(f"{dev}/{name}", "a").close()
            mount(f"/dev/{name}", f"{dev}/{name}", None, MS_BIND)
    for name, target in LINKS.items():
        os.symlink(target, f"{dev}/{name}")
    os.mkdir(f"{dev}/pts")
    if os.path.isdir("/dev/pts"):
        mount("/dev/pts", f"{dev}/pts", None, MS_BIND | MS_REC)
    os.mkdir(f"{dev}/shm")
    mount("shm", f"{dev}/shm", "tmpfs", MS_NOSUID, "mode=1777,size=65536k")
    for host, path in spec.get("dev_files", []):
        inside = f"{dev}/{path[len('/dev/'):]}"
        make_target(inside, False)
        mount(host, inside, None, MS_BIND)
    mount(dev, "/dev", None, MS_MOVE)


def fail(status: int, exc: OSError, argv: list[str]) -> NoReturn:
    text = exc.strerror or str(exc)
    if isinstance(exc, FileNotFoundError) and argv and "/" not in argv[0]:
        text = f'exec: "{argv[0]}": executable file not found in $PATH'
    os.write(status, text.encode())
    os._exit(128)


def container(spec: dict[str, Any], status: int) -> None:
    """PID 1 of the new PID namespace: its /proc, hostname, user, directory, then the command."""
    libc.prctl(1, signal.SIGKILL)            # PR_SET_PDEATHSIG: dies with the shim
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)   # Python ignores them, and exec would keep that
    argv = spec["argv"]
    try:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        if spec.get("hostname"):
            socket.sethostname(spec["hostname"])
        if spec.get("gid") is not None:
            os.setgroups([])
            os.setgid(spec["gid"])
        if spec.get("uid") is not None:
            os.setuid(spec["uid"])
        workdir = spec.get("workdir") or "/"
        os.makedirs(workdir, exist_ok=True)      # the runtime creates a missing workingDir
        os.chdir(workdir)
        os.execvpe(argv[0], argv, spec["env"])
    except OSError as exc:
        fail(status, exc, argv)


def main() -> None:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    status = spec["status_fd"]
    os.set_inheritable(status, False)
    try:
        for m in spec["mounts"]:
            if m["source"] != m["target"] or m.get("readonly"):
                bind(m["source"], m["target"], m.get("readonly", False))
        make_dev(spec)
        for host, path in spec.get("files", []):
            bind(host, path)
    except OSError as exc:
        fail(status, exc, [])
    pid = os.fork()
    if pid == 0:
        container(spec, status)
    os.close(status)
    while True:
        try:
            _, st = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(st):
        sig = os.WTERMSIG(st)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    sys.exit(os.WEXITSTATUS(st))


if __name__ == "__main__":
    main()
