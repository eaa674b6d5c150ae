"""SQL guards are derived from the lifecycle tables (myapp/db/guards.py): a new edge changes the SQL."""

from __future__ import annotations

from enum import StrEnum

import pytest
from sqlalchemy import column

from myapp.core.states import ATTEMPT, RECORD, TASK, Lifecycle, RecordStatus, TaskState
from myapp.db.guards import in_states, moving_to, only_source, unfinished


def sql(clause: object) -> str:
    return str(clause.compile(compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]


def test_a_guard_lists_the_states_the_table_moves_from() -> None:
    assert sql(moving_to(column("state"), TASK, TaskState.RUNNING)) == "state = 'queued'"
    assert sql(moving_to(column("state"), TASK, TaskState.STOPPED)) == (
        "state IN ('pending', 'queued', 'running', 'up_for_retry')"
    )
    assert sql(unfinished(column("state"), ATTEMPT)) == "state = 'running'"


class Grown(StrEnum):
    WAITING = "waiting"
    HELD = "held"
    LAUNCHED = "launched"


def test_a_new_state_is_one_edit_of_the_table() -> None:
    grown = Lifecycle(
        "record",
        Grown.WAITING,
        {
            Grown.WAITING: frozenset({Grown.LAUNCHED, Grown.HELD}),
            Grown.HELD: frozenset({Grown.LAUNCHED}),
            Grown.LAUNCHED: frozenset(),
        },
    )
    assert sql(moving_to(column("status"), grown, Grown.LAUNCHED)) == "status IN ('held', 'waiting')"
    with pytest.raises(ValueError, match="not one state"):
        only_source(grown, Grown.LAUNCHED)  # the bulk UPDATE's '=' guard must then be rewritten


def test_bulk_updates_of_records_leave_waiting_only() -> None:
    assert only_source(RECORD, RecordStatus.LAUNCHED, RecordStatus.EXPIRED) == "waiting"
    assert sql(in_states(column("status"), [RecordStatus.EXPIRED, RecordStatus.LAUNCHED])) == (
        "status IN ('expired', 'launched')"
    )
