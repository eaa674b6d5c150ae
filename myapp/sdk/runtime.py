"""The OP runtime: what an SDK task runs inside its image, and the OP vocabulary users write.

This one file is both the user-facing `OP`, `OPIO`, `OPIOSign`, `Artifact`, `Parameter` and `op`
(re-exported by `myapp.sdk`) and, shipped as source inside the task's code (script.py), the
stand-in for `myapp.sdk` in an image that does not have myapp installed. So it imports the
standard library only, and runs on Python 3.8 and newer (annotations are never evaluated).

The task protocol (`main`): every input arrives as an environment variable of its name (text);
parameters are decoded by their declared type (str, int, float, bool, json), artifacts are paths
(a file or a directory, or a list of them, unwrapped from the directory the producer wrote);
every output is written as a file under the working directory: `outputs/parameters/NAME` (text)
and `outputs/artifacts/NAME/` (the file(s), with a manifest giving their order).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import traceback
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

PARAMETER_TYPES = ("str", "int", "float", "bool", "json")
ARTIFACT_TYPES = ("path", "paths")
MANIFEST = ".myapp-artifact.json"
OUTPUT_PARAMETERS = "outputs/parameters"
OUTPUT_ARTIFACTS = "outputs/artifacts"
EXIT_BAD_INPUT = 2
EXIT_BAD_OUTPUT = 3


class OPIO(dict):  # type: ignore[type-arg]
    """The inputs or outputs of an OP: a dict of name -> value."""


class OPIOSign(dict):  # type: ignore[type-arg]
    """The declared inputs or outputs of an OP: a dict of name -> type, Artifact(...) or Parameter(...)."""


class Artifact:
    """Declares an artifact: `Artifact(Path)` (a file or a directory) or `Artifact(List[Path])`."""

    def __init__(self, type: Any = Path, optional: bool = False) -> None:
        self.type = type
        self.optional = optional

    def __repr__(self) -> str:
        return f"Artifact({getattr(self.type, '__name__', self.type)!r})"


_MISSING = object()


class Parameter:
    """Declares a parameter with options: `Parameter(int, default=3)`."""

    def __init__(self, type: Any = str, default: Any = _MISSING) -> None:
        self.type = type
        self.default = default

    @property
    def has_default(self) -> bool:
        """Return True when a default was given."""
        return self.default is not _MISSING

    def __repr__(self) -> str:
        return f"Parameter({getattr(self.type, '__name__', self.type)!r})"


class OP:
    """Base class of class OPs: `get_input_sign`, `get_output_sign` and `execute(op_in) -> OPIO`."""

    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        """Return the declared inputs."""
        return OPIOSign()

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        """Return the declared outputs."""
        return OPIOSign()

    def execute(self, op_in: OPIO) -> OPIO:
        """Do the work; return the outputs."""
        raise NotImplementedError

    @staticmethod
    def exec_sign_check(fn: Callable[..., Any]) -> Callable[..., Any]:
        """Mark `execute` as checked (dflow's decorator): inputs and outputs are checked by the runner."""
        return fn


class FunctionOP:
    """A function made an OP by `@op`: its type hints (or `inputs=`/`outputs=`) are its signature."""

    def __init__(
        self, fn: Callable[..., Any], inputs: Mapping[str, Any] | None = None, outputs: Mapping[str, Any] | None = None
    ) -> None:
        self.fn = fn
        self.inputs = inputs
        self.outputs = outputs
        self.__name__ = getattr(fn, "__name__", "op")
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__module__ = getattr(fn, "__module__", "__main__")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<op {self.__name__}>"


def op(
    fn: Callable[..., Any] | None = None,
    *,
    inputs: Mapping[str, Any] | None = None,
    outputs: Mapping[str, Any] | None = None,
) -> Any:
    """Make a function an OP: `@op`, or `@op(inputs={...}, outputs={...})` to declare the signature explicitly."""
    if fn is None:
        return lambda f: FunctionOP(f, inputs, outputs)
    return FunctionOP(fn, inputs, outputs)


class OPError(Exception):
    """An input or output that does not match the OP's declared signature."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# ---- values <-> text (the same rules on the client, in the task and in tests) ----


def encode_parameter(value: Any, type_name: str) -> str:
    """Return the text form of a parameter value of `type_name`; TypeError when it is not of that type."""
    check_parameter(value, type_name)
    if type_name == "str":
        return str(value)
    if type_name == "bool":
        return "true" if value else "false"
    if type_name in ("int", "float"):
        return repr(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def check_parameter(value: Any, type_name: str) -> None:
    """Raise TypeError unless `value` is a `type_name` value."""
    ok = {
        "str": lambda v: isinstance(v, str),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
    }.get(type_name)
    if ok is not None:
        if not ok(value):
            raise TypeError(f"expected {type_name}, got {type(value).__name__} {_short(value)}")
        return
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"expected a JSON value, got {type(value).__name__}: {exc}") from None


def decode_parameter(text: str, type_name: str) -> Any:
    """Return the value of a parameter's text form; ValueError naming the expected type."""
    if type_name == "str":
        return text
    if type_name == "int":
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError(f"expected int, got {_short(text)}") from None
    if type_name == "float":
        try:
            return float(text.strip())
        except ValueError:
            raise ValueError(f"expected float, got {_short(text)}") from None
    if type_name == "bool":
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValueError(f"expected bool (true or false), got {_short(text)}")
    try:
        return json.loads(text)
    except ValueError:
        raise ValueError(f"expected JSON, got {_short(text)}") from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def unwrap_artifact(location: str, type_name: str) -> Any:
    """Return the path (or paths) an artifact directory written by `write_artifact` holds.

    A path without a manifest (a plain file output, a literal path) is taken as it is; a list
    artifact without a manifest is the sorted entries of a directory (or the one file).
    """
    if location.startswith("["):  # gathered from a sliced step (R15): the JSON list of each slice's artifact
        if type_name == "path":
            raise ValueError(f"expected one path, got the artifacts of a sliced step: {_short(location)}")
        return [item for part in json.loads(location) if part is not None for item in list_item(part)]
    root = Path(location)
    if not root.exists():
        raise ValueError(f"artifact not found at {location}")
    manifest = root / MANIFEST
    if root.is_dir() and manifest.is_file():
        items = [root / item for item in json.loads(manifest.read_text(encoding="utf-8"))["items"]]
        if type_name == "path":
            if len(items) != 1:
                raise ValueError(f"expected one path, the artifact at {location} holds {len(items)}")
            return items[0]
        return items
    if type_name == "path":
        return root
    if root.is_dir():
        return sorted(p for p in root.iterdir() if p.name != MANIFEST)
    return [root]


def list_item(part: str) -> list[Path]:
    """Return the paths one item of a list holds: an OP's artifact directory (with its manifest) its
    paths, anything else itself (an item of an Artifact(List[Path]) output, a plain task's file)."""
    root = Path(part)
    if not root.exists():
        raise ValueError(f"artifact not found at {part}")
    return unwrap_artifact(part, "paths") if (root / MANIFEST).is_file() else [root]


def write_artifact(value: Any, type_name: str, target: Path) -> None:
    """Copy the path (or list of paths) `value` into the directory `target` with a manifest of their order."""
    paths = [value] if type_name == "path" else value
    if type_name == "path" and not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"expected a path, got {type(value).__name__} {_short(value)}")
    if type_name == "paths" and (
        not isinstance(value, (list, tuple)) or not all(isinstance(p, (str, os.PathLike)) for p in value)
    ):
        raise TypeError(f"expected a list of paths, got {_short(value)}")
    sources = [Path(p) for p in paths]
    missing = [str(p) for p in sources if not p.exists()]
    if missing:
        raise TypeError(f"path not found: {missing[0]}")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    names = [p.resolve().name or "root" for p in sources]
    flat = len(set(names)) == len(names) and MANIFEST not in names
    items = []
    for index, source in enumerate(sources):  # (no zip(strict=...): this file runs on Python 3.8)
        name = names[index]
        item = name if flat else f"{index}/{name}"
        destination = target / item
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination, symlinks=True)
        else:
            shutil.copy2(source, destination)
        items.append(item)
    (target / MANIFEST).write_text(json.dumps({"type": type_name, "items": items}), encoding="utf-8")


# ---- the task's entry point ----


def read_inputs(inputs: Mapping[str, Mapping[str, Any]], environ: Mapping[str, str]) -> dict[str, Any]:
    """Return the OP's input values from the environment, decoded and checked; OPError otherwise."""
    values: dict[str, Any] = {}
    for name, spec in inputs.items():
        text = environ.get(name)
        if text is None:
            if "default" in spec:
                values[name] = spec["default"]
                continue
            if spec.get("optional"):
                values[name] = None
                continue
            raise OPError(f"input {name!r} has no value", EXIT_BAD_INPUT)
        try:
            if spec["kind"] == "artifact":
                values[name] = unwrap_artifact(text, spec["type"])
            else:
                values[name] = decode_parameter(text, spec["type"])
        except ValueError as exc:
            raise OPError(f"input {name!r}: {exc}", EXIT_BAD_INPUT) from None
    return values


def write_outputs(outputs: Mapping[str, Mapping[str, Any]], result: Any, workdir: Path) -> None:
    """Check the OP's result against its declared outputs and write each one as a file; OPError otherwise."""
    if not outputs:
        return
    if not isinstance(result, Mapping):
        if len(outputs) != 1:
            raise OPError(
                f"the OP returned {type(result).__name__}; expected a dict with {', '.join(sorted(outputs))}",
                EXIT_BAD_OUTPUT,
            )
        result = {next(iter(outputs)): result}
    missing = [name for name in outputs if name not in result]
    if missing:
        raise OPError(f"the OP did not return output {missing[0]!r}", EXIT_BAD_OUTPUT)
    for name, spec in outputs.items():
        try:
            if spec["kind"] == "artifact":
                if result[name] is None and spec.get("optional"):
                    continue
                write_artifact(result[name], spec["type"], workdir / OUTPUT_ARTIFACTS / name)
            else:
                target = workdir / OUTPUT_PARAMETERS / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(encode_parameter(result[name], spec["type"]), encoding="utf-8")
        except TypeError as exc:
            raise OPError(f"output {name!r}: {exc}", EXIT_BAD_OUTPUT) from None


def call(target: Any, values: dict[str, Any]) -> Any:
    """Run a function OP or a class OP with its input values; return what it returned."""
    if isinstance(target, type) and issubclass(target, OP):
        return target().execute(OPIO(values))
    fn = target.fn if isinstance(target, FunctionOP) else target
    return fn(**values)


def main(namespace: Mapping[str, Any], name: str, signature: Mapping[str, Any]) -> None:
    """Run the OP `name` of `namespace` as a task: inputs from the environment, outputs to files; exit on error."""
    try:
        values = read_inputs(signature.get("inputs", {}), os.environ)
    except OPError as exc:
        print(f"myapp.sdk: OP {name}: {exc}", file=sys.stderr)
        sys.exit(exc.code)
    workdir = Path.cwd()  # where the collector reads outputs, even if the OP changes directory
    try:
        result = call(namespace[name], values)
    except Exception:
        traceback.print_exc()
        sys.exit(1)
    try:
        write_outputs(signature.get("outputs", {}), result, workdir)
    except OPError as exc:
        print(f"myapp.sdk: OP {name}: {exc}", file=sys.stderr)
        sys.exit(exc.code)


def install(module: types.ModuleType) -> None:
    """Make this module importable as `myapp.sdk` (inside a task whose image has no myapp)."""
    package = types.ModuleType("myapp")
    package.__path__ = []
    package.sdk = module  # type: ignore[attr-defined]
    module.__name__ = "myapp.sdk"
    sys.modules["myapp"] = package
    sys.modules["myapp.sdk"] = module
