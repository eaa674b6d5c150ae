"""The built-in entrypoints where a per-project task account can import them (docs/security.md §1).

A task account cannot execute the worker's Python or read its installation when those live in a
private home (a virtualenv under /root, mode 0700), so `python3 -m myapp.builtins.http` found no
`myapp` and the `http` and `wait-for` templates failed under task accounts. Those entrypoints use
the standard library only (myapp/builtins/__init__.py), so the worker copies them, as a package
`myapp.builtins` holding nothing else, into WORKFLOW_SPACE/.runtime/VERSION (directories 0755,
files 0644, owned by the worker: readable by every account, writable by none of them), and the
local executor puts that directory on the task's PYTHONPATH. Any `python3` the account can run
(the system's) then finds them; nothing else of myapp is exposed.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import myapp.builtins
from myapp.core.errors import MyappError

ENTRYPOINTS = ("__init__.py", "http.py", "http_call.py", "polling.py", "wait_for.py")
PACKAGE_INIT = '"""The built-in entrypoints a task may run (a copy made by myapp.executor.task_runtime)."""\n'


def runtime_dir(workflow_space: Path) -> Path:
    """Return the directory to put on a task's PYTHONPATH, creating it (once per content) if needed.

    Once this process has made or checked it, it is only looked for again (one stat per attempt, not
    a mkdir and four checks): it is the worker's, in the worker's workflow space, where no task
    account can replace it. One removed meanwhile (by hand) is made again.
    """
    files, digest = _entrypoints()
    root = workflow_space / ".runtime"
    target = root / digest
    if _CHECKED.get(workflow_space) == target and os.path.isdir(target):
        return target
    root.mkdir(mode=0o755, parents=True, exist_ok=True)
    _own_directory(root)
    if target.exists() or target.is_symlink():
        _own_directory(target)
        _CHECKED[workflow_space] = target
        return target
    os.chmod(root, 0o755)
    staging = Path(tempfile.mkdtemp(prefix="new.", dir=root))
    try:
        package = staging / "myapp" / "builtins"
        package.mkdir(parents=True)
        (staging / "myapp" / "__init__.py").write_text(PACKAGE_INIT)
        for name, body in files.items():
            (package / name).write_bytes(body)
        for path in [staging, *staging.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        try:
            staging.rename(target)  # atomic: another worker may have made the same one meanwhile
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _own_directory(target)
    _CHECKED[workflow_space] = target
    return target


_CHECKED: dict[Path, Path] = {}  # workflow space -> its runtime directory, made or checked by this process


@functools.cache
def _entrypoints() -> tuple[dict[str, bytes], str]:
    """Return the entrypoints' files and their digest: read once per process (each attempt under a task
    account asks; the installed files do not change under a running worker)."""
    source = Path(myapp.builtins.__file__).parent
    files = {name: (source / name).read_bytes() for name in ENTRYPOINTS}
    digest = hashlib.sha256(b"".join(name.encode() + b"\0" + body for name, body in files.items())).hexdigest()[:16]
    return files, digest


def _own_directory(path: Path) -> None:
    info = path.lstat()
    if path.is_symlink() or not path.is_dir() or info.st_uid != os.geteuid():
        raise MyappError(f"{path} is not a directory of the worker's own: refusing to give it to tasks")
