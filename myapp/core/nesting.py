"""Limits every parsed document obeys, whatever its format: nesting depth and NUL characters.

The YAML reader (myapp/yaml_io.py) and the web's JSON guard (myapp/web/guards.py) share
MAX_NESTING, so a definition accepted in one format can always be written out in the other (a
JSON pipeline 600 levels deep used to save and then fail every export). NUL characters are refused
because PostgreSQL cannot store them in text. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

MAX_NESTING = 64


def nesting_problem(data: Any, max_depth: int = MAX_NESTING) -> str | None:
    """Return what makes a parsed JSON/YAML value unacceptable (too deep, a NUL character), or None."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return "contains a NUL character (\\u0000), which is never valid here"
        elif isinstance(value, dict | list):
            if depth >= max_depth:
                return f"is nested deeper than {max_depth} levels"
            if isinstance(value, dict):
                stack.extend((key, depth + 1) for key in value)
                stack.extend((item, depth + 1) for item in value.values())
            else:
                stack.extend((item, depth + 1) for item in value)
    return None
