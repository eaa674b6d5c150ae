"""Run-outcome alerts: `delivery.py` drains the outbox (retries, backoff), `webhook_http.py` POSTs
to a checked, pinned address. Which outcome alerts whom is decided in core/alerts.py."""
