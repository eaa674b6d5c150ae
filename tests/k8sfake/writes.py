"""Create, update, patch and delete with the generic registry store's rules.

System metadata (uid, creationTimestamp, generation, resourceVersion) is set
here; status is only writable through the status subresource when a type has
one; no-op updates keep their resourceVersion and emit no event; finalizers
and pod graceful deletion set deletionTimestamp before removal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from tests.k8sfake import errors
from tests.k8sfake.errors import StatusError
from tests.k8sfake.kinds import CRD_TYPE, NAMESPACE_TYPE, types_from_crd
from tests.k8sfake.meta import Clock, JsonObj, clone, format_time, generated_name, metadata, name_of, new_uid
from tests.k8sfake.patches import apply_patch
from tests.k8sfake.resources import CreateEnv, Registry, ResourceType
from tests.k8sfake.store import Store

_SYSTEM_FIELDS = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "namespace",
    "name",
    "resourceVersion",
)


@dataclass
class Settings:
    """Behaviour switches a test may flip on the running server."""

    auto_create_namespaces: bool = True
    hold_pod_deletions: bool = False  # keep gracefully deleted pods Terminating
    too_new_wait: float = 3.0  # seconds a watch from a future resourceVersion waits before 504 (the watch cache's)
    # Mutating admission (as webhooks): (plural, mutate) applied to created objects before defaulting.
    admission: list[tuple[str, Callable[[JsonObj], None]]] = field(default_factory=list)


def decode(body: bytes, rtype: ResourceType) -> JsonObj:
    """Parse a request body into a stored-form object (kind/apiVersion checked, then dropped)."""
    try:
        obj = json.loads(body or b"{}")
    except ValueError as wrong:
        raise errors.bad_request(
            f"the object provided is unrecognized (must be of type {rtype.kind}): "
            f"couldn't get version/kind; json parse error: {wrong}"
        ) from wrong
    if not isinstance(obj, dict):
        raise errors.bad_request(f"the object provided is unrecognized (must be of type {rtype.kind})")
    kind, api_version = obj.pop("kind", None), obj.pop("apiVersion", None)
    if not rtype.typed and not kind:
        raise errors.bad_request(f"Object 'Kind' is missing in '{body.decode(errors='replace')}'")
    if api_version and api_version != rtype.api_version:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version ({rtype.api_version})"
        )
    if kind and kind != rtype.kind:
        raise errors.bad_request(f"the object provided is unrecognized (must be of type {rtype.kind})")
    return obj


def _spec_changed(old: JsonObj, new: JsonObj) -> bool:
    ignored = ("metadata", "status")
    return {k: v for k, v in old.items() if k not in ignored} != {k: v for k, v in new.items() if k not in ignored}


class Writer:
    """Every state change goes through here, under the store's lock."""

    def __init__(self, store: Store, registry: Registry, clock: Clock, settings: Settings) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.settings = settings
        self._cluster_ips = 10

    def next_cluster_ip(self) -> str:
        """Allocate the next ClusterIP from 10.96.0.0/12."""
        self._cluster_ips += 1
        return f"10.96.{self._cluster_ips // 256}.{self._cluster_ips % 256}"

    def create(self, rtype: ResourceType, namespace: str | None, obj: JsonObj, *, dry_run: bool = False) -> JsonObj:
        """Create `obj`; return the stored object (or, for a dry run, what would be stored)."""
        meta = metadata(obj)
        if rtype.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            raise StatusError(500, "InternalError", "resourceVersion should not be set on objects to be created")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = generated_name(str(meta["generateName"]))
        for plural, mutate in list(self.settings.admission):
            if plural == rtype.plural and not dry_run:
                mutate(obj)
        with self.store.lock:
            now = self.clock()
            meta.update(uid=new_uid(), creationTimestamp=format_time(now))
            for key in ("deletionTimestamp", "deletionGracePeriodSeconds"):
                meta.pop(key, None)
            if rtype.status_subresource:
                obj.pop("status", None)
            if rtype.tracks_generation:
                meta["generation"] = 1
            if rtype.default:
                rtype.default(obj, CreateEnv(now, self.next_cluster_ip))
            problems = rtype.validate(obj) if rtype.validate else []
            if problems:
                raise errors.invalid(rtype.kind, rtype.group, name_of(obj), problems)
            if namespace and not dry_run:
                self.ensure_namespace(namespace)
            if self.store.get(rtype.storage_key, namespace or "", name_of(obj)) is not None:
                raise errors.already_exists(rtype.plural, rtype.group, name_of(obj))
            if dry_run:
                return obj
            stored = self.store.put(rtype.storage_key, obj)
            if rtype.storage_key == CRD_TYPE.storage_key:
                for served in types_from_crd(stored):
                    self.registry.add(served)
            return stored

    def ensure_namespace(self, namespace: str) -> None:
        """Create `namespace` when auto-creation is on; otherwise 404 when it is missing."""
        if self.store.get(NAMESPACE_TYPE.storage_key, "", namespace) is not None:
            return
        if not self.settings.auto_create_namespaces:
            raise errors.not_found("namespaces", "", namespace)
        self.create(NAMESPACE_TYPE, None, {"metadata": {"name": namespace}})

    def _existing(self, rtype: ResourceType, namespace: str | None, name: str) -> JsonObj:
        current = self.store.get(rtype.storage_key, namespace or "", name)
        if current is None:
            raise errors.not_found(rtype.plural, rtype.group, name)
        return current

    def update(
        self, rtype: ResourceType, namespace: str | None, name: str, new: JsonObj, subresource: str | None
    ) -> JsonObj:
        """Replace an object (PUT), honouring a resourceVersion precondition."""
        meta = metadata(new)
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        if rtype.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        with self.store.lock:
            old = self._existing(rtype, namespace, name)
            if meta.get("resourceVersion") and meta["resourceVersion"] != metadata(old)["resourceVersion"]:
                raise errors.conflict(rtype.plural, rtype.group, name)
            return self.write_update(rtype, old, new, subresource)

    def patch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        patch: object,
        content_type: str,
        subresource: str | None,
    ) -> JsonObj:
        """Apply a merge, strategic-merge (as merge) or JSON patch."""
        with self.store.lock:
            old = self._existing(rtype, namespace, name)
            served = {"kind": rtype.kind, "apiVersion": rtype.api_version, **old}
            patched = apply_patch(served, patch, content_type, builtin=rtype.typed)
            if not isinstance(patched, dict):
                raise errors.bad_request("the patch did not produce an object")
            patched.pop("kind", None)
            patched.pop("apiVersion", None)
            if metadata(patched).get("resourceVersion") != metadata(old)["resourceVersion"]:
                raise errors.conflict(rtype.plural, rtype.group, name)
            return self.write_update(rtype, old, patched, subresource)

    def write_update(
        self, rtype: ResourceType, old: JsonObj, new: JsonObj, subresource: str | None, *, validate: bool = True
    ) -> JsonObj:
        """Store `new` over `old`: keep system fields, guard status, bump generation, skip no-ops."""
        if subresource == "status":
            merged = clone(old)
            if "status" in new:
                merged["status"] = new["status"]
        else:
            merged = clone(new)
            if rtype.status_subresource:
                merged.pop("status", None)
                if "status" in old:
                    merged["status"] = clone(old["status"])
        meta, old_meta = metadata(merged), metadata(old)
        for key in _SYSTEM_FIELDS:
            meta.pop(key, None)
            if key in old_meta:
                meta[key] = old_meta[key]
        if old_meta.get("deletionTimestamp"):  # finalizers may only be removed now
            kept = [f for f in meta.get("finalizers") or [] if f in (old_meta.get("finalizers") or [])]
            if kept:
                meta["finalizers"] = kept
            else:
                meta.pop("finalizers", None)
        if rtype.tracks_generation and _spec_changed(old, merged):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        if validate:
            check = rtype.validate_update
            problems = check(old, merged) if check else (rtype.validate(merged) if rtype.validate else [])
            if problems:
                raise errors.invalid(rtype.kind, rtype.group, name_of(old), problems)
        if merged == old:
            return old
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and old_meta.get("finalizers"):
            # The registry deletes instead of writing once the last finalizer is gone.
            return self.remove(rtype, str(meta.get("namespace") or ""), name_of(merged))
        return self.store.put(rtype.storage_key, merged, prev=old)

    def mutate(self, rtype: ResourceType, namespace: str, name: str, change: Callable[[JsonObj], None]) -> JsonObj:
        """Apply `change` to a stored object as a controller would (no validation); KeyError if missing."""
        with self.store.lock:
            old = self.store.get(rtype.storage_key, namespace, name)
            if old is None:
                raise KeyError(f"{rtype.plural} {namespace}/{name} does not exist")
            new = clone(old)
            change(new)
            return old if new == old else self.store.put(rtype.storage_key, new, prev=old)

    def delete(self, rtype: ResourceType, namespace: str | None, name: str, options: JsonObj) -> JsonObj:
        """Delete one object; return the object or a Success Status as the real registry does."""
        with self.store.lock:
            obj = self._existing(rtype, namespace, name)
            meta = metadata(obj)
            for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
                wanted = (options.get("preconditions") or {}).get(field)
                if wanted and wanted != meta.get(field):
                    raise StatusError(
                        409,
                        "Conflict",
                        f"Operation cannot be fulfilled on {rtype.storage_key} "
                        f'"{name}": Precondition failed: {label} in precondition: {wanted}, '
                        f"{label} in object meta: {meta.get(field)}",
                        {"name": name, "kind": rtype.plural},
                    )
            if rtype.storage_key == "pods":
                return self._delete_pod(rtype, obj, options)
            if meta.get("finalizers"):
                return obj if meta.get("deletionTimestamp") else self._mark_deleting(rtype, obj, 0)
            removed = self.remove(rtype, namespace or "", name)
            if rtype.return_deleted_object:
                return removed
            return {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": name,
                    **({"group": rtype.group} if rtype.group else {}),
                    "kind": rtype.plural,
                    "uid": meta["uid"],
                },
            }

    def _delete_pod(self, rtype: ResourceType, pod: JsonObj, options: JsonObj) -> JsonObj:
        """Pods always delete gracefully: deletionTimestamp first (MODIFIED), removal once grace is 0."""
        grace = self._grace_seconds(pod, options)
        current = metadata(pod).get("deletionGracePeriodSeconds")
        marked = pod if current is not None and current <= grace else self._mark_deleting(rtype, pod, grace)
        if metadata(marked).get("finalizers") or (grace > 0 and self.settings.hold_pod_deletions):
            return marked
        self.store.remove(rtype.storage_key, str(metadata(pod)["namespace"]), name_of(pod))
        return marked

    def _mark_deleting(self, rtype: ResourceType, obj: JsonObj, grace: int) -> JsonObj:
        marked = clone(obj)
        metadata(marked).update(
            deletionTimestamp=format_time(self.clock() + timedelta(seconds=grace)), deletionGracePeriodSeconds=grace
        )
        return self.store.put(rtype.storage_key, marked, prev=obj)

    def _grace_seconds(self, pod: JsonObj, options: JsonObj) -> int:
        """Return the grace period CheckGracefulDelete settles on (0 if unscheduled or terminated)."""
        if not pod["spec"].get("nodeName") or pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return 0
        requested = options.get("gracePeriodSeconds")
        return int(requested if requested is not None else pod["spec"].get("terminationGracePeriodSeconds", 30))

    def remove(self, rtype: ResourceType, namespace: str, name: str) -> JsonObj:
        """Remove an object now, cascading for namespaces and CRDs."""
        removed = self.store.remove(rtype.storage_key, namespace, name)
        if rtype.storage_key == NAMESPACE_TYPE.storage_key:
            for key in {t.storage_key for t in self.registry if t.namespaced}:
                for obj in self.store.items(key, name):
                    self.store.remove(key, name, name_of(obj))
        if rtype.storage_key == CRD_TYPE.storage_key:
            spec = removed["spec"]
            key = f"{spec['names']['plural']}.{spec['group']}"
            for obj in self.store.items(key):
                self.store.remove(key, str(metadata(obj).get("namespace") or ""), name_of(obj))
            self.registry.remove(spec["group"], spec["names"]["plural"])
        return removed
