"""Success and failure conditions of a resource task, as Argo writes them: `status.succeeded > 0`.

A condition is comma-separated requirements `PATH OP VALUE` that must all hold; PATH is dotted
with optional `[index]` (`status.conditions[0].type`), OP one of == != > < >= <=. Numbers compare
as numbers, everything else as text; a missing PATH never holds. Pure; standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

OPERATORS = ("==", "!=", ">=", "<=", ">", "<")
_REQUIREMENT = re.compile(r"\s*([A-Za-z_][\w.\[\]-]*)\s*(==|!=|>=|<=|>|<|=)\s*(.*?)\s*")
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_MISSING = object()


@dataclass(frozen=True)
class Requirement:
    """One `PATH OP VALUE` requirement."""

    path: str
    operator: str
    value: str


def parse_condition(text: str) -> tuple[Requirement, ...]:
    """Parse a condition; ValueError names the requirement that cannot be read."""
    if not text.strip():
        return ()
    out = []
    for part in text.split(","):
        match = _REQUIREMENT.fullmatch(part)
        if match is None or not match.group(3):
            raise ValueError(f"{part.strip()!r} is not PATH OP VALUE (OP one of {' '.join(OPERATORS)})")
        path, op, value = match.groups()
        out.append(Requirement(path, "==" if op == "=" else op, value.strip("'\"")))
    return tuple(out)


def holds(condition: tuple[Requirement, ...], obj: Mapping[str, object]) -> bool:
    """Return True when every requirement holds on `obj` (an empty condition never holds)."""
    return bool(condition) and all(_holds(req, obj) for req in condition)


def _holds(req: Requirement, obj: Mapping[str, object]) -> bool:
    actual = _lookup(obj, req.path)
    if actual is _MISSING or actual is None:
        return False
    left, right = _comparable(actual, req.value)
    if req.operator in ("==", "!="):
        return (left == right) == (req.operator == "==")
    if isinstance(left, str) or isinstance(right, str):
        return False
    return {">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}[req.operator]


def _lookup(obj: object, path: str) -> object:
    current = obj
    for name, index in _PART.findall(path):
        if name and isinstance(current, Mapping):
            current = current.get(name, _MISSING)
        elif index and isinstance(current, list) and int(index) < len(current):
            current = current[int(index)]
        else:
            return _MISSING
    return current


def _comparable(actual: object, expected: str) -> tuple[float | str, float | str]:
    text = ("true" if actual else "false") if isinstance(actual, bool) else str(actual)
    try:
        return float(text), float(expected)
    except ValueError:
        return text, expected
