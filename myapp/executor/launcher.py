"""How the local executor starts a task's process as its project's account (issue 14 item 2).

The child must drop root exactly as before: no supplementary group, the account's gid, its uid,
umask 077, a new session. `subprocess.Popen(user=, group=, extra_groups=)` does that in the child
but CPython then cannot use vfork: every task start copies the page tables of the whole worker
(~100 MB), 5-6 ms of CPU more per task than the spawn itself. So the worker execs coreutils
`chroot --userspec=+UID:+GID --groups= --skip-chdir -- / COMMAND...` instead (chroot to the root it
already has, the working directory kept), with only `umask=` and `start_new_session=` asked of
Popen (both keep vfork); chroot calls setgroups, setgid and setuid, in that order, then execvp
(docs/benchmarks.md).

Not util-linux `setpriv --reuid --regid`: setpriv changes the uid first with PR_SET_KEEPCAPS and
raises its capabilities again to change the groups, so its execvp searches PATH and checks the
command with CAP_DAC_OVERRIDE: a task found and ran programs in directories its account cannot
enter (a root-only `~/.pyenv/shims/python3` ahead of `/usr/bin/python3` on PATH, which then failed
"Permission denied"). chroot's setuid from root drops every capability before the exec.

chroot runs as root with the task's environment for the instant before it drops root, so the
environment handed to it may hold nothing the C library or the dynamic loader would act on as root
(`LD_PRELOAD`, `GCONV_PATH`, ...: the variables glibc itself removes for a set-user-id program). A
task whose environment has one starts the old way (root is dropped by Popen's child before exec),
and so does every task where no chroot is installed (the worker says so at start).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from myapp.executor.task_user import Account

log = logging.getLogger(__name__)
DROPPER_PATHS = ("/usr/sbin/chroot", "/sbin/chroot")  # coreutils

# glibc's UNSECURE_ENVVARS (sysdeps/generic/unsecvars.h): what it drops for a set-user-id program.
_UNSECURE_FOR_ROOT = frozenset(
    {
        "GCONV_PATH",
        "GETCONF_DIR",
        "GLIBC_TUNABLES",
        "HOSTALIASES",
        "LOCALDOMAIN",
        "LOCPATH",
        "MALLOC_TRACE",
        "NIS_PATH",
        "NLSPATH",
        "RESOLV_HOST_CONF",
        "RES_OPTIONS",
        "TMPDIR",
        "TZDIR",
    }
)
_UNSECURE_PREFIXES = ("LD_", "MALLOC_", "GLIBC_")


def find_dropper() -> str | None:
    """Return the path of coreutils chroot at a fixed system place (never from PATH), or None."""
    for path in DROPPER_PATHS:
        if os.access(path, os.X_OK):
            return path
    return None


def spawn_note() -> str:
    """Return what the worker says at start about how it starts tasks as their account ("" when all is well)."""
    notes = []
    if find_dropper() is None:
        notes.append(
            "no coreutils chroot at " + " or ".join(DROPPER_PATHS) + ": each task start forks the whole worker "
            "(about 5 ms of CPU more per task; install coreutils)"
        )
    why = namespaces_refused()
    if why:
        notes.append(f"no private /tmp per attempt ({why}): attempts share the machine's /tmp")
    return "; ".join(notes)


def safe_for_root(env: Mapping[str, str]) -> bool:
    """Whether `env` may be the environment of a root process for an instant (see the module doc)."""
    return not any(k in _UNSECURE_FOR_ROOT or k.startswith(_UNSECURE_PREFIXES) for k in env)


class Launcher:
    """Starts task processes: as the worker, or as an account through chroot (else Popen's own switch)."""

    def __init__(self, dropper: str | None = None) -> None:
        self.dropper = dropper

    @classmethod
    def detect(cls) -> Launcher:
        return cls(find_dropper())

    def popen(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str],
        account: Account | None,
        mounts: Sequence[tuple[Path, Path]] = (),
        held: list[int] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `argv` in a new session with stdout/stderr piped; raise OSError as Popen does.

        `mounts`: (host directory, target) pairs bound in a mount namespace of the process's own.
        `held`: where to append a descriptor of that namespace (see `in_private_mounts`).
        """
        if mounts:
            return in_private_mounts(mounts, lambda: self._popen(argv, cwd=cwd, env=env, account=account), held=held)
        return self._popen(argv, cwd=cwd, env=env, account=account)

    def _popen(
        self, argv: Sequence[str], *, cwd: Path, env: dict[str, str], account: Account | None
    ) -> subprocess.Popen[bytes]:
        common: dict[str, Any] = {
            "cwd": cwd,
            "env": env,
            "stdin": subprocess.DEVNULL,
            "stdout": subprocess.PIPE,
            "stderr": subprocess.PIPE,
            "start_new_session": True,
        }
        if account is None:
            return subprocess.Popen(list(argv), **common)
        if self.dropper is None or not safe_for_root(env):
            return subprocess.Popen(
                list(argv), user=account.uid, group=account.gid, extra_groups=[], umask=0o077, **common
            )
        _must_exist(argv[0], env, cwd)
        return subprocess.Popen(
            [
                self.dropper,
                f"--userspec=+{account.uid}:+{account.gid}",  # '+': numbers, no account lookup
                "--groups=",
                "--skip-chdir",
                "--",
                "/",
                *argv,
            ],
            umask=0o077,
            **common,
        )


def _must_exist(command: str, env: Mapping[str, str], cwd: Path) -> None:
    """Raise FileNotFoundError as Popen would for a command that is not there (chroot would exit 127).

    A command without a slash is looked up in the PATH of `env`, as chroot's execvp does. Whether the
    account may execute it is chroot's to find, as the account: it exits 126 saying "Permission denied".
    Where it was found is remembered per (command, PATH): the next start checks that one file again
    (one `access`) instead of searching the PATH (a stat per directory before it, 0.1-0.4 ms per
    start with a long PATH; issue 14). The answer is the same: the file exists and is executable.
    """
    if "/" in command:
        if not os.path.exists(cwd / command):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), command)
        return
    path = env.get("PATH", os.defpath)
    found = _FOUND.get((command, path))
    if found is not None and os.access(found, os.X_OK):
        return
    found = shutil.which(command, path=path)
    if found is None or not os.path.exists(found):
        _FOUND.pop((command, path), None)
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), command)
    if len(_FOUND) > 1_000:
        _FOUND.clear()
    _FOUND[(command, path)] = found


_FOUND: dict[tuple[str, str], str] = {}  # (command, PATH) -> where _must_exist found it last


# --- a private /tmp per attempt (docs/security.md §3): a mount namespace made in a helper thread -------------

_CLONE_NEWNS = 0x00020000
_MS_BIND, _MS_REC, _MS_PRIVATE = 0x1000, 0x4000, 0x40000
_T = TypeVar("_T")


@functools.cache
def _libc() -> Any:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.unshare.argtypes = [ctypes.c_int]
    libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    return libc


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _bind(source: Path, target: Path) -> None:
    _check(_libc().mount(os.fsencode(source), os.fsencode(target), None, _MS_BIND | _MS_REC, None), f"bind {target}")


def in_private_mounts(
    mounts: Sequence[tuple[Path, Path]], start: Callable[[], _T], held: list[int] | None = None
) -> _T:
    """Run `start` (a Popen) with the calling thread in a fresh mount namespace where each host directory
    of `mounts` is bound at its target, then put the thread back: the process it started keeps that
    namespace, the worker never works in it.

    Mount namespaces are per thread, and a vfork child takes the namespace of the thread that started
    it. The thread leaves its namespace with unshare(CLONE_NEWNS) (which also gives it a cwd, root and
    umask of its own: it no longer shares them with the process's other threads, which the worker
    never changes) and returns with setns() to a descriptor of the namespace it was in, then to its
    working directory (setns moves it to the namespace's root). Done here rather than in a helper
    thread per start: the thread's start and join were two scheduler hand-offs, 0.3-2 ms of a chain's
    link on a loaded 2-core machine. A thread that cannot return (setns refused, which root is not)
    ends the worker process rather than let it run on in a task's namespace. Every path here is the
    worker's own choice, never the task's. Raises OSError when the namespace or a mount fails.

    With `held`, a descriptor of the new namespace (close-on-exec) is appended to it once `start`
    returned: the namespace then outlives the process, so the process's exit does not tear its mounts
    down (an RCU grace period, 0.3-3 ms, between the exit and the moment the worker hears of it); the
    caller closes the descriptor later, off the task-to-task path (myapp/executor/local.py, `_Remover`).
    """
    libc = _libc()
    home = os.open("/proc/thread-self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        cwd = os.open(".", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        os.close(home)
        raise
    try:
        _check(libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        try:
            _check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "mount --make-rprivate /")
            for source, target in mounts:
                _bind(source, target)
            value = start()
            if held is not None:
                try:
                    held.append(os.open("/proc/thread-self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC))
                except OSError:  # no /proc here: the process's exit tears the namespace down, as before
                    pass
            return value
        finally:
            _return(libc, home, cwd)
    finally:
        os.close(cwd)
        os.close(home)


def _return(libc: Any, home: int, cwd: int) -> None:
    """Put the calling thread back in the mount namespace `home` and the working directory `cwd`."""
    if libc.setns(home, _CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        log.critical("cannot return to the worker's mount namespace (%s): the worker process ends", os.strerror(err))
        os._exit(70)
    os.fchdir(cwd)


@functools.cache
def namespaces_refused() -> str:
    """Return why this process cannot give attempts mount namespaces ("" when it can): not root, or refused."""
    if os.geteuid() != 0 or not hasattr(ctypes, "CDLL"):
        return "the worker is not root"
    try:
        in_private_mounts((), lambda: None)
    except OSError as exc:
        return f"mount namespaces refused here: {exc.strerror}"
    return ""
