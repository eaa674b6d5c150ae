"""Who a task's process runs as on the local executor (issue 13 B1; docs/security.md §3).

Task code is untrusted. When the worker runs as root, each project's tasks run as an account of
their own, `<task_user>-<project id>` with uid = gid = `task_uid_base + project id` and no
supplementary group: nothing of the worker (its environment in /proc, MYAPP_HOME with the secret
key, the database file and the logs) and nothing of another project (its working directories, its
processes) is reachable from a task. The worker keeps root and reads every output itself.

When the worker cannot switch users (it is not root), every task would run as the worker: then
the worker says so at start, and runs the tasks of one project only (the first it runs, recorded in
MYAPP_HOME/task_project), unless the operator opts in with `task_isolation: none`.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from myapp.core.errors import MyappError

log = logging.getLogger(__name__)

MODES = ("auto", "users", "none")
USERS, SINGLE, SHARED = "users", "single-project", "none"


@dataclass(frozen=True)
class Account:
    """The Unix account a project's tasks run as."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class Isolation:
    """How this worker keeps tasks apart (`mode`: users, single-project or none) and why."""

    mode: str
    message: str

    @property
    def switches_users(self) -> bool:
        return self.mode == USERS


def decide(setting: str, euid: int) -> Isolation:
    """Return the isolation a worker with effective uid `euid` gives under `task_isolation: setting`.

    Raises MyappError when `users` is demanded and cannot be given (the worker must not start).
    """
    if setting not in MODES:
        raise MyappError(f"MYAPP_TASK_ISOLATION: {setting!r} is not one of {', '.join(MODES)}")
    if euid == 0 and setting in ("auto", "users"):
        from myapp.executor.launcher import spawn_note  # noqa: PLC0415  (launcher imports this module)

        note = spawn_note()
        return Isolation(
            USERS,
            "tasks run as one unprivileged account per project (the worker is root)" + (f"; {note}" if note else ""),
        )
    if setting == "users":
        raise MyappError(
            "MYAPP_TASK_ISOLATION: 'users' needs a worker running as root (it switches to each "
            f"project's account); this worker runs as uid {euid}"
        )
    if setting == "none":
        return Isolation(
            SHARED,
            "tasks run as the worker's own user, for every project (task_isolation: none): "
            "task code can read the worker's environment, secret key, database credentials and "
            "every project's logs and files",
        )
    return Isolation(
        SINGLE,
        "the worker is not root, so it cannot switch users: tasks run as the worker's own "
        "user and can read its environment, secret key and database credentials; only one "
        "project's tasks run (set task_isolation: none to run every project's, accepting this)",
    )


class TaskAccounts:
    """The per-project accounts of one worker process, created on first use (as root)."""

    def __init__(self, prefix: str, uid_base: int, *, create: bool = True) -> None:
        self.prefix, self.uid_base, self.create = prefix, uid_base, create
        self._known: dict[int, Account] = {}
        self._lock = threading.Lock()

    def for_project(self, project_id: int | None) -> Account:
        """Return the account of `project_id`'s tasks (0: tasks of no project), creating it if missing."""
        pid = project_id or 0
        hit = self._known.get(pid)
        if hit is not None:
            return hit
        with self._lock:
            account = self._known.get(pid) or self._ensure(pid)
            self._known[pid] = account
            return account

    def _ensure(self, project_id: int) -> Account:
        name, uid = f"{self.prefix}-{project_id}", self.uid_base + project_id
        try:
            taken = pwd.getpwuid(uid)
        except KeyError:
            taken = None
        if taken is not None and taken.pw_name != name:
            raise MyappError(
                f"uid {uid} (task_uid_base + project {project_id}) belongs to {taken.pw_name!r}, "
                f"not to the task account {name!r}: choose another MYAPP_TASK_UID_BASE"
            )
        if taken is None and self.create:
            _create_account(name, uid)
        return Account(name, uid, uid)


def _create_account(name: str, uid: int) -> None:
    """Add `name` (uid = gid = `uid`, no home, no login shell) to the system; numeric ids serve if this fails."""
    groupadd, useradd = shutil.which("groupadd"), shutil.which("useradd")
    if not (groupadd and useradd):
        log.info("no useradd here: task account %s runs with the numeric uid %d only", name, uid)
        return
    for argv in (
        [groupadd, "-g", str(uid), name],
        [
            useradd,
            "-u",
            str(uid),
            "-g",
            str(uid),
            "-M",
            "-N",
            "-l",
            "-d",
            "/nonexistent",
            "-s",
            "/usr/sbin/nologin",
            "-c",
            "myapp task account",
            name,
        ],
    ):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode not in (0, 4, 9):  # 4: id taken (a concurrent worker), 9: name taken
            log.warning(
                "%s failed (%s): task account %s runs with the numeric uid %d only",
                argv[0],
                done.stderr.strip(),
                name,
                uid,
            )
            return


def bind_single_project(home: Path, project_id: int | None, task: str) -> None:
    """Refuse a task of another project than the one this installation's unisolated workers run.

    The first task run records its project in MYAPP_HOME/task_project; tasks of any other
    project then fail, naming the setting that allows them.
    """
    mine = str(project_id or 0)
    path = home / "task_project"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        bound = path.read_text(encoding="utf-8").strip()
    else:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(mine + "\n")
        bound = mine
    if bound != mine:
        raise MyappError(
            f"task {task!r}: refused: this worker cannot switch users (it is not root), so it runs the tasks of "
            f"one project only (project id {bound}, recorded in {path}); run the worker as root, or set "
            "MYAPP_TASK_ISOLATION=none to let every project's tasks run as the worker's user"
        )


def secure_home(home: Path) -> None:
    """Make MYAPP_HOME (secret key, database file, logs, artifacts) unreadable to task accounts."""
    try:
        if home.is_dir() and os.geteuid() in (0, home.stat().st_uid):  # root: also a home the web server owns
            home.chmod(0o700)
    except OSError as exc:
        log.warning("cannot restrict %s to its owner: %s", home, exc)


def give_to(path: Path, account: Account) -> None:
    """Hand `path` (a fresh working directory and what the worker copied into it) to `account`.

    Symbolic links are changed themselves, never followed.
    """
    os.lchown(path, account.uid, account.gid)
    path.chmod(0o700)
    for root, dirs, files in os.walk(path):
        for entry in (*dirs, *files):
            os.lchown(os.path.join(root, entry), account.uid, account.gid)


def describe(setting: str, euid: int | None = None) -> dict[str, str]:
    """Return what /health says about task isolation: under `users` what every worker guarantees (one
    that is not root does not start), else what a worker running like this process would give."""
    if setting == "users":
        return {
            "mode": USERS,
            "message": "tasks run as one unprivileged account per project "
            "(task_isolation: users; a worker that is not root does not start)",
        }
    try:
        iso = decide(setting, os.geteuid() if euid is None else euid)
    except MyappError as exc:
        return {"mode": "refused", "message": str(exc)}
    return {"mode": iso.mode, "message": iso.message}
