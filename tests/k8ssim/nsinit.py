"""A container's PID 1 setup, exec'd by `unshare --pid --mount --uts --fork --kill-child` (so it is
PID 1 of the new PID namespace, in the new mount and UTS namespaces; the small `unshare` parent
waits for it, ends as it ended, same exit code or killed by the same signal, and SIGKILLs it when
it dies itself): it sets up the container's filesystem view, mounts its own /proc, sets the
hostname and the user, and execs the container's command, which thus is PID 1 (the kernel drops
signals sent to a namespace's PID 1 unless it handles them, as in a real container). No Python
process stays resident per container.

The view: each volume mount bind-mounted at its mountPath (read-only when asked), a fresh /dev
(tmpfs with null, zero, full, random, urandom, tty, pts, shm and the usual symlinks, like a
container runtime's) holding the termination-message file bound from the host, the pod's
hostname. Standard library only; the spec comes as a JSON file. The status pipe (fd in the spec)
gets one message: NUL right before the exec (the command was found and is executable), or the
error text of a failure before it (then exit code 128). The `unshare` parent holds a copy of the
pipe, so the reader cannot wait for EOF at the exec; it reads this one message instead.
"""

import ctypes
import errno
import json
import os
import signal
import socket
import sys
from typing import Any, NoReturn

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC = 1, 2, 4, 8, 32, 4096, 8192, 16384
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "ptmx": "pts/ptmx",
}
libc = ctypes.CDLL("libc.so.6", use_errno=True)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    if (
        libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        )
        != 0
    ):
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
        inside = f"{dev}/{path[len('/dev/') :]}"
        make_target(inside, False)
        mount(host, inside, None, MS_BIND)
    mount(dev, "/dev", None, MS_MOVE)


def fail(status: int, exc: OSError, argv: list[str]) -> NoReturn:
    text = exc.strerror or str(exc)
    if isinstance(exc, FileNotFoundError) and argv and "/" not in argv[0]:
        text = f'exec: "{argv[0]}": executable file not found in $PATH'
    os.write(status, text.encode())
    os._exit(128)


def resolve(argv: list[str], env: dict[str, str]) -> None:
    """Raise what execvpe would for a missing or non-executable command (checked before the NUL)."""
    if not argv:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
    if "/" in argv[0]:
        candidates = [argv[0]]
    else:
        candidates = [os.path.join(d or ".", argv[0]) for d in env.get("PATH", os.defpath).split(":")]
    denied = False
    for path in candidates:
        if os.path.isfile(path):
            if os.access(path, os.X_OK):
                return
            denied = True
    if denied:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))


def container(spec: dict[str, Any], status: int) -> NoReturn:
    """PID 1 of the new PID namespace: its /proc, hostname, user, directory, then the command."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)  # Python ignores them, and exec would keep that
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
        os.makedirs(workdir, exist_ok=True)  # the runtime creates a missing workingDir
        os.chdir(workdir)
        resolve(argv, spec["env"])
    except OSError as exc:
        fail(status, exc, argv)
    os.write(status, b"\0")
    os.close(status)
    try:
        os.execvpe(argv[0], argv, spec["env"])
    except OSError:
        os._exit(128)


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
    container(spec, status)


if __name__ == "__main__":
    main()
