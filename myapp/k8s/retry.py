"""When a refused create is worth another try, and how long to wait first. Pure.

The official client retries reads and deletes on connection errors, never a POST, and never on
an answer: a throttled (429), overloaded (5xx) or over-quota (403 "exceeded quota") API server
would otherwise fail the attempt and cost the task one of its retries. Such a create is tried
again after the server's Retry-After (or an exponential backoff, 1 s doubling to 30 s) until
`k8s_create_retry_timeout` has passed. Names derive from ids, so a create whose answer was lost
finds "already exists" on the next try and counts as done.
"""

from __future__ import annotations

RETRIABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_BACKOFF = 30.0
MAX_WAIT = 60.0


def is_retriable(status: int | None, reason: str, message: str) -> bool:
    """Return True for refusals that pass by themselves: throttling, overload, quota, lost connections."""
    if status in RETRIABLE_STATUS or reason == "ConnectionError":
        return True
    return status == 403 and "exceeded quota" in message


def retry_delay(failures: int, retry_after: float | None) -> float:
    """Return the seconds to wait before try number `failures + 1` (the server's Retry-After wins)."""
    if retry_after is not None and retry_after >= 0:
        return min(max(retry_after, 0.1), MAX_WAIT)
    return min(2.0 ** max(failures - 1, 0), MAX_BACKOFF)
