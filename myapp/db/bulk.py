"""Bulk statements whose SQL text does not grow with the number of rows.

A multi-row VALUES list or an IN list of 500 items is a statement of tens of kilobytes that
psycopg parses again at every execution (about 20 ms for 3,500 parameters, more than the
database takes to run it). On PostgreSQL these helpers bind one array per column instead
(`INSERT ... SELECT FROM unnest(...)`, `= ANY(...)`); other dialects get SQLAlchemy's own form.
Holds no business rule; must not import Celery, Flask or kubernetes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Table,
    any_,
    bindparam,
    insert,
    literal,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import QueryableAttribute

from myapp.db.types import UTCDateTime

Column = ColumnElement[Any] | QueryableAttribute[Any]


def is_in(column: Column, values: Sequence[Any], dialect: str) -> ColumnElement[bool]:
    """Return `column IN values`: one array parameter on PostgreSQL, however many values."""
    if dialect == "postgresql":
        return column == any_(literal(list(values), ARRAY(column.type)))
    return column.in_(list(values))


def in_param(column: Column, name: str, dialect: str) -> ColumnElement[bool]:
    """Return `column IN :name` for a statement built once: one array parameter on PostgreSQL,
    an expanding parameter elsewhere. Pass the values as `name` when executing."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def insert_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    returning: Sequence[str] = (),
    conflict_keys: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """Insert `rows` (all with the same keys) and return the `returning` columns, in the rows' order.

    With `conflict_keys`, rows that collide on that unique key are skipped (ON CONFLICT DO
    NOTHING) and return nothing; without them, the result has one tuple per row, in order.
    """
    if not rows:
        return []
    if conn.dialect.name == "postgresql":
        return _insert_unnest(conn, table, rows, returning, conflict_keys)
    stmt: Any = insert(table)
    if conflict_keys:
        stmt = _on_conflict_do_nothing(conn.dialect.name, table, conflict_keys)
    if not returning:
        conn.execute(stmt, list(rows))
        return []
    if conn.dialect.name == "sqlite" and not conflict_keys:
        # SQLAlchemy orders RETURNING rows on SQLite by inserting them one statement each; in the
        # writer's transaction (BEGIN IMMEDIATE) a multi-row INSERT takes ascending ids in the rows'
        # order, so sorting the returned rows by id gives that order in one statement per page.
        stmt = stmt.returning(table.c.id, *(table.c[name] for name in returning))
        return [tuple(row[1:]) for row in sorted(conn.execute(stmt, list(rows)), key=lambda row: int(row[0]))]
    ordered = not conflict_keys  # SQLAlchemy cannot order what ON CONFLICT may leave out
    stmt = stmt.returning(*(table.c[name] for name in returning), sort_by_parameter_order=ordered)
    return [tuple(row) for row in conn.execute(stmt, list(rows))]


def update_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str],
    constants: Mapping[str, Any] | None = None,
    only_if: Mapping[str, Any] | None = None,
) -> int:
    """For each row, set its non-key columns (and `constants`) where `keys` equal the row's and `only_if` holds.

    PostgreSQL: one UPDATE ... FROM unnest(one array per column); others: one executemany.
    Return how many rows were updated.
    """
    if not rows:
        return 0
    constants, only_if = dict(constants or {}), dict(only_if or {})
    names = list(rows[0])
    if conn.dialect.name != "postgresql":
        stmt = (
            update(table)
            .where(
                *(table.c[k] == bindparam(f"k_{k}") for k in keys),
                *(table.c[k] == value for k, value in only_if.items()),
            )
            .values({**{n: bindparam(f"v_{n}") for n in names if n not in keys}, **constants})
        )
        return int(
            conn.execute(
                stmt, [{(f"k_{n}" if n in keys else f"v_{n}"): value for n, value in row.items()} for row in rows]
            ).rowcount
        )
    varying, same = _split(names, rows, keep=keys)
    params = _arrays(table, varying, rows) | _scalars(table, {**same, **constants}, "c_")
    params |= _scalars(table, only_if, "w_")
    sets = [f'"{n}" = v."{n}"' for n in varying if n not in keys]
    sets += [f'"{n}" = {_scalar(conn, table, n, "c_")}' for n in {**same, **constants}]
    where = [f't."{k}" = v."{k}"' for k in keys] + [f't."{n}" = {_scalar(conn, table, n, "w_")}' for n in only_if]
    sql = (
        f'UPDATE "{table.name}" AS t SET {", ".join(sets)} FROM unnest({_casts(conn, table, varying)}) '
        f"AS v({_quoted(varying)}) WHERE {' AND '.join(where)}"
    )
    return int(conn.exec_driver_sql(sql, params).rowcount)


def _on_conflict_do_nothing(dialect: str, table: Table, keys: Sequence[str]) -> Any:
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    return insert(table).prefix_with("IGNORE")  # MySQL


def _insert_unnest(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    returning: Sequence[str],
    conflict_keys: Sequence[str],
) -> list[tuple[Any, ...]]:
    """INSERT ... SELECT FROM unnest(one array per varying column) WITH ORDINALITY ORDER BY it.

    Serial ids are drawn in the SELECT's order, so sorting the returned rows by id gives the
    rows' order (as SQLAlchemy's own "insertmanyvalues" relies on for PostgreSQL).
    """
    names = list(rows[0])
    varying, same = _split(names, rows, keep=names[:1])
    selected = ", ".join(f'v."{n}"' if n in varying else _scalar(conn, table, n, "c_") for n in names)
    sql = (
        f'INSERT INTO "{table.name}" ({_quoted(names)}) SELECT {selected} '
        f'FROM unnest({_casts(conn, table, varying)}) WITH ORDINALITY AS v({_quoted(varying)}, "ord_") '
        'ORDER BY "ord_"'
    )
    if conflict_keys:
        sql += f" ON CONFLICT ({_quoted(conflict_keys)}) DO NOTHING"
    params = _arrays(table, varying, rows) | _scalars(table, same, "c_")
    if not returning:
        conn.exec_driver_sql(sql, params)
        return []
    # .all(): one fetch of every row (iterating a result fetches one row per call: twice the CPU)
    result = sorted(conn.exec_driver_sql(f"{sql} RETURNING id, {_quoted(returning)}", params).all(), key=itemgetter(0))
    processors = [_result_processor(conn, table.c[name].type) for name in returning]
    if not any(processors):  # e.g. the ids alone: the values as they come
        return [tuple(row[1:]) for row in result]
    return [
        tuple(value if process is None else process(value) for process, value in zip(processors, row[1:], strict=True))
        for row in result
    ]


# PostgreSQL statements are sent as written (exec_driver_sql) with `%(name)b` placeholders: psycopg
# dumps arrays in binary, about five times faster than as text for timestamps and strings. A column
# with the same value in every row (created_at, state, ...) is bound once instead of as an array.
def _split(
    names: Sequence[str], rows: Sequence[Mapping[str, Any]], keep: Sequence[str]
) -> tuple[list[str], dict[str, Any]]:
    """Return the columns whose value varies between rows (and `keep`), and the others' single value."""
    first, n_rows = rows[0], len(rows)
    varying = []
    for n in names:
        # list.count compares in C: a fifth of the time of a generator over the rows
        if n in keep or [row[n] for row in rows].count(first[n]) != n_rows:
            varying.append(n)
    return varying, {n: first[n] for n in names if n not in varying}


def _arrays(table: Table, names: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Return one array per column, named a0, a1, ..., each value as the column's type binds it."""
    arrays = {}
    for i, name in enumerate(names):
        convert = _converter(table.c[name].type)
        arrays[f"a{i}"] = [row[name] for row in rows] if convert is None else [convert(row[name]) for row in rows]
    return arrays


def _scalars(table: Table, values: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {f"{prefix}{name}": _bind(table.c[name].type, value) for name, value in values.items()}


def _scalar(conn: Connection, table: Table, name: str, prefix: str) -> str:
    return f"CAST(%({prefix}{name})b AS {_sql_type(conn, table.c[name].type)})"


def _casts(conn: Connection, table: Table, names: Sequence[str]) -> str:
    return ", ".join(f"CAST(%(a{i})b AS {_sql_type(conn, table.c[name].type)}[])" for i, name in enumerate(names))


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def _converter(column_type: Any) -> Any:
    """Return the function that turns a value into what the column binds (None: the value as it is)."""
    if isinstance(column_type, UTCDateTime):
        return _naive_utc
    if isinstance(column_type, JSON):
        return lambda value: None if value is None else json.dumps(value)
    return None


def _bind(column_type: Any, value: Any) -> Any:
    convert = _converter(column_type)
    return value if convert is None else convert(value)


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is UTC:  # what the core and the database hand out: no conversion to do
        return value.replace(tzinfo=None)
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} given to a UTC column")
    return value.astimezone(UTC).replace(tzinfo=None)


def _sql_type(conn: Connection, column_type: Any) -> str:
    return "json" if isinstance(column_type, JSON) else str(column_type.compile(dialect=conn.dialect))


def _result_processor(conn: Connection, column_type: Any) -> Any:
    """Return the function that turns a returned value into the column's Python value (None: as it is)."""
    if isinstance(column_type, UTCDateTime):
        return lambda value: column_type.process_result_value(value, conn.dialect)
    return None
