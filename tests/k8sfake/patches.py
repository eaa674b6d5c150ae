"""PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge.

Strategic merge is approximated: lists whose items all carry a "name" (containers,
env, volumes, ports) merge by name and honour `$patch: delete`; other lists are
replaced whole. Custom resources reject it with 415, as the apiserver does.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.k8sfake.errors import StatusError, unsupported_media_type

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def merge_patch(target: Any, patch: Any, *, strategic: bool = False) -> Any:
    """Return `target` with a merge `patch` applied (null deletes a key)."""
    if strategic and _named_items(target) and _named_items(patch):
        return _merge_named(target, patch)
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value, strategic=strategic)
    return result


def _named_items(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) and "name" in item for item in value)


def _merge_named(target: list[Any], patch: list[Any]) -> list[Any]:
    merged = [copy.deepcopy(item) for item in target]
    for item in patch:
        index = next((i for i, old in enumerate(merged) if old["name"] == item["name"]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del merged[index]
        elif index is None:
            merged.append(merge_patch({}, item, strategic=True))
        else:
            merged[index] = merge_patch(merged[index], item, strategic=True)
    return merged


def _invalid(detail: str) -> StatusError:
    return StatusError(422, "Invalid", f"the server rejected our request due to an error in our request: {detail}", {})


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _invalid(f"invalid JSON pointer {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> Any:
    current = doc
    for part in parts[:-1]:
        try:
            current = current[int(part)] if isinstance(current, list) else current[part]
        except (KeyError, IndexError, ValueError, TypeError) as missing:
            raise _invalid(f"path segment {part!r} not found") from missing
    return current


def _apply_one(doc: Any, op: dict[str, Any]) -> Any:
    kind, parts = op.get("op"), _pointer(str(op.get("path", "")))
    if kind in ("move", "copy"):
        source = _pointer(str(op.get("from", "")))
        value = _get(doc, source)
        if kind == "move":
            doc = _apply_one(doc, {"op": "remove", "path": op["from"]})
        return _apply_one(doc, {"op": "add", "path": op["path"], "value": copy.deepcopy(value)})
    if kind == "test":
        if _get(doc, parts) != op.get("value"):
            raise _invalid(f"testing value {op.get('path')} failed")
        return doc
    if not parts:
        return copy.deepcopy(op.get("value")) if kind in ("add", "replace") else None
    parent, last = _parent(doc, parts), parts[-1]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if kind == "add":
            parent.insert(index, copy.deepcopy(op.get("value")))
        elif kind in ("remove", "replace") and 0 <= index < len(parent):
            parent[index : index + 1] = [copy.deepcopy(op.get("value"))] if kind == "replace" else []
        else:
            raise _invalid(f"index {last} out of range")
    elif isinstance(parent, dict):
        if kind in ("remove", "replace") and last not in parent:
            raise _invalid(f"unable to {kind} nonexistent key: {last}: missing value")
        if kind == "remove":
            del parent[last]
        elif kind in ("add", "replace"):
            parent[last] = copy.deepcopy(op.get("value"))
        else:
            raise _invalid(f"unexpected kind of operation {kind!r}")
    else:
        raise _invalid(f"path {op.get('path')} does not address a container")
    return doc


def _get(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    parent = _parent(doc, parts)
    try:
        return parent[int(parts[-1])] if isinstance(parent, list) else parent[parts[-1]]
    except (KeyError, IndexError, ValueError, TypeError) as missing:
        raise _invalid(f"path {parts!r} not found") from missing


def json_patch(target: Any, operations: Any) -> Any:
    """Return `target` with an RFC 6902 operation list applied."""
    if not isinstance(operations, list):
        raise _invalid("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        doc = _apply_one(doc, op)
    return doc


def apply_patch(target: Any, patch: Any, content_type: str, *, builtin: bool) -> Any:
    """Apply `patch` to `target` according to the request's Content-Type."""
    media = content_type.split(";")[0].strip().lower()
    if media == MERGE_PATCH:
        return merge_patch(target, patch)
    if media == STRATEGIC_PATCH and builtin:
        return merge_patch(target, patch, strategic=True)
    if media == JSON_PATCH:
        return json_patch(target, patch)
    raise unsupported_media_type(media, builtin=builtin)
