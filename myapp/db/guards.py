"""SQL guards and column defaults derived from the lifecycles of myapp/core/states.py.

A guarded UPDATE changes a row only if its state may move to the target (`moving_to`), so the
transition table is enforced by the statement itself, under the row lock, and a concurrent
change makes the UPDATE match nothing instead of breaking the table. Nothing here lists a state.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import ColumnElement
from sqlalchemy.orm import InstrumentedAttribute

from myapp.core.states import Lifecycle

S = TypeVar("S", bound=StrEnum)


def in_states(
    column: InstrumentedAttribute[Any] | ColumnElement[Any], states: Iterable[StrEnum]
) -> ColumnElement[bool]:
    """Return `column IN (states)` (`=` for one state), the values sorted for stable SQL text."""
    values = sorted(s.value for s in states)
    if len(values) == 1:
        return column == values[0]
    return column.in_(values)


def moving_to(
    column: InstrumentedAttribute[Any] | ColumnElement[Any], lifecycle: Lifecycle[S], target: S
) -> ColumnElement[bool]:
    """Return the guard of an UPDATE to `target`: the row is in a state the table moves to it from."""
    return in_states(column, lifecycle.sources(target))


def unfinished(column: InstrumentedAttribute[Any] | ColumnElement[Any], lifecycle: Lifecycle[S]) -> ColumnElement[bool]:
    """Return `column IN (the lifecycle's non-terminal states)`."""
    return in_states(column, lifecycle.unfinished)


def only_source(lifecycle: Lifecycle[S], *targets: S) -> str:
    """Return the one state every `targets` is reached from (bulk UPDATEs compare with `=` only).

    Raises ValueError when the table gives another source: the statement must then be rewritten
    with `moving_to`, and the failing import says so at once.
    """
    sources = {source for target in targets for source in lifecycle.sources(target)}
    if len(sources) != 1:
        raise ValueError(f"{lifecycle.name}: {sorted(targets)} are reached from {sorted(sources)}, not one state")
    return next(iter(sources)).value
