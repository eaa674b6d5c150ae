"""The parameter schema of task templates: parse a declaration, coerce a value, mask a secret.

A value handed to an entrypoint is always text; `coerce_value` gives its one canonical form
(`json` -> compact JSON, `boolean` -> "true"/"false", numbers without spurious zeros).
Standard library only; no I/O.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import cast, get_args

from myapp.core.errors import SpecError
from myapp.core.model import ParamDef, ParamType

PARAM_TYPES: tuple[str, ...] = get_args(ParamType)
MASK = "******"
NUMERIC_TYPES = frozenset({"integer", "number"})
TEXT_TYPES = frozenset({"string", "text", "secret"})
MAX_PATTERN_LENGTH = 500
MAX_VALUE_LENGTH = 1_000_000
_KEYS = (
    "type",
    "default",
    "required",
    "description",
    "label",
    "choices",
    "minimum",
    "maximum",
    "pattern",
    "script",
)
_INTEGER = re.compile(r"\s*[-+]?\d{1,30}\s*")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def parse_param_def(name: str, data: Mapping[str, object]) -> ParamDef:
    """Parse one declared parameter; SpecError names `parameters.NAME.FIELD`."""
    where = f"parameters.{name}"
    if not isinstance(data, Mapping):
        raise SpecError(where, "must be a mapping of type, default, required, ...")
    unknown = [str(k) for k in data if k not in _KEYS]
    if unknown:
        raise SpecError(f"{where}.{unknown[0]}", f"unknown key(s) {', '.join(unknown)}")
    defn = ParamDef(
        name=name,
        type=_param_type(data.get("type", "string"), where),
        default=data.get("default"),
        required=_flag(data, "required", where),
        description=_text(data, "description", where),
        label=_text(data, "label", where),
        choices=_choices(data.get("choices"), where),
        minimum=_bound(data, "minimum", where),
        maximum=_bound(data, "maximum", where),
        pattern=_pattern(data.get("pattern"), where),
        script=_flag(data, "script", where),
    )
    _check_consistency(defn, where)
    return defn


def param_def_to_dict(defn: ParamDef) -> dict[str, object]:
    """Return the declaration as a plain dict, defaults omitted (inverse of parse_param_def)."""
    out: dict[str, object] = {"type": defn.type}
    optional: tuple[tuple[str, object, object], ...] = (
        ("default", defn.default, None),
        ("required", defn.required, False),
        ("description", defn.description, ""),
        ("label", defn.label, ""),
        ("choices", list(defn.choices), []),
        ("minimum", defn.minimum, None),
        ("maximum", defn.maximum, None),
        ("pattern", defn.pattern, None),
        ("script", defn.script, False),
    )
    out.update({key: value for key, value, empty in optional if value != empty})
    return out


def coerce_value(defn: ParamDef, value: object) -> str:
    """Return `value` in the canonical text form of `defn`; ValueError says what is wrong."""
    if value is None:
        raise ValueError("a value is required")
    if defn.type == "json":
        return _coerce_json(value)
    text = _coerce_by_type(defn, value)
    if len(text) > MAX_VALUE_LENGTH:
        raise ValueError(f"value longer than {MAX_VALUE_LENGTH} characters")
    if defn.pattern is not None and defn.type in TEXT_TYPES and not re.fullmatch(defn.pattern, text):
        shown = MASK if defn.type == "secret" else repr(_shorten(text))  # never echo a secret
        raise ValueError(f"{shown} does not match the pattern {defn.pattern!r}")
    return text


def is_deferred(value: object) -> bool:
    """Return True for text holding Jinja (`{{`/`{%`): it is checked after rendering, at run time."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def value_text(value: object) -> str:
    """Return the canonical text of a scalar (bool -> "true"/"false") or of a list/dict (compact JSON)."""
    if isinstance(value, (list, dict)):
        return _coerce_json(value)
    return _scalar_text(value)


def mask(defn: ParamDef, value: object) -> str:
    """Return the value as shown to people: secrets become "******", others their text form."""
    if value is None or value == "":
        return ""
    if defn.type == "secret":
        return MASK
    try:
        return coerce_value(defn, value)
    except ValueError:
        return _scalar_text(value)


def _coerce_by_type(defn: ParamDef, value: object) -> str:
    if defn.type == "boolean":
        return _coerce_boolean(value)
    if defn.type == "integer":
        integer = _coerce_integer(value)
        _in_range(defn, integer)
        return str(integer)
    if defn.type == "number":
        number = _coerce_number(value)
        _in_range(defn, number)
        return _number_text(number)
    text = _scalar_text(value)
    if defn.type == "choice" and text not in defn.choices:
        raise ValueError(f"{_shorten(text)!r} is not one of {', '.join(defn.choices)}")
    return text


def _scalar_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number_text(value)
    raise ValueError(f"expected a single value, got {type(value).__name__}")


def _coerce_boolean(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    word = _scalar_text(value).strip().lower()
    if word in _TRUE:
        return "true"
    if word in _FALSE:
        return "false"
    raise ValueError(f"{_shorten(word)!r} is not a boolean (true/false)")


def _coerce_integer(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    raise ValueError(f"{_shorten(str(value))!r} is not an integer")


def _coerce_number(value: object) -> float:
    if isinstance(value, bool):
        return _parse_float(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    number = value if isinstance(value, float) else _parse_float(value)
    if not math.isfinite(number):
        raise ValueError(f"{number} is not a finite number")
    return number


def _parse_float(value: object) -> float:
    if isinstance(value, str) and len(value) <= 100:
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(f"{_shorten(str(value))!r} is not a number")


def _number_text(number: float) -> str:
    return str(number) if isinstance(number, int) else repr(number)


def _in_range(defn: ParamDef, number: float) -> float:
    if defn.minimum is not None and number < defn.minimum:
        raise ValueError(f"{number} is below the minimum {_number_text(defn.minimum)}")
    if defn.maximum is not None and number > defn.maximum:
        raise ValueError(f"{number} is above the maximum {_number_text(defn.maximum)}")
    return number


def _coerce_json(value: object) -> str:
    try:
        data = json.loads(value) if isinstance(value, str) else value
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"not valid JSON: {exc}") from None


def _shorten(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _param_type(raw: object, where: str) -> ParamType:
    if raw not in PARAM_TYPES:
        raise SpecError(f"{where}.type", f"must be one of {', '.join(PARAM_TYPES)}, not {raw!r}")
    return cast(ParamType, raw)


def _flag(data: Mapping[str, object], key: str, where: str) -> bool:
    raw = data.get(key, False)
    if not isinstance(raw, bool):
        raise SpecError(f"{where}.{key}", "must be true or false")
    return raw


def _text(data: Mapping[str, object], key: str, where: str) -> str:
    raw = data.get(key, "")
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise SpecError(f"{where}.{key}", "must be text")
    return raw


def _choices(raw: object, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise SpecError(f"{where}.choices", "must be a non-empty list")
    try:
        choices = tuple(_scalar_text(item) for item in raw)
    except ValueError as exc:
        raise SpecError(f"{where}.choices", str(exc)) from None
    if len(set(choices)) != len(choices):
        raise SpecError(f"{where}.choices", "has duplicates")
    return choices


def _bound(data: Mapping[str, object], key: str, where: str) -> float | None:
    raw = data.get(key)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise SpecError(f"{where}.{key}", "must be a finite number")
    return raw


def _pattern(raw: object, where: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > MAX_PATTERN_LENGTH:
        raise SpecError(f"{where}.pattern", f"must be a regular expression of at most {MAX_PATTERN_LENGTH} characters")
    try:
        re.compile(raw)
    except re.error as exc:
        raise SpecError(f"{where}.pattern", f"invalid regular expression: {exc}") from None
    return raw


def _check_consistency(defn: ParamDef, where: str) -> None:
    if defn.type == "choice" and not defn.choices:
        raise SpecError(f"{where}.choices", "a choice parameter needs choices")
    if defn.choices and defn.type != "choice":
        raise SpecError(f"{where}.choices", "only a choice parameter has choices")
    has_bounds = defn.minimum is not None or defn.maximum is not None
    if has_bounds and defn.type not in NUMERIC_TYPES:
        raise SpecError(f"{where}.minimum", "only integer and number parameters have bounds")
    if defn.minimum is not None and defn.maximum is not None and defn.minimum > defn.maximum:
        raise SpecError(f"{where}.maximum", "is below the minimum")
    if defn.pattern is not None and defn.type not in TEXT_TYPES:
        raise SpecError(f"{where}.pattern", "only string, text and secret parameters have a pattern")
    if defn.script and defn.type not in ("string", "text"):
        raise SpecError(f"{where}.script", "only string and text parameters hold a script")
    if defn.default is not None and not is_deferred(defn.default):
        try:
            coerce_value(defn, defn.default)
        except ValueError as exc:
            raise SpecError(f"{where}.default", str(exc)) from None
