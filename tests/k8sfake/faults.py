"""Injected API failures: what a loaded, throttled or locked-down kube-apiserver answers.

A test arms a Fault (method, path pattern, watch or not) for a number of requests; the handler
answers the matching requests with the fault's Status instead of serving them, or, for a Hold,
keeps them waiting until the test releases them (a slow or loaded server) and then serves them. The Status bodies
and headers are the real server's: 429 TooManyRequests from the max-in-flight/priority filter
(`Retry-After` header and `details.retryAfterSeconds`), 5xx InternalError / ServiceUnavailable,
403 Forbidden from RBAC or from the ResourceQuota admission plugin (`exceeded quota: ...`).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

from tests.k8sfake.errors import StatusError


@dataclass
class Fault:
    """Answer `times` matching requests (-1: every one) with `error`."""

    method: str
    path: re.Pattern[str]
    error: StatusError
    times: int = 1
    watch: bool | None = None  # None: watches and plain requests alike
    retry_after: int | None = None  # seconds, sent as the Retry-After header
    hits: int = 0


@dataclass(eq=False)
class Hold:
    """Keep `times` matching requests waiting until `release()` (at most `limit` seconds), then serve them."""

    method: str
    path: re.Pattern[str]
    times: int = 1
    watch: bool | None = None
    limit: float = 120.0
    hits: int = 0
    released: threading.Event = field(default_factory=threading.Event)

    @property
    def waiting(self) -> bool:
        """True once a request is held and not released yet."""
        return self.hits > 0 and not self.released.is_set()

    def release(self) -> None:
        self.released.set()

    def wait(self) -> None:
        self.released.wait(self.limit)


@dataclass
class Faults:
    """The armed faults of one server (thread-safe)."""

    armed: list[Fault] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(self, fault: Fault) -> Fault:
        with self.lock:
            self.armed.append(fault)
        return fault

    def hold(self, hold: Hold) -> Hold:
        with self.lock:
            self.holds.append(hold)
        return hold

    def clear(self) -> None:
        with self.lock:
            self.armed.clear()
            holds, self.holds = self.holds, []
        for hold in holds:
            hold.release()

    def held(self, method: str, path: str, is_watch: bool) -> Hold | None:
        """Return the first hold matching this request, counting it down."""
        with self.lock:
            for hold in self.holds:
                if (
                    hold.method in (method, "*")
                    and hold.path.search(path)
                    and hold.watch in (None, is_watch)
                    and hold.times != 0
                ):
                    hold.times -= 1 if hold.times > 0 else 0
                    hold.hits += 1
                    return hold
        return None

    def take(self, method: str, path: str, is_watch: bool) -> Fault | None:
        """Return the first armed fault matching this request, counting it down."""
        with self.lock:
            for fault in self.armed:
                if (
                    fault.method in (method, "*")
                    and fault.path.search(path)
                    and fault.watch in (None, is_watch)
                    and fault.times != 0
                ):
                    fault.times -= 1 if fault.times > 0 else 0
                    fault.hits += 1
                    return fault
        return None


def too_many_requests(retry_after: int = 1) -> StatusError:
    """Return the 429 of the API priority and fairness / max-in-flight filter."""
    return StatusError(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
        {"causes": [{"message": "Too many requests, please try again later."}], "retryAfterSeconds": retry_after},
    )


def service_unavailable(message: str = "the server is currently unable to handle the request") -> StatusError:
    return StatusError(
        503, "ServiceUnavailable", message, {"causes": [{"reason": "UnexpectedServerResponse", "message": message}]}
    )


def exceeded_quota(
    resource: str, name: str, detail: str = "requested: cpu=1, used: cpu=2, limited: cpu=2"
) -> StatusError:
    """Return the ResourceQuota admission plugin's 403."""
    return StatusError(
        403,
        "Forbidden",
        f'{resource} "{name}" is forbidden: exceeded quota: compute, {detail}',
        {"name": name, "kind": resource},
    )


def forbidden(user: str, verb: str, resource: str, namespace: str, group: str = "") -> StatusError:
    """Return RBAC's 403 for a request the user may not make."""
    where = f'resource "{resource}" in API group "{group}" in the namespace "{namespace}"'
    return StatusError(
        403, "Forbidden", f'{resource} is forbidden: User "{user}" cannot {verb} {where}', {"kind": resource}
    )
