"""A container's environment and command as kubelet makes them (kubelet_pods.go makeEnvironmentVariables,
third_party/forked/golang/expansion).

Order: `envFrom` sources first (ConfigMaps/Secrets, with their prefix; keys that are not valid names
are skipped), then `env` entries, which override; each `value` may reference earlier variables as
`$(NAME)` (`$$` is a literal `$`, an unknown reference stays as written). `valueFrom` reads a
Secret or ConfigMap key through the API (a missing object or key fails the container with
CreateContainerConfigError and kubelet's message, unless `optional`), a pod field or a resource
limit. Finally `$(NAME)` references in `command` and `args` are expanded with the container's
variables (so a shell's `$$` reaches the shell as `$`, as on a real node).
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
Lookup = Callable[[str, str, str], Obj | None]  # (kind "secrets"|"configmaps", namespace, name)
_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class ConfigError(Exception):
    """CreateContainerConfigError: the message is kubelet's."""


def expand(text: str, mapping: dict[str, str]) -> str:
    """Expand `$(NAME)` references as Kubernetes does."""
    out: list[str] = []
    checkpoint, cursor = 0, 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            read, is_var, advance = _read_name(text[cursor + 1 :])
            if is_var:
                out.append(mapping[read] if read in mapping else f"$({read})")
            else:
                out.append(read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + text[checkpoint:]


def _read_name(rest: str) -> tuple[str, bool, int]:
    if rest[0] == "$":
        return "$", False, 1
    if rest[0] == "(":
        end = rest.find(")", 1)
        if end >= 0:
            return rest[1:end], True, end + 1
        return "$(", False, 1
    return "$" + rest[0], False, 1


def container_env(
    pod: Obj, container: Obj, lookup: Lookup, *, base: dict[str, str], allocatable: dict[str, str]
) -> dict[str, str]:
    """Return the container's variables (`base` first: what the runtime adds, e.g. service variables)."""
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = dict(base)
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        ref = source.get("configMapRef") or source.get("secretRef")
        kind = "configmaps" if "configMapRef" in source else "secrets"
        obj = lookup(kind, namespace, ref["name"])
        if obj is None:
            if ref.get("optional"):
                continue
            raise ConfigError(f'{kind[:-1]} "{ref["name"]}" not found')
        for key, value in _data(obj, kind).items():
            if _NAME.match(prefix + key):
                env[prefix + key] = value
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" in var:
            found = _value_from(var["valueFrom"], pod, container, lookup, allocatable)
            if found is None:
                continue
            env[name] = found
        else:
            env[name] = expand(var.get("value", ""), env)
    return env


def _data(obj: Obj, kind: str) -> dict[str, str]:
    if kind == "secrets":
        return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (obj.get("data") or {}).items()}
    data = dict(obj.get("data") or {})
    data.update({k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (obj.get("binaryData") or {}).items()})
    return data


def _value_from(source: Obj, pod: Obj, container: Obj, lookup: Lookup, allocatable: dict[str, str]) -> str | None:
    namespace = pod["metadata"]["namespace"]
    for key, kind, title in (("secretKeyRef", "secrets", "Secret"), ("configMapKeyRef", "configmaps", "ConfigMap")):
        if key in source:
            ref = source[key]
            obj = lookup(kind, namespace, ref["name"])
            if obj is None:
                if ref.get("optional"):
                    return None
                raise ConfigError(f'{kind[:-1]} "{ref["name"]}" not found')
            data = _data(obj, kind)
            if ref["key"] not in data:
                if ref.get("optional"):
                    return None
                raise ConfigError(f"couldn't find key {ref['key']} in {title} {namespace}/{ref['name']}")
            return data[ref["key"]]
    if "fieldRef" in source:
        return _field(pod, source["fieldRef"]["fieldPath"])
    if "resourceFieldRef" in source:
        return _resource(source["resourceFieldRef"], container, allocatable)
    return None


def _field(pod: Obj, path: str) -> str:
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
        "status.podIPs": ",".join(p["ip"] for p in status.get("podIPs") or []),
    }
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    return str(simple.get(path) or "")


_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "m": 0.001,
}


def quantity(text: str) -> float:
    """A resource quantity ("250m", "1Gi", "2") as a number."""
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(text).strip())
    if not match or match.group(2) not in _UNITS:
        raise ValueError(f"bad quantity {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _resource(ref: Obj, container: Obj, allocatable: dict[str, str]) -> str:
    which, _, resource = ref["resource"].partition(".")
    resources = container.get("resources") or {}
    amount = (resources.get(which) or {}).get(resource)
    if amount is None and which == "limits":
        amount = allocatable.get(resource, "0")  # no limit: the node's allocatable
    if amount is None:
        amount = "0"
    divisor = quantity(ref.get("divisor") or "1")
    return str(max(1 if resource == "cpu" and quantity(amount) > 0 else 0, math.ceil(quantity(amount) / divisor)))
