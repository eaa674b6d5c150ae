"""Shared fixtures of the security suite: an app, one signed-in client per role, objects in project "sec".

Roles (docs/rules.md P7): admin (FAB Admin); owner, member and viewer of project "sec" (FAB User);
outsider, owner of project "elsewhere" only (FAB User); readonly, member of "sec" whose FAB role is
Viewer (FAB still gates writes by resource); anonymous. Logs in with JWT via /api/v1/security/login.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from myapp.db.tables import Project
from myapp.web.app import create_app
from tests.accounts import ensure_member, ensure_project, ensure_user

USERS = {  # name: (FAB role, project, project role)
    "owner": ("User", "sec", "owner"),
    "member": ("User", "sec", "member"),
    "viewer": ("User", "sec", "viewer"),
    "outsider": ("User", "elsewhere", "owner"),
    "readonly": ("Viewer", "sec", "member"),
    "zed": ("User", "elsewhere", "viewer"),
}
ROLES = ("admin", "owner", "member", "viewer", "outsider", "readonly", "anonymous")
_names = itertools.count(1)


def unique(prefix: str) -> str:
    """Return a fresh lower-case name."""
    return f"{prefix}-{next(_names)}"


def pipeline_yaml(name: str, project: str = "sec", cron: str | None = None) -> str:
    schedule = f"schedule: {{type: crontab, cron: '{cron}'}}\n" if cron else ""
    return (
        f"name: {name}\nproject: {project}\n{schedule}parameters:\n  - {{name: who, default: world}}\n"
        "tasks:\n  - name: hello\n    template: shell\n    args: {script: 'echo \"hello $who\"'}\n"
        "    inputs: {who: {from: params.who}}\n"
    )


@pytest.fixture(scope="module")
def app(services: Any) -> Any:
    application = create_app(services.settings, services)
    application.config["TESTING"] = True
    with application.app_context():
        for name in ("sec", "elsewhere"):
            ensure_project(services, name)
        for user, (role, project, project_role) in USERS.items():
            ensure_member(services, ensure_user(application, user, role).id, project, project_role)
    return application


@pytest.fixture(scope="module")
def clients(app: Any) -> dict[str, tuple[FlaskClient, dict[str, str]]]:
    out: dict[str, tuple[FlaskClient, dict[str, str]]] = {"anonymous": (app.test_client(), {})}
    for user, password in [("admin", "admin-pass")] + [(u, f"{u}-pass") for u in USERS]:
        client = app.test_client()
        res = client.post("/api/v1/security/login", json={"username": user, "password": password, "provider": "db"})
        assert res.status_code == 200, res.get_data(as_text=True)
        out[user] = (client, {"Authorization": f"Bearer {res.get_json()['access_token']}"})
    return out


@dataclass
class World:
    """Creates objects in project "sec" as the admin, for one test call each."""

    client: FlaskClient
    auth: dict[str, str]
    services: Any

    def call(self, method: str, path: str, **kw: Any) -> Any:
        headers = {**self.auth, **kw.pop("headers", {})}
        return self.client.open(f"/api/v1{path}", method=method, headers=headers, **kw)

    def pipeline(self, project: str = "sec", cron: str | None = "0 3 * * *") -> int:
        res = self.call(
            "POST",
            "/pipelines/",
            data=pipeline_yaml(unique("p"), project, cron),
            headers={"Content-Type": "application/yaml"},
        )
        assert res.status_code == 200, res.get_json()
        return int(res.get_json()["id"])

    def run(self, pipeline_id: int | None = None, *, stopped: bool = False) -> int:
        res = self.call("POST", f"/pipelines/{pipeline_id or self.pipeline()}/runs", json={})
        assert res.status_code == 201, res.get_json()
        run_id = int(res.get_json()["id"])
        if stopped:
            assert self.call("POST", f"/runs/{run_id}/stop").status_code == 200
        return run_id

    def project_id(self, name: str) -> int:
        with self.services.db.read() as s:
            return int(s.scalar(select(Project.id).where(Project.name == name)))

    def user_id(self, name: str) -> int:
        from flask_appbuilder.security.sqla.models import User

        with self.services.db.read() as s:
            return int(s.scalar(select(User.id).where(User.username == name)))


@pytest.fixture(scope="module")
def world(clients: dict[str, tuple[FlaskClient, dict[str, str]]], services: Any) -> Iterator[World]:
    client, auth = clients["admin"]
    yield World(client, auth, services)
