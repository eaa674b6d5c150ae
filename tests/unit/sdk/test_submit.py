"""Where Workflow.submit goes (Server.from_env) and the kept sign-in of `myapp login`; no network."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from myapp.sdk import Server, SubmitError
from myapp.sdk.credentials import Credentials, credentials_path, load_credentials, save_credentials


def test_myapp_url_wins_then_the_kept_sign_in_then_none(tmp_path: Path) -> None:
    creds = tmp_path / "c.json"
    assert Server.from_env({"MYAPP_CREDENTIALS": str(creds)}) is None
    save_credentials(creds, Credentials("http://kept:1", "admin", "acc", "ref"))
    kept = Server.from_env({"MYAPP_CREDENTIALS": str(creds)})
    assert kept is not None and (kept.url, kept.token, kept.refresh_token) == ("http://kept:1", "acc", "ref")
    env = {"MYAPP_CREDENTIALS": str(creds), "MYAPP_URL": "http://given:2/", "MYAPP_API_TOKEN": "tok"}
    given = Server.from_env(env)
    assert given is not None and (given.url, given.token) == ("http://given:2", "tok")
    with pytest.raises(SubmitError, match="give a token"):
        Server.from_env({"MYAPP_URL": "http://given:2"})


def test_the_sign_in_file_is_the_owners_only(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "c.json"
    save_credentials(path, Credentials("u", "n", "a", "r"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_credentials(path) == Credentials("u", "n", "a", "r")
    path.write_text("{not json")
    assert load_credentials(path) is None
    assert credentials_path({}) == Path.home() / ".myapp" / "credentials.json"


def test_an_expired_token_is_refreshed_once_and_kept(tmp_path: Path) -> None:
    calls: list[tuple[str, str, str]] = []
    kept: list[str] = []

    def transport(method: str, url: str, headers: Any, body: Any) -> Any:
        calls.append((method, url, headers.get("Authorization", "")))
        if url.endswith("/security/refresh"):
            return 200, {}, b'{"access_token": "new"}'
        return (200, {}, b'{"ok": 1}') if headers["Authorization"] == "Bearer new" else (401, {}, b"{}")

    server = Server("http://s", "old", refresh_token="ref", transport=transport, on_refresh=kept.append)
    assert server.json("GET", "/api/v1/runs/") == {"ok": 1}
    assert [c[2] for c in calls] == ["Bearer old", "Bearer ref", "Bearer new"] and kept == ["new"]


def test_a_refused_request_says_the_servers_reason() -> None:
    def transport(method: str, url: str, headers: Any, body: Any) -> Any:
        return 400, {}, b'{"message": "invalid", "errors": [{"field": "tasks[a].template", "message": "unknown"}]}'

    with pytest.raises(SubmitError, match=r"400 invalid \(tasks\[a\].template: unknown\)"):
        Server("http://s", "tok", transport=transport).json("POST", "/api/v1/pipelines/")
