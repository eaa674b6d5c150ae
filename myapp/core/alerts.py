"""Which run outcomes alert whom: the event of an outcome and whether a pipeline listens to it (pure).

Used by db/alert_outbox.py (the outbox rows written when a run ends) and myapp/alerts/delivery.py (delivery).
"""

from __future__ import annotations

from collections.abc import Sequence

from myapp.core.states import RunState

TIMEOUT_PREFIX = "run timed out"  # the message RunStore.halt_in gets from the reconciler (R10)


def alert_event(state: RunState, message: str) -> str:
    """Return the event of a run outcome: its state, or `timeout` for a run that failed by timeout."""
    if state is RunState.FAILED and message.startswith(TIMEOUT_PREFIX):
        return "timeout"
    return state.value


def is_wanted(on: Sequence[str], event: str) -> bool:
    """Return whether a pipeline listening to `on` is told about `event` (a timeout is a failure too)."""
    return event in on or (event == "timeout" and "failed" in on)
