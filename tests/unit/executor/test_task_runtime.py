"""The built-in entrypoints copied where task accounts can import them (myapp/executor/task_runtime.py)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from myapp.core.errors import MyappError
from myapp.executor.task_runtime import ENTRYPOINTS, runtime_dir


def test_the_copy_holds_the_entrypoints_only_readable_by_all_and_is_made_once(tmp_path: Path) -> None:
    first = runtime_dir(tmp_path)
    assert runtime_dir(tmp_path) == first
    package = first / "myapp" / "builtins"
    assert sorted(p.name for p in package.iterdir()) == sorted(ENTRYPOINTS)
    assert sorted(p.name for p in (first / "myapp").iterdir()) == ["__init__.py", "builtins"]
    for path in [first, *first.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o755 if path.is_dir() else 0o644), (path, oct(mode))


def test_a_python_without_myapp_runs_an_entrypoint_from_the_copy(tmp_path: Path) -> None:
    runtime = runtime_dir(tmp_path)
    env = {"PYTHONPATH": str(runtime), "PATH": os.environ.get("PATH", "")}
    # -I would drop PYTHONPATH; -S drops site-packages, where the installed myapp lives
    done = subprocess.run(
        [sys.executable, "-S", "-m", "myapp.builtins.http", "--help"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "url" in done.stdout


def test_a_runtime_directory_not_of_the_worker_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / ".runtime").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(MyappError, match="not a directory of the worker's own"):
        runtime_dir(tmp_path)


def test_a_runtime_directory_removed_under_a_running_worker_is_made_again(tmp_path: Path) -> None:
    first = runtime_dir(tmp_path)
    shutil.rmtree(first)
    assert runtime_dir(tmp_path) == first and (first / "myapp" / "builtins" / "http.py").is_file()
