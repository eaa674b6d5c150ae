"""Where a declared output may be read from (issue 12 item 7). Pure.

An output path is relative to the attempt's working directory, or absolute under one of the
allowed output locations (setting `output_roots`, default `/tmp`). `..` is refused everywhere:
an output never names a file outside the attempt's own places (another run's workspace, the
server's data directory, its kubeconfig). Checked when a pipeline or template is saved, and again
when outputs are read (executor/outputs.py), where symbolic links are resolved first.
"""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_ROOTS = ("/tmp",)


def parse_roots(text: str) -> tuple[str, ...]:
    """Return the allowed output locations of a comma-separated setting (each absolute, normalized)."""
    roots = []
    for part in text.split(","):
        part = part.strip().rstrip("/") or ("/" if part.strip() else "")
        if part:
            roots.append(part)
    return tuple(roots)


def is_under(path: str, root: str) -> bool:
    """Return True when the normalized absolute `path` is `root` or inside it."""
    root = root.rstrip("/")
    return not root or path == root or path.startswith(root + "/")


def output_path_problem(path: str, roots: Sequence[str] = DEFAULT_ROOTS) -> str:
    """Return why `path` may not be an output path ("" when it may)."""
    if "\0" in path or "\n" in path:
        return "the path contains a NUL or a line break"
    if not path.startswith("/") and ".." not in path:
        return "" if path.strip() else "the path is empty"  # the common case, checked on every save
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        return (
            f"{path!r} contains '..': an output path stays inside the attempt's working directory "
            "or an allowed output location"
        )
    if path.startswith("/") and not any(is_under("/" + "/".join(parts), r) for r in roots):
        allowed = ", ".join(roots) or "none (setting output_roots)"
        return (
            f"{path!r} is outside the allowed output locations ({allowed}); "
            "use a path relative to the working directory"
        )
    return ""


FILES_MANIFEST = ".myapp-artifact.json"  # a `files` output's order, {"items": [...]} (myapp/sdk/runtime.py MANIFEST)


def artifact_key(run_id: int, task: str, try_number: int, output: str) -> str:
    """Return where an attempt's file output is kept in the artifact repository: run-scoped, so
    retention deletes a run's artifacts as one prefix (docs/decisions/0011-artifact-repository.md)."""
    return f"{run_id}/{task}/{try_number}/{output}"
