"""The Kubernetes watchers' health, for /health: each leading watcher publishes the state of its
watch streams with every heartbeat (one Redis hash field per installation and worker group), and
the web server reads them back.

A report says, for the pod watch and the event watch, `ok` or a short error (`HTTP 403 Forbidden`,
`ConnectionRefusedError`: never the server's words, /health is anonymous) and since when it fails;
the reasons in full are in the watcher's log and on the run page (`container.watcher`). A report
older than `k8s_watcher_timeout` means no watcher of the group leads: its running attempts will be
failed as lost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

log = logging.getLogger(__name__)
KEY = "myapp:k8s-watchers"
FORGET_AFTER = timedelta(days=7)  # a group not heard of for this long is no longer shown


class HashStore(Protocol):
    def hset(self, name: str, key: str, value: str) -> Any: ...
    def hgetall(self, name: str) -> Any: ...
    def hdel(self, name: str, *keys: str) -> Any: ...


def publish(redis: HashStore, state: Mapping[str, Any]) -> None:
    """Store one watcher's state (Watcher.watch_state) under its installation and group."""
    redis.hset(KEY, f"{state['installation']}/{state['group']}", json.dumps(dict(state)))


def read_reports(redis: HashStore) -> list[dict[str, Any]]:
    """Return every stored report (unparseable ones skipped)."""
    reports = []
    for value in (redis.hgetall(KEY) or {}).values():
        try:
            reports.append(json.loads(value))
        except (TypeError, ValueError):
            continue
    return reports


def judge(
    reports: list[dict[str, Any]], *, installation: str, now: datetime, silent_after: float, expected_group: str = ""
) -> tuple[bool, list[dict[str, Any]]]:
    """Return (all healthy?, one entry per worker group of `installation`), pure.

    A group is unhealthy when one of its streams fails or its last report is older than
    `silent_after` seconds; `expected_group` (this process's own `k8s_group`) is listed even when
    no watcher of it ever reported.
    """
    entries: list[dict[str, Any]] = []
    healthy = True
    seen = set()
    for report in sorted(reports, key=lambda r: str(r.get("group"))):
        if report.get("installation") != installation:
            continue
        try:
            at = datetime.fromisoformat(str(report.get("at")))
        except ValueError:
            continue
        age = (now - at).total_seconds()
        if age > FORGET_AFTER.total_seconds():
            continue
        seen.add(report.get("group"))
        streams = report.get("streams") or {}
        failing = {name: s for name, s in streams.items() if not s.get("ok")}
        entry: dict[str, Any] = {
            "group": report.get("group"),
            "reported_at": at.isoformat(),
            "running_attempts": report.get("running", 0),
        }
        if "cleanup_backlog" in report:  # a watcher older than this field does not report it
            entry["cleanup_backlog"] = report["cleanup_backlog"]
        if age > silent_after:
            entry["status"] = "silent"
            entry["problem"] = (
                f"no watcher of the group has reported for {int(age)} s (k8s_watcher_timeout "
                f"{int(silent_after)} s): its running attempts are failed as lost"
            )
        elif failing:
            entry["status"] = "degraded"
            entry["problem"] = "; ".join(
                f"the {name} watch fails ({s.get('error') or 'error'}) since {s.get('since')}"
                for name, s in sorted(failing.items())
            )
            if report.get("fallback"):
                entry["problem"] += f"; {report['fallback']}"
        else:
            entry["status"] = "ok"
        entry["watches"] = {name: "ok" if s.get("ok") else "failing" for name, s in sorted(streams.items())}
        healthy = healthy and entry["status"] == "ok"
        entries.append(entry)
    if expected_group and expected_group not in seen:
        healthy = False
        entries.append(
            {
                "group": expected_group,
                "status": "missing",
                "problem": "no watcher of the group has reported (is `myapp k8s-watcher` running?)",
            }
        )
    return healthy, entries
