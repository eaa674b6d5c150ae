"""Events kept for the run page (myapp/k8s/events.py) and log timestamps (myapp/k8s/logs.py)."""

from __future__ import annotations

from typing import Any

from myapp.k8s.events import EventBook, parse_event
from myapp.k8s.logs import timestamp_key


def raw_event(uid: str, name: str, reason: str, last: str, count: int = 1, type: str = "Normal") -> dict[str, Any]:  # noqa: A002
    return {
        "metadata": {"uid": uid, "name": f"{name}.{uid}"},
        "involvedObject": {"kind": "Pod", "name": name},
        "reason": reason,
        "message": f"{reason} happened",
        "type": type,
        "count": count,
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": last,
        "source": {"component": "kubelet"},
    }


def test_repeats_replace_and_each_object_keeps_its_newest() -> None:
    book = EventBook(limit=2, objects=2)
    book.add(parse_event(raw_event("1", "p", "Pulling", "2026-01-01T00:00:01Z")))
    book.add(parse_event(raw_event("2", "p", "BackOff", "2026-01-01T00:00:02Z", type="Warning")))
    book.add(parse_event(raw_event("2", "p", "BackOff", "2026-01-01T00:00:05Z", count=3, type="Warning")))
    assert [(e["reason"], e["count"]) for e in book.records(["p"])] == [("Pulling", 1), ("BackOff", 3)]
    book.add(parse_event(raw_event("3", "p", "Started", "2026-01-01T00:00:06Z")))
    assert [e["reason"] for e in book.records(["p"])] == ["BackOff", "Started"]
    assert book.records(["p"])[0] == {
        "object": "pod/p",
        "type": "Warning",
        "reason": "BackOff",
        "message": "BackOff happened",
        "count": 3,
        "source": "kubelet",
        "first_seen": "2026-01-01T00:00:00Z",
        "last_seen": "2026-01-01T00:00:05Z",
    }
    book.add(parse_event(raw_event("4", "q", "Scheduled", "2026-01-01T00:00:07Z")))
    book.add(parse_event(raw_event("5", "r", "Scheduled", "2026-01-01T00:00:08Z")))
    assert book.records(["p"]) == [], "the oldest object ages out past `objects`"
    book.forget(["q"])
    assert book.records(["q", "r"])[0]["object"] == "pod/r"


def test_timestamps_sort_as_text_whatever_their_precision() -> None:
    assert timestamp_key("2026-01-01T00:00:01.5Z") > timestamp_key("2026-01-01T00:00:01.49999Z")
    assert timestamp_key("2026-01-01T00:00:01Z") < timestamp_key("2026-01-01T00:00:01.000000001Z")
    assert timestamp_key("2026-01-01T00:00:01.1Z") == timestamp_key("2026-01-01T00:00:01.100000000Z")
