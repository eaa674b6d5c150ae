"""Prebuilt statements run on the DBAPI connection: PostgreSQL's one-statement claim and finish.

A task's claim and its finish are one statement each in autocommit (db/attempt_statements.py,
decisions/0007). Run through a SQLAlchemy Connection, most of their CPU in the worker went around
the statement, not into it: the connection's isolation level set and reset at each checkout, the
execution context, the bound values processed one by one, psycopg's column descriptions and the
result's rows built from them (issue 14: ~0.3 ms of a worker's CPU per statement, two per task).

A `Prebuilt` is the same SQLAlchemy Core statement compiled once per dialect: `Database.run_prebuilt`
binds the values (with the statement's own bind processors), runs the SQL string on the pooled DBAPI
connection in autocommit and returns its rows as named tuples, the statement's result processors
applied. What stays as through a Connection: the pool's checkout (and its check of a dead
connection), `before_cursor_execute` listeners (statement counters), and errors raised as
SQLAlchemy's DBAPIError, the connection invalidated when it was lost (`is_transient` sees it).
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")  # a named parameter (pyformat) or an escaped %


class _Compiled:
    """A statement compiled for one dialect: its SQL, constant values, bind and result processors."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled: Any = statement.compile(dialect=dialect)
        if compiled.positional or compiled.escaped_bind_names:
            raise ValueError(f"{dialect.name}: only named, unescaped parameters are prebuilt")
        # Every parameter's value as SQLAlchemy binds it: the statement's constants, and None for a
        # parameter each call gives (or leaves out, as a Connection does); an IN list of constants
        # (state.in_(...)) expanded into its values once.
        expanded = compiled._process_parameters_for_postcompile(compiled.construct_params(_check=False))
        self.sql: str = expanded.statement
        self.bind_processors: Mapping[str, Callable[[Any], Any]] = {
            name: proc
            for name, proc in {**compiled._bind_processors, **expanded.processors}.items()
            if proc is not None
        }
        self.defaults: dict[str, Any] = {}
        for name, value in expanded.parameters.items():
            proc = self.bind_processors.get(name)
            self.defaults[name] = proc(value) if proc is not None else value
        # psycopg: the SQL with $n placeholders for its RawCursor, which sends it as it is (a named
        # query is converted and its parameters reordered at each execution).
        self.raw_cursor: Any = None
        self.raw_sql, self.order = self.sql, list(self.defaults)
        if dialect.driver == "psycopg" and hasattr(_psycopg(), "RawCursor"):  # psycopg >= 3.2
            numbers: dict[str, int] = {}

            def number(match: re.Match[str]) -> str:
                return "%" if match[0] == "%%" else f"${numbers.setdefault(match[1], len(numbers) + 1)}"

            self.raw_cursor = _psycopg().RawCursor
            self.raw_sql, self.order = _PLACEHOLDER.sub(number, self.sql), list(numbers)
        self._dialect = dialect
        self._columns = compiled._result_columns
        self.row: Any = namedtuple("PrebuiltRow", [column.keyname for column in self._columns])  # type: ignore[misc]
        # Known after the first execution: a type's processor may depend on the column's type code.
        self.result_processors: list[tuple[int, Callable[[Any], Any]]] | None = None

    def learn_result_types(self, type_codes: list[Any]) -> None:
        """Set the result processors from the columns' DBAPI type codes (cursor.description)."""
        processors = [
            column.type._cached_result_processor(self._dialect, code)
            for column, code in zip(self._columns, type_codes, strict=True)
        ]
        self.result_processors = [(index, proc) for index, proc in enumerate(processors) if proc is not None]

    def params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        values = dict(self.defaults)
        processors = self.bind_processors
        for name, value in given.items():
            if name not in values:
                raise KeyError(f"{name!r} is no parameter of this statement")
            proc = processors.get(name)
            values[name] = proc(value) if proc is not None else value
        return values

    def rows(self, raw: list[tuple[Any, ...]]) -> list[Any]:
        make = self.row._make
        assert self.result_processors is not None, "learn_result_types() first"
        if not self.result_processors:
            return [make(row) for row in raw]
        out = []
        for row in raw:
            values = list(row)
            for index, proc in self.result_processors:
                values[index] = proc(values[index])
            out.append(make(values))
        return out


def _psycopg() -> Any:
    import psycopg

    return psycopg


class Prebuilt:
    """A SQLAlchemy Core statement that returns rows, compiled once per dialect for `Database.run_prebuilt`."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        key = f"{dialect.name}+{dialect.driver}"
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = _Compiled(self.statement, dialect)
        return found
