"""`python3 -m myapp.builtins.http --url=... --method=GET --expect_status=200`: the `http` template.

Calls the URL once, writes the body to `body.txt` and the status to `status.txt` in the working
directory (the template's outputs `body` and `status`), prints a preview of the body, and exits 0
only when the status matches `--expect_status`. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from myapp.builtins.http_call import (
    Request,
    Response,
    parse_expected_status,
    parse_headers,
    send,
    status_matches,
)

PREVIEW = 2000
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser (the template's parameters are its options)."""
    parser = argparse.ArgumentParser(prog="myapp.builtins.http", description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--method", default="GET", type=str.upper, choices=METHODS)
    parser.add_argument("--expect_status", default="200")
    parser.add_argument("--body", default="")
    parser.add_argument("--headers", default="")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument(
        "--token",
        default=os.environ.get("token", ""),
        help="sent as 'Authorization: Bearer TOKEN'; never printed (the template passes it in env)",
    )
    parser.add_argument("--output", default="body.txt")
    parser.add_argument("--status_output", default="status.txt")
    return parser


def build_request(args: argparse.Namespace) -> Request:
    """Turn parsed options into a Request; ValueError on bad headers."""
    headers = parse_headers(args.headers)
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    body = args.body.encode("utf-8") if args.body else None
    return Request(url=args.url, method=args.method, body=body, headers=headers, timeout=args.timeout)


def report(response: Response, request: Request, patterns: tuple[str, ...]) -> int:
    """Print the outcome and return the exit code."""
    if response.error:
        print(f"myapp.http: {request.method} {request.url} failed: {response.error}", file=sys.stderr)
        return 1
    print(f"myapp.http: {request.method} {request.url} -> {response.status} ({len(response.body)} bytes)")
    text = response.body.decode("utf-8", errors="replace")
    print(text[:PREVIEW] + ("\n... (truncated)" if len(text) > PREVIEW else ""))
    if not status_matches(response.status, patterns):
        print(f"myapp.http: status {response.status} is not the expected {','.join(patterns)}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one call; return the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        patterns = parse_expected_status(args.expect_status)
        request = build_request(args)
    except ValueError as exc:
        print(f"myapp.http: {exc}", file=sys.stderr)
        return 2
    response = send(request)
    if not response.error:
        Path(args.output).write_bytes(response.body)
        Path(args.status_output).write_text(str(response.status), encoding="utf-8")
    return report(response, request, patterns)


if __name__ == "__main__":
    sys.exit(main())
