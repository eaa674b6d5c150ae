"""POST to a webhook without letting it reach this machine or private networks (issue 13, B16).

`post_checked` resolves the URL's host, refuses it when any address fails the policy of
myapp/core/webhook_policy.py, then opens the TCP connection to the very address it checked (TLS
still verifies the certificate for the host name): a name whose DNS answer changes between the
check and the connection (DNS rebinding) cannot redirect the request. Redirects are not followed
(a 3xx is a failure) and no proxy is used. Must not import Flask, Celery or kubernetes.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Sequence
from urllib.parse import urlsplit

from myapp.core.webhook_policy import Network, address_problem, url_problem


class WebhookRefused(ValueError):
    """The webhook's URL or one of its addresses is not allowed; retrying will not help."""


def checked_address(host: str, port: int, allowed: Sequence[Network]) -> str:
    """Return one address of `host` after checking all of them; WebhookRefused if any is not allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host!r}: {exc}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        problem = address_problem(address, allowed)
        if problem:
            raise WebhookRefused(f"{host} resolves to {problem}")
    return addresses[0]


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


def post_checked(url: str, body: bytes, timeout: float, allowed: Sequence[Network] = ()) -> int:
    """POST `body` as JSON to `url` through a checked, pinned connection; return the HTTP status.

    WebhookRefused when the URL or an address of its host is not allowed; OSError when unreachable.
    """
    problem = url_problem(url, allowed)
    if problem:
        raise WebhookRefused(problem)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = checked_address(host, port, allowed)
    kind = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
    conn = kind(host, port, address, timeout)
    try:
        conn.request(
            "POST",
            (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
            body=body,
            headers={"Content-Type": "application/json", "User-Agent": "myapp-alerts/1"},
        )
        return int(conn.getresponse().status)
    finally:
        conn.close()
