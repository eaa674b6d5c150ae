"""The declarative base of myapp's tables, and the part of Flask-AppBuilder's user table that db/ reads.

db/ does not import Flask-AppBuilder: worker, beat and watcher processes load this package and must
not load Flask. Our tables live in `metadata`; Flask-AppBuilder keeps its own tables (ab_user,
ab_role, ...) in its own metadata, loaded by the web app only. `USERS` is a reference to ab_user
with the two columns db/ needs (the id our foreign keys point at, the username shown in lists): it
makes those foreign keys resolvable in a process without Flask. The schema Alembic compares and
creates is both metadatas merged, FAB's full ab_user replacing this reference
(`myapp/db/migrations/env.py`, `full_metadata`). Holds no business rule.
"""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import Column, Integer, MetaData, String, Table
from sqlalchemy.orm import DeclarativeBase

metadata = MetaData()


class Base(DeclarativeBase):
    """The base class of every table of myapp (never Flask-AppBuilder's `Model`)."""

    metadata = metadata
    __table__: ClassVar[Table]  # every class here is one plain table (the bulk SQL in bulk.py relies on it)


# Flask-AppBuilder's user table, as far as db/ reads it (see the module docstring).
USERS = Table(
    "ab_user",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64)),
    info={"owned_by": "flask_appbuilder"},
)
