"""Run outcome alerts: outbox rows written when a run ends, delivered to a local HTTP receiver
with retries and exponential backoff (time travel through `now`, no sleeping)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from myapp.alerts.delivery import DELIVER, MAX_ATTEMPTS, backoff, deliver_alerts
from myapp.cli.process import run_burst
from myapp.core.states import Trigger
from myapp.core.values import NewRun
from myapp.db.schedule_tables import AlertOutbox
from myapp.queue.celery_app import create_celery
from tests.integration.local_http import Script, serve
from tests.integration.test_scheduler import save_at, tick, ts

pytestmark = pytest.mark.integration
T = ts("2026-01-01T00:00Z")
SETTINGS_OVERRIDES = {"webhook_allowed_networks": "127.0.0.0/8"}  # the test receivers listen on loopback


def alerting_yaml(
    name: str, url: str, script: str, on: str = "[failed, succeeded, timeout]", timeout: int = 0, cron: bool = False
) -> str:
    schedule = 'schedule: {type: crontab, cron: "0 * * * *", start_time: "2026-01-01T00:00:00"}\n' if cron else ""
    return (
        f'name: {name}\ntimeout: {timeout}\n{schedule}alerts:\n  webhooks: ["{url}"]\n  "on": {on}  # quoted: YAML 1.1 reads a bare on as true\n'
        f"tasks:\n  - name: a\n    template: shell\n    args: {{script: '{script}'}}\n"
    )


def outbox(services: Any, run_id: int) -> list[AlertOutbox]:
    with services.db.read() as s:
        return list(s.scalars(select(AlertOutbox).where(AlertOutbox.run_id == run_id)))


def manual_run(services: Any, pid: int) -> int:
    return int(services.runs.create_run(NewRun(pid, Trigger.MANUAL, T, {}), T))


def test_a_failed_cron_run_is_posted_to_the_webhook(services: Any) -> None:
    script = Script(answers={"/hook": [(200, "ok")]})
    with serve(script) as base:
        pid = save_at(services, alerting_yaml("alert-fail", f"{base}/hook", "exit 3", cron=True), "2025-12-01T00:00Z")
        tick(services, "2026-01-01T00:00Z")
        run_burst(services, 1)
        (row,) = [r for r in outbox_of_pipeline(services, pid)]
        assert (row.event, row.status) == ("failed", "pending")
        assert deliver_alerts(services, row.next_attempt_at) == {"sent": 1, "retrying": 0, "failed": 0}
    (method, path, body, headers) = script.requests[0]
    payload = json.loads(body)
    assert (method, path, headers["Content-Type"]) == ("POST", "/hook", "application/json")
    assert payload["pipeline"] == "alert-fail" and payload["state"] == "failed" and payload["event"] == "failed"
    assert payload["execution_date"] == "2026-01-01 00:00:00" and payload["trigger"] == "cron"
    assert payload["reason"] == "a task failed" and payload["url"].endswith(f"/api/v1/runs/{payload['run_id']}")


def outbox_of_pipeline(services: Any, pid: int) -> list[AlertOutbox]:
    with services.db.read() as s:
        return list(s.scalars(select(AlertOutbox).where(AlertOutbox.pipeline_id == pid)))


def test_a_receiver_failing_twice_gets_the_alert_on_the_third_try(services: Any) -> None:
    script = Script(answers={"/flaky": [(500, "down"), (503, "still down"), (204, "")]})
    with serve(script) as base:
        pid = save_at(services, alerting_yaml("alert-ok", f"{base}/flaky", "true"), "2025-12-01T00:00Z")
        run_id = manual_run(services, pid)
        run_burst(services, 1)
        (row,) = outbox(services, run_id)
        assert row.event == "succeeded"
        base = row.next_attempt_at  # when the run ended (the engine's clock)
        assert deliver_alerts(services, base)["retrying"] == 1
        assert outbox(services, run_id)[0].next_attempt_at == base + backoff(1) == base + timedelta(seconds=10)
        assert deliver_alerts(services, base + timedelta(seconds=5))["retrying"] == 0  # not due yet: nothing sent
        assert deliver_alerts(services, base + backoff(1))["retrying"] == 1
        assert outbox(services, run_id)[0].last_error == "HTTP 503"
        later = base + backoff(1) + backoff(2)
        assert backoff(2) == timedelta(seconds=20)
        assert deliver_alerts(services, later) == {"sent": 1, "retrying": 0, "failed": 0}
    (row,) = outbox(services, run_id)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 3, later)
    bodies = [json.loads(body) for _, _, body, _ in script.requests]
    assert len(bodies) == 3 and all(b == bodies[0] for b in bodies)


def test_a_run_timeout_is_its_own_event_and_unwanted_events_are_not_queued(services: Any) -> None:
    url = "http://127.0.0.1:9/never"
    timing = save_at(
        services, alerting_yaml("alert-timeout", url, "sleep 30", on="[timeout]", timeout=1), "2025-12-01T00:00Z"
    )
    run_id = manual_run(services, timing)
    services.attempts.reconcile(T + timedelta(seconds=5), heartbeat_timeout=60, requeue_after=120)
    (row,) = outbox(services, run_id)
    assert row.event == "timeout" and row.payload["state"] == "failed"
    assert row.payload["reason"].startswith("run timed out")
    quiet = save_at(services, alerting_yaml("alert-quiet", url, "true", on="[failed]"), "2025-12-01T00:00Z")
    ok_run = manual_run(services, quiet)
    run_burst(services, 1)
    assert outbox(services, ok_run) == []


def test_an_unreachable_webhook_is_retried_then_given_up(services: Any) -> None:
    pid = save_at(services, alerting_yaml("alert-dead", "http://127.0.0.1:9/closed", "exit 1"), "2025-12-01T00:00Z")
    run_id = manual_run(services, pid)
    run_burst(services, 1)
    now = outbox(services, run_id)[0].next_attempt_at
    for _ in range(MAX_ATTEMPTS):
        deliver_alerts(services, now, timeout=1.0)
        now += timedelta(days=1)  # past any backoff
    (row,) = outbox(services, run_id)
    assert (row.status, row.attempts) == ("failed", MAX_ATTEMPTS) and "Error" in row.last_error


def test_the_celery_app_registers_and_beats_the_delivery_task(services: Any) -> None:
    app, _ = create_celery(services.settings)
    assert DELIVER in app.tasks
    assert app.conf.beat_schedule[DELIVER]["task"] == DELIVER
