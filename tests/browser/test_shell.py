"""The pages' server side without a browser: every page's shell, menus per role, /api/v1/me/ and
the projects API, through Flask's test client (runs even where Chromium is missing).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from myapp.web.app import create_app

pytestmark = pytest.mark.integration

PAGES = {
    "/pipelines/": "pipelines",
    "/pipelines/new": "editor",
    "/pipelines/1/edit": "editor",
    "/pipelines/1/versions": "versions",
    "/pipelines/versions": "versions",
    "/runs/": "runs",
    "/runs/1": "run",
    "/schedules/records": "schedules",
    "/templates/": "templates",
    "/templates/review": "review",
    "/projects/": "projects",
}


@pytest.fixture(scope="module")
def app(services: Any) -> Any:
    application = create_app(services.settings, services)
    application.config.update(TESTING=True, WTF_CSRF_ENABLED=False)
    with application.app_context():
        sm = application.appbuilder.sm  # type: ignore[attr-defined]
        for name, role in (("vic", "Viewer"), ("uma", "User")):
            if sm.find_user(username=name) is None:
                sm.add_user(name, name, "Test", f"{name}@example.com", sm.find_role(role), "pw")
    return application


def signed_in(app: Any, user: str, password: str = "pw") -> FlaskClient:
    client = app.test_client()
    res = client.post("/login/", data={"username": user, "password": password})
    assert res.status_code == 302 and "/login" not in res.headers["Location"], res.get_data(as_text=True)[:500]
    return client


def props(html: str) -> tuple[str, dict[str, Any]]:
    found = re.search(r'data-page="(\w+)" data-locale="\w+"\s+data-props="([^"]*)"', html)
    assert found, html[-2000:]
    raw = found.group(2).replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&")
    return found.group(1), json.loads(raw)


@pytest.mark.parametrize("user,password", [("admin", "admin-pass"), ("vic", "pw"), ("uma", "pw")])
def test_every_page_renders_its_shell(app: Any, user: str, password: str) -> None:
    client = signed_in(app, user, password)
    for url, page in PAGES.items():
        res = client.get(url)
        assert res.status_code == 200, (url, res.status_code)
        html = res.get_data(as_text=True)
        assert props(html)[0] == page
        # the menus every role sees
        for label in ("Pipelines", "Runs", "Templates", "Schedule records", "Review"):
            assert f"{label}</a>" in html or f"{label}<b" in html, (user, url, label)
    assert props(client.get("/runs/7").get_data(as_text=True))[1] == {"run_id": 7}


def test_anonymous_goes_to_login(app: Any) -> None:
    client = app.test_client()
    res = client.get("/pipelines/")
    assert res.status_code == 302 and "/login" in res.headers["Location"]
    assert client.get("/api/v1/me/").status_code == 401


def test_me_gives_permissions_and_a_working_token(app: Any) -> None:
    client = signed_in(app, "vic")
    me = client.get("/api/v1/me/").get_json()
    assert me["username"] == "vic" and me["roles"] == ["Viewer"] and me["is_admin"] is False
    assert me["can"]["Pipelines"] == {"read": True, "write": False}
    auth = {"Authorization": f"Bearer {me['access_token']}"}
    fresh = app.test_client()
    assert fresh.get("/api/v1/pipelines/", headers=auth).status_code == 200
    assert fresh.post("/api/v1/pipelines/", json={"name": "x"}, headers=auth).status_code == 403
    admin = signed_in(app, "admin", "admin-pass").get("/api/v1/me/").get_json()
    assert admin["can"]["Runs"] == {"read": True, "write": True} and admin["is_admin"] is True


def test_chinese_menus_and_locale(app: Any) -> None:
    client = signed_in(app, "uma")
    client.get("/lang/zh")
    html = client.get("/runs/").get_data(as_text=True)
    assert 'data-locale="zh"' in html and "定时调度记录" in html
    assert client.get("/api/v1/me/").get_json()["locale"] == "zh"


def test_projects_and_members(app: Any) -> None:
    admin = signed_in(app, "admin", "admin-pass")
    token = {"Authorization": "Bearer " + admin.get("/api/v1/me/").get_json()["access_token"]}
    res = admin.post("/api/v1/projects/", json={"name": "research", "description": "R&D"}, headers=token)
    assert res.status_code == 201, res.get_json()
    pid = res.get_json()["id"]
    assert admin.post("/api/v1/projects/", json={"name": "research"}, headers=token).status_code == 409
    assert admin.post("/api/v1/projects/", json={"name": "Bad Name"}, headers=token).status_code == 400
    added = admin.post(f"/api/v1/projects/{pid}/members", json={"username": "uma", "role": "member"}, headers=token)
    assert added.status_code == 200, added.get_json()
    assert (
        admin.post(
            f"/api/v1/projects/{pid}/members", json={"username": "nobody", "role": "member"}, headers=token
        ).status_code
        == 400
    )
    rows = admin.get("/api/v1/projects/", headers=token).get_json()["result"]
    research = next(p for p in rows if p["name"] == "research")
    assert [m["username"] for m in research["members"]] == ["admin", "uma"]

    uma = signed_in(app, "uma")
    uma_token = {"Authorization": "Bearer " + uma.get("/api/v1/me/").get_json()["access_token"]}
    seen = uma.get("/api/v1/projects/", headers=uma_token).get_json()["result"]
    assert [p["name"] for p in seen] == ["research"] and seen[0]["can_manage"] is False
    refused = uma.post(f"/api/v1/projects/{pid}/members", json={"username": "vic", "role": "viewer"}, headers=uma_token)
    assert refused.status_code == 403
    uid = next(m["user_id"] for m in research["members"] if m["username"] == "uma")
    assert admin.delete(f"/api/v1/projects/{pid}/members/{uid}", headers=token).status_code == 200
    assert admin.delete(f"/api/v1/projects/{pid}/members/{uid}", headers=token).status_code == 404
