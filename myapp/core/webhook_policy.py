"""Where alert webhooks may point: never this machine, private networks or cloud metadata (issue 13, B16).

A project member writes the webhook URL and the worker POSTs to it, so an unchecked URL lets any
member make the worker reach internal services (127.0.0.1, 10.0.0.0/8, 169.254.169.254, ...).
Every address a webhook's host resolves to must be globally routable, unless it lies in a network
the operator allows (`webhook_allowed_networks`). The sender (myapp/alerts/webhook_http.py) resolves the
host, checks every address with `address_problem`, and connects to the address it checked (a DNS
answer that changes between check and connect cannot redirect it). `url_problem` is the save-time
check, without DNS: the scheme, and a host that is an address or names this machine. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


def parse_networks(text: str) -> tuple[Network, ...]:
    """Return the networks of a comma-separated CIDR list ("10.0.0.0/8,fd00::/8"); ValueError names a bad one."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if part:
            try:
                out.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"{part!r} is not a network such as 10.0.0.0/8") from None
    return tuple(out)


def address_problem(address: str, allowed: Sequence[Network] = ()) -> str | None:
    """Return why a webhook may not be sent to `address` (an IP), or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in net for net in allowed if net.version == ip.version):
        return None
    for kind, hit in (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local (cloud metadata lives there)", ip.is_link_local),
        ("private", ip.is_private),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
    ):
        if hit:
            return f"{ip} is a {kind} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def url_problem(url: str, allowed: Sequence[Network] = ()) -> str | None:
    """Return why `url` cannot be a webhook, judged without DNS (the sender checks the resolved addresses)."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
        parts.port  # noqa: B018  raises ValueError on a bad port
    except ValueError as exc:
        return f"{url!r} is not a valid URL: {exc}"
    if parts.scheme not in ("http", "https") or not host:
        return f"{url!r} must be an http:// or https:// URL with a host"
    if host in LOCAL_NAMES or host.endswith(".localhost"):
        return f"{url!r} names this machine; alerts may not be sent to it"
    try:
        problem = address_problem(host, allowed)
    except ValueError:
        return None  # a name: its addresses are checked when the alert is sent
    return f"{url!r}: {problem}; alerts may not be sent there (see webhook_allowed_networks)" if problem else None
