"""The REST layer: turn one HTTP request into a Response.

Dispatches discovery, get/list/watch, the pod log, and the writes in
writes.py; shapes objects as the apiserver serializes them (typed list items
carry no kind/apiVersion, custom resources always do).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tests.k8sfake import errors
from tests.k8sfake.discovery import VERSION_INFO, discovery_document
from tests.k8sfake.logs import LogBook
from tests.k8sfake.meta import JsonObj, metadata, name_of
from tests.k8sfake.resources import Registry, ResourceType
from tests.k8sfake.responses import JsonResponse, Response, StreamResponse, TextResponse
from tests.k8sfake.routing import Discovery, Target, route
from tests.k8sfake.selectors import parse_field_selector, parse_label_selector
from tests.k8sfake.store import Store
from tests.k8sfake.watch import ObjectFilter, WatchOptions, open_watch
from tests.k8sfake.writes import Writer, decode

_TRUE = ("1", "true", "True")


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP request, already read off the socket."""

    method: str
    path: str
    query: Mapping[str, str]
    body: bytes = b""
    content_type: str = "application/json"
    alive: Callable[[], bool] = field(default=lambda: True)


def shape(obj: JsonObj, rtype: ResourceType, *, list_item: bool = False) -> JsonObj:
    """Return `obj` as served: kind and apiVersion first (omitted for typed list items)."""
    if list_item and rtype.typed:
        return obj
    return {"kind": rtype.kind, "apiVersion": rtype.api_version, **obj}


class RestApi:
    """Serves requests against the store through the writer."""

    def __init__(self, store: Store, registry: Registry, logs: LogBook, writer: Writer) -> None:
        self.store = store
        self.registry = registry
        self.logs = logs
        self.writer = writer

    def handle(self, request: ApiRequest) -> Response:
        """Serve `request`; raise StatusError for API errors."""
        path = request.path.rstrip("/") or "/"
        if path == "/version":
            return JsonResponse(200, dict(VERSION_INFO))
        if path in ("/healthz", "/livez", "/readyz"):
            return TextResponse(200, "ok")
        target = route(path, self.registry)
        if isinstance(target, Discovery):
            if request.method != "GET":
                raise errors.method_not_allowed()
            return JsonResponse(200, discovery_document(target, self.registry))
        if target.subresource == "log":
            if request.method != "GET":
                raise errors.method_not_allowed()
            pod = self.store.get("pods", target.namespace or "", str(target.name))
            if pod is None:
                raise errors.not_found("pods", "", str(target.name))
            return self.logs.respond(pod, request.query, request.alive)
        if target.name is None:
            return self._collection(request, target)
        return self._item(request, target, target.name)

    def _collection(self, request: ApiRequest, target: Target) -> Response:
        rtype = target.rtype
        dry_run = _dry_run(request)
        if request.method == "GET":
            if target.watch_prefix or request.query.get("watch") in _TRUE:
                return self._watch(request, target, request.query.get("fieldSelector"))
            return JsonResponse(200, self._list(request.query, target))
        if request.method == "POST":
            obj = decode(request.body, rtype)
            created = self.writer.create(rtype, target.namespace, obj, dry_run=dry_run)
            return JsonResponse(201, shape(created, rtype))
        if dry_run:
            raise _dry_run_unsupported()
        if request.method == "DELETE":
            return JsonResponse(200, self._delete_collection(request, target))
        raise errors.method_not_allowed()

    def _item(self, request: ApiRequest, target: Target, name: str) -> Response:
        rtype, namespace = target.rtype, target.namespace
        if _dry_run(request):
            raise _dry_run_unsupported()
        if request.method == "GET":
            if target.watch_prefix or request.query.get("watch") in _TRUE:
                return self._watch(request, target, f"metadata.name={name}")
            found = self.store.get(rtype.storage_key, namespace or "", name)
            if found is None:
                raise errors.not_found(rtype.plural, rtype.group, name)
            return JsonResponse(200, shape(found, rtype))
        if request.method == "PUT":
            obj = decode(request.body, rtype)
            return JsonResponse(200, shape(self.writer.update(rtype, namespace, name, obj, target.subresource), rtype))
        if request.method == "PATCH" and request.content_type.startswith("application/apply-patch"):
            return self._apply(request, target, name)
        if request.method == "PATCH":
            patch = _json(request.body)
            updated = self.writer.patch(rtype, namespace, name, patch, request.content_type, target.subresource)
            return JsonResponse(200, shape(updated, rtype))
        if request.method == "DELETE" and target.subresource is None:
            options = _delete_options(request)
            result = self.writer.delete(rtype, namespace, name, options)
            return JsonResponse(200, result if result.get("kind") == "Status" else shape(result, rtype))
        raise errors.method_not_allowed()

    def _apply(self, request: ApiRequest, target: Target, name: str) -> Response:
        """Server-side apply, approximated: create when missing, else merge the applied fields in."""
        rtype = target.rtype
        if self.store.get(rtype.storage_key, target.namespace or "", name) is None:
            obj = decode(request.body, rtype)
            metadata(obj).setdefault("name", name)
            return JsonResponse(201, shape(self.writer.create(rtype, target.namespace, obj), rtype))
        applied = decode(request.body, rtype)
        metadata(applied).pop("resourceVersion", None)
        merge = "application/strategic-merge-patch+json" if rtype.typed else "application/merge-patch+json"
        updated = self.writer.patch(rtype, target.namespace, name, applied, merge, target.subresource)
        return JsonResponse(200, shape(updated, rtype))

    def _filter(self, query: Mapping[str, str], target: Target, field_selector: str | None) -> ObjectFilter:
        getters = target.rtype.field_getters()
        return ObjectFilter(
            target.namespace,
            parse_label_selector(query.get("labelSelector")),
            parse_field_selector(field_selector, getters),
            getters,
        )

    def _list(self, query: Mapping[str, str], target: Target) -> JsonObj:
        rtype = target.rtype
        scope = self._filter(query, target, query.get("fieldSelector"))
        with self.store.lock:
            revision = self.store.revision
            items = [o for o in self.store.items(rtype.storage_key, target.namespace) if scope.matches(o)]
        list_meta: JsonObj = {"resourceVersion": str(revision)}
        if query.get("continue"):
            after = _decode_continue(query["continue"])
            items = [o for o in items if _key(o) > after]
        limit = int(query.get("limit") or 0)
        if limit > 0 and len(items) > limit:
            list_meta["continue"] = _encode_continue(_key(items[limit - 1]), revision)
            list_meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return {
            "kind": rtype.list_kind,
            "apiVersion": rtype.api_version,
            "metadata": list_meta,
            "items": [shape(o, rtype, list_item=True) for o in items],
        }

    def _watch(self, request: ApiRequest, target: Target, field_selector: str | None) -> StreamResponse:
        query, rtype = request.query, target.rtype
        scope = self._filter(query, target, field_selector)
        version = query.get("resourceVersion", "")
        send_initial = query.get("sendInitialEvents") in _TRUE
        bookmarks = query.get("allowWatchBookmarks") in _TRUE
        if send_initial and (query.get("resourceVersionMatch") != "NotOlderThan" or not bookmarks):
            raise errors.StatusError(
                422,
                "Invalid",
                'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: '
                "Forbidden: sendInitialEvents requires setting resourceVersionMatch to "
                "NotOlderThan and allowWatchBookmarks to true",
                {"group": "meta.k8s.io", "kind": "ListOptions"},
            )
        since: int | None = None
        if version not in ("", "0") and not send_initial:
            if not version.isdigit():
                raise errors.bad_request(f"invalid resource version: {version!r}")
            since = int(version)
        elif query.get("sendInitialEvents") == "false":
            since = self.store.revision
        if since is not None and since > self.store.revision:
            self._wait_for_revision(since)
        timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else None
        options = WatchOptions(since, timeout, bookmarks, send_initial, rtype.kind, rtype.api_version, request.alive)
        return open_watch(self.store, rtype.storage_key, scope, options, lambda o: shape(o, rtype))

    def _wait_for_revision(self, since: int) -> None:
        """As the watch cache: wait a while for a resourceVersion it has not seen, then 504 Timeout."""
        with self.store.lock:
            if self.store.lock.wait_for(lambda: self.store.revision >= since, self.writer.settings.too_new_wait):
                return
            current = self.store.revision
        raise errors.StatusError(
            504,
            "Timeout",
            f"Too large resource version: {since}, current: {current}",
            {
                "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                "retryAfterSeconds": 1,
            },
        )

    def _delete_collection(self, request: ApiRequest, target: Target) -> JsonObj:
        rtype = target.rtype
        scope = self._filter(request.query, target, request.query.get("fieldSelector"))
        options = _delete_options(request)
        deleted = []
        with self.store.lock:
            for obj in self.store.items(rtype.storage_key, target.namespace):
                if scope.matches(obj):
                    result = self.writer.delete(rtype, target.namespace, name_of(obj), options)
                    deleted.append(obj if result.get("kind") == "Status" else result)
            revision = self.store.revision
        return {
            "kind": rtype.list_kind,
            "apiVersion": rtype.api_version,
            "metadata": {"resourceVersion": str(revision)},
            "items": [shape(o, rtype, list_item=True) for o in deleted],
        }


def _dry_run(request: ApiRequest) -> bool:
    return bool(request.query.get("dryRun"))


def _dry_run_unsupported() -> errors.StatusError:
    return errors.bad_request("k8sfake: dryRun is only supported on create")


def _json(body: bytes) -> object:
    try:
        return json.loads(body or b"null")
    except ValueError as wrong:
        raise errors.bad_request(f"error decoding patch: {wrong}") from wrong


def _delete_options(request: ApiRequest) -> JsonObj:
    options = _json(request.body) if request.body else {}
    if not isinstance(options, dict):
        raise errors.bad_request("DeleteOptions must be an object")
    if "gracePeriodSeconds" in request.query:
        options["gracePeriodSeconds"] = int(request.query["gracePeriodSeconds"])
    return options


def _key(obj: JsonObj) -> str:
    return f"{metadata(obj).get('namespace', '')}/{name_of(obj)}"


def _encode_continue(after: str, revision: int) -> str:
    token = json.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": after + "\x00"})
    return base64.urlsafe_b64encode(token.encode()).decode()


def _decode_continue(token: str) -> str:
    try:
        return str(json.loads(base64.urlsafe_b64decode(token.encode()))["start"]).rstrip("\x00")
    except (ValueError, KeyError, TypeError) as wrong:
        raise errors.bad_request(f"continue key is not valid: {wrong}") from wrong
