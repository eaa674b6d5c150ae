"""Flask-AppBuilder's users as db/ reads them (through the `USERS` reference of db/base.py).

The CLI acts as the operator: the first user (`myapp init`'s admin). Holds no business rule.
"""

from __future__ import annotations

from sqlalchemy import select

from myapp.db.base import USERS
from myapp.db.session import Database


def first_user_id(db: Database) -> int | None:
    """Return the id of the first user (the admin `myapp init` created), or None."""
    with db.read() as s:
        found = s.scalar(select(USERS.c.id).order_by(USERS.c.id).limit(1))
        return None if found is None else int(found)
