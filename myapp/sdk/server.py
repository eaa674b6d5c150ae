"""A myapp server as the SDK talks to it: REST over urllib (standard library only), with a token, a
user and password, or the sign-in `myapp login` kept (refreshed when it expires).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from myapp.sdk.credentials import credentials_path, load_credentials, save_credentials
from myapp.sdk.runtime import MANIFEST

# (method, path with query, headers, body) -> (status, headers, body): urllib by default; tests pass a
# Flask test client.
Transport = Callable[[str, str, Mapping[str, str], bytes | None], tuple[int, Mapping[str, str], bytes]]


class SubmitError(RuntimeError):
    """The server or the installation refused a request: the message says why."""

    def __init__(self, message: str, status: int = 0, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def urllib_transport(timeout: float = 60.0) -> Transport:
    """Return a transport over urllib (no dependency beyond the standard library)."""

    def send(
        method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[int, Mapping[str, str], bytes]:
        request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) URL of the user)
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers or {}), exc.read()

    return send


class Server:
    """A myapp server: its base URL and a bearer token (or a user name and password to sign in)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        refresh_token: str | None = None,
        transport: Transport | None = None,
        on_refresh: Callable[[str], None] | None = None,
    ) -> None:
        if token is None and refresh_token is None and (username is None or password is None):
            raise SubmitError("give a token, or a username and a password")
        self.url = url.rstrip("/")
        self.token = token
        self.username, self.password, self.refresh_token = username, password, refresh_token
        self.transport = transport or urllib_transport()
        self.on_refresh = on_refresh  # called with each new access token (myapp login keeps it)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Server | None:
        """Return the server to submit to: MYAPP_URL (MYAPP_API_TOKEN or MYAPP_TOKEN, or MYAPP_USERNAME +
        MYAPP_PASSWORD), else the sign-in `myapp login` kept; None when there is neither."""
        env = os.environ if environ is None else environ
        url = env.get("MYAPP_URL", "").strip()
        if url:
            return cls(
                url,
                env.get("MYAPP_API_TOKEN") or env.get("MYAPP_TOKEN") or None,
                username=env.get("MYAPP_USERNAME"),
                password=env.get("MYAPP_PASSWORD"),
            )
        path = credentials_path(env)
        kept = load_credentials(path)
        if kept is None:
            return None

        def keep(token: str) -> None:
            save_credentials(path, replace(kept, access_token=token))

        return cls(kept.url, kept.access_token, refresh_token=kept.refresh_token, on_refresh=keep)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Send one API request (signing in first, and again once when the token expired)."""
        for attempt in (0, 1):
            if self.token is None:
                self._sign_in()
            headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
            data = body
            if json_body is not None:
                data = json.dumps(json_body).encode("utf-8")
            if data is not None:
                headers["Content-Type"] = content_type
            status, response_headers, content = self.transport(method, self.url + path, headers, data)
            if status == 401 and attempt == 0 and (self.username is not None or self.refresh_token is not None):
                self.token = None  # expired: sign in again, or refresh
                continue
            return status, response_headers, content
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request; return its JSON body; SubmitError with the server's message on a 4xx/5xx."""
        status, _, content = self.request(method, path, **kwargs)
        try:
            data = json.loads(content or b"null")
        except ValueError:
            data = content.decode("utf-8", errors="replace")
        if status >= 400:
            message = data.get("message") if isinstance(data, dict) else data
            errors = data.get("errors") if isinstance(data, dict) else None
            detail = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors or [] if isinstance(e, dict))
            raise SubmitError(
                f"{method} {path}: {status} {message}{' (' + detail + ')' if detail else ''}", status, data
            )
        return data

    def _sign_in(self) -> None:
        if self.refresh_token is not None and self.password is None:
            status, _, content = self.transport(
                "POST", self.url + "/api/v1/security/refresh", {"Authorization": f"Bearer {self.refresh_token}"}, None
            )
            if status != 200:
                raise SubmitError(
                    f"the sign-in to {self.url} expired or was revoked ({status}): run `myapp login` again", status
                )
            self.token = str(json.loads(content)["access_token"])
            if self.on_refresh is not None:
                self.on_refresh(self.token)
            return
        body = json.dumps({"username": self.username, "password": self.password, "provider": "db"}).encode()
        status, _, content = self.transport(
            "POST", self.url + "/api/v1/security/login", {"Content-Type": "application/json"}, body
        )
        if status != 200:
            raise SubmitError(f"sign-in as {self.username!r} at {self.url} failed: {status}", status)
        self.token = json.loads(content)["access_token"]


class RestBackend:
    """Runs on a server, through its REST API (/api/v1)."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def submit(self, yaml_text: str, params: Mapping[str, str]) -> tuple[int, int]:
        saved = self.server.json(
            "POST",
            "/api/v1/pipelines/?message=myapp.sdk",
            body=yaml_text.encode("utf-8"),
            content_type="application/yaml",
        )
        started = self.server.json("POST", f"/api/v1/pipelines/{saved['id']}/runs", json_body={"params": dict(params)})
        return int(saved["id"]), int(started["id"])

    def run_detail(self, run_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.server.json("GET", f"/api/v1/runs/{run_id}")["result"]
        return result

    def log_text(self, run_id: int, task: str, try_number: int | None) -> str:
        lines: list[str] = []
        offset = 0
        while True:
            query = {"task": task, "offset": str(offset), **({"try": str(try_number)} if try_number else {})}
            page = self.server.json("GET", f"/api/v1/runs/{run_id}/logs?{urllib.parse.urlencode(query)}")
            lines.extend(page["lines"])
            if not page["lines"] or page["offset"] == offset:
                return "".join(lines)
            offset = page["offset"]

    def act(self, run_id: int, action: str) -> None:
        self.server.json("POST", f"/api/v1/runs/{run_id}/{action}")

    def fetch_artifact(self, run_id: int, task: str, output: str, dest: Path) -> Path:
        path = f"/api/v1/runs/{run_id}/artifacts/{urllib.parse.quote(task)}/{urllib.parse.quote(output)}"
        status, headers, content = self._get_artifact(path, task, output, run_id)
        if {k.lower(): v for k, v in headers.items()}.get("x-myapp-artifact") == "files":
            items = json.loads(content)["items"]
            return fetch_list(
                dest / output,
                [item is not None for item in items],
                lambda i, into: self._fetch_one(f"{path}?index={i}", task, output, run_id, into),
            )
        return self._save(headers, content, output, dest)

    def _fetch_one(self, path: str, task: str, output: str, run_id: int, dest: Path) -> Path:
        _, headers, content = self._get_artifact(path, task, output, run_id)
        return self._save(headers, content, output, dest)

    def _get_artifact(self, path: str, task: str, output: str, run_id: int) -> tuple[int, Mapping[str, str], bytes]:
        status, headers, content = self.server.request("GET", path)
        if status != 200:
            try:
                message = json.loads(content).get("message")
            except ValueError:
                message = content[:200].decode("utf-8", errors="replace")
            raise SubmitError(f"artifact {task}.{output} of run {run_id}: {status} {message}", status)
        return status, headers, content

    @staticmethod
    def _save(headers: Mapping[str, str], content: bytes, output: str, dest: Path) -> Path:
        kind = {k.lower(): v for k, v in headers.items()}.get("x-myapp-artifact", "file")
        name = {k.lower(): v for k, v in headers.items()}.get("x-myapp-artifact-name", output)
        dest.mkdir(parents=True, exist_ok=True)
        if kind == "directory":
            with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as archive:
                archive.extractall(dest, filter="data")
        else:
            (dest / Path(name).name).write_bytes(content)
        return dest / Path(name).name


def fetch_list(target: Path, present: list[bool], fetch: Callable[[int, Path], Path]) -> Path:
    """Download a list of files (a `files` output, docs/rules.md R11) into `target`, item I under
    `target/I/`, with the manifest that gives their order (what `unwrap_artifact` reads); return `target`.
    A missing item (a slice that produced none) is left out."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    items = [fetch(i, target / str(i)).relative_to(target).as_posix() for i, there in enumerate(present) if there]
    (target / MANIFEST).write_text(json.dumps({"type": "paths", "items": items}), encoding="utf-8")
    return target
