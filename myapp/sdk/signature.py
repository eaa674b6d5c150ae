"""An OP's signature as data: each input and output is a parameter (str, int, float, bool, json) or an
artifact (a path: a file or a directory; or a list of paths), read from type hints or explicit signs.

The data form (`Signature.to_data`) is what the task's code carries and what `myapp.sdk.runtime`
reads in the image, so it holds plain JSON only.
"""

from __future__ import annotations

import inspect
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from myapp.sdk.runtime import OP, Artifact, FunctionOP, Parameter, check_parameter

Kind = Literal["parameter", "artifact"]
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# Inputs become environment variables of the task: these would be read as something else (the
# python template's own `code`, variables the executor passes through or sets).
RESERVED_NAMES = frozenset(
    {
        "code",
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "TZ",
        "TMPDIR",
        "SYSTEMROOT",
        "IFS",
        "ENV",
        "BASH_ENV",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
    }
)


class SignatureError(TypeError):
    """An OP whose signature cannot be used (an unsupported type, a reserved name)."""


@dataclass(frozen=True)
class IOSpec:
    """One declared input or output."""

    name: str
    kind: Kind
    type: str  # parameter: str int float bool json; artifact: path paths
    default: Any = None
    has_default: bool = False
    optional: bool = False

    def to_data(self) -> dict[str, Any]:
        """Return the JSON form the runtime reads."""
        data: dict[str, Any] = {"kind": self.kind, "type": self.type}
        if self.has_default:
            data["default"] = self.default
        if self.optional:
            data["optional"] = True
        return data

    @classmethod
    def from_data(cls, name: str, data: Mapping[str, Any]) -> IOSpec:
        """Build from the JSON form."""
        return cls(
            name=name,
            kind=data["kind"],
            type=data["type"],
            default=data.get("default"),
            has_default="default" in data,
            optional=bool(data.get("optional")),
        )


@dataclass(frozen=True)
class Signature:
    """The inputs and outputs of an OP, in declaration order."""

    inputs: tuple[IOSpec, ...] = ()
    outputs: tuple[IOSpec, ...] = field(default_factory=tuple)

    def input(self, name: str) -> IOSpec | None:
        """Return the input `name`, or None."""
        return next((s for s in self.inputs if s.name == name), None)

    def output(self, name: str) -> IOSpec | None:
        """Return the output `name`, or None."""
        return next((s for s in self.outputs if s.name == name), None)

    def to_data(self) -> dict[str, Any]:
        """Return the JSON form the runtime reads."""
        return {
            "inputs": {s.name: s.to_data() for s in self.inputs},
            "outputs": {s.name: s.to_data() for s in self.outputs},
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Signature:
        """Build from the JSON form."""
        return cls(
            inputs=tuple(IOSpec.from_data(n, d) for n, d in data.get("inputs", {}).items()),
            outputs=tuple(IOSpec.from_data(n, d) for n, d in data.get("outputs", {}).items()),
        )


def signature_of(target: Any) -> Signature:
    """Return the signature of a function OP (`@op`) or a class OP (a subclass of `OP`)."""
    if isinstance(target, FunctionOP):
        return _function_signature(target)
    if isinstance(target, type) and issubclass(target, OP):
        inputs = _specs(target.get_input_sign(), f"{target.__name__}.get_input_sign")
        outputs = _specs(target.get_output_sign(), f"{target.__name__}.get_output_sign")
        return Signature(inputs, outputs)
    raise SignatureError(f"{target!r} is not an OP: decorate a function with @op or subclass myapp.sdk.OP")


def _function_signature(target: FunctionOP) -> Signature:
    fn = target.fn
    where = getattr(fn, "__qualname__", target.__name__)
    params = inspect.signature(fn).parameters
    hints = {} if target.inputs is not None and target.outputs is not None else _annotations(fn)
    if target.inputs is not None:
        inputs = _specs(target.inputs, f"{where} inputs")
    else:
        inputs = tuple(
            _spec(
                name,
                hints.get(name, str),
                f"{where}({name})",
                params[name].default if params[name].default is not inspect.Parameter.empty else _NONE,
            )
            for name in params
        )
    unknown = [s.name for s in inputs if s.name not in params] if not _takes_kwargs(params) else []
    if unknown:
        raise SignatureError(f"{where}: input {unknown[0]!r} is not a parameter of the function")
    returned = hints.get("return") if target.outputs is None else target.outputs
    if returned is None or returned is type(None):
        outputs: tuple[IOSpec, ...] = ()
    elif isinstance(returned, Mapping):
        outputs = _specs(returned, f"{where} outputs")
    else:
        raise SignatureError(
            f"{where}: declare the outputs as a dict, e.g. -> {{'out': Artifact(Path)}} or @op(outputs={{...}})"
        )
    return Signature(inputs, outputs)


def _takes_kwargs(params: Mapping[str, inspect.Parameter]) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _annotations(fn: Any) -> dict[str, Any]:
    try:
        return dict(inspect.get_annotations(fn, eval_str=True))
    except Exception as exc:
        raise SignatureError(f"{fn.__qualname__}: cannot read the type hints: {exc}") from None


_NONE = object()


def _specs(sign: Mapping[str, Any], where: str) -> tuple[IOSpec, ...]:
    if not isinstance(sign, Mapping):
        raise SignatureError(f"{where}: expected a dict of name -> type")
    return tuple(_spec(str(name), declared, f"{where}[{name}]", _NONE) for name, declared in sign.items())


def _spec(name: str, declared: Any, where: str, default: Any) -> IOSpec:
    if not NAME.fullmatch(name) or name in RESERVED_NAMES or name.startswith("MYAPP_"):
        raise SignatureError(
            f"{where}: {name!r} cannot be an input or output name (an identifier, not "
            f"{', '.join(sorted(RESERVED_NAMES))} and not MYAPP_*)"
        )
    if isinstance(declared, Parameter):
        if declared.has_default:
            default = declared.default
        declared = declared.type
    if isinstance(declared, Artifact):
        return IOSpec(name, "artifact", _artifact_type(declared.type, where), optional=declared.optional)
    if _is_path_class(declared) or (_is_path_list(declared) and _is_path_class(typing.get_args(declared)[0])):
        return IOSpec(name, "artifact", _artifact_type(declared, where))
    type_name = _parameter_type(declared, where)
    if default is _NONE:
        return IOSpec(name, "parameter", type_name)
    try:
        check_parameter(default, type_name)
    except TypeError as exc:
        raise SignatureError(f"{where}: the default {default!r}: {exc}") from None
    return IOSpec(name, "parameter", type_name, default=default, has_default=True)


def _artifact_type(declared: Any, where: str) -> str:
    if _is_path(declared):
        return "path"
    if _is_path_list(declared):
        return "paths"
    raise SignatureError(f"{where}: an artifact is Artifact(Path) or Artifact(List[Path]), not {declared!r}")


def _is_path_class(declared: Any) -> bool:
    return isinstance(declared, type) and issubclass(declared, Path)


def _is_path(declared: Any) -> bool:
    return declared in (str, os.PathLike) or _is_path_class(declared)


def _is_path_list(declared: Any) -> bool:
    args = typing.get_args(declared)
    return (
        typing.get_origin(declared) in (list, tuple)
        and len(args) >= 1
        and _is_path(args[0])
        and (len(args) == 1 or args[1] is Ellipsis)
    )


def _parameter_type(declared: Any, where: str) -> str:
    simple = {str: "str", int: "int", float: "float", bool: "bool"}
    if declared in simple:
        return simple[declared]
    origin = typing.get_origin(declared) or declared
    if declared is Any or origin in (dict, list, tuple) or declared is object:
        return "json"
    raise SignatureError(
        f"{where}: {declared!r} is not a parameter type (str, int, float, bool, dict, list, "
        "Any) nor an artifact (Artifact(Path), Artifact(List[Path]))"
    )
