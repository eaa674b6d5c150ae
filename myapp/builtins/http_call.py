"""One HTTP request with urllib and the status check shared by `http` and `wait-for`.

Standard library only: this runs inside task processes and pods.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field

MAX_BODY = 64 * 1024 * 1024
_STATUS = re.compile(r"([1-5])(\d{2}|xx)", re.IGNORECASE)


@dataclass(frozen=True)
class Request:
    """What to send."""

    url: str
    method: str = "GET"
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 30.0


@dataclass(frozen=True)
class Response:
    """What came back: `status` 0 means no HTTP answer at all (see `error`)."""

    status: int
    body: bytes = b""
    error: str = ""


def parse_expected_status(text: str) -> tuple[str, ...]:
    """Parse "200", "200,201" or "2xx" into patterns; ValueError names a bad one."""
    patterns = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    if not patterns:
        raise ValueError("expect_status is empty; give e.g. 200, 200,201 or 2xx")
    for pattern in patterns:
        if not _STATUS.fullmatch(pattern):
            raise ValueError(f"expect_status {pattern!r} is not a status such as 200 or 2xx")
    return patterns


def status_matches(status: int, patterns: tuple[str, ...]) -> bool:
    """Return True when `status` matches one of the patterns ("2xx" matches 200..299)."""
    text = str(status)
    return any(p == text or (p.endswith("xx") and text[:1] == p[0] and len(text) == 3) for p in patterns)


def parse_headers(text: str) -> dict[str, str]:
    """Parse a JSON object of header names to values; ValueError when it is not one."""
    if not text.strip():
        return {}
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError('headers must be a JSON object such as {"Accept": "application/json"}')
    return {str(k): str(v) for k, v in data.items()}


def send(request: Request) -> Response:
    """Send `request`; HTTP error statuses are answers too, only network failures set `error`."""
    if not request.url.startswith(("http://", "https://")):
        return Response(0, error=f"{request.url!r} is not an http:// or https:// URL")
    req = urllib.request.Request(
        request.url, data=request.body, method=request.method.upper(), headers=dict(request.headers)
    )
    try:
        with urllib.request.urlopen(req, timeout=request.timeout) as answer:  # noqa: S310 - scheme checked
            return Response(answer.status, answer.read(MAX_BODY))
    except urllib.error.HTTPError as exc:
        return Response(exc.code, exc.read(MAX_BODY) if exc.fp is not None else b"")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Response(0, error=f"{type(exc).__name__}: {reason}")
