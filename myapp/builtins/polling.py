"""Poll a check until it is done or failed, or a timeout passes. Standard library only.

The clock and the sleep are passed in (docs/rules.md S3), so tests move time without waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    """What one check found."""

    DONE = "done"
    PENDING = "pending"
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    """A check's verdict and a line saying why."""

    verdict: Verdict
    message: str


def poll(
    check: Callable[[], Outcome],
    *,
    timeout: float,
    interval: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    report: Callable[[str], None] = lambda line: None,
) -> Outcome:
    """Run `check` every `interval` seconds until DONE or FAILED; FAILED after `timeout` seconds."""
    deadline = clock() + timeout
    attempt = 0
    while True:
        attempt += 1
        outcome = check()
        report(f"check {attempt}: {outcome.verdict.value}: {outcome.message}")
        if outcome.verdict is not Verdict.PENDING:
            return outcome
        remaining = deadline - clock()
        if remaining <= 0:
            return Outcome(Verdict.FAILED, f"timed out after {timeout:g} s: {outcome.message}")
        sleep(min(interval, remaining))
