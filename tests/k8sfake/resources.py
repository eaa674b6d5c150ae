"""Resource types the fake serves and the registry that routes paths to them.

A ResourceType is data plus hooks (defaulting, validation) in the shape of the
apiserver's REST strategies. Imports only meta, errors and validation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from tests.k8sfake.errors import FieldError
from tests.k8sfake.meta import JsonObj, field_path
from tests.k8sfake.selectors import FieldGetter
from tests.k8sfake.validation import NameCheck, dns1123_subdomain

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
# Field labels that are not plain dotted paths into the object.
_FIELD_ALIASES = {"source": "source.component"}


@dataclass(frozen=True)
class CreateEnv:
    """What defaulting may use on create: the server time and allocators."""

    now: datetime
    next_cluster_ip: Callable[[], str]


Defaulter = Callable[[JsonObj, CreateEnv], None]
Validator = Callable[[JsonObj], list[FieldError]]
UpdateValidator = Callable[[JsonObj, JsonObj], list[FieldError]]


@dataclass(frozen=True)
class ResourceType:
    """One served resource (group/version/plural) and its REST strategy."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status_subresource: bool = True
    extra_subresources: tuple[str, ...] = ()
    return_deleted_object: bool = False
    typed: bool = True  # built-in kinds: list items carry no kind/apiVersion
    tracks_generation: bool = False  # metadata.generation starts at 1, bumps on spec changes
    field_labels: tuple[str, ...] = ()
    name_check: NameCheck = dns1123_subdomain
    default: Defaulter | None = None
    validate: Validator | None = None
    validate_update: UpdateValidator | None = None
    verbs: tuple[str, ...] = ALL_VERBS

    @property
    def api_version(self) -> str:
        """Return "v1" or "group/version"."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> str:
        """Return the group-resource all versions of this resource share, e.g. "jobs.batch"."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        """Return the kind of list responses, e.g. PodList."""
        return self.kind + "List"

    def field_getters(self) -> dict[str, FieldGetter]:
        """Return the supported fieldSelector labels and how to read each."""
        labels = ("metadata.name", "metadata.namespace") + self.field_labels
        return {label: _getter(_FIELD_ALIASES.get(label, label)) for label in labels}


def _getter(dotted: str) -> FieldGetter:
    return lambda obj: field_path(obj, dotted)


class Registry:
    """The served resource types, keyed by (group, version, plural)."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}

    def add(self, rtype: ResourceType) -> None:
        """Serve `rtype` (replacing any type at the same group/version/plural)."""
        self._types[(rtype.group, rtype.version, rtype.plural)] = rtype

    def remove(self, group: str, plural: str) -> None:
        """Stop serving every version of group/plural."""
        for key in [k for k in self._types if k[0] == group and k[2] == plural]:
            del self._types[key]

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        """Return the type served at group/version/plural, if any."""
        return self._types.get((group, version, plural))

    def find(self, plural_or_kind: str, group: str | None = None) -> ResourceType:
        """Return the preferred type whose plural or kind matches (for the control API)."""
        matches = [
            t
            for t in self._types.values()
            if plural_or_kind in (t.plural, t.kind) and (group is None or t.group == group)
        ]
        groups = {t.group for t in matches}
        if not matches:
            raise KeyError(f"no resource {plural_or_kind!r} is served")
        if len(groups) > 1:
            raise KeyError(f"{plural_or_kind!r} is served by groups {sorted(groups)}: pass group=")
        return matches[0]

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._types.values()))

    def group_versions(self) -> dict[str, list[str]]:
        """Return each named group's versions, preferred (first registered) first."""
        groups: dict[str, list[str]] = {}
        for group, version, _ in self._types:
            if group and version not in groups.setdefault(group, []):
                groups[group].append(version)
        return groups

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        """Return the types served under one group/version."""
        return [t for (g, v, _), t in self._types.items() if g == group and v == version]
