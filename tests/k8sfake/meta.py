"""Object metadata and time formatting shared by the fake kube-apiserver.

Owns the JSON-object conventions of the real API (RFC 3339 timestamps, uids,
generated names). Imports nothing from the rest of the fake.
"""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

JsonObj = dict[str, Any]
Clock = Callable[[], datetime]

# The alphabet apimachinery's rand.String uses for generateName suffixes.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime (the default clock)."""
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """Format `moment` like metav1.Time: RFC 3339 in UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_nano_time(moment: datetime) -> str:
    """Format `moment` like Go's time.RFC3339Nano (trailing zeros trimmed)."""
    base = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{moment.microsecond:06d}000".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp as sent by clients (`Z` or an offset)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def new_uid() -> str:
    """Return a fresh object uid."""
    return str(uuid.uuid4())


def generated_name(prefix: str) -> str:
    """Return `prefix` plus the five random characters generateName adds."""
    return prefix + "".join(random.choice(_NAME_ALPHABET) for _ in range(5))


def clone(obj: JsonObj) -> JsonObj:
    """Deep-copy a JSON object so stored state never aliases caller data."""
    return copy.deepcopy(obj)


def metadata(obj: JsonObj) -> JsonObj:
    """Return `obj["metadata"]`, creating an empty mapping when absent."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        obj["metadata"] = meta
    return meta


def name_of(obj: JsonObj) -> str:
    """Return the object's metadata.name ("" when unset)."""
    return str(metadata(obj).get("name") or "")


def labels_of(obj: JsonObj) -> dict[str, str]:
    """Return the object's labels (an empty dict when unset)."""
    labels = metadata(obj).get("labels")
    return labels if isinstance(labels, dict) else {}


def field_path(obj: Any, dotted: str) -> str:
    """Return the string value at a dotted path such as "status.phase" ("" when missing)."""
    current = obj
    for part in dotted.split("."):
        if not isinstance(current, dict):
            return ""
        current = current.get(part)
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)
