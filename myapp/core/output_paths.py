"""Where a declared output may be read from (issue 12 item 7). Pure.

An output path is relative to the attempt's working directory, or absolute under one of the
allowed output locations (setting `output_roots`, default `/tmp`). `..` is refused everywhere:
an output never names a file outside the attempt's own places (another run's workspace, the
server's data directory, its kubeconfig). Checked when a pipeline or template is saved, and again
when outputs are read (executor/outputs.py), where symbolic links are resolved first.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

DEFAULT_ROOTS = ("/tmp",)


def parse_roots(text: str) -> tuple[str, ...]:
    """Return the allowed output locations of a comma-separated setting (each absolute, normalized)."""
    roots = []
    for part in text.split(","):
        part = part.strip().rstrip("/") or ("/" if part.strip() else "")
        if part:
            roots.append(part)
    return tuple(roots)


def is_under(path: PurePosixPath, root: PurePosixPath) -> bool:
    """Return True when `path` is `root` or inside it (both normalized)."""
    return path == root or root in path.parents


def output_path_problem(path: str, roots: Sequence[str] = DEFAULT_ROOTS) -> str:
    """Return why `path` may not be an output path ("" when it may)."""
    if not path.strip():
        return "the path is empty"
    if "\0" in path or "\n" in path:
        return "the path contains a NUL or a line break"
    pure = PurePosixPath(path)
    if ".." in pure.parts:
        return (f"{path!r} contains '..': an output path stays inside the attempt's working directory "
                "or an allowed output location")
    if pure.is_absolute() and not any(is_under(pure, PurePosixPath(r)) for r in roots):
        allowed = ", ".join(roots) or "none (setting output_roots)"
        return (f"{path!r} is outside the allowed output locations ({allowed}); "
                "use a path relative to the working directory")
    return ""
