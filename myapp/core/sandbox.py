"""The Jinja sandbox that renders pipeline text at run time (docs/rules.md P2), bounded in memory and time.

One immutable sandboxed environment with no globals, no loader and no autoescape; the caller
passes exactly the documented variables. `datetime` and `uuid` are small namespaces, not the
modules, so nothing else of the server is reachable.

Every way the template language makes a big value is checked *before* the value is built: the
operators (`*`, `+`, `%`, `**`, and `~`, rewritten at parse time into a checked join), every filter
(`join`, `map`, `sum`, `batch`, `string`, `tojson`, ... by the size of what they are given, and
their lazy results item by item), method calls (`'x'.join(...)`, `replace`, padding, `format`),
macro and block output, and printed values. A value's size is its characters plus its items,
counted through nested lists (`weight`). Besides, one rendering budget, shared by every field of an
attempt (`render_budget`), bounds the operations, the total size of what was built, and the wall
time, and asks a `cancelled` callback now and then, so a stopped run frees its worker at once
(docs/security.md §4). There is no `range` (no globals at all). Imports jinja2 only.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
import time
import uuid as _uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import StrictUndefined, Template, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_TEXT = 1_000_000  # characters of one rendered field, one string, or one value's weight
MAX_INT_BITS = 100_000
MAX_WIDTH = 10_000  # padding width in format specs and str methods
MAX_LOOP_STEPS = 100_000  # `{% for %}` iterations in one rendering, all loops together
MAX_OPERATIONS = 2_000_000  # checked operations (calls, filters, operators, lookups) per budget
MAX_WORK = 50_000_000  # total weight of the values built under one budget
RENDER_SECONDS = 10.0  # wall time of one budget (an attempt's rendering), unless given
CHECK_EVERY = 512  # operations between two looks at the clock and at `cancelled`
_LOOP_FILTER = "_myapp_loop_budget"
_CONCAT_FILTER = "_myapp_concat"
_WIDE_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\*|\d{5,}|\d*\.(?:\*|\d{5,}))")
_WIDE_FORMAT = re.compile(r"\{[^{}]*:[^{}]*(?:\d{5,}|\{)[^{}]*\}")
_PADDING_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})
_REMOVED_FILTERS = ("center", "indent", "wordwrap", "format", "replace")
_GROWING_FILTERS = {
    "tojson": 6,
    "escape": 6,
    "e": 6,
    "forceescape": 6,
    "urlencode": 3,
    "urlize": 3,
    "pprint": 4,
    "string": 4,
    "xmlattr": 8,
}  # output at most this many times the input


class RenderCancelled(Exception):  # noqa: N818  (it is not an error of the template)
    """The rendering was stopped from outside (`Budget.cancelled`): the attempt was stopped or timed out."""


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


class Budget:
    """What one rendering (or every rendering of one attempt) may spend: operations, work, wall time.

    `cancelled()` is asked every CHECK_EVERY operations; when it returns True, or the wall time
    is over, rendering stops with RenderCancelled / SecurityError.
    """

    def __init__(
        self,
        seconds: float = RENDER_SECONDS,
        *,
        cancelled: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
        operations: int = MAX_OPERATIONS,
        work: int = MAX_WORK,
    ) -> None:
        self.clock = clock
        self.seconds = seconds
        self.deadline = clock() + seconds
        self.cancelled = cancelled
        self.operations_left = operations
        self.work_left = work
        self.loop_steps = 0
        self._until_check = CHECK_EVERY

    def tick(self, cost: int = 1) -> None:
        """Count one operation; now and then look at the clock and ask whether to stop."""
        self.operations_left -= cost
        if self.operations_left < 0:
            raise SecurityError(f"the template ran more than {MAX_OPERATIONS} operations")
        self._until_check -= cost
        if self._until_check <= 0:
            self._until_check = CHECK_EVERY
            self.check_time()

    @staticmethod
    def current() -> Budget:
        """Return the budget of `render_budget` in effect (a fresh one outside it)."""
        return _budget()

    def check_time(self) -> None:
        """Raise if the wall time is over or the caller cancelled the rendering."""
        if self.cancelled is not None and self.cancelled():
            raise RenderCancelled("rendering stopped")
        if self.clock() > self.deadline:
            raise SecurityError(f"rendering took longer than {self.seconds:g} s")

    def spend(self, size: int) -> None:
        """Count `size` (the weight of a value just built) against the work budget."""
        self.work_left -= size
        if self.work_left < 0:
            raise SecurityError(f"the template built more than {MAX_WORK} characters in all")
        self.tick()


_BUDGET: ContextVar[Budget | None] = ContextVar("myapp_render_budget", default=None)


@contextmanager
def render_budget(budget: Budget) -> Iterator[Budget]:
    """Make every rendering in this block (this thread) spend `budget`."""
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


def _budget() -> Budget:
    budget = _BUDGET.get()
    return Budget() if budget is None else budget  # outside render_bounded: a budget for this check only


def weight(value: object, limit: int = MAX_TEXT) -> int:
    """Return the size of `value`: characters of its text plus its items, nested; stops counting past `limit`."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, dict):
            total += 1
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 1
            stack.extend(item)
        else:
            total += 1
    return total


def _check_size(size: int, what: str) -> int:
    if size > MAX_TEXT:
        raise SecurityError(f"{what} larger than {MAX_TEXT} characters")
    _budget().spend(size)
    return size


class GuardedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox with every growth path checked and a budget on operations and time."""

    intercepted_binops = frozenset({"*", "**", "%", "+", "-", "/", "//"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Refuse binary operations whose result would be huge, then evaluate them."""
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Refuse calls that would allocate huge values, then call and count the result."""
        _budget().tick()
        args = tuple(list(a) if isinstance(a, Iterator) else a for a in args)  # checked, then used, once
        _check_call(obj, args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        return _counted(result, "a call's result")

    def getattr(self, obj: Any, attribute: str) -> Any:
        """Count the lookup, then look up as the sandbox does."""
        _budget().tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        """Count the lookup, then look up as the sandbox does."""
        _budget().tick()
        return super().getitem(obj, argument)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Parse, then route `{% for %}` through the loop budget and `~` through a checked join."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _LOOP_FILTER, [], [], None, None, lineno=loop.lineno)
        _rewrite_concat(tree)
        return tree


def _rewrite_concat(node: nodes.Node) -> None:
    """Replace every `a ~ b` node (nodes.Concat) by `[a, b]|_myapp_concat`, in place."""
    for field, value in node.iter_fields():
        if isinstance(value, nodes.Concat):
            _rewrite_concat(value)
            setattr(node, field, _concat_call(value))
        elif isinstance(value, nodes.Node):
            _rewrite_concat(value)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, nodes.Node):
                    _rewrite_concat(item)
                    if isinstance(item, nodes.Concat):
                        value[i] = _concat_call(item)


def _concat_call(concat: nodes.Concat) -> nodes.Filter:
    return nodes.Filter(
        nodes.List(concat.nodes, lineno=concat.lineno), _CONCAT_FILTER, [], [], None, None, lineno=concat.lineno
    )


def _checked_concat(parts: Iterable[Any]) -> str:
    """Join strings (macro output, blocks, `~`) after checking the total size."""
    items = [part if isinstance(part, str) else str(_counted(part, "a value")) for part in parts]
    _check_size(sum(len(item) for item in items), "joined text")
    return "".join(items)


def _finalize(value: Any) -> Any:
    """Check the size of a printed value before it is turned into text."""
    _check_size(weight(value), "a printed value")
    return value


def _loop_budget(items: Any) -> Iterator[Any]:
    """Yield `items`, counting iterations against MAX_LOOP_STEPS for this budget."""
    budget = _budget()
    for item in items:
        budget.loop_steps += 1
        if budget.loop_steps > MAX_LOOP_STEPS:
            raise SecurityError(f"loops ran more than {MAX_LOOP_STEPS} iterations")
        budget.tick()
        yield item


def _counted(result: Any, what: str) -> Any:
    """Check a value just built; a lazy result (map, select, ...) is checked item by item."""
    if isinstance(result, Iterator) and not isinstance(result, (str, bytes)):
        return _counted_items(result, what)
    _check_size(weight(result), what)
    return result


def _counted_items(items: Iterator[Any], what: str) -> Iterator[Any]:
    budget, total = _budget(), 0
    for item in items:
        size = weight(item)
        total += size + 1
        if total > MAX_TEXT:
            raise SecurityError(f"{what} larger than {MAX_TEXT} characters")
        budget.spend(size + 1)
        yield item


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a filter: check what it is given (and how it may grow), then check what it returns."""
    passes = getattr(func, "jinja_pass_arg", None)
    growth = _GROWING_FILTERS.get(name, 1)

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        at = 1 if passes is not None else 0
        value, rest = args[at], args[at + 1 :]
        _budget().tick()
        if isinstance(value, Iterator):  # a lazy value (already counted item by item): take it once
            value = list(value)
            args = (*args[:at], value, *rest)
        _check_filter_args(name, value, rest, kwargs)
        size = weight(value, MAX_TEXT // growth + 1) * growth + weight(list(rest) + list(kwargs.values()))
        if size > MAX_TEXT:
            raise SecurityError(f"filter {name!r} given more than {MAX_TEXT // growth} characters")
        return _counted(func(*args, **kwargs), f"the result of filter {name!r}")

    return guarded


def _check_filter_args(name: str, value: Any, rest: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    numbers = [v for v in (*rest, *kwargs.values()) if isinstance(v, int)]
    if name in ("batch", "slice", "truncate", "tojson", "pprint", "round", "urlize") and any(
        abs(n) >= MAX_WIDTH for n in numbers
    ):
        raise SecurityError(f"filter {name!r} arguments are limited to {MAX_WIDTH - 1}")
    if name == "join":
        items = list(value) if isinstance(value, Iterable) and not isinstance(value, (str, bytes)) else [value]
        separator = rest[0] if rest else kwargs.get("d", "")
        if weight(items) + len(items) * weight(separator) > MAX_TEXT:
            raise SecurityError(f"join result longer than {MAX_TEXT} characters")
    if name == "sum" and isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        if weight(list(value)) > MAX_TEXT:
            raise SecurityError(f"sum result larger than {MAX_TEXT} items")


@cache
def environment() -> GuardedEnvironment:
    """Return the process-wide sandbox (immutable, so one is enough)."""
    env = GuardedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, finalize=_finalize
    )
    env.globals.clear()
    for name in _REMOVED_FILTERS:
        env.filters.pop(name, None)
    env.filters = {name: _guard_filter(name, func) for name, func in env.filters.items()}
    env.filters[_LOOP_FILTER] = _loop_budget
    env.filters[_CONCAT_FILTER] = _checked_concat
    env.concat = _checked_concat  # type: ignore[method-assign]  # macro, block and set output
    return env


def render_bounded(text: str, variables: dict[str, object]) -> str:
    """Render `text` with `variables` under the current budget (a fresh one outside `render_budget`)."""
    budget = _BUDGET.get()
    if budget is None:
        with render_budget(Budget()):
            return render_bounded(text, variables)
    budget.check_time()
    template = _compiled(text) if len(text) <= 10_000 else environment().from_string(text)
    return "".join(_bounded(template.generate(variables)))


@functools.lru_cache(maxsize=512)
def _compiled(text: str) -> Template:
    """Return `text` compiled once (about a millisecond each time otherwise); short texts only."""
    return environment().from_string(text)


def _bounded(chunks: Iterator[str]) -> Iterator[str]:
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_TEXT:
            raise SecurityError(f"rendered text longer than {MAX_TEXT} characters")
        yield chunk


def _check_binop(operator: str, left: object, right: object) -> None:
    _budget().tick()
    if operator == "*":
        _check_repeat(left, right)
        _check_repeat(right, left)
    elif operator == "+" and not isinstance(left, (int, float)):
        _check_size(weight(left) + weight(right), "a sum")
    elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
        if max(left.bit_length(), 1) * right > MAX_INT_BITS:
            raise SecurityError("the power is too large")
    elif operator == "%" and isinstance(left, str):
        if _WIDE_PERCENT.search(left):
            raise SecurityError(f"format widths are limited to {MAX_WIDTH - 1}")
        _check_size(len(left) + left.count("%") * weight(right), "a formatted text")


def _check_repeat(seq: object, times: object) -> None:
    if isinstance(seq, (str, list, tuple)) and isinstance(times, int) and weight(seq) * max(times, 0) > MAX_TEXT:
        raise SecurityError(f"repetition longer than {MAX_TEXT} items")
    if isinstance(seq, int) and isinstance(times, int) and seq.bit_length() + times.bit_length() > MAX_INT_BITS:
        raise SecurityError("the product is too large")


def _check_call(obj: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    target = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format in a function
    owner = getattr(target, "__self__", None)
    if not isinstance(owner, str):
        return
    name = getattr(target, "__name__", "")
    numbers = [v for v in (*args, *kwargs.values()) if isinstance(v, int)]
    if name in _PADDING_METHODS and any(n >= MAX_WIDTH for n in numbers):
        raise SecurityError(f"str.{name} widths are limited to {MAX_WIDTH - 1}")
    if name in ("format", "format_map"):
        if _WIDE_FORMAT.search(owner):
            raise SecurityError(f"format widths are limited to {MAX_WIDTH - 1}")
        _check_size(len(owner) + owner.count("{") * weight([args, kwargs]), "a formatted text")
    if name == "join" and args:
        items = list(args[0]) if isinstance(args[0], Iterable) else []
        _check_size(weight(items) + len(items) * len(owner), "a joined text")
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        grown = (owner.count(args[0]) if args[0] else len(owner) + 1) * len(args[1])
        if len(owner) + grown > MAX_TEXT:
            raise SecurityError(f"replace result longer than {MAX_TEXT} characters")
    if name in ("encode",):
        _check_size(len(owner) * 4, "an encoded text")
