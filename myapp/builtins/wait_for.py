"""`python3 -m myapp.builtins.wait_for`: the `wait-for` monitoring template.

Polls until a condition holds, or fails after `--timeout` seconds:
- a URL: `--url=... [--expect_status=200] [--contains=TEXT]` (not reachable yet counts as "not yet");
- a myapp run: `--run_id=N [--state=succeeded] [--api_url=...]`, read from the REST API with the
  bearer token `--token` (default: the task's MYAPP_TOKEN); a run that ends in another state fails
  at once. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence

from myapp.builtins.http_call import Request, parse_expected_status, send, status_matches
from myapp.builtins.polling import Outcome, Verdict, poll

RUN_TERMINAL = frozenset({"succeeded", "failed", "stopped"})
TARGET_STATES = ("succeeded", "failed", "stopped", "finished")
Check = Callable[[], Outcome]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser (the template's parameters are its options)."""
    parser = argparse.ArgumentParser(prog="myapp.builtins.wait_for", description=__doc__)
    parser.add_argument("--url", default="")
    parser.add_argument("--expect_status", default="200")
    parser.add_argument("--contains", default="")
    parser.add_argument("--run_id", type=int, default=0)
    parser.add_argument("--state", default="succeeded", choices=TARGET_STATES)
    parser.add_argument("--api_url", default=os.environ.get("MYAPP_API_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--token", default=os.environ.get("MYAPP_TOKEN", ""))
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--request_timeout", type=float, default=30.0)
    return parser


def url_check(url: str, patterns: tuple[str, ...], contains: str, request_timeout: float) -> Check:
    """Return a check that is DONE when the URL answers an expected status (and body substring)."""

    def check() -> Outcome:
        response = send(Request(url=url, timeout=request_timeout))
        if response.error:
            return Outcome(Verdict.PENDING, f"{url} not reachable: {response.error}")
        if not status_matches(response.status, patterns):
            return Outcome(Verdict.PENDING, f"{url} answered {response.status}")
        if contains and contains not in response.body.decode("utf-8", errors="replace"):
            return Outcome(Verdict.PENDING, f"{url} answered {response.status} without {contains!r}")
        return Outcome(Verdict.DONE, f"{url} answered {response.status}")

    return check


def run_state_outcome(state: str, target: str) -> Outcome:
    """Decide from a run's state: DONE at the target, FAILED at another end, else PENDING."""
    finished = state in RUN_TERMINAL
    if state == target or (target == "finished" and finished):
        return Outcome(Verdict.DONE, f"run is {state}")
    if finished:
        return Outcome(Verdict.FAILED, f"run ended {state}, expected {target}")
    return Outcome(Verdict.PENDING, f"run is {state or 'unknown'}")


def run_check(api_url: str, run_id: int, target: str, token: str, request_timeout: float) -> Check:
    """Return a check reading `GET /api/v1/runs/ID` and judging its state."""
    url = f"{api_url.rstrip('/')}/api/v1/runs/{run_id}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def check() -> Outcome:
        response = send(Request(url=url, headers=headers, timeout=request_timeout))
        if response.error or response.status >= 500:
            return Outcome(Verdict.PENDING, f"{url}: {response.error or response.status}")
        if response.status != 200:
            return Outcome(Verdict.FAILED, f"{url} answered {response.status}")
        try:
            state = str(json.loads(response.body)["result"]["state"])
        except (ValueError, KeyError, TypeError):
            return Outcome(Verdict.FAILED, f"{url} did not answer a run")
        return run_state_outcome(state, target)

    return check


def build_check(args: argparse.Namespace) -> Check:
    """Choose the URL or the run check; ValueError when the options do not say which."""
    if bool(args.url) == bool(args.run_id):
        raise ValueError("give exactly one of --url or --run_id")
    if args.interval <= 0 or args.timeout < 0:
        raise ValueError("--interval must be > 0 and --timeout >= 0")
    if args.url:
        return url_check(args.url, parse_expected_status(args.expect_status), args.contains, args.request_timeout)
    return run_check(args.api_url, args.run_id, args.state, args.token, args.request_timeout)


def main(argv: Sequence[str] | None = None) -> int:
    """Poll until the condition holds; return the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        check = build_check(args)
    except ValueError as exc:
        print(f"myapp.wait_for: {exc}", file=sys.stderr)
        return 2
    outcome = poll(
        check,
        timeout=args.timeout,
        interval=args.interval,
        clock=time.monotonic,
        sleep=time.sleep,
        report=lambda line: print(f"myapp.wait_for: {line}", flush=True),
    )
    done = outcome.verdict is Verdict.DONE
    print(
        f"myapp.wait_for: {'condition met' if done else 'failed'}: {outcome.message}",
        file=sys.stdout if done else sys.stderr,
    )
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
