"""The alert outbox's SQL: rows added when a run ends, leased by a drainer, then marked.

myapp/alerts/delivery.py decides what to send and what a failure means (retry or give up); this module only
reads and writes `alert_outbox` rows. Holds no business rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from myapp.core.alerts import alert_event, is_wanted
from myapp.core.states import ALERT, AlertStatus, RunState
from myapp.db.guards import moving_to
from myapp.db.schedule_tables import AlertOutbox
from myapp.db.session import Database
from myapp.db.tables import Pipeline, Run


@dataclass(frozen=True)
class Delivery:
    """A claimed outbox row, detached from the database while it is being sent."""

    id: int
    url: str
    body: bytes
    attempts: int


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery: sent, failed for good, or retried at `retry_at`; `error` says why."""

    delivery: Delivery
    status: AlertStatus | None  # SENT or FAILED; None = try again at retry_at
    error: str = ""
    retry_at: datetime | None = None


def enqueue_in(s: Session, run: Run, state: RunState, now: datetime) -> int:
    """Add one outbox row per webhook of the run's pipeline, in the caller's transaction; return how many."""
    pipeline = s.get(Pipeline, run.pipeline_id)
    alerts = (pipeline.alerts if pipeline is not None else None) or {}
    event = alert_event(state, run.message or "")
    webhooks = [str(url) for url in alerts.get("webhooks") or []]
    if pipeline is None or not webhooks or not is_wanted(list(alerts.get("on") or []), event):
        return 0
    payload = {
        "pipeline": pipeline.name,
        "pipeline_id": pipeline.id,
        "run_id": run.id,
        "state": state.value,
        "event": event,
        "reason": run.message or "",
        "trigger": run.trigger,
        "execution_date": run.execution_date_text,
        "execution_instant": run.execution_date.isoformat(),
        "ended_at": now.isoformat(),
    }
    for url in webhooks:
        s.add(
            AlertOutbox(
                pipeline_id=pipeline.id,
                run_id=run.id,
                event=event,
                url=url,
                payload=payload,
                status=ALERT.initial.value,
                attempts=0,
                next_attempt_at=now,
                last_error="",
                created_at=now,
            )
        )
    return len(webhooks)


def claim_due(
    db: Database, now: datetime, limit: int, lease: timedelta, url_of: Callable[[int], str]
) -> list[Delivery]:
    """Lease due rows (next_attempt_at moves `lease` past now) so a concurrent drainer skips them."""
    with db.write() as s:
        rows = s.scalars(
            select(AlertOutbox)
            .where(moving_to(AlertOutbox.status, ALERT, AlertStatus.SENT), AlertOutbox.next_attempt_at <= now)
            .order_by(AlertOutbox.id)
            .limit(limit)
            .with_for_update(**db.lock_options(skip_locked=True))
        ).all()
        out = []
        for row in rows:
            row.attempts += 1
            row.next_attempt_at = now + lease
            body = json.dumps({**row.payload, "url": url_of(row.run_id)}).encode()
            out.append(Delivery(row.id, row.url, body, row.attempts))
        return out


def record(db: Database, outcomes: Sequence[Outcome], now: datetime) -> None:
    """Write each delivery's outcome (a row deleted meanwhile is skipped)."""
    with db.write() as s:
        for outcome in outcomes:
            row = s.get(AlertOutbox, outcome.delivery.id)
            if row is None:
                continue
            row.last_error = outcome.error
            if outcome.status is None:
                row.next_attempt_at = outcome.retry_at or now
            else:
                row.status = ALERT.check(AlertStatus(row.status), outcome.status).value
                if outcome.status is AlertStatus.SENT:
                    row.sent_at = now
