"""Argument vectors: `$name` / `$(params.NAME)` substitution and detection of interpreter code.

Commands are argv lists, never shell strings built from values. An element that is the code of
an interpreter (`bash -c CODE`, `python3 -c CODE`, `node -e CODE`) is left to the interpreter:
inputs reach it as environment variables, so a value like `"; rm -rf /"` is never parsed as
code. Pure string functions; standard library only.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh"})
_PYTHON = re.compile(r"python[0-9.]*")
_EVALUATORS = frozenset({"node", "nodejs", "perl", "ruby"})
_OPTIONS_WITH_VALUE = {
    "shell": frozenset({"-o", "+o", "-O", "+O"}),
    "python": frozenset({"-W", "-X"}),
    "evaluator": frozenset({"-I", "-r", "-M"}),
}
_ENV_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*", re.DOTALL)
_FLAG_GROUP = re.compile(r"[-+][A-Za-z]+")
PARAM_REF = re.compile(r"\$\(params\.([A-Za-z0-9_-]+)\)")
_TOKEN = re.compile(r"\$(?:(\$)|\(params\.([A-Za-z0-9_-]+)\)|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class CodeSlot:
    """An argv element that is interpreter code; `is_shell` when the interpreter is a POSIX shell."""

    index: int
    is_shell: bool


def find_code(argv: Sequence[str]) -> CodeSlot | None:
    """Return the element holding interpreter code (after -c / -e / combined flags like -ec), if any."""
    start = _skip_env_wrapper(argv)
    if start >= len(argv):
        return None
    program = PurePosixPath(argv[start]).name
    kind, letters = _interpreter(program)
    if kind is None:
        return None
    index = _code_index(argv, start + 1, letters, _OPTIONS_WITH_VALUE[kind])
    return None if index is None else CodeSlot(index, kind == "shell")


def _skip_env_wrapper(argv: Sequence[str]) -> int:
    if not argv or PurePosixPath(argv[0]).name != "env":
        return 0
    i = 1
    while i < len(argv) and (_ENV_ASSIGNMENT.fullmatch(argv[i]) or argv[i] in ("-i", "-")):
        i += 1
    return i


def _interpreter(program: str) -> tuple[str | None, str]:
    if program in SHELLS:
        return "shell", "c"
    if _PYTHON.fullmatch(program):
        return "python", "c"
    if program in _EVALUATORS:
        return "evaluator", "epE"
    return None, ""


def _code_index(argv: Sequence[str], i: int, letters: str, takes_value: frozenset[str]) -> int | None:
    while i < len(argv):
        arg = argv[i]
        if arg in ("--eval", "--print"):
            return i + 1 if i + 1 < len(argv) else None
        if arg in takes_value:
            i += 2
            continue
        if arg.startswith("--") and arg != "--":
            i += 1
            continue
        if not _FLAG_GROUP.fullmatch(arg):
            return None           # a script file or `--`: no inline code
        if arg.startswith("-") and any(letter in arg[1:] for letter in letters):
            return i + 1 if i + 1 < len(argv) else None
        i += 1
    return None


def substitute_inputs(text: str, values: Mapping[str, str]) -> str:
    """Replace `$name` / `${name}` with input values in one pass; `$$` gives `$`; unknown names stay."""
    return expand(text, {}, values)


def expand(text: str, params: Mapping[str, str], inputs: Mapping[str, str], *, code: bool = False) -> str:
    """Substitute `$(params.NAME)` and, unless `code`, `$name`/`${name}`/`$$` in one pass.

    Substituted values are never rescanned, so a value holding `$x` stays as it is.
    """
    def replace(match: re.Match[str]) -> str:
        dollar, param, braced, bare = match.groups()
        if param is not None:
            return params.get(param, match.group(0))
        if code:
            return match.group(0)
        if dollar is not None:
            return "$"
        return inputs.get(braced or bare, match.group(0))

    return _TOKEN.sub(replace, text)


def shell_quoted(values: Mapping[str, str], keep: frozenset[str]) -> dict[str, str]:
    """Return `values` shell-quoted for splicing into shell code, except the names in `keep`."""
    return {k: v if k in keep else shlex.quote(v) for k, v in values.items()}


def param_refs(text: str) -> tuple[str, ...]:
    """Return the parameter names referenced as `$(params.NAME)` in `text`, in order."""
    return tuple(PARAM_REF.findall(text))


def whole_param_ref(text: str) -> str | None:
    """Return NAME when `text` is exactly `$(params.NAME)`."""
    match = PARAM_REF.fullmatch(text)
    return match.group(1) if match else None
