"""Manifest factories and model checks shared by the fake server's tests."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from kubernetes import client

_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def make_pod(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    containers: tuple[str, ...] = ("main",),
    restart_policy: str = "Never",
    **spec: Any,
) -> dict[str, Any]:
    """Return a pod manifest with one busybox container per name."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels if labels is not None else {"app": "demo"}},
        "spec": {
            "restartPolicy": restart_policy,
            "containers": [{"name": c, "image": "busybox:1.36", "command": ["sh", "-c", "true"]} for c in containers],
            **spec,
        },
    }


def make_service(name: str, *, headless: bool = True, selector: dict[str, str] | None = None) -> dict[str, Any]:
    """Return a (by default headless) service manifest."""
    spec: dict[str, Any] = {"selector": selector or {"app": "demo"}, "ports": [{"name": "rpc", "port": 2222}]}
    if headless:
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def _normalized(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalized(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    if isinstance(value, str) and _TIMESTAMP.match(value):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def assert_model(api_client: client.ApiClient, raw: dict[str, Any], model: str) -> Any:
    """Deserialize `raw` into `model`; assert no field is unknown to the model or mistyped.

    The round trip (JSON -> model -> JSON) drops fields the model does not define,
    so comparing both sides catches misspelled or invented fields, not just type errors.
    """
    obj = api_client.deserialize(json.dumps(raw), model, "application/json")
    assert _normalized(api_client.sanitize_for_serialization(obj)) == _normalized(raw)  # type: ignore[no-untyped-call]
    return obj


def raw_get(api_client: client.ApiClient, path: str, **query: str) -> tuple[int, Any]:
    """GET `path` and return (status, decoded JSON body) without raising on errors."""
    url = api_client.configuration.host + path + ("?" + urlencode(query) if query else "")
    response = api_client.rest_client.request("GET", url)  # type: ignore[no-untyped-call]
    data = response.read()
    return response.status, json.loads(data) if data.strip().startswith(b"{") else data.decode()
