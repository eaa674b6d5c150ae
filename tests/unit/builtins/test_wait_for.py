"""The `wait-for` built-in: polling with a fake clock, URL and run conditions, option checks."""

from __future__ import annotations

import pytest

from myapp.builtins.polling import Outcome, Verdict, poll
from myapp.builtins.wait_for import build_check, build_parser, run_state_outcome
from tests.factories import builtin_templates


class FakeTime:
    """A monotonic clock that `sleep` advances."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def checks(*verdicts: Verdict) -> list[Outcome]:
    return [Outcome(v, f"check {i}") for i, v in enumerate(verdicts)]


def test_poll_until_done() -> None:
    t, results = FakeTime(), iter(checks(Verdict.PENDING, Verdict.PENDING, Verdict.DONE))
    lines: list[str] = []
    outcome = poll(lambda: next(results), timeout=60, interval=10, clock=t.clock, sleep=t.sleep, report=lines.append)
    assert outcome.verdict is Verdict.DONE and t.sleeps == [10, 10]
    assert lines[-1] == "check 3: done: check 2"


def test_poll_stops_at_a_failure_at_once() -> None:
    t, results = FakeTime(), iter(checks(Verdict.PENDING, Verdict.FAILED))
    assert poll(lambda: next(results), timeout=60, interval=5, clock=t.clock, sleep=t.sleep).verdict is Verdict.FAILED
    assert t.sleeps == [5]


def test_poll_times_out_after_a_last_check_at_the_deadline() -> None:
    t, calls = FakeTime(), []

    def check() -> Outcome:
        calls.append(t.now)
        return Outcome(Verdict.PENDING, "not yet")

    outcome = poll(check, timeout=25, interval=10, clock=t.clock, sleep=t.sleep)
    assert outcome.verdict is Verdict.FAILED and outcome.message == "timed out after 25 s: not yet"
    assert calls == [100, 110, 120, 125] and t.sleeps == [10, 10, 5]


def test_zero_timeout_checks_once() -> None:
    t = FakeTime()
    assert (
        poll(lambda: Outcome(Verdict.PENDING, "x"), timeout=0, interval=1, clock=t.clock, sleep=t.sleep).verdict
        is Verdict.FAILED
    )
    assert t.sleeps == []


@pytest.mark.parametrize(
    ("state", "target", "verdict"),
    [
        ("running", "succeeded", Verdict.PENDING),
        ("queued", "finished", Verdict.PENDING),
        ("succeeded", "succeeded", Verdict.DONE),
        ("failed", "succeeded", Verdict.FAILED),
        ("stopped", "finished", Verdict.DONE),
        ("failed", "failed", Verdict.DONE),
        ("succeeded", "failed", Verdict.FAILED),
    ],
)
def test_run_state_outcome(state: str, target: str, verdict: Verdict) -> None:
    assert run_state_outcome(state, target).verdict is verdict


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--url=http://x", "--run_id=3"],
        ["--url=http://x", "--interval=0"],
        ["--url=http://x", "--expect_status=ok"],
    ],
)
def test_bad_options(argv: list[str]) -> None:
    with pytest.raises(ValueError):
        build_check(build_parser().parse_args(argv))


def test_token_defaults_to_the_run_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYAPP_TOKEN", "run-token")
    monkeypatch.setenv("MYAPP_API_URL", "http://api:9")
    args = build_parser().parse_args(["--run_id=4"])
    assert (args.token, args.api_url, args.state) == ("run-token", "http://api:9", "succeeded")


def test_the_wait_for_template_is_a_small_monitoring_task() -> None:
    wait = next(t for t in builtin_templates() if t.name == "wait-for")
    assert wait.monitoring and (wait.resources.cpu, wait.resources.memory) == ("100m", "1000Mi")
    assert wait.command == ("python3", "-m", "myapp.builtins.wait_for")
    assert wait.param("run_id").type == "integer"  # type: ignore[union-attr]
