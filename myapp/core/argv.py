"""Argument vectors: `$name` / `$(params.NAME)` substitution and where interpreter code is.

Commands are argv lists, never shell strings built from values. An element that an interpreter
runs as code (`bash -c CODE`, `python3 -c CODE`, `awk PROGRAM`, `su -c CMD`, ...) never receives a
value as text: inputs reach it as environment variables. The rule is structural (docs/security.md,
"Interpreter code"): an interpreter is recognised wherever it appears in the argv, so a wrapper in
front of it (`timeout 30 bash -c`, `nice python3 -c`, `env X=1 sh -c`, `xargs sh -c`, ...) does not
hide it, and a few commands that take a shell string themselves (`su -c`, `flock -c`, `watch`,
`ssh HOST CMD`, `env -S`) have their code elements listed too. `code_slots` may report more code
than there is (a data argument that happens to read `sh`): the cost is that a value is not
substituted there, never that one is run. Pure string functions; standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

PARAM_REF = re.compile(r"\$\(params\.([A-Za-z0-9_-]+)\)")
PARAM_ENV_PREFIX = "MYAPP_PARAM_"
_TOKEN = re.compile(r"\$(?:(\$)|\(params\.([A-Za-z0-9_-]+)\)|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*", re.DOTALL)


@dataclass(frozen=True)
class Grammar:
    """How one interpreter takes inline code on its command line.

    `letters`: short flags whose value is code (`-c`, also grouped as `-ec`); `long`: options whose
    value is code (`--eval CODE` or `--eval=CODE`); `values`: options followed by one value that is
    neither code nor a script (`pairs`: by two, `jq --arg NAME VALUE`); `attached`: the code may be
    glued to its flag (`-cCODE`); `repeat`: several code options may be given (`perl -e A -e B`);
    `program`: the first operand is the program (awk, sed, jq) unless a `files` option gave it from
    a file; `ends`: options after which the rest is a program's arguments (`python -m MODULE`); `plus`: `+CMD` is code (vim). Parsing stops at the first operand (a script file: what
    follows are the script's own arguments) unless `through` (psql, gdb, vim take options after it).
    """

    shell: bool = False
    letters: str = ""
    long: frozenset[str] = frozenset()
    values: frozenset[str] = frozenset()
    pairs: frozenset[str] = frozenset()
    attached: bool = False
    repeat: bool = False
    program: bool = False
    files: frozenset[str] = frozenset()
    ends: frozenset[str] = frozenset()
    plus: bool = False
    through: bool = False


def _g(
    letters: str = "", long: str = "", values: str = "", files: str = "", pairs: str = "", ends: str = "", **flags: bool
) -> Grammar:
    return Grammar(
        letters=letters,
        long=frozenset(long.split()),
        values=frozenset(values.split()),
        files=frozenset(files.split()),
        pairs=frozenset(pairs.split()),
        ends=frozenset(ends.split()),
        **flags,
    )


_SHELL = _g(shell=True, letters="c", values="-o +o -O +O --rcfile --init-file")
_PYTHON = _g(letters="c", values="-W -X --check-hash-based-pycs", ends="-m", attached=True)
_PERL = _g(letters="eE", values="-I -M -m", attached=True, repeat=True)
_AWK = _g(
    letters="e",
    long="--source",
    values="-F -v -W --field-separator --assign",
    files="-f --file",
    program=True,
    repeat=True,
)
_SED = _g(letters="e", long="--expression", values="-l --line-length", files="-f --file", program=True, repeat=True)
_NODE = _g(letters="ep", long="--eval --print", values="-r --require --import --loader -C --conditions")
_VIM = _g(letters="c", long="--cmd", repeat=True, plus=True, through=True)
_PWSH = _g(shell=True, letters="cC", long="-Command -command -EncodedCommand -e -ec", ends="-File -f")
# Interpreters by program name (docs/security.md lists the same table; a test keeps them in step).
INTERPRETERS: Mapping[str, Grammar] = {
    **{
        name: _SHELL
        for name in (
            "sh",
            "bash",
            "dash",
            "zsh",
            "ksh",
            "ash",
            "mksh",
            "yash",
            "posh",
            "rbash",
            "busybox-sh",
            "csh",
            "tcsh",
            "fish",
        )
    },
    **{name: _PYTHON for name in ("python", "python2", "python3", "pypy", "pypy3", "ipython", "ipython3")},
    "perl": _PERL,
    "ruby": _g(letters="e", values="-I -r -C -E -F", attached=True, repeat=True),
    "node": _NODE,
    "nodejs": _NODE,
    "bun": _g(letters="e", long="--eval --print"),
    "deno": _g(),  # `deno eval CODE`: the operand after `eval` is code (see _deno)
    "php": _g(letters="rBRE", values="-c -d -z", ends="-f", attached=True),
    "lua": _g(letters="e", values="-l", attached=True, repeat=True),
    "luajit": _g(letters="e", values="-l", attached=True, repeat=True),
    "Rscript": _g(letters="e", long="--expr", repeat=True),
    "R": _g(letters="e", repeat=True),
    "julia": _g(
        letters="eE", long="--eval --print", values="-L --load -J --sysimage --project -t --threads", repeat=True
    ),
    "pwsh": _PWSH,
    "powershell": _PWSH,
    "osascript": _g(letters="e", repeat=True),
    "expect": _g(letters="c", repeat=True),
    "guile": _g(letters="c", long="--eval"),
    "elixir": _g(letters="e", long="--eval", repeat=True),
    "erl": _g(long="-eval"),
    "groovy": _g(letters="e"),
    "sbcl": _g(long="--eval", repeat=True),
    **{name: _AWK for name in ("awk", "gawk", "mawk", "nawk", "busybox-awk")},
    "sed": _SED,
    "gsed": _SED,
    "jq": _g(values="--indent -L", pairs="--arg --argjson --slurpfile --rawfile", files="-f --from-file", program=True),
    "psql": _g(
        letters="c",
        long="--command",
        values="-d -h -p -U -f -o -v -P -F -R -L --dbname --host --port --username --file --output --set --variable",
        repeat=True,
        through=True,
    ),
    "mysql": _g(
        letters="e",
        long="--execute",
        values="-h -P -u -D -S --host --port --user --database --socket",
        repeat=True,
        through=True,
    ),
    **{name: _VIM for name in ("vim", "vi", "nvim", "ex", "view")},
    "gdb": _g(long="-ex -iex --eval-command --init-eval-command", repeat=True, through=True),
}
_PYTHON_NAME = re.compile(r"python[0-9.]*")
# Commands that take a shell command string themselves: program -> (options whose value is that
# string, operands that may come before it: `su USER -c CMD`, `flock FILE -c CMD`).
SHELL_STRING_OPTIONS: Mapping[str, tuple[frozenset[str], int]] = {
    "su": (frozenset({"-c", "--command", "--session-command"}), 1),
    "runuser": (frozenset({"-c", "--command", "--session-command"}), 1),
    "flock": (frozenset({"-c", "--command"}), 1),
    "script": (frozenset({"-c", "--command"}), 1),
    "nix-shell": (frozenset({"--run", "--command"}), 8),
    "env": (frozenset({"-S", "--split-string"}), 0),
    "sg": (frozenset({"-c"}), 1),
}
# Commands whose remaining operands are joined into one shell command: program -> (options with a
# value, operands before the command). `watch ls $x` runs `sh -c "ls $x"`; `ssh HOST ls $x` runs it remotely.
SHELL_STRING_OPERANDS: Mapping[str, tuple[frozenset[str], int]] = {
    "watch": (frozenset({"-n", "--interval", "-d", "-q", "--equexit", "--errexit"}), 0),
    "ssh": (frozenset("-B -b -c -D -E -e -F -I -i -J -L -l -m -O -o -p -Q -R -S -W -w".split()), 1),
    "sudo": (frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "--user", "--group"}), 0),
    "parallel": (frozenset({"-j", "--jobs", "-S", "--sshlogin", "--delay", "--timeout", "-I", "--colsep"}), 0),
    "make": (frozenset({"-C", "-f", "-j", "-l", "-o", "-W", "--directory", "--file", "--jobs"}), 0),
}
# Wrappers that run the rest of the argv as a command: nothing special is needed for them, since an
# interpreter is found wherever it stands; listed for docs/security.md and its test.
WRAPPERS = (
    "env",
    "nice",
    "nohup",
    "timeout",
    "stdbuf",
    "setsid",
    "ionice",
    "taskset",
    "chrt",
    "numactl",
    "prlimit",
    "time",
    "xargs",
    "sudo",
    "doas",
    "chroot",
    "unshare",
    "nsenter",
    "setpriv",
    "strace",
    "ltrace",
    "valgrind",
    "catchsegv",
    "busybox",
    "exec",
    "command",
    "builtin",
    "flock",
    "firejail",
    "bwrap",
    "cgexec",
    "uv",
    "poetry",
    "pipenv",
    "conda",
    "pixi",
    "npx",
    "docker",
    "podman",
    "kubectl",
)


@dataclass(frozen=True)
class CodeSlot:
    """An argv element that is interpreter code; `is_shell` when a POSIX-like shell runs it."""

    index: int
    is_shell: bool


def program_name(element: str) -> str:
    """Return the program an argv element names: its file name (`/usr/bin/bash` -> `bash`)."""
    return PurePosixPath(element).name


def grammar_of(element: str) -> Grammar | None:
    """Return how the program named by `element` takes code, or None if it is no interpreter."""
    name = program_name(element)
    if name in INTERPRETERS:
        return INTERPRETERS[name]
    return _PYTHON if _PYTHON_NAME.fullmatch(name) else None


def code_slots(argv: Sequence[str]) -> dict[int, CodeSlot]:
    """Return every element of `argv` that some interpreter runs as code, by index."""
    slots: dict[int, CodeSlot] = {}
    for start, element in enumerate(argv):
        name = program_name(element)
        grammar = grammar_of(element)
        if grammar is not None:
            found = _deno(argv, start) if name == "deno" else _interpreter_code(argv, start + 1, grammar)
            slots.update({i: CodeSlot(i, grammar.shell) for i in found})
        if name in SHELL_STRING_OPTIONS:
            options, operands = SHELL_STRING_OPTIONS[name]
            slots.update({i: CodeSlot(i, True) for i in _option_values(argv, start + 1, options, operands)})
        if name in SHELL_STRING_OPERANDS:
            values, skip = SHELL_STRING_OPERANDS[name]
            slots.update({i: CodeSlot(i, True) for i in _operands(argv, start + 1, values, skip, name)})
    return slots


def find_code(argv: Sequence[str]) -> CodeSlot | None:
    """Return the first element holding interpreter code, if any (see `code_slots`)."""
    slots = code_slots(argv)
    return slots[min(slots)] if slots else None


def _interpreter_code(argv: Sequence[str], i: int, g: Grammar) -> list[int]:
    found: list[int] = []
    from_file = False
    while i < len(argv):
        arg = argv[i]
        name, eq, _ = arg.partition("=")
        if arg == "--":
            i += 1
            if g.program and not found and not from_file and i < len(argv):
                found.append(i)
            break
        if arg in g.ends or (g.attached and arg[:2] in g.ends and not arg.startswith("--")):
            break
        if name in g.files or (arg[:2] in g.files and not arg.startswith("--")):
            from_file = True
            i += 2 if arg in g.files else 1
            continue
        step, code = _option(arg, name, bool(eq), g)
        if code is not None:
            found.append(i + code)
            if not g.repeat:
                break
        elif step == 0:  # an operand: the program of awk/sed/jq, else a script and its arguments
            if g.program and not found and not from_file:
                found.append(i)
            if not g.through:
                break
            step = 1
        i += step
    return [j for j in found if j < len(argv)]


def _option(arg: str, name: str, has_value: bool, g: Grammar) -> tuple[int, int | None]:
    """Return (elements this option spans, offset of its code or None); (0, None) for an operand."""
    if name in g.long:
        return (1, 0) if has_value else (2, 1)  # `--eval=CODE` is code in place
    if arg in g.values:
        return 2, None
    if arg in g.pairs:
        return 3, None
    if g.plus and arg.startswith("+"):
        return 1, 0
    if arg.startswith("--") or (g.shell and arg.startswith("+") and len(arg) > 1):
        return 1, None
    if not arg.startswith("-") or len(arg) < 2:
        return 0, None
    for at in range(1, len(arg)):
        letter = arg[at]
        if letter in g.letters:
            if g.attached and at < len(arg) - 1:
                return 1, 0  # `-cCODE`
            return 2, 1  # `-c CODE`, `-ec CODE`
        if g.attached and f"-{letter}" in g.values:  # `-Idir`, `-Wignore`: the rest is that option's value
            break
    return 1, None


def _deno(argv: Sequence[str], start: int) -> list[int]:
    rest = list(argv[start + 1 :])
    return [start + 2] if rest[:1] == ["eval"] and len(rest) > 1 else []


def _option_values(argv: Sequence[str], i: int, options: frozenset[str], operands: int) -> list[int]:
    found: list[int] = []
    while i < len(argv):
        arg = argv[i]
        name, eq, _ = arg.partition("=")
        if name in options:
            found.append(i if eq else i + 1)
            i += 1 if eq else 2
            continue
        if any(arg.startswith(o) and len(arg) > len(o) and not o.startswith("--") for o in options):
            found.append(i)  # `-SCMD`
        elif arg == "--" or not (arg.startswith("-") or _ASSIGNMENT.fullmatch(arg)):
            if operands <= 0 or grammar_of(arg) is not None:
                break  # the command that runs next: its own arguments are not ours
            operands -= 1
        i += 1
    return [j for j in found if j < len(argv)]


def _operands(argv: Sequence[str], i: int, values: frozenset[str], skip: int, name: str) -> list[int]:
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "--":
        i += 2 if argv[i] in values else 1
    if i < len(argv) and argv[i] == "--":
        i += 1
    i += skip
    if name == "make":  # `make VAR=$(shell ...)`: an assignment's value is make code
        return [j for j in range(i, len(argv)) if _ASSIGNMENT.fullmatch(argv[j])]
    if name == "sudo" and not any(a in ("-s", "-i", "--shell", "--login") for a in argv[:i]):
        return []  # plain sudo runs an argv, not a shell string
    if name == "parallel":
        end = next((j for j in range(i, len(argv)) if argv[j].startswith(":::")), len(argv))
        return list(range(i, end))
    return list(range(i, len(argv)))


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


def param_env_name(name: str) -> str:
    """Return the environment variable that carries parameter `name` into shell code."""
    return PARAM_ENV_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", name)


def param_env_refs(names: Mapping[str, str] | Sequence[str]) -> dict[str, str]:
    """Return `$(params.NAME)` replacements that make shell code read NAME from the environment."""
    return {name: "${" + param_env_name(name) + "}" for name in names}


def param_refs(text: str) -> tuple[str, ...]:
    """Return the parameter names referenced as `$(params.NAME)` in `text`, in order."""
    return tuple(PARAM_REF.findall(text))


def whole_param_ref(text: str) -> str | None:
    """Return NAME when `text` is exactly `$(params.NAME)`."""
    match = PARAM_REF.fullmatch(text)
    return match.group(1) if match else None
