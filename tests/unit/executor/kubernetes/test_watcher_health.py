"""What /health makes of the watchers' reports (myapp/executor/kubernetes/watcher_health.py judge: pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from myapp.executor.kubernetes.watcher_health import judge, publish, read_reports
from myapp.k8s.stream import error_kind

NOW = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)


def report(
    group: str = "gpu",
    *,
    age: float = 1.0,
    installation: str = "db-1",
    pods: dict[str, Any] | None = None,
    fallback: str = "",
) -> dict[str, Any]:
    return {
        "group": group,
        "installation": installation,
        "at": (NOW - timedelta(seconds=age)).isoformat(),
        "running": 3,
        "streams": {"pods": pods or {"ok": True}, "events": {"ok": True}},
        "fallback": fallback,
    }


def test_working_watches_are_healthy_and_other_installations_are_not_shown() -> None:
    healthy, entries = judge(
        [report(), report("cpu", installation="db-2", age=9999)], installation="db-1", now=NOW, silent_after=120
    )
    assert healthy
    assert entries == [
        {
            "group": "gpu",
            "reported_at": (NOW - timedelta(seconds=1)).isoformat(),
            "running_attempts": 3,
            "status": "ok",
            "watches": {"events": "ok", "pods": "ok"},
        }
    ]


def test_a_failing_watch_is_degraded_with_its_short_error_and_since_when() -> None:
    failing = {"ok": False, "error": "HTTP 403 Forbidden", "since": "2026-12-06T19:58:00+00:00"}
    healthy, [entry] = judge(
        [report(pods=failing, fallback="pods read one by one")], installation="db-1", now=NOW, silent_after=120
    )
    assert not healthy and entry["status"] == "degraded"
    assert entry["problem"] == (
        "the pods watch fails (HTTP 403 Forbidden) since 2026-12-06T19:58:00+00:00; pods read one by one"
    )
    assert entry["watches"] == {"events": "ok", "pods": "failing"}


def test_a_silent_watcher_and_a_group_never_reported_are_unhealthy() -> None:
    healthy, [entry] = judge([report(age=121)], installation="db-1", now=NOW, silent_after=120)
    assert not healthy and entry["status"] == "silent" and "for 121 s" in entry["problem"]
    healthy, entries = judge([report()], installation="db-1", now=NOW, silent_after=120, expected_group="default")
    assert not healthy and [e["status"] for e in entries] == ["ok", "missing"]
    assert judge([report(age=8 * 86400)], installation="db-1", now=NOW, silent_after=120) == (True, [])


def test_the_cleanup_backlog_is_shown_where_the_watcher_reports_it() -> None:
    _, [entry] = judge([{**report(), "cleanup_backlog": 250}], installation="db-1", now=NOW, silent_after=120)
    assert entry["cleanup_backlog"] == 250 and entry["status"] == "ok"  # a backlog alone is not a fault


def test_reports_round_trip_through_a_hash() -> None:
    class Hash(dict[str, str]):
        def hset(self, name: str, key: str, value: str) -> None:
            self[f"{name}|{key}"] = value

        def hgetall(self, name: str) -> dict[str, str]:
            return {k.split("|", 1)[1]: v for k, v in self.items() if k.startswith(name + "|")}

        def hdel(self, name: str, *keys: str) -> None:
            for key in keys:
                self.pop(f"{name}|{key}", None)

    store = Hash()
    publish(store, report())
    publish(store, report(age=0.5))  # the same group: replaced
    publish(store, report("cpu"))
    store.hset("myapp:k8s-watchers", "junk", "{not json")
    assert sorted((r["group"], r["at"]) for r in read_reports(store)) == [
        ("cpu", report("cpu")["at"]),
        ("gpu", report(age=0.5)["at"]),
    ]


def test_error_kinds_never_carry_the_servers_words() -> None:
    from myapp.k8s.launcher import LaunchError

    assert (
        error_kind(LaunchError('cannot watch pods: pods is forbidden: User "x" cannot watch', 403, reason="Forbidden"))
        == "HTTP 403 Forbidden"
    )
    assert error_kind(LaunchError("watch pods: too old", 410)) == "HTTP 410"
    assert error_kind(ConnectionRefusedError("[Errno 111] Connection refused")) == "ConnectionRefusedError"
