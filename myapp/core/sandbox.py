"""The Jinja sandbox that renders pipeline text at run time (PRODUCT.md §2).

One immutable sandboxed environment with no globals, no loader and no autoescape; the caller
passes exactly the documented variables. `datetime` and `uuid` are small namespaces, not the
modules, so nothing else of the server is reachable. Operations that could exhaust memory
(`'a' * 10**9`, `'%0999999999d' % 1`, `'x'.ljust(10**9)`) are refused, and so is spending more than
MAX_LOOP_STEPS iterations of `{% for %}` loops in one rendering (nested loops over long strings). There is
no `range` (no globals at all). Imports jinja2 only.
"""

from __future__ import annotations

import datetime as _dt
import re
import uuid as _uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import StrictUndefined, nodes, pass_context
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_TEXT = 1_000_000          # characters of one rendered field or one intermediate string
MAX_INT_BITS = 100_000
MAX_WIDTH = 10_000            # padding width in format specs and str methods
MAX_LOOP_STEPS = 100_000      # `{% for %}` iterations in one rendering, all loops together
_LOOP_FILTER = "_myapp_loop_budget"
_WIDE_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\*|\d{5,}|\d*\.(?:\*|\d{5,}))")
_WIDE_FORMAT = re.compile(r"\{[^{}]*:[^{}]*(?:\d{5,}|\{)[^{}]*\}")
_PADDING_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})
_REMOVED_FILTERS = ("center", "indent", "wordwrap", "format", "replace")


@dataclass(frozen=True)
class DatetimeNamespace:
    """What `{{ datetime.* }}` reaches: the four classes, nothing else of the module."""

    datetime: type[_dt.datetime] = _dt.datetime
    date: type[_dt.date] = _dt.date
    timedelta: type[_dt.timedelta] = _dt.timedelta
    timezone: type[_dt.timezone] = _dt.timezone


@dataclass(frozen=True)
class UuidNamespace:
    """What `{{ uuid.* }}` reaches: random UUIDs and parsing (uuid1 would leak the host's MAC)."""

    uuid4: Callable[[], _uuid.UUID] = _uuid.uuid4
    UUID: type[_uuid.UUID] = _uuid.UUID


DATETIME = DatetimeNamespace()
UUID = UuidNamespace()


class GuardedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus size guards on `*`, `**`, `%` and padding/format calls."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Refuse binary operations whose result would be huge, then evaluate them."""
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Refuse str padding/format calls that would allocate huge strings, then call."""
        _check_call(obj, args, kwargs)
        return super().call(context, obj, *args, **kwargs)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Parse, then make every `{% for %}` iterate through the loop budget."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _LOOP_FILTER, [], [], None, None, lineno=loop.lineno)
        return tree


def _loop_budget(context: Context, items: Any) -> Iterator[Any]:
    """Yield `items`, counting iterations against MAX_LOOP_STEPS for this rendering (this Context)."""
    steps: list[int] = context.__dict__.setdefault("_myapp_loop_steps", [0])
    for item in items:
        steps[0] += 1
        if steps[0] > MAX_LOOP_STEPS:
            raise SecurityError(f"loops ran more than {MAX_LOOP_STEPS} iterations")
        yield item


@cache
def environment() -> GuardedEnvironment:
    """Return the process-wide sandbox (immutable, so one is enough)."""
    env = GuardedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.globals.clear()
    for name in _REMOVED_FILTERS:
        env.filters.pop(name, None)
    env.filters[_LOOP_FILTER] = pass_context(_loop_budget)
    return env


def render_bounded(text: str, variables: dict[str, object]) -> str:
    """Render `text` with `variables`, stopping once the output passes MAX_TEXT characters."""
    template = environment().from_string(text)
    return "".join(_bounded(template.generate(variables)))


def _bounded(chunks: Iterator[str]) -> Iterator[str]:
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_TEXT:
            raise SecurityError(f"rendered text longer than {MAX_TEXT} characters")
        yield chunk


def _check_binop(operator: str, left: object, right: object) -> None:
    if operator == "*":
        _check_repeat(left, right)
        _check_repeat(right, left)
    elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
        if max(left.bit_length(), 1) * right > MAX_INT_BITS:
            raise SecurityError("the power is too large")
    elif operator == "%" and isinstance(left, str) and _WIDE_PERCENT.search(left):
        raise SecurityError(f"format widths are limited to {MAX_WIDTH - 1}")


def _check_repeat(seq: object, times: object) -> None:
    if isinstance(seq, (str, list, tuple)) and isinstance(times, int) and len(seq) * times > MAX_TEXT:
        raise SecurityError(f"repetition longer than {MAX_TEXT} items")
    if isinstance(seq, int) and isinstance(times, int) and seq.bit_length() + times.bit_length() > MAX_INT_BITS:
        raise SecurityError("the product is too large")


def _check_call(obj: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    target = getattr(obj, "__wrapped__", obj)   # the sandbox wraps str.format in a function
    owner = getattr(target, "__self__", None)
    if not isinstance(owner, str):
        return
    name = getattr(target, "__name__", "")
    numbers = [v for v in (*args, *kwargs.values()) if isinstance(v, int)]
    if name in _PADDING_METHODS and any(n >= MAX_WIDTH for n in numbers):
        raise SecurityError(f"str.{name} widths are limited to {MAX_WIDTH - 1}")
    if name in ("format", "format_map") and _WIDE_FORMAT.search(owner):
        raise SecurityError(f"format widths are limited to {MAX_WIDTH - 1}")
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        grown = (owner.count(args[0]) if args[0] else len(owner) + 1) * len(args[1])
        if len(owner) + grown > MAX_TEXT:
            raise SecurityError(f"replace result longer than {MAX_TEXT} characters")
