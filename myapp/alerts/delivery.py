"""Run outcome alerts: webhooks told when a run fails, succeeds, times out or is stopped.

Transactional outbox: `enqueue_in` (myapp/db/alert_outbox.py, with the rest of the outbox's SQL) is called by RunStore._end_run, in the transaction that ends
the run, and only adds one `alert_outbox` row per webhook; nothing is sent inline, so neither the
engine nor the scheduler ever waits on a webhook. `deliver_alerts` (the Celery task
`myapp.deliver_alerts`, on its own beat entry) claims due rows, POSTs their JSON outside any
transaction (myapp/alerts/webhook_http.py: never to this machine or a private network unless
`webhook_allowed_networks` says so; such a row fails at once, saying why), and retries failures
with exponential backoff. Delivery is at least once.
Must not import Flask or kubernetes; Celery only through `register_tasks`.
"""

from __future__ import annotations

import http.client
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from myapp.alerts.webhook_http import WebhookRefused, post_checked
from myapp.core.alerts import TIMEOUT_PREFIX, alert_event, is_wanted
from myapp.core.states import AlertStatus
from myapp.core.webhook_policy import Network, parse_networks
from myapp.db.alert_outbox import Delivery, Outcome, claim_due, enqueue_in, record

__all__ = ["TIMEOUT_PREFIX", "alert_event", "deliver_alerts", "enqueue_in", "is_wanted"]

log = logging.getLogger(__name__)
DELIVER = "myapp.deliver_alerts"
MAX_ATTEMPTS = 8
BASE_DELAY = timedelta(seconds=10)
MAX_DELAY = timedelta(hours=1)
LEASE = timedelta(minutes=2)  # a claimed row is retried after this if its sender died
REFUSED = "refused: "  # a webhook the policy forbids: failed at once, never retried
Post = Callable[[str, bytes, float], int]


def backoff(attempts: int) -> timedelta:
    """Return the wait before the next try after `attempts` failed tries: 10 s, 20 s, 40 s, ... 1 h."""
    return min(BASE_DELAY * (1 << min(max(attempts - 1, 0), 20)), MAX_DELAY)


def post_json(url: str, body: bytes, timeout: float, allowed: Sequence[Network] = ()) -> int:
    """POST `body` as JSON to `url` (checked and pinned, see myapp/alerts/webhook_http.py); return the HTTP status."""
    return post_checked(url, body, timeout, allowed)


def run_url(settings: Any, run_id: int) -> str:
    """Return where a user finds the run (the REST resource of the run)."""
    return f"http://{settings.web_host}:{settings.web_port}/api/v1/runs/{run_id}"


def deliver_alerts(
    services: Any, now: datetime, *, limit: int = 50, timeout: float = 5.0, post: Post | None = None
) -> dict[str, int]:
    """Send the due outbox rows once each; return counts of sent, retrying and failed rows."""
    batch = claim_due(services.db, now, limit, LEASE, lambda run_id: run_url(services.settings, run_id))
    if not batch:
        return {"sent": 0, "retrying": 0, "failed": 0}
    if post is None:
        allowed = parse_networks(services.settings.webhook_allowed_networks)

        def post(url: str, body: bytes, seconds: float) -> int:
            return post_json(url, body, seconds, allowed)

    with ThreadPoolExecutor(max_workers=min(8, len(batch))) as pool:
        errors = list(pool.map(lambda d: _send(d, timeout, post), batch))
    outcomes = [_outcome(d, error, now) for d, error in zip(batch, errors, strict=True)]
    record(services.db, outcomes, now)
    counts = {"sent": 0, "retrying": 0, "failed": 0}
    for o in outcomes:
        counts["retrying" if o.status is None else "sent" if o.status is AlertStatus.SENT else "failed"] += 1
    return counts


def _send(delivery: Delivery, timeout: float, post: Post) -> str | None:
    """Return None when the webhook accepted the alert (2xx), else what went wrong."""
    try:
        status = post(delivery.url, delivery.body, timeout)
    except WebhookRefused as exc:
        return f"{REFUSED}{exc}"
    except (OSError, ValueError, http.client.HTTPException) as exc:  # a malformed answer: a failed try
        return f"{type(exc).__name__}: {exc}"
    return None if 200 <= status < 300 else f"HTTP {status}"


def _outcome(delivery: Delivery, error: str | None, now: datetime) -> Outcome:
    """Decide what a try means: sent, given up (too many tries, or refused by the policy), or retried later."""
    if error is None:
        return Outcome(delivery, AlertStatus.SENT)
    if delivery.attempts >= MAX_ATTEMPTS or error.startswith(REFUSED):
        log.warning("alert %s to %s given up after %d tries: %s", delivery.id, delivery.url, delivery.attempts, error)
        return Outcome(delivery, AlertStatus.FAILED, error)
    return Outcome(delivery, None, error, now + backoff(delivery.attempts))


def register_tasks(app: Any, deps: Any) -> None:
    """Register the Celery task that drains the outbox (called by myapp.queue.celery_app)."""

    @app.task(name=DELIVER, shared=False)  # type: ignore[untyped-decorator]
    def deliver() -> None:
        services = deps.get()
        counts = deliver_alerts(services, services.clock.now())
        if any(counts.values()):
            log.info("alerts: %s", counts)
