"""Collect declared outputs after an attempt (R11): text read here, files and directories stored
in the artifact repository (myapp/artifacts/), which hands them to consumers.

Every output is read only after its path resolved (symbolic links followed) inside the attempt's
working directory or an allowed output location (Confinement); links inside a file output's
directory are copied as links, never followed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from myapp.core.errors import OutputError
from myapp.core.model import OutputSpec
from myapp.core.output_paths import FILES_MANIFEST, artifact_key, is_under, output_path_problem
from myapp.core.ports import ArtifactRepository

TEXT_LIMIT = 1000


@dataclass(frozen=True)
class Confinement:
    """Where an attempt's outputs may be read: its working directory, and absolute paths under
    `roots` that are not in `denied` (the server's data directory, the workflow space of others)."""

    roots: tuple[str, ...] = ()
    denied: tuple[Path, ...] = ()
    owner: int | None = None  # the task's account: an output (and all it holds) must be its own (issue 13 B1)
    # The attempt's private places: (root as the task saw it, the host directory that was there for it).
    private: tuple[tuple[str, Path], ...] = ()


def confined_source(task: str, out: OutputSpec, workdir: Path, confinement: Confinement) -> Path:
    """Return the real path of an output after the rules of myapp/core/output_paths.py; OutputError if refused."""
    problem = output_path_problem(out.path, confinement.roots)
    if problem:
        raise OutputError(f"task {task!r}: output {out.name!r}: {problem}")
    source = Path(out.path) if Path(out.path).is_absolute() else workdir / out.path
    norm = os.path.normpath(out.path)
    private = next(((r, host) for r, host in confinement.private if source.is_absolute() and is_under(norm, r)), None)
    if private is not None:  # read where the task's private root was (a link is resolved on the host: no way out)
        source = private[1] / os.path.relpath(norm, private[0])
    if not source.exists():
        raise OutputError(f"task {task!r}: output {out.name!r} not found at {out.path}")
    real = source.resolve()
    if confinement.owner is not None:
        _check_owner(task, out, real, confinement.owner)
    if _inside(real, workdir.resolve()) or (private is not None and _inside(real, private[1].resolve())):
        return real
    if private is not None:
        raise OutputError(
            f"task {task!r}: output {out.name!r} at {out.path} leads out of the attempt's private {private[0]} "
            "(a symbolic link?)"
        )
    allowed = (
        Path(out.path).is_absolute()
        and any(_inside(real, Path(r).resolve()) for r in confinement.roots)
        and not any(_inside(real, d.resolve()) for d in confinement.denied)
    )
    if not allowed:
        raise OutputError(
            f"task {task!r}: output {out.name!r} at {out.path} resolves to {real}, outside the "
            f"attempt's working directory and the allowed output locations (a symbolic link?)"
        )
    return real


def _check_owner(task: str, out: OutputSpec, real: Path, owner: int) -> None:
    """Refuse an output the task's account does not own: the worker (root) reads for the task only
    what the task itself could (a link to another project's file in /tmp is not an output)."""
    paths = [real]
    if real.is_dir():
        for root, dirs, files in os.walk(real):
            paths += [Path(root, name) for name in (*dirs, *files)]
    for path in paths:
        if path.lstat().st_uid != owner:
            raise OutputError(
                f"task {task!r}: output {out.name!r} at {out.path}: {path} does not belong to the task's account"
            )


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def collect_outputs(
    task: str,
    outputs: Sequence[OutputSpec],
    workdir: Path,
    confinement: Confinement,
    *,
    artifacts: ArtifactRepository,
    run_id: int,
    try_number: int,
) -> dict[str, Any]:
    """Read text outputs and store file outputs in the artifact repository; raise OutputError
    (ArtifactError when the repository fails)."""
    result: dict[str, Any] = {}
    for out in outputs:
        source = confined_source(task, out, workdir, confinement)
        if out.type == "text":
            result[out.name] = {"type": "text", "value": read_text_output(task, out, source)}
        elif out.type == "files":
            key = artifact_key(run_id, task, try_number, out.name)
            paths = [artifacts.put(item, f"{key}/{i}") for i, item in enumerate(files_items(task, out, source))]
            result[out.name] = {"type": "files", "paths": paths}
        else:
            location = artifacts.put(source, artifact_key(run_id, task, try_number, out.name))
            result[out.name] = {"type": "file", "path": location}
    return result


def files_items(task: str, out: OutputSpec, source: Path) -> list[Path]:
    """Return the items of a `files` output (R15): the entries of its directory in name order, or
    in the order the directory's FILES_MANIFEST lists them (the SDK writes one for a list of paths).
    An empty directory is an empty list; the manifest itself is never an item."""
    if not source.is_dir():
        raise OutputError(
            f"task {task!r}: output {out.name!r} at {out.path} is a file; a files output is a directory "
            "whose entries are the list (use type: file for one file)"
        )
    manifest = source / FILES_MANIFEST
    if not manifest.is_file():
        items = sorted(p for p in source.iterdir() if p.name != FILES_MANIFEST)
    else:
        items = _manifest_items(task, out, source, manifest)
    for item in items:  # an item is stored as it is: a link would be followed out of the attempt's files
        if item.is_symlink():
            raise OutputError(f"task {task!r}: output {out.name!r}: {item.name} is a symbolic link, not a file")
    return items


def _manifest_items(task: str, out: OutputSpec, source: Path, manifest: Path) -> list[Path]:
    try:
        names = json.loads(manifest.read_text(encoding="utf-8"))["items"]
        items = [source / str(name) for name in names]
    except (ValueError, KeyError, TypeError) as exc:
        raise OutputError(
            f"task {task!r}: output {out.name!r}: {FILES_MANIFEST} is not a list of items: {exc}"
        ) from None
    root = source.resolve()
    for item in items:
        if not item.exists() or root not in item.resolve().parents:
            raise OutputError(f"task {task!r}: output {out.name!r}: {FILES_MANIFEST} names {item}, not in {out.path}")
    return items


def read_text_output(task: str, out: OutputSpec, source: Path) -> str:
    """Return a text output: the file's content with one trailing newline removed (D13)."""
    if source.is_dir():
        raise OutputError(f"task {task!r}: text output {out.name!r} at {out.path} is a directory")
    text = source.read_bytes().decode("utf-8", errors="replace")
    if text.endswith("\n"):
        text = text[:-1]
    if len(text) > TEXT_LIMIT:
        raise OutputError(
            f"task {task!r}: text output {out.name!r} has {len(text)} characters; "
            f"the limit is {TEXT_LIMIT} (use type: file)"
        )
    return text
