"""Collect declared outputs after an attempt (R11) and hand file artifacts to consumers."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from myapp.core.errors import OutputError
from myapp.core.model import OutputSpec

TEXT_LIMIT = 1000


def collect_outputs(task: str, outputs: Sequence[OutputSpec], workdir: Path, store: Path) -> dict[str, Any]:
    """Read text outputs and copy file outputs into the run's artifact store; raise OutputError."""
    result: dict[str, Any] = {}
    for out in outputs:
        source = Path(out.path) if Path(out.path).is_absolute() else workdir / out.path
        if not source.exists():
            raise OutputError(f"task {task!r}: output {out.name!r} not found at {out.path}")
        if out.type == "text":
            result[out.name] = {"type": "text", "value": read_text_output(task, out, source)}
        else:
            target = store / out.name / (source.name or out.name)
            if target.parent.exists():
                shutil.rmtree(target.parent)
            target.parent.mkdir(parents=True)
            _copy(source, target)
            result[out.name] = {"type": "file", "path": str(target)}
    return result


def read_text_output(task: str, out: OutputSpec, source: Path) -> str:
    """Return a text output: the file's content with one trailing newline removed (D13)."""
    if source.is_dir():
        raise OutputError(f"task {task!r}: text output {out.name!r} at {out.path} is a directory")
    text = source.read_bytes().decode("utf-8", errors="replace")
    if text.endswith("\n"):
        text = text[:-1]
    if len(text) > TEXT_LIMIT:
        raise OutputError(f"task {task!r}: text output {out.name!r} has {len(text)} characters; "
                          f"the limit is {TEXT_LIMIT} (use type: file)")
    return text


def materialize(artifact: str, target_dir: Path) -> Path:
    """Copy an artifact (file or directory) into `target_dir`; return the local path handed over."""
    source = Path(artifact)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / source.name
    _copy(source, target)
    return target


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target)
