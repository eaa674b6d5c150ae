"""The simulator's own small client of the API server: JSON over HTTPS with the kubeconfig's
credentials (bearer token or client certificate, the cluster's CA), and watch streams.

Kept apart from the official client on purpose: the simulator plays kubelet and scheduler, whose
requests (pods/status patches with a uid precondition, pods/binding, deletes with preconditions,
events) are spelled out here as the kubelet sends them.
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
import yaml

Obj = dict[str, Any]


class ApiError(Exception):
    """A non-2xx answer; `status` is the HTTP code, `reason` the Status reason."""

    def __init__(self, status: int, body: Obj | None, what: str) -> None:
        self.status = status
        self.body = body or {}
        self.reason = str(self.body.get("reason", ""))
        super().__init__(f"{what}: {status} {self.body.get('message', '')}")


class SimApi:
    """Raw JSON calls on one API server, authenticated from a kubeconfig (its current context)."""

    def __init__(self, kubeconfig: Path, *, maxsize: int = 16) -> None:
        config = yaml.safe_load(Path(kubeconfig).read_text())
        context_name = config.get("current-context")
        context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user: Obj = next((u["user"] for u in config.get("users", []) if u["name"] == context.get("user")), {})
        self.server = str(cluster["server"]).rstrip("/")
        self.namespace = str(context.get("namespace", "default"))
        self.headers = {"Accept": "application/json", "User-Agent": "k8ssim/1.0 (kubelet simulator)"}
        if user.get("token"):
            self.headers["Authorization"] = f"Bearer {user['token']}"
        # The kubeconfig's inline certificates go through files only while the SSL context loads them
        # (it keeps them in memory): a directory kept for the client's life was left behind by every
        # client nobody closed, one per simulator start.
        with tempfile.TemporaryDirectory(prefix="k8ssim-client-") as files:
            self._files = Path(files)
            ctx = ssl.create_default_context(cafile=self._file(cluster, "certificate-authority"))
            if cluster.get("insecure-skip-tls-verify"):
                ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            cert = self._file(user, "client-certificate")
            if cert:
                ctx.load_cert_chain(cert, self._file(user, "client-key"))
        self.http = urllib3.PoolManager(
            maxsize=maxsize, ssl_context=ctx, retries=False, timeout=urllib3.Timeout(connect=10, read=60)
        )

    def _file(self, section: Obj, key: str) -> str | None:
        if section.get(f"{key}-data"):
            path = self._files / key
            path.write_bytes(base64.b64decode(section[f"{key}-data"]))
            return str(path)
        return section.get(key)

    def url(self, path: str, query: dict[str, Any] | None = None) -> str:
        query = {k: v for k, v in (query or {}).items() if v is not None}
        return self.server + path + (("?" + urlencode(query)) if query else "")

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, Any] | None = None,
        content_type: str = "application/json",
        ok_missing: bool = False,
        timeout: float = 60,
    ) -> Obj | None:
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        response = self.http.request(
            method, self.url(path, query), body=data, headers=headers, timeout=urllib3.Timeout(connect=10, read=timeout)
        )
        try:
            answer = json.loads(response.data) if response.data else {}
        except ValueError:
            answer = {"message": response.data.decode("utf-8", "replace")[:500]}
        if response.status == 404 and ok_missing:
            return None
        if not 200 <= response.status < 300:
            raise ApiError(response.status, answer, f"{method} {path}")
        return dict(answer)

    def get(self, path: str, **query: Any) -> Obj | None:
        return self.request("GET", path, query=query, ok_missing=True)

    def create(self, path: str, body: Obj) -> Obj:
        answer = self.request("POST", path, body)
        assert answer is not None
        return answer

    def merge_patch(self, path: str, patch: Obj) -> Obj | None:
        return self.request("PATCH", path, patch, content_type="application/merge-patch+json", ok_missing=True)

    def strategic_patch(self, path: str, patch: Obj) -> Obj | None:
        return self.request(
            "PATCH", path, patch, content_type="application/strategic-merge-patch+json", ok_missing=True
        )

    def delete(self, path: str, body: Obj | None = None) -> Obj | None:
        return self.request("DELETE", path, body, ok_missing=True)

    def watch(self, path: str, *, resource_version: str, timeout_seconds: int = 60, **query: Any) -> Iterator[Obj]:
        """Yield watch events (dicts with type and object) until the server ends the stream."""
        query.update(
            watch="true", resourceVersion=resource_version, timeoutSeconds=timeout_seconds, allowWatchBookmarks="true"
        )
        response = self.http.request(
            "GET",
            self.url(path, query),
            headers=self.headers,
            preload_content=False,
            timeout=urllib3.Timeout(connect=10, read=timeout_seconds + 30),
        )
        try:
            if response.status != 200:
                raise ApiError(response.status, _json_or_none(response.read()), f"watch {path}")
            buffer = b""
            for chunk in response.stream(65536, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            response.release_conn()

    def close(self) -> None:
        self.http.clear()


def _json_or_none(data: bytes) -> Obj | None:
    try:
        return dict(json.loads(data))
    except (ValueError, TypeError):
        return None


def pod_path(namespace: str, name: str, sub: str = "") -> str:
    return f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(name)}" + (f"/{sub}" if sub else "")
