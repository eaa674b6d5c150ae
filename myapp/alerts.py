"""Run outcome alerts: webhooks told when a run fails, succeeds, times out or is stopped.

Transactional outbox: `enqueue_in` is called by RunStore._end_run, in the transaction that ends
the run, and only adds one `alert_outbox` row per webhook; nothing is sent inline, so neither the
engine nor the scheduler ever waits on a webhook. `deliver_alerts` (the Celery task
`myapp.deliver_alerts`, on its own beat entry) claims due rows, POSTs their JSON outside any
transaction (myapp/webhook_http.py: never to this machine or a private network unless
`webhook_allowed_networks` says so; such a row fails at once, saying why), and retries failures
with exponential backoff. Delivery is at least once.
Must not import Flask or kubernetes; Celery only through `register_tasks`.
"""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from myapp.core.states import ALERT, AlertStatus, RunState
from myapp.core.webhook_policy import Network, parse_networks
from myapp.db.guards import moving_to
from myapp.db.schedule_tables import AlertOutbox
from myapp.db.session import Database
from myapp.db.tables import Pipeline, Run
from myapp.webhook_http import WebhookRefused, post_checked

log = logging.getLogger(__name__)
DELIVER = "myapp.deliver_alerts"
MAX_ATTEMPTS = 8
BASE_DELAY = timedelta(seconds=10)
MAX_DELAY = timedelta(hours=1)
LEASE = timedelta(minutes=2)  # a claimed row is retried after this if its sender died
TIMEOUT_PREFIX = "run timed out"  # the message RunStore.halt_in gets from the reconciler (R10)
REFUSED = "refused: "             # a webhook the policy forbids: failed at once, never retried
Post = Callable[[str, bytes, float], int]


def alert_event(state: RunState, message: str) -> str:
    """Return the event of a run outcome: its state, or `timeout` for a run that failed by timeout."""
    if state is RunState.FAILED and message.startswith(TIMEOUT_PREFIX):
        return "timeout"
    return state.value


def is_wanted(on: Sequence[str], event: str) -> bool:
    """Return whether a pipeline listening to `on` is told about `event` (a timeout is a failure too)."""
    return event in on or (event == "timeout" and "failed" in on)


def enqueue_in(s: Session, run: Run, state: RunState, now: datetime) -> int:
    """Add one outbox row per webhook of the run's pipeline, in the caller's transaction; return how many."""
    pipeline = s.get(Pipeline, run.pipeline_id)
    alerts = (pipeline.alerts if pipeline is not None else None) or {}
    event = alert_event(state, run.message or "")
    webhooks = [str(url) for url in alerts.get("webhooks") or []]
    if pipeline is None or not webhooks or not is_wanted(list(alerts.get("on") or []), event):
        return 0
    payload = {
        "pipeline": pipeline.name, "pipeline_id": pipeline.id, "run_id": run.id, "state": state.value,
        "event": event, "reason": run.message or "", "trigger": run.trigger,
        "execution_date": run.execution_date_text, "execution_instant": run.execution_date.isoformat(),
        "ended_at": now.isoformat(),
    }
    for url in webhooks:
        s.add(AlertOutbox(pipeline_id=pipeline.id, run_id=run.id, event=event, url=url, payload=payload,
                          status=ALERT.initial.value, attempts=0, next_attempt_at=now, last_error="", created_at=now))
    return len(webhooks)


@dataclass(frozen=True)
class Delivery:
    """A claimed outbox row, detached from the database while it is being sent."""

    id: int
    url: str
    body: bytes
    attempts: int


def backoff(attempts: int) -> timedelta:
    """Return the wait before the next try after `attempts` failed tries: 10 s, 20 s, 40 s, ... 1 h."""
    return min(BASE_DELAY * (1 << min(max(attempts - 1, 0), 20)), MAX_DELAY)


def post_json(url: str, body: bytes, timeout: float, allowed: Sequence[Network] = ()) -> int:
    """POST `body` as JSON to `url` (checked and pinned, see myapp/webhook_http.py); return the HTTP status."""
    return post_checked(url, body, timeout, allowed)


def run_url(settings: Any, run_id: int) -> str:
    """Return where a user finds the run (the REST resource of the run)."""
    return f"http://{settings.web_host}:{settings.web_port}/api/v1/runs/{run_id}"


def deliver_alerts(services: Any, now: datetime, *, limit: int = 50, timeout: float = 5.0,
                   post: Post | None = None) -> dict[str, int]:
    """Send the due outbox rows once each; return counts of sent, retrying and failed rows."""
    batch = _claim(services.db, now, limit, services.settings)
    if not batch:
        return {"sent": 0, "retrying": 0, "failed": 0}
    if post is None:
        allowed = parse_networks(services.settings.webhook_allowed_networks)

        def post(url: str, body: bytes, seconds: float) -> int:
            return post_json(url, body, seconds, allowed)
    with ThreadPoolExecutor(max_workers=min(8, len(batch))) as pool:
        errors = list(pool.map(lambda d: _send(d, timeout, post), batch))
    return _record(services.db, list(zip(batch, errors, strict=True)), now)


def _claim(db: Database, now: datetime, limit: int, settings: Any) -> list[Delivery]:
    """Lease due rows (next_attempt_at moves past now) so a concurrent drainer skips them."""
    with db.write() as s:
        rows = s.scalars(select(AlertOutbox)
                         .where(moving_to(AlertOutbox.status, ALERT, AlertStatus.SENT), AlertOutbox.next_attempt_at <= now)
                         .order_by(AlertOutbox.id).limit(limit)
                         .with_for_update(**db.lock_options(skip_locked=True))).all()
        out = []
        for row in rows:
            row.attempts += 1
            row.next_attempt_at = now + LEASE
            body = json.dumps({**row.payload, "url": run_url(settings, row.run_id)}).encode()
            out.append(Delivery(row.id, row.url, body, row.attempts))
        return out


def _send(delivery: Delivery, timeout: float, post: Post) -> str | None:
    """Return None when the webhook accepted the alert (2xx), else what went wrong."""
    try:
        status = post(delivery.url, delivery.body, timeout)
    except WebhookRefused as exc:
        return f"{REFUSED}{exc}"
    except (OSError, ValueError, http.client.HTTPException) as exc:  # a malformed answer: a failed try
        return f"{type(exc).__name__}: {exc}"
    return None if 200 <= status < 300 else f"HTTP {status}"


def _record(db: Database, results: list[tuple[Delivery, str | None]], now: datetime) -> dict[str, int]:
    counts = {"sent": 0, "retrying": 0, "failed": 0}
    with db.write() as s:
        for delivery, error in results:
            row = s.get(AlertOutbox, delivery.id)
            if row is None:
                continue
            if error is None:
                row.status, row.sent_at, row.last_error = ALERT.check(AlertStatus(row.status), AlertStatus.SENT).value, now, ""
                counts["sent"] += 1
            elif delivery.attempts >= MAX_ATTEMPTS or error.startswith(REFUSED):
                row.status, row.last_error = ALERT.check(AlertStatus(row.status), AlertStatus.FAILED).value, error
                counts["failed"] += 1
                log.warning("alert %s to %s given up after %d tries: %s", row.id, row.url, row.attempts, error)
            else:
                row.next_attempt_at, row.last_error = now + backoff(delivery.attempts), error
                counts["retrying"] += 1
    return counts


def register_tasks(app: Any, deps: Any) -> None:
    """Register the Celery task that drains the outbox (called by myapp.queue.celery_app)."""

    @app.task(name=DELIVER)  # type: ignore[untyped-decorator]
    def deliver() -> None:
        services = deps.get()
        counts = deliver_alerts(services, services.clock.now())
        if any(counts.values()):
            log.info("alerts: %s", counts)
