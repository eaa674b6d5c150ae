"""Create, read and delete objects with the official client; nothing else (docs/rules.md S6).

Library errors become domain results here: 409 on create is "exists" (names derive from ids, so
it is our own earlier create), 404 on delete is "absent", 404 on read is None. Any other API
error is a LaunchError whose message is the API server's own. Reads return raw dicts
(`_preload_content=False`) so a thousand pods are not turned into models on every list.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast

from kubernetes import client
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.response import BaseHTTPResponse

from myapp.core.errors import MyappError

CreateResult = Literal["created", "exists"]
# pods/log answers text, but the API server negotiates only its object media types (406 for
# "text/plain"): what kubectl sends. The body is the log whatever this says.
LOG_ACCEPT = "application/json, */*"
DeleteResult = Literal["deleted", "absent"]
Raw = dict[str, Any]


class LaunchError(MyappError):
    """The API server refused a request; the message says why, in its own words.

    `retry_after` is the server's Retry-After (header, or the Status' details.retryAfterSeconds).
    """

    def __init__(
        self, message: str, status: int | None = None, retry_after: float | None = None, *, reason: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.reason = reason


def api_error(what: str, exc: client.ApiException) -> LaunchError:
    """Return the LaunchError of an ApiException: the server's message, status and Retry-After."""
    body = _body(exc)
    retry = None
    header = (exc.headers or {}).get("Retry-After") if exc.headers is not None else None
    for value in (header, (body.get("details") or {}).get("retryAfterSeconds")):
        try:
            retry = float(value) if value not in (None, "") else retry
        except (TypeError, ValueError):
            pass
        if retry is not None:
            break
    message = str(body.get("message") or exc.reason or exc)
    return LaunchError(f"{what}: {message}", exc.status, retry, reason=str(body.get("reason") or ""))


def _body(exc: client.ApiException) -> dict[str, Any]:
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def api_message(exc: client.ApiException) -> str:
    """Return the message of the Status in an ApiException's body (else its reason)."""
    try:
        body = json.loads(exc.body or "{}")
        return str(body.get("message") or exc.reason)
    except (TypeError, ValueError):
        return str(exc.reason or exc)


class Launcher:
    """Thin wrapper of CoreV1Api and the dynamic client for one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str, *, discovery_cache: Path | None = None) -> None:
        self.api = api
        self.namespace = namespace
        self.core = client.CoreV1Api(api)
        self._discovery_cache = discovery_cache
        self._dynamic: Any = None
        self.log_read_timeout: float | None = None  # a follow silent this long is resumed (myapp/k8s/logs.py)

    # --- create / delete -------------------------------------------------------------
    def create(self, manifest: Mapping[str, Any]) -> CreateResult:
        """Create a pod, service or any other object; "exists" when it is already there."""
        kind = manifest.get("kind")
        namespace = str((manifest.get("metadata") or {}).get("namespace") or self.namespace)
        try:
            if kind == "Pod" and manifest.get("apiVersion") == "v1":
                _discard(self.core.create_namespaced_pod(namespace, cast(Any, dict(manifest)), _preload_content=False))
            elif kind == "Secret" and manifest.get("apiVersion") == "v1":
                _discard(
                    self.core.create_namespaced_secret(namespace, cast(Any, dict(manifest)), _preload_content=False)
                )
            elif kind == "Service" and manifest.get("apiVersion") == "v1":
                _discard(
                    self.core.create_namespaced_service(namespace, cast(Any, dict(manifest)), _preload_content=False)
                )
            else:
                self._create_dynamic(manifest, namespace)
        except client.ApiException as exc:
            if exc.status == 409:
                return "exists"
            raise api_error(f"cannot create {kind} {_name(manifest)}", exc) from None
        except (Urllib3Error, OSError) as exc:  # the request may or may not have arrived: a retry finds out
            raise LaunchError(
                f"cannot create {kind} {_name(manifest)}: {exc}", None, reason="ConnectionError"
            ) from None
        return "created"

    def delete(
        self,
        kind: str,
        name: str,
        *,
        api_version: str = "v1",
        namespace: str | None = None,
        grace_seconds: int | None = None,
    ) -> DeleteResult:
        """Delete an object (pods gracefully); "absent" when it is already gone."""
        ns = namespace or self.namespace
        try:
            if kind == "Pod" and api_version == "v1":  # raw answers: no model is built for what we discard
                _discard(
                    self.core.delete_namespaced_pod(
                        name, ns, grace_period_seconds=grace_seconds, _preload_content=False
                    )
                )
            elif kind == "Service" and api_version == "v1":
                _discard(self.core.delete_namespaced_service(name, ns, _preload_content=False))
            elif kind == "Secret" and api_version == "v1":
                _discard(self.core.delete_namespaced_secret(name, ns, _preload_content=False))
            else:
                resource = self._resource(api_version, kind)
                resource.delete(name=name, namespace=ns if resource.namespaced else None)
        except client.ApiException as exc:
            if exc.status == 404:
                return "absent"
            raise LaunchError(f"cannot delete {kind} {name}: {api_message(exc)}", exc.status) from None
        return "deleted"

    # --- read ------------------------------------------------------------------------
    def get_pod(self, name: str) -> Raw | None:
        """Return a pod as a raw dict, or None when it does not exist."""
        try:
            response = self.core.read_namespaced_pod(name, self.namespace, _preload_content=False)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise LaunchError(f"cannot read pod {name}: {api_message(exc)}", exc.status) from None
        return _json(cast(BaseHTTPResponse, response))

    def uid_of_pod(self, name: str) -> str:
        """Return a pod's uid (to own another object); LaunchError when it does not exist."""
        pod = self.get_pod(name)
        if pod is None:
            raise LaunchError(f"pod {name} vanished right after its creation", 404)
        return str((pod.get("metadata") or {}).get("uid") or "")

    def set_owners(self, kind: str, name: str, owners: list[tuple[str, str]]) -> None:
        """Make pods (name, uid) the owners of a Secret (a merge patch of metadata.ownerReferences)."""
        refs = [
            {"apiVersion": "v1", "kind": "Pod", "name": n, "uid": uid, "controller": False, "blockOwnerDeletion": False}
            for n, uid in owners
        ]
        try:
            _discard(
                self.core.patch_namespaced_secret(
                    name, self.namespace, {"metadata": {"ownerReferences": refs}}, _preload_content=False
                )
            )
        except client.ApiException as exc:
            raise api_error(f"cannot set the owners of {kind} {name}", exc) from None

    def get_secret_data(self, name: str) -> dict[str, str]:
        """Return a Secret's values, decoded ({} when it does not exist)."""
        try:
            response = self.core.read_namespaced_secret(name, self.namespace, _preload_content=False)
        except client.ApiException as exc:
            if exc.status == 404:
                return {}
            raise api_error(f"cannot read secret {name}", exc) from None
        data = _json(cast(BaseHTTPResponse, response)).get("data") or {}
        return {str(k): base64.b64decode(str(v)).decode("utf-8", "replace") for k, v in data.items()}

    def get_object(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Raw | None:
        """Return any object as a raw dict, or None when it does not exist."""
        try:
            resource = self._resource(api_version, kind)
            found = resource.get(name=name, namespace=(namespace or self.namespace) if resource.namespaced else None)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise LaunchError(f"cannot read {kind} {name}: {api_message(exc)}", exc.status) from None
        data = found.to_dict()
        return dict(data) if isinstance(data, dict) else None

    def list_raw(self, what: str, *, label_selector: str = "", field_selector: str = "") -> Raw:
        """Return a raw list of "pods" or "events" of the namespace."""
        call = self.core.list_namespaced_pod if what == "pods" else self.core.list_namespaced_event
        try:
            response = call(
                self.namespace,
                label_selector=label_selector or None,
                field_selector=field_selector or None,
                _preload_content=False,
            )
        except client.ApiException as exc:
            raise LaunchError(f"cannot list {what}: {api_message(exc)}", exc.status) from None
        return _json(cast(BaseHTTPResponse, response))

    def watch_raw(
        self, what: str, *, resource_version: str, timeout_seconds: int, label_selector: str = ""
    ) -> BaseHTTPResponse:
        """Open a watch of "pods" or "events" from `resource_version`; the caller reads and closes it."""
        call = self.core.list_namespaced_pod if what == "pods" else self.core.list_namespaced_event
        try:
            response = cast(
                BaseHTTPResponse,
                call(
                    self.namespace,
                    label_selector=label_selector or None,
                    watch=True,
                    resource_version=resource_version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=timeout_seconds,
                    _preload_content=False,
                    _request_timeout=(10, timeout_seconds + 30),
                ),
            )
        except client.ApiException as exc:
            raise LaunchError(
                f"cannot watch {what}: {api_message(exc)}", exc.status, reason=str(exc.reason or "")
            ) from None
        _check(response, f"watch {what}")
        return response

    def open_log(self, pod: str, container: str, *, follow: bool, since_time: str = "") -> BaseHTTPResponse:
        """Open a container's log with timestamps (sinceTime is not in the typed client: built here)."""
        query: list[tuple[str, Any]] = [("container", container), ("follow", follow), ("timestamps", True)]
        if since_time:
            query.append(("sinceTime", since_time))
        method, url, headers, _, _ = self.api.param_serialize(
            method="GET",
            resource_path="/api/v1/namespaces/{namespace}/pods/{name}/log",
            path_params={"namespace": self.namespace, "name": pod},
            query_params=query,
            header_params={"Accept": LOG_ACCEPT},
            auth_settings=["BearerToken"],
        )
        try:
            response = cast(
                BaseHTTPResponse,
                self.api.call_api(
                    method, url, header_params=headers, _request_timeout=(10, self.log_read_timeout)
                ).response,
            )
        except client.ApiException as exc:
            raise LaunchError(f"cannot read the log of {pod}/{container}: {api_message(exc)}", exc.status) from None
        _check(response, f"read the log of {pod}/{container}")
        return response

    # --- leases (watcher leader election) ----------------------------------------------
    def get_lease(self, name: str) -> Raw | None:
        """Return a coordination.k8s.io/v1 Lease as a raw dict, or None."""
        try:
            response = client.CoordinationV1Api(self.api).read_namespaced_lease(
                name, self.namespace, _preload_content=False
            )
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise api_error(f"cannot read lease {name}", exc) from None
        return _json(cast(BaseHTTPResponse, response))

    def create_lease(self, body: Raw) -> bool:
        """Create a Lease; False when one exists already."""
        try:
            _discard(
                client.CoordinationV1Api(self.api).create_namespaced_lease(
                    self.namespace, cast(Any, body), _preload_content=False
                )
            )
        except client.ApiException as exc:
            if exc.status == 409:
                return False
            raise api_error("cannot create lease", exc) from None
        return True

    def replace_lease(self, name: str, body: Raw) -> bool:
        """Replace a Lease (its resourceVersion a precondition); False when it changed meanwhile."""
        try:
            _discard(
                client.CoordinationV1Api(self.api).replace_namespaced_lease(
                    name, self.namespace, cast(Any, body), _preload_content=False
                )
            )
        except client.ApiException as exc:
            if exc.status in (404, 409):
                return False
            raise api_error(f"cannot update lease {name}", exc) from None
        return True

    # --- dynamic client --------------------------------------------------------------
    def _resource(self, api_version: str, kind: str) -> Any:
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        if self._dynamic is None:
            from kubernetes.dynamic import DynamicClient

            cache = str(self._discovery_cache) if self._discovery_cache else None
            self._dynamic = DynamicClient(self.api, cache_file=cache)  # type: ignore[no-untyped-call]
        try:
            return self._dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            self._dynamic.resources.invalidate_cache()  # a CRD may have been installed since
            try:
                return self._dynamic.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError:
                raise LaunchError(f"the cluster has no resource {kind} in {api_version}") from None

    def _create_dynamic(self, manifest: Mapping[str, Any], namespace: str) -> None:
        resource = self._resource(str(manifest.get("apiVersion", "")), str(manifest.get("kind", "")))
        resource.create(body=dict(manifest), namespace=namespace if resource.namespaced else None)


def _discard(response: object) -> None:
    raw = cast(BaseHTTPResponse, response)
    raw.drain_conn()
    raw.release_conn()


def _check(response: BaseHTTPResponse, what: str) -> None:
    if 200 <= response.status < 300:
        return
    body = response.read()
    response.release_conn()
    try:
        message = json.loads(body).get("message", "")
    except ValueError:
        message = body.decode("utf-8", "replace")[:500]
    raise LaunchError(f"cannot {what}: {message or response.status}", response.status)


def _json(response: BaseHTTPResponse) -> Raw:
    try:
        _check(response, "list")
        data = json.loads(response.data)
    finally:
        response.release_conn()
    return data if isinstance(data, dict) else {}


def _name(manifest: Mapping[str, Any]) -> str:
    return str((manifest.get("metadata") or {}).get("name", "?"))
