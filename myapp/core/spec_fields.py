"""Typed readers for plain-dict documents (pipelines, templates): one SpecError per wrong field.

Each reader takes the enclosing mapping, the key and the path of the mapping, so errors read
`tasks[load].retries: must be an integer`. `None` counts as absent, as JSON from the canvas
sends nulls for unset fields. Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from myapp.core.errors import SpecError
from myapp.core.params import value_text


def join(path: str, key: str) -> str:
    """Return the path of `key` inside the mapping at `path`."""
    return f"{path}.{key}" if path else key


def put(out: dict[str, object], key: str, value: object, default: object) -> None:
    """Set `out[key] = value` unless it equals the default (canonical forms omit defaults)."""
    if value != default:
        out[key] = value


def read_mapping(raw: object, path: str) -> Mapping[str, object]:
    """Return `raw` as a mapping with text keys; SpecError otherwise."""
    if not isinstance(raw, Mapping):
        raise SpecError(path, f"must be a mapping, not {_kind(raw)}")
    for key in raw:
        if not isinstance(key, str):
            raise SpecError(path, f"keys must be text, not {key!r}")
    return raw


def check_keys(data: Mapping[str, object], allowed: Sequence[str], path: str) -> None:
    """Refuse keys outside `allowed`, naming all of them."""
    unknown = [key for key in data if key not in allowed]
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise SpecError(join(path, unknown[0]), f"unknown key {names}; allowed: {', '.join(allowed)}")


def read_str(data: Mapping[str, object], key: str, path: str, *, default: str = "", required: bool = False) -> str:
    """Return a text field; with `required`, absence or empty text is an error."""
    raw = data.get(key)
    if raw is None:
        if required:
            raise SpecError(join(path, key), "is required")
        return default
    if not isinstance(raw, str):
        raise SpecError(join(path, key), f"must be text, not {_kind(raw)}")
    if required and not raw:
        raise SpecError(join(path, key), "must not be empty")
    return raw


def read_optional_str(data: Mapping[str, object], key: str, path: str) -> str | None:
    """Return a text field or None when absent."""
    return read_str(data, key, path) if data.get(key) is not None else None


def read_int(data: Mapping[str, object], key: str, path: str, *, default: int) -> int:
    """Return an integer field (booleans and fractions refused)."""
    raw = data.get(key)
    if raw is None:
        return default
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise SpecError(join(path, key), f"must be an integer, not {_kind(raw)}")
    return raw


def read_bool(data: Mapping[str, object], key: str, path: str, *, default: bool) -> bool:
    """Return a boolean field (true/false only, not "yes" or 1)."""
    raw = data.get(key)
    if raw is None:
        return default
    if not isinstance(raw, bool):
        raise SpecError(join(path, key), f"must be true or false, not {_kind(raw)}")
    return raw


def read_list(data: Mapping[str, object], key: str, path: str) -> list[object]:
    """Return a list field (empty when absent)."""
    raw = data.get(key)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SpecError(join(path, key), f"must be a list, not {_kind(raw)}")
    return raw


def read_str_list(data: Mapping[str, object], key: str, path: str) -> tuple[str, ...]:
    """Return a list of text; numbers are refused so that `command` stays exactly as written."""
    items = read_list(data, key, path)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise SpecError(f"{join(path, key)}[{i}]", f"must be text, not {_kind(item)}")
    return tuple(str(item) for item in items)


def read_text_map(data: Mapping[str, object], key: str, path: str) -> dict[str, str]:
    """Return a mapping of text to single values written as text (env: {LEVEL: 3} -> "3")."""
    raw = data.get(key)
    if raw is None:
        return {}
    where = join(path, key)
    mapping = read_mapping(raw, where)
    out: dict[str, str] = {}
    for name, value in mapping.items():
        if value is None or isinstance(value, (Mapping, list)):
            raise SpecError(f"{where}.{name}", "must be a single value")
        try:
            out[name] = value_text(value)
        except ValueError as exc:
            raise SpecError(f"{where}.{name}", str(exc)) from None
    return out


def _kind(raw: object) -> str:
    names = {
        dict: "a mapping",
        list: "a list",
        str: "text",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "nothing",
    }
    return names.get(type(raw), f"a {type(raw).__name__}")
