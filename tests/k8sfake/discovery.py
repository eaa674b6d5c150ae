"""Discovery documents: /version, /api, /apis, /apis/G and the resource lists.

Shapes follow metav1 APIVersions, APIGroupList, APIGroup and APIResourceList,
which is what `kubernetes.dynamic.DynamicClient` reads.
"""

from __future__ import annotations

import hashlib

from tests.k8sfake.errors import resource_not_found
from tests.k8sfake.meta import JsonObj
from tests.k8sfake.resources import Registry, ResourceType
from tests.k8sfake.routing import Discovery

VERSION_INFO: JsonObj = {
    "major": "1",
    "minor": "35",
    "emulationMajor": "1",
    "emulationMinor": "35",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "34",
    "gitVersion": "v1.35.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-12-17T00:00:00Z",
    "goVersion": "go1.25.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def _group_version(group: str, version: str) -> JsonObj:
    return {"groupVersion": f"{group}/{version}", "version": version}


def _group(name: str, versions: list[str]) -> JsonObj:
    return {
        "name": name,
        "versions": [_group_version(name, v) for v in versions],
        "preferredVersion": _group_version(name, versions[0]),
    }


def _resource(rtype: ResourceType) -> JsonObj:
    entry: JsonObj = {
        "name": rtype.plural,
        "singularName": rtype.singular,
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": list(rtype.verbs),
    }
    if rtype.short_names:
        entry["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        entry["categories"] = list(rtype.categories)
    digest = hashlib.sha256(f"{rtype.api_version}/{rtype.plural}".encode()).digest()
    entry["storageVersionHash"] = digest[:8].hex()
    return entry


def _subresources(rtype: ResourceType) -> list[JsonObj]:
    found = []
    if rtype.status_subresource:
        found.append(
            {
                "name": f"{rtype.plural}/status",
                "singularName": "",
                "namespaced": rtype.namespaced,
                "kind": rtype.kind,
                "verbs": ["get", "patch", "update"],
            }
        )
    if "log" in rtype.extra_subresources:
        found.append(
            {
                "name": f"{rtype.plural}/log",
                "singularName": "",
                "namespaced": rtype.namespaced,
                "kind": rtype.kind,
                "verbs": ["get"],
            }
        )
    return found


def discovery_document(target: Discovery, registry: Registry) -> JsonObj:
    """Return the discovery document for `target`; raise 404 for an unknown group/version."""
    groups = registry.group_versions()
    if target.prefix == "api" and target.version is None:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
        }
    if target.prefix == "apis" and target.group is None:
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [_group(name, versions) for name, versions in groups.items()],
        }
    if target.version is None:
        if target.group not in groups:
            raise resource_not_found()
        return {"kind": "APIGroup", "apiVersion": "v1", **_group(str(target.group), groups[str(target.group)])}
    group = target.group or ""
    types = registry.in_group_version(group, target.version)
    if not types:
        raise resource_not_found()
    resources: list[JsonObj] = []
    for rtype in sorted(types, key=lambda t: t.plural):
        resources += [_resource(rtype)] + _subresources(rtype)
    group_version = f"{group}/{target.version}" if group else target.version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}
