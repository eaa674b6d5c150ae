"""Outputs of a pod attempt (R11): text from the termination message or the workflow space, files
read from the workflow space by the watcher and stored in the artifact repository (myapp/artifacts/).
The rules themselves (trailing newline, 1000 characters, the upload) are outputs.collect_outputs,
shared with the local executor.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from myapp.core.errors import OutputError
from myapp.core.model import OutputSpec
from myapp.core.output_paths import artifact_key, output_path_problem
from myapp.core.ports import ArtifactRepository
from myapp.executor.outputs import Confinement, collect_outputs, files_items, read_text_output
from myapp.k8s.entrypoint import KEEP_DIR, parse_termination_outputs


def collect_pod_outputs(
    task: str,
    launch: Mapping[str, Any],
    termination: str,
    *,
    workflow_space: Path,
    mount: str,
    shared: bool,
    roots: Sequence[str],
    artifacts: ArtifactRepository,
    run_id: int,
    try_number: int,
) -> dict[str, Any]:
    """Return the attempt's outputs; OutputError names a missing, invalid or escaping one.

    A declared path is a path inside the pod; it must pass the rules of myapp/core/output_paths.py
    (`roots`: the allowed output locations). What is read here is its copy in the attempt's working
    directory (or the termination message), and only after the copy resolved inside that directory:
    a symbolic link the task left there (to the watcher's kubeconfig, say) is refused.
    """
    declared = [
        OutputSpec(name=str(o["name"]), path=str(o["path"]), type=o.get("type", "text"))
        for o in launch.get("outputs") or []
    ]
    if not declared:
        return {}
    for out in declared:
        problem = output_path_problem(out.path, roots)
        if problem:
            raise OutputError(f"task {task!r}: output {out.name!r}: {problem}")
    workdir = Path(str(launch["workdir"]))
    texts = parse_termination_outputs(termination)
    with tempfile.TemporaryDirectory(prefix="myapp-termination-") as scratch:
        located = [
            _locate(
                task,
                out,
                workdir,
                texts,
                workflow_space=workflow_space,
                mount=mount,
                scratch=Path(scratch),
                shared=shared,
            )
            for out in declared
        ]
        return collect_outputs(
            task,
            located,
            workdir,
            Confinement(roots=(scratch, str(workdir))),
            artifacts=artifacts,
            run_id=run_id,
            try_number=try_number,
        )


def _locate(
    task: str,
    out: OutputSpec,
    workdir: Path,
    texts: Mapping[str, str],
    *,
    workflow_space: Path,
    mount: str,
    scratch: Path,
    shared: bool,
) -> OutputSpec:
    if out.type == "text" and out.name in texts:
        # The termination message needs no shared volume; R11 is applied to it as to a file.
        copy = scratch / out.name
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(texts[out.name], encoding="utf-8")
        return OutputSpec(out.name, str(copy), out.type, out.description)
    for candidate in _candidates(out, workdir, workflow_space, mount):
        if candidate.exists():
            real = candidate.resolve()
            if real != workdir.resolve() and workdir.resolve() not in real.parents:
                raise OutputError(
                    f"task {task!r}: output {out.name!r} at {out.path} resolves to {real}, outside "
                    "the attempt's working directory (a symbolic link?)"
                )
            return OutputSpec(out.name, str(real), out.type, out.description)
    hint = "" if shared else " (file outputs need a shared workflow space: set k8s_workflow_space_pvc)"
    raise OutputError(f"task {task!r}: output {out.name!r} not found at {out.path}{hint}")


def _candidates(out: OutputSpec, workdir: Path, workflow_space: Path, mount: str) -> Sequence[Path]:
    path = PurePosixPath(out.path)
    kept = workdir / KEEP_DIR / out.name / path.name  # copied there by the entrypoint (absolute paths)
    if not path.is_absolute():
        return [workdir / out.path]
    try:
        return [kept, workflow_space / path.relative_to(mount)]
    except ValueError:
        return [kept]


def uploaded_pod_outputs(
    task: str,
    launch: Mapping[str, Any],
    termination: str,
    *,
    roots: Sequence[str],
    artifacts: ArtifactRepository,
    run_id: int,
    try_number: int,
) -> dict[str, Any]:
    """Return the outputs of a pod that uploaded its own files (`k8s_artifact_transfer: pod`).

    Text outputs come from the termination message (there is no shared volume to read a cut one
    from); a file output is the object the pod stored under one of its two presigned keys (a file,
    else a directory's archive), found in the repository.
    """
    texts = parse_termination_outputs(termination)
    uploads = launch.get("uploads") or {}
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="myapp-termination-") as scratch:
        for raw in launch.get("outputs") or []:
            out = OutputSpec(name=str(raw["name"]), path=str(raw["path"]), type=raw.get("type", "text"))
            problem = output_path_problem(out.path, roots)
            if problem:
                raise OutputError(f"task {task!r}: output {out.name!r}: {problem}")
            if out.type == "text":
                if out.name not in texts:
                    raise OutputError(
                        f"task {task!r}: output {out.name!r} not found at {out.path} (without a shared volume "
                        "text outputs come from the termination message: 4096 bytes for all of them)"
                    )
                copy = Path(scratch) / out.name
                copy.write_text(texts[out.name], encoding="utf-8")
                result[out.name] = {"type": "text", "value": read_text_output(task, out, copy)}
                continue
            # The directory's archive first: a store answers "exists" for the prefix a directory's
            # archive lies under, so the file's key would seem present too.
            found = next((str(at) for at in reversed(uploads.get(out.name) or []) if artifacts.holds(str(at))), None)
            if found is None:
                raise OutputError(
                    f"task {task!r}: output {out.name!r} not found at {out.path} (the pod uploaded nothing)"
                )
            if out.type == "files":
                key = artifact_key(run_id, task, try_number, f"{out.name}/items")
                result[out.name] = _split_files(task, out, found, Path(scratch) / "files", artifacts, key)
                continue
            result[out.name] = {"type": "file", "path": found}
    return result


def _split_files(
    task: str, out: OutputSpec, found: str, scratch: Path, artifacts: ArtifactRepository, key: str
) -> dict[str, Any]:
    """Return a `files` output the pod uploaded as one directory: fetched once and stored item by
    item, as the local executor stores it (each item its own artifact a slice can fetch alone)."""
    directory = artifacts.fetch(found, scratch / out.name)
    items = files_items(task, out, directory)
    return {"type": "files", "paths": [artifacts.put(item, f"{key}/{i}") for i, item in enumerate(items)]}
