"""Map request paths to discovery documents or resource targets.

Understands `/api/v1/...`, `/apis/GROUP/VERSION/...`, the deprecated
`.../watch/...` prefix, `namespaces/NS/PLURAL[/NAME[/SUB]]` and cluster paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from tests.k8sfake.errors import resource_not_found
from tests.k8sfake.resources import Registry, ResourceType


@dataclass(frozen=True)
class Discovery:
    """A discovery path: `/api`, `/apis`, `/apis/G`, `/api/v1` or `/apis/G/V`."""

    prefix: str  # "api" | "apis"
    group: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class Target:
    """A resource path, resolved against the registry."""

    rtype: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    watch_prefix: bool


def _split_namespace(rest: list[str]) -> tuple[str | None, list[str]]:
    if rest[0] != "namespaces" or len(rest) < 3:
        return None, rest
    if len(rest) == 3 and rest[2] in ("status", "finalize"):
        return None, rest  # a namespace's own subresource
    return rest[1], rest[2:]


def route(path: str, registry: Registry) -> Discovery | Target:
    """Resolve `path`; raise the apiserver's 404 when nothing is served there."""
    parts = [unquote(p) for p in path.split("/") if p]
    if not parts or parts[0] not in ("api", "apis"):
        raise resource_not_found()
    prefix, parts = parts[0], parts[1:]
    group = ""
    if prefix == "apis":
        if not parts:
            return Discovery("apis")
        group, parts = parts[0], parts[1:]
        if not parts:
            return Discovery("apis", group)
    if not parts:
        return Discovery("api")
    version, rest = parts[0], parts[1:]
    if not rest:
        return Discovery(prefix, group, version)
    watch_prefix = rest[0] == "watch"
    if watch_prefix:
        rest = rest[1:]
    if not rest:
        raise resource_not_found()
    namespace, rest = _split_namespace(rest)
    if len(rest) > 3:
        raise resource_not_found()
    rtype = registry.lookup(group, version, rest[0])
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if rtype is None or (namespace is not None and not rtype.namespaced):
        raise resource_not_found()
    if rtype.namespaced and namespace is None and name is not None:
        raise resource_not_found()
    allowed = rtype.extra_subresources + (("status",) if rtype.status_subresource else ())
    if sub is not None and sub not in allowed:
        raise resource_not_found()
    return Target(rtype, namespace, name, sub, watch_prefix)
