"""The web side of the adversarial suite (issue 13 item 3): each finding as the attack that used to work.

Users in two projects (tests/security/conftest.py): owner, member and viewer of "sec"; outsider
owns "elsewhere"; admin. Every test is named after its finding (B2, B10-B14, B16, B17) and failed
on the main branch before the fixes. The web server's own findings (B9 slow clients, B15 large
DAGs holding a worker) are in test_web_server.py, with a real `myapp webserver`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from myapp.core.pipeline_spec import parse_pipeline
from myapp.db.pipeline_store import SpecErrors
from myapp.db.tables import Pipeline, TaskTemplate
from myapp.settings import SettingsError, load_settings
from myapp.web.app import create_app
from tests.accounts import ensure_user
from tests.integration.local_http import Script, serve
from tests.security.conftest import World, unique

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
Clients = dict[str, tuple[FlaskClient, dict[str, str]]]
# Form logins in this module stay under the limit; the limit itself is tested on an app of its own.
SETTINGS_OVERRIDES = {"login_rate_limit": "200 per minute"}
STRONG = "a-strong-Passphrase-42"


def api(client: FlaskClient, auth: dict[str, str], method: str, path: str, **kw: Any) -> Any:
    return client.open(f"/api/v1{path}", method=method, headers={**auth, **kw.pop("headers", {})}, **kw)


def csrf_token(client: FlaskClient, url: str) -> str:
    """Return the Flask-WTF token of the form at `url`."""
    page = client.get(url).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token, page[:500]
    return token.group(1)


def form_login(client: FlaskClient, user: str, password: str) -> Any:
    """Sign in through FAB's login form (with its CSRF token), as a browser does."""
    token = csrf_token(client, "/login/")
    return client.post("/login/", data={"username": user, "password": password, "csrf_token": token})


def signed_in(app: Any, user: str, password: str) -> FlaskClient:
    client = app.test_client()
    res = form_login(client, user, password)
    assert res.status_code == 302 and "/login" not in res.headers["Location"], res.get_data(as_text=True)[:300]
    return client


def api_login(client: FlaskClient, user: str, password: str, refresh: bool = False) -> dict[str, Any]:
    res = client.post(
        "/api/v1/security/login", json={"username": user, "password": password, "provider": "db", "refresh": refresh}
    )
    assert res.status_code == 200, res.get_data(as_text=True)
    return dict(res.get_json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def fresh_user(app: Any, role: str = "User") -> tuple[str, int]:
    """Create a user of its own for a test that changes passwords or ends sign-ins; return (name, id)."""
    name = unique("person")
    with app.app_context():
        user = ensure_user(app, name, role, STRONG)
        return name, int(user.id)


def role_id(app: Any, name: str) -> int:
    with app.app_context():
        return int(app.appbuilder.sm.find_role(name).id)


# ----- B2 / item 5: production mode refuses what the repository ships ------------------------------
PLACEHOLDER_SETTING = re.compile(r"(?:SECRET_KEY|PASSWORD)\s*[:=]\s*['\"]?([^'\"\s#,}]+)", re.IGNORECASE)
URL_PASSWORD = re.compile(r"://[A-Za-z0-9_.-]+:([^@\s/'\"]+)@")


def shipped_placeholders() -> set[str]:
    """Every example secret or password in docker/, config/, the docs and the README."""
    files = [
        p
        for p in (*REPO.glob("docker/**/*"), *REPO.glob("config/*"), *REPO.glob("docs/*.md"), REPO / "README.md")
        if p.is_file()
    ]
    found: set[str] = set()
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        found |= {m.group(1) for m in PLACEHOLDER_SETTING.finditer(text)}
        found |= {m.group(1) for m in URL_PASSWORD.finditer(text)}
    return {v for v in found if not v.startswith(("$", "<")) and v not in ("", "''", '""')}


def test_b2_the_repository_still_ships_placeholders_this_test_sees() -> None:
    assert {"change-me", "CHANGE-ME", "CHANGE-ME-to-a-long-random-string"} <= shipped_placeholders()


@pytest.mark.parametrize("value", sorted(shipped_placeholders()))
def test_b2_production_refuses_every_shipped_placeholder(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = {"MYAPP_HOME": str(tmp_path), "MYAPP_PRODUCTION": "true"}
    with pytest.raises(SettingsError, match=r"^MYAPP_SECRET_KEY: "):
        load_settings({**base, "MYAPP_SECRET_KEY": value})
    key = secrets.token_hex(32)
    for name in ("DATABASE_URL", "BROKER_URL"):
        scheme = "postgresql://myapp" if name == "DATABASE_URL" else "redis://default"
        with pytest.raises(SettingsError, match=rf"^MYAPP_{name}: "):
            load_settings({**base, "MYAPP_SECRET_KEY": key, f"MYAPP_{name}": f"{scheme}:{quote(value)}@db:1/x"})
    from myapp.cli.process import init_database

    settings = load_settings({**base, "MYAPP_SECRET_KEY": key})
    with pytest.raises(SystemExit) as exited:  # refused before the database is touched
        init_database(SimpleNamespace(settings=settings), admin_user="admin", admin_password=value, admin_email="a@b.c")
    assert exited.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("myapp: error: MYAPP_ADMIN_PASSWORD: ") and "\n" not in error, error


@pytest.mark.parametrize("key", ["x" * 20, "a" * 64, "ab" * 32, "0123456789abcdef" * 2])
def test_b2_production_refuses_a_weak_secret_key(key: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^MYAPP_SECRET_KEY: .*(characters|pattern|predictable)"):
        load_settings({"MYAPP_HOME": str(tmp_path), "MYAPP_PRODUCTION": "true", "MYAPP_SECRET_KEY": key})
    strong = load_settings(
        {"MYAPP_HOME": str(tmp_path), "MYAPP_PRODUCTION": "true", "MYAPP_SECRET_KEY": secrets.token_urlsafe(32)}
    )
    assert strong.production


def production(services: Any, **overrides: Any) -> Any:
    return dataclasses.replace(services.settings, production=True, secret_key=secrets.token_hex(32), **overrides)


def test_b2_an_admin_still_using_a_shipped_password_stops_a_production_start(app: Any, services: Any) -> None:
    name = unique("root")
    with app.app_context():
        sm = app.appbuilder.sm
        user = ensure_user(app, name, "Admin", "change-me")
    try:
        with pytest.raises(SettingsError, match=rf"^MYAPP_ADMIN_PASSWORD: admin user\(s\) {name} "):
            create_app(production(services), services)
    finally:
        with app.app_context():
            sm.reset_password(user.id, STRONG)
    create_app(production(services), services)  # starts once the password is replaced


# ----- B10/B11: sign-in ------------------------------------------------------------------------------
def test_b10_wrong_passwords_are_rate_limited_on_the_api_and_the_form(services: Any) -> None:
    settings = dataclasses.replace(services.settings, login_rate_limit="5 per minute")
    limited = create_app(settings, dataclasses.replace(services, settings=settings))
    limited.config.update(TESTING=True)
    name, _ = fresh_user(limited)
    client = limited.test_client()
    for _ in range(5):
        res = client.post("/api/v1/security/login", json={"username": name, "password": "guess", "provider": "db"})
        assert res.status_code == 401
    res = client.post("/api/v1/security/login", json={"username": name, "password": STRONG, "provider": "db"})
    assert res.status_code == 429 and "too many" in res.get_json()["message"]
    form = limited.test_client()
    answers = [form_login(form, name, "guess").status_code for _ in range(5)]
    assert answers == [302] * 5  # FAB's form answers a failure with a redirect
    assert form_login(form, name, STRONG).status_code == 429


def test_b11_weak_passwords_are_refused_for_new_and_changed_passwords(app: Any, clients: Clients) -> None:
    client, auth = clients["admin"]
    user = {
        "first_name": "W",
        "last_name": "P",
        "username": unique("weak"),
        "email": f"{unique('w')}@x.org",
        "roles": [role_id(app, "User")],
        "active": True,
    }
    for weak in ("1", "password", "change-me", "aaaaaaaaaaaaaaa", "short-1"):
        res = api(client, auth, "POST", "/security/users/", json={**user, "password": weak})
        assert res.status_code == 400 and "password" in json.dumps(res.get_json()), (weak, res.get_json())
    created = api(client, auth, "POST", "/security/users/", json={**user, "password": STRONG})
    assert created.status_code == 201, created.get_json()
    user_id = created.get_json()["id"]
    assert api(client, auth, "PUT", f"/security/users/{user_id}", json={"password": "1"}).status_code == 400
    assert api(client, auth, "PUT", f"/security/users/{user_id}", json={"password": STRONG + "!"}).status_code == 200


def test_b11_a_session_cookie_copied_before_logout_no_longer_works_after_it(app: Any) -> None:
    name, _ = fresh_user(app)
    browser = signed_in(app, name, STRONG)
    thief = app.test_client()
    thief.set_cookie("session", browser.get_cookie("session").value)
    assert thief.get("/api/v1/me/").status_code == 200  # the copy works while the session lives
    token = thief.get("/api/v1/me/").get_json()["access_token"]  # and hands out API tokens
    browser.get("/logout/")
    assert thief.get("/api/v1/me/").status_code == 401
    assert thief.get("/pipelines/").status_code == 302  # back to the login page
    assert app.test_client().get("/api/v1/pipelines/", headers=bearer(token)).status_code == 401
    assert signed_in(app, name, STRONG).get("/api/v1/me/").status_code == 200  # signing in again works


def test_b11_a_password_change_ends_every_other_session_and_token(app: Any, clients: Clients) -> None:
    name, user_id = fresh_user(app)
    tokens = api_login(app.test_client(), name, STRONG, refresh=True)
    browser = signed_in(app, name, STRONG)
    other = app.test_client()
    assert other.get("/api/v1/pipelines/", headers=bearer(tokens["access_token"])).status_code == 200
    admin, admin_auth = clients["admin"]
    changed = api(admin, admin_auth, "PUT", f"/security/users/{user_id}", json={"password": STRONG + "-new"})
    assert changed.status_code == 200
    assert other.get("/api/v1/pipelines/", headers=bearer(tokens["access_token"])).status_code == 401
    assert other.post("/api/v1/security/refresh", headers=bearer(tokens["refresh_token"])).status_code == 401
    assert browser.get("/api/v1/me/").status_code == 401
    assert api_login(other, name, STRONG + "-new")["access_token"]


def test_b11_changing_your_own_password_keeps_you_signed_in_and_ends_your_other_sessions(app: Any) -> None:
    name, _ = fresh_user(app, "Admin")  # FAB's "reset my password" page is an admin's
    here, there = signed_in(app, name, STRONG), signed_in(app, name, STRONG)
    weak = here.post(
        "/resetmypassword/form",
        data={"password": "1", "conf_password": "1", "csrf_token": csrf_token(here, "/resetmypassword/form")},
    )
    assert weak.status_code == 200 and "at least 12 characters" in weak.get_data(as_text=True)
    assert there.get("/api/v1/me/").status_code == 200  # nothing changed
    new = STRONG + "-mine"
    changed = here.post(
        "/resetmypassword/form",
        data={"password": new, "conf_password": new, "csrf_token": csrf_token(here, "/resetmypassword/form")},
    )
    assert changed.status_code == 302
    assert here.get("/api/v1/me/").status_code == 200
    assert there.get("/api/v1/me/").status_code == 401
    assert api_login(app.test_client(), name, new)["access_token"]


def test_b11_logout_revokes_the_refresh_token_of_that_login_only(app: Any) -> None:
    name, _ = fresh_user(app)
    client = app.test_client()
    first, second = api_login(client, name, STRONG, refresh=True), api_login(client, name, STRONG, refresh=True)
    refreshed = client.post("/api/v1/security/refresh", headers=bearer(first["refresh_token"]))
    assert refreshed.status_code == 200
    assert client.post("/api/v1/me/logout", headers=bearer(first["refresh_token"])).status_code == 200
    for token in (first["access_token"], refreshed.get_json()["access_token"]):
        assert client.get("/api/v1/pipelines/", headers=bearer(token)).status_code == 401
    assert client.post("/api/v1/security/refresh", headers=bearer(first["refresh_token"])).status_code == 401
    assert client.get("/api/v1/pipelines/", headers=bearer(second["access_token"])).status_code == 200


def test_b11_refresh_tokens_live_hours_not_a_month(app: Any) -> None:
    import jwt

    name, _ = fresh_user(app)
    tokens = api_login(app.test_client(), name, STRONG, refresh=True)
    for kind, most in (("refresh_token", 12 * 3600), ("access_token", 15 * 60)):
        claims = jwt.decode(tokens[kind], options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] <= most, (kind, claims)


def test_b11_production_session_cookies_are_secure_http_only_and_same_site(services: Any) -> None:
    prod = create_app(production(services), services)
    prod.config.update(WTF_CSRF_ENABLED=False)
    name, _ = fresh_user(prod)
    res = prod.test_client().post("/login/", data={"username": name, "password": STRONG})
    cookie = next(c for c in res.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie


# ----- B12: cross-site writes with the session cookie ---------------------------------------------
def pending_template(clients: Clients, project: str = "sec", as_user: str = "member") -> int:
    client, auth = clients[as_user]
    body = {"template": {"name": unique("tool"), "version": "1", "command": ["true"]}, "project": project}
    res = api(client, auth, "POST", "/user_templates/", json=body)
    assert res.status_code == 201, res.get_json()
    tid = int(res.get_json()["result"]["id"])
    assert api(client, auth, "POST", f"/user_templates/{tid}/submit").status_code == 200
    return tid


def template_status(services: Any, tid: int) -> str:
    with services.db.read() as s:
        return str(s.scalar(select(TaskTemplate.status).where(TaskTemplate.id == tid)))


def test_b12_a_cookie_authenticated_write_from_another_site_is_refused(
    app: Any, clients: Clients, services: Any
) -> None:
    tid = pending_template(clients)
    owner = signed_in(app, "owner", "owner-pass")
    forged = {"data": '{"scope": "project"}', "content_type": "text/plain"}
    for headers in ({"Origin": "http://evil.example"}, {"Referer": "http://evil.example/page"}, {}):
        res = owner.post(f"/api/v1/user_templates/{tid}/approve", headers=headers, **forged)
        assert res.status_code == 403 and "cross-site" in res.get_json()["message"], headers
    assert template_status(services, tid) == "pending"
    res = owner.post(
        f"/api/v1/user_templates/{tid}/approve", headers={"Origin": "http://localhost"}, json={"scope": "project"}
    )  # the pages themselves still work
    assert res.status_code == 200 and template_status(services, tid) == "published"
    other = pending_template(clients)
    client, auth = clients["owner"]  # a bearer client is not a browser: unaffected
    res = api(
        client,
        auth,
        "POST",
        f"/user_templates/{other}/approve",
        json={"scope": "project"},
        headers={"Origin": "http://evil.example"},
    )
    assert res.status_code == 200


# ----- B13: template approval -----------------------------------------------------------------------
def test_b13_nobody_approves_a_template_they_submitted(clients: Clients, services: Any) -> None:
    tid = pending_template(clients, as_user="owner")
    client, auth = clients["owner"]
    res = api(client, auth, "POST", f"/user_templates/{tid}/approve", json={"scope": "project"})
    assert res.status_code == 403 and "another reviewer" in res.get_json()["message"]
    assert template_status(services, tid) == "pending"
    admin, admin_auth = clients["admin"]
    assert (
        api(admin, admin_auth, "POST", f"/user_templates/{tid}/approve", json={"scope": "project"}).status_code == 200
    )


def test_b13_a_single_admin_install_may_allow_self_approval(services: Any) -> None:
    settings = dataclasses.replace(services.settings, template_self_approval=True)
    alone = create_app(settings, dataclasses.replace(services, settings=settings))
    client = alone.test_client()
    auth = bearer(api_login(client, "owner", "owner-pass")["access_token"])
    body = {"template": {"name": unique("solo"), "version": "1", "command": ["true"]}, "project": "sec"}
    tid = api(client, auth, "POST", "/user_templates/", json=body).get_json()["result"]["id"]
    api(client, auth, "POST", f"/user_templates/{tid}/submit")
    assert api(client, auth, "POST", f"/user_templates/{tid}/approve", json={"scope": "project"}).status_code == 200


def test_b13_the_reviewer_chooses_the_publication_scope(clients: Clients, world: World) -> None:
    tid = pending_template(clients)
    owner, owner_auth = clients["owner"]
    name = api(owner, owner_auth, "GET", f"/user_templates/{tid}").get_json()["result"]["name"]
    assert api(owner, owner_auth, "POST", f"/user_templates/{tid}/approve").status_code == 400
    assert api(owner, owner_auth, "POST", f"/user_templates/{tid}/approve", json={"scope": "all"}).status_code == 403
    assert (
        api(owner, owner_auth, "POST", f"/user_templates/{tid}/approve", json={"scope": "project"}).status_code == 200
    )
    outsider, outsider_auth = clients["outsider"]
    assert api(outsider, outsider_auth, "GET", f"/user_templates/{tid}").status_code == 404
    listed = {t["name"] for t in api(outsider, outsider_auth, "GET", "/templates/").get_json()["result"]}
    assert name not in listed
    uses = {"tasks": [{"name": "a", "template": f"{name}@1"}]}
    refused = api(
        outsider, outsider_auth, "POST", "/pipelines/", json={"name": unique("p"), "project": "elsewhere", **uses}
    )
    assert refused.status_code == 400 and name in refused.get_json()["message"]
    member, member_auth = clients["member"]
    assert name in {t["name"] for t in api(member, member_auth, "GET", "/templates/").get_json()["result"]}
    assert world.call("POST", "/pipelines/", json={"name": unique("p"), "project": "sec", **uses}).status_code == 200


# ----- B14: hostile input is a 4xx, never a 500 -----------------------------------------------------
def nul_cases(world: World) -> list[tuple[str, str, dict[str, Any]]]:
    pid, sec = world.pipeline(cron=None), world.project_id("sec")
    return [
        ("GET", "/runs/?state=a%00b", {}),
        ("GET", "/runs/?trigger=%00", {}),
        ("GET", "/user_templates/?status=draft%00", {}),
        ("GET", "/pipelines/%00/export", {}),
        (
            "POST",
            "/pipelines/",
            {
                "json": {
                    "name": unique("n"),
                    "project": "sec",
                    "description": "a\x00b",
                    "tasks": [{"name": "a", "template": "shell", "args": {"script": "true"}}],
                }
            },
        ),
        (
            "POST",
            "/pipelines/",
            {
                "data": f'name: {unique("n")}\nproject: sec\ndescription: "a\\0b"\ntasks: []\n',
                "content_type": "application/yaml",
            },
        ),
        ("POST", "/pipelines/", {"data": b"name: x\x00\n", "content_type": "application/yaml"}),
        ("POST", f"/pipelines/{pid}/runs", {"json": {"params": {"who": "x\x00"}}}),
        ("POST", f"/projects/{sec}/members", {"json": {"username": "a\x00b", "role": "viewer"}}),
        ("POST", "/projects/", {"json": {"name": unique("p"), "description": "\x00"}}),
        (
            "POST",
            "/user_templates/",
            {
                "json": {
                    "template": {"name": unique("t"), "version": "1", "command": ["true"], "description": "\x00"},
                    "project": "sec",
                }
            },
        ),
        ("POST", "/security/login", {"json": {"username": "admin\x00", "password": "x", "provider": "db"}}),
    ]


def test_b14_nul_characters_are_a_4xx_everywhere(world: World, app: Any, services: Any) -> None:
    cases = nul_cases(world)
    before = pipeline_count(services)
    for method, path, kw in cases:
        res = world.call(method, path, **kw)
        assert 400 <= res.status_code < 500, (method, path, res.status_code, res.get_data(as_text=True)[:200])
        assert "NUL" in res.get_data(as_text=True), (method, path)
    res = app.test_client().post("/login/", data={"username": "a\x00b", "password": "x"})
    assert 400 <= res.status_code < 500
    assert pipeline_count(services) == before


def pipeline_count(services: Any) -> int:
    with services.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(Pipeline)))


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def test_b14_json_nested_100000_deep_is_a_400(world: World) -> None:
    body = "[" * 100_000 + "]" * 100_000
    for path in ("/pipelines/", "/pipelines/validate", "/user_templates/", "/projects/"):
        res = world.call("POST", path, data=body, content_type="application/json")
        assert res.status_code == 400 and "deeper than 64" in res.get_json()["message"], path


def nested_object(depth: int) -> Any:
    value: Any = {"k": "v"}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


def test_b14_a_json_pipeline_too_deep_to_export_is_never_stored(world: World, services: Any) -> None:
    def pipeline(depth: int) -> dict[str, Any]:  # the http template's `headers` is a JSON parameter
        args = {"url": "https://example.com/", "headers": nested_object(depth)}
        return {"name": unique("deep"), "project": "sec", "tasks": [{"name": "a", "template": "http", "args": args}]}

    before = pipeline_count(services)
    assert world.call("POST", "/pipelines/", json=pipeline(600)).status_code == 400
    for depth in (62, 61):  # 61 levels of headers + 3 above them: one more than the 64 YAML reads back
        res = world.call("POST", "/pipelines/", json=pipeline(depth))
        assert res.status_code == 400 and "64" in res.get_json()["message"], res.get_json()
        with pytest.raises(SpecErrors, match=r"tasks\[a\]\.args.*64 levels"):  # not only at the request
            services.pipelines.save(parse_pipeline(pipeline(depth)), services.clock.now())
    assert pipeline_count(services) == before
    saved = world.call("POST", "/pipelines/", json=pipeline(59))
    assert saved.status_code == 200
    exported = world.call("GET", f"/pipelines/{saved.get_json()['id']}/export")
    assert exported.status_code == 200
    reimported = world.call("POST", "/pipelines/validate", data=exported.get_data(), content_type="application/yaml")
    assert reimported.status_code == 200, reimported.get_json()


def test_b14_a_too_deep_definition_stored_before_the_limit_exports_as_a_400(world: World, services: Any) -> None:
    from myapp.db.tables import PipelineVersion

    pid = world.pipeline(cron=None)
    with services.db.write() as s:  # as a version saved by an older release could be
        version = s.scalar(
            select(PipelineVersion)
            .join(Pipeline, Pipeline.current_version_id == PipelineVersion.id)
            .where(Pipeline.id == pid)
        )
        spec = dict(version.spec)
        spec["tasks"] = [
            {
                **spec["tasks"][0],
                "template": "http@1",
                "args": {"url": "https://example.com/", "headers": nested_object(600)},
            }
        ]
        version.spec = spec
    res = world.call("GET", f"/pipelines/{pid}/export")
    assert res.status_code == 400 and "64 levels" in res.get_json()["message"], res.get_data(as_text=True)[:200]


@pytest.mark.parametrize("start", ["9999-12-31T23:59:59", "0001-01-01T00:00:00"])
def test_b14_far_future_and_far_past_dates_are_a_400(world: World, start: str) -> None:
    pid = world.pipeline(cron="0 3 * * *")
    for now in (start, start + "+14:00"):
        res = world.call("GET", f"/schedules/preview/{pid}", query_string={"now": now})
        assert res.status_code == 400 and "out of range" in res.get_json()["message"], res.get_data(as_text=True)
    yaml_text = (
        f"name: {unique('far')}\nproject: sec\nschedule: {{type: crontab, cron: '0 3 * * *', "
        f"start_time: '{start}'}}\ntasks:\n  - {{name: a, template: shell, args: {{script: 'true'}}}}\n"
    )
    res = world.call("POST", "/pipelines/", data=yaml_text, content_type="application/yaml")
    assert res.status_code == 400 and res.get_json()["errors"][0]["field"] == "schedule.start_time"


# ----- B16: webhooks never reach this machine or private networks ---------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/api/v1/projects/",
        "http://localhost/x",
        "http://10.1.2.3/",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[fd00::1]/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
        "http://app.localhost/",
    ],
)
def test_b16_a_webhook_to_an_internal_address_is_refused_at_save(world: World, url: str) -> None:
    body = {
        "name": unique("hook"),
        "project": "sec",
        "alerts": {"webhooks": [url], "on": ["failed"]},
        "tasks": [{"name": "a", "template": "shell", "args": {"script": "exit 1"}}],
    }
    res = world.call("POST", "/pipelines/", json=body)
    assert res.status_code == 400 and res.get_json()["errors"][0]["field"] == "alerts.webhooks", res.get_json()


@pytest.fixture()
def receiver() -> Iterator[tuple[str, Script]]:
    script = Script(answers={"/hook": [(200, "ok")]})
    with serve(script) as base:
        yield base, script


def test_b16_a_name_resolving_to_a_private_address_is_refused_when_sent(
    world: World, services: Any, receiver: tuple[str, Script]
) -> None:
    from myapp.alerts.delivery import deliver_alerts
    from myapp.cli.process import run_burst
    from myapp.db.schedule_tables import AlertOutbox

    base, script = receiver
    port = base.rsplit(":", 1)[1]
    host = socket.gethostname()  # a name, not an address: it passes the save-time check
    addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    from myapp.core.webhook_policy import address_problem

    if not all(address_problem(a) for a in addresses):
        pytest.skip(f"{host} resolves to a public address here: {addresses}")
    body = {
        "name": unique("hook"),
        "project": "sec",
        "alerts": {"webhooks": [f"http://{host}:{port}/hook"], "on": ["failed"]},
        "tasks": [{"name": "a", "template": "shell", "args": {"script": "exit 1"}}],
    }
    saved = world.call("POST", "/pipelines/", json=body)
    assert saved.status_code == 200, saved.get_json()
    run_id = world.run(saved.get_json()["id"])
    run_burst(services, 1)
    with services.db.read() as s:
        row = s.scalar(select(AlertOutbox).where(AlertOutbox.run_id == run_id))
    assert row is not None
    deliver_alerts(services, row.next_attempt_at)
    with services.db.read() as s:
        row = s.scalar(select(AlertOutbox).where(AlertOutbox.run_id == run_id))
    assert (row.status, row.attempts) == ("failed", 1) and row.last_error.startswith("refused: "), row.last_error
    assert script.requests == []


def test_b16_the_request_goes_to_the_address_that_was_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the name answers an allowed address to the check, then another one; the POST
    still goes to the checked address, and the name is resolved once."""
    from myapp.alerts.webhook_http import post_checked
    from myapp.core.webhook_policy import parse_networks

    first, second = Script(answers={"/hook": [(204, "")]}), Script(answers={"/hook": [(204, "")]})
    with serve(first) as base:
        port = int(base.rsplit(":", 1)[1])
        with serve_on("127.0.0.2", port, second):  # the same port on the address DNS turns to
            real = socket.getaddrinfo
            asked: list[str] = []

            def rebinding(host: Any, *args: Any, **kw: Any) -> Any:
                if host != "rebind.test":
                    return real(host, *args, **kw)
                asked.append(host)
                return real("127.0.0.1" if len(asked) == 1 else "127.0.0.2", *args, **kw)

            monkeypatch.setattr(socket, "getaddrinfo", rebinding)
            status = post_checked(f"http://rebind.test:{port}/hook", b"{}", 5.0, parse_networks("127.0.0.0/8"))
    assert status == 204 and asked == ["rebind.test"]
    assert len(first.requests) == 1 and second.requests == []
    assert first.requests[0][3]["Host"] == f"rebind.test:{port}"


class serve_on:  # noqa: N801  a context manager like local_http.serve, on a chosen address
    def __init__(self, address: str, port: int, script: Script) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                status, text = script.answer("POST", self.path, self.rfile.read(length).decode(), dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((address, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> serve_on:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# ----- B17: headers, echoed passwords, existence leaks ----------------------------------------------
def test_b17_pages_and_answers_carry_security_headers(app: Any) -> None:
    browser = signed_in(app, "member", "member-pass")
    page = browser.get("/pipelines/")
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, csp
    nonce = re.search(r"script-src 'self' 'nonce-([^']+)'", csp)
    assert nonce and f'nonce="{nonce.group(1)}"' in page.get_data(as_text=True)
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    for res in (page, browser.get("/api/v1/me/"), app.test_client().get("/login/")):
        assert res.headers["X-Content-Type-Options"] == "nosniff"
        assert res.headers["X-Frame-Options"] == "DENY"
        assert res.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_b17_changing_a_password_does_not_echo_it(app: Any, clients: Clients) -> None:
    _, user_id = fresh_user(app)
    client, auth = clients["admin"]
    secret = "an-echo-Test-password-77"
    res = api(client, auth, "PUT", f"/security/users/{user_id}", json={"password": secret, "first_name": "E"})
    assert res.status_code == 200 and secret not in res.get_data(as_text=True), res.get_data(as_text=True)
    assert res.get_json()["result"] == {"first_name": "E"}


def test_b17_a_project_you_are_not_in_looks_missing(world: World, clients: Clients) -> None:
    outsider, auth = clients["outsider"]
    sec = world.project_id("sec")
    member = {"username": "zed", "role": "viewer"}
    real = api(outsider, auth, "POST", f"/projects/{sec}/members", json=member)
    missing = api(outsider, auth, "POST", "/projects/987654/members", json=member)
    assert real.status_code == missing.status_code == 404
    assert real.get_json()["message"].replace(str(sec), "N") == missing.get_json()["message"].replace("987654", "N")
    template = {"name": unique("t"), "version": "1", "command": ["true"]}
    real = api(outsider, auth, "POST", "/user_templates/", json={"template": template, "project": "sec"})
    missing = api(outsider, auth, "POST", "/user_templates/", json={"template": template, "project": "nope-xyz"})
    assert real.status_code == missing.status_code == 404
    assert real.get_json()["message"].replace("sec", "N") == missing.get_json()["message"].replace("nope-xyz", "N")
