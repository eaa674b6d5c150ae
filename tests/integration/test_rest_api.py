"""The REST API through Flask's test client: auth, pipelines, runs, logs, errors as clean 4xx."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from myapp.cli.process import run_burst
from myapp.web.app import create_app
from tests.integration.engine_helpers import slice_fails_until

pytestmark = pytest.mark.integration

PIPELINE = """
name: api-demo
parameters:
  - {name: who, default: world}
tasks:
  - name: hello
    template: shell
    args: {script: 'echo "hello $who"'}
    inputs: {who: {from: params.who}}
  - name: after
    template: shell
    args: {script: 'echo done'}
    depends_on: [hello]
"""


@pytest.fixture(scope="module")
def app(services: Any) -> Any:
    application = create_app(services.settings, services)
    application.config["TESTING"] = True
    with application.app_context():
        sm = application.appbuilder.sm  # type: ignore[attr-defined]
        if sm.find_user(username="viewer") is None:
            sm.add_user("viewer", "V", "V", "viewer@x.y", sm.find_role("Viewer"), "viewer-pass")
    return application


def token(client: FlaskClient, user: str, password: str) -> dict[str, str]:
    res = client.post("/api/v1/security/login", json={"username": user, "password": password, "provider": "db"})
    assert res.status_code == 200, res.get_data(as_text=True)
    return {"Authorization": f"Bearer {res.get_json()['access_token']}"}


@pytest.fixture(scope="module")
def admin(app: Any) -> tuple[FlaskClient, dict[str, str]]:
    client = app.test_client()
    return client, token(client, "admin", "admin-pass")


def test_anonymous_is_refused(app: Any) -> None:
    client = app.test_client()
    assert client.get("/api/v1/pipelines/").status_code == 401
    assert client.get("/api/v1/runs/").status_code == 401


def test_save_list_get_export_versions(admin: tuple[FlaskClient, dict[str, str]]) -> None:
    client, auth = admin
    res = client.post("/api/v1/pipelines/", data=PIPELINE, headers={**auth, "Content-Type": "application/yaml"})
    assert res.status_code == 200, res.get_json()
    pid = res.get_json()["id"]
    again = client.post("/api/v1/pipelines/", data=PIPELINE, headers={**auth, "Content-Type": "application/yaml"})
    assert again.get_json()["changed"] is False
    listed = client.get("/api/v1/pipelines/", headers=auth).get_json()["result"]
    assert any(p["name"] == "api-demo" for p in listed)
    got = client.get(f"/api/v1/pipelines/{pid}", headers=auth).get_json()
    assert got["definition"]["tasks"][0]["template"] == "shell@1"
    exported = client.get(f"/api/v1/pipelines/{pid}/export", headers=auth)
    assert exported.status_code == 200 and "name: api-demo" in exported.get_data(as_text=True)
    body = got["definition"] | {"description": "edited"}
    assert client.post("/api/v1/pipelines/", json=body, headers=auth).get_json()["version"] == 2
    versions = client.get(f"/api/v1/pipelines/{pid}/versions", headers=auth).get_json()["result"]
    assert [v["number"] for v in versions] == [2, 1]


@pytest.mark.parametrize(
    "body,field",
    [
        ({"name": "x", "tasks": [{"name": "a", "template": "missing"}]}, "tasks[a].template"),
        (
            {"name": "x", "tasks": [{"name": "a", "template": "shell", "args": {"script": 1, "bogus": 2}}]},
            "tasks[a].args",
        ),
        ({"name": "NOPE", "tasks": []}, "name"),
        ({"name": "x", "schedule": {"type": "crontab", "cron": "0 0 30 2 *"}}, "schedule.cron"),
        (["not", "a", "mapping"], "body"),
    ],
)
def test_invalid_pipelines_are_400_with_fields(
    admin: tuple[FlaskClient, dict[str, str]], body: Any, field: str
) -> None:
    client, auth = admin
    for url in ("/api/v1/pipelines/", "/api/v1/pipelines/validate"):
        res = client.post(url, json=body, headers=auth)
        assert res.status_code == 400, res.get_data(as_text=True)
        errors = res.get_json()["errors"]
        assert any(e["field"].startswith(field) for e in errors), errors


def test_malformed_yaml_is_400(admin: tuple[FlaskClient, dict[str, str]]) -> None:
    client, auth = admin
    res = client.post("/api/v1/pipelines/", data="{{{", headers={**auth, "Content-Type": "application/yaml"})
    assert res.status_code == 400 and "message" in res.get_json()


def test_run_lifecycle_over_the_api(admin: tuple[FlaskClient, dict[str, str]], services: Any) -> None:
    client, auth = admin
    pid = client.post(
        "/api/v1/pipelines/", data=PIPELINE, headers={**auth, "Content-Type": "application/yaml"}
    ).get_json()["id"]
    bad = client.post(f"/api/v1/pipelines/{pid}/runs", json={"params": {"nope": 1}}, headers=auth)
    assert bad.status_code == 400
    res = client.post(f"/api/v1/pipelines/{pid}/runs", json={"params": {"who": "api"}}, headers=auth)
    assert res.status_code == 201
    run_id = res.get_json()["id"]
    run_burst(services, 2)
    run = client.get(f"/api/v1/runs/{run_id}", headers=auth).get_json()["result"]
    assert run["state"] == "succeeded" and run["params"] == {"who": "api"} and run["runner"] == "admin"
    logs = client.get(f"/api/v1/runs/{run_id}/logs?task=hello", headers=auth).get_json()
    assert "hello api\n" in logs["lines"] and logs["finished"] is True
    tail = client.get(f"/api/v1/runs/{run_id}/logs?task=hello&offset={logs['offset']}", headers=auth).get_json()
    assert tail["lines"] == []
    assert client.post(f"/api/v1/runs/{run_id}/stop", headers=auth).status_code == 409
    assert client.post(f"/api/v1/runs/{run_id}/retry", headers=auth).status_code == 409
    assert client.post(f"/api/v1/runs/{run_id}/mark", json={"state": "bogus"}, headers=auth).status_code == 400
    assert client.post(f"/api/v1/runs/{run_id}/mark", json={"state": "failed"}, headers=auth).status_code == 200
    copy = client.post(f"/api/v1/runs/{run_id}/copy", json={"params": {"who": "copy"}}, headers=auth)
    assert copy.status_code == 201
    listed = client.get(f"/api/v1/runs/?pipeline_id={pid}", headers=auth).get_json()["result"]
    assert listed[0]["id"] == copy.get_json()["id"] and listed[0]["params"] == {"who": "copy"}
    assert client.get("/api/v1/runs/999999", headers=auth).status_code == 404
    assert client.get(f"/api/v1/runs/{run_id}/logs?task=nope", headers=auth).status_code == 404


def test_debug_run_over_the_api(admin: tuple[FlaskClient, dict[str, str]], services: Any) -> None:
    client, auth = admin
    pid = client.post(
        "/api/v1/pipelines/", data=PIPELINE, headers={**auth, "Content-Type": "application/yaml"}
    ).get_json()["id"]
    res = client.post(
        f"/api/v1/pipelines/{pid}/runs", json={"debug_task": "hello", "inputs": {"who": "dbg"}}, headers=auth
    )
    assert res.status_code == 201
    run_burst(services, 1)
    run = client.get(f"/api/v1/runs/{res.get_json()['id']}", headers=auth).get_json()["result"]
    assert run["trigger"] == "debug" and [t["name"] for t in run["tasks"]] == ["hello"] and run["state"] == "succeeded"


def test_one_failed_slice_is_retried_over_the_api(
    app: Any, admin: tuple[FlaskClient, dict[str, str]], services: Any, tmp_path: Any
) -> None:
    client, auth = admin
    flag = tmp_path / "fixed"
    pipeline = slice_fails_until("api-slice-retry", flag)
    pid = client.post(
        "/api/v1/pipelines/", data=pipeline, headers={**auth, "Content-Type": "application/yaml"}
    ).get_json()["id"]
    run_id = client.post(f"/api/v1/pipelines/{pid}/runs", json={}, headers=auth).get_json()["id"]
    run_burst(services, 2)
    run = client.get(f"/api/v1/runs/{run_id}", headers=auth).get_json()["result"]
    assert run["state"] == "failed", run
    url = f"/api/v1/runs/{run_id}/slices/train%5B1%5D/retry"
    assert client.post(url).status_code == 401
    assert client.post(url, headers=token(client, "viewer", "viewer-pass")).status_code == 403
    for other, code, words in [
        ("train%5B0%5D", 409, "is succeeded"),
        ("train", 409, "not a slice"),
        ("train%5B9%5D", 404, "not found"),
    ]:
        res = client.post(f"/api/v1/runs/{run_id}/slices/{other}/retry", headers=auth)
        assert res.status_code == code and words in res.get_json()["message"], (other, res.get_json())
    flag.write_text("")
    res = client.post(url, headers=auth)
    assert res.status_code == 200 and res.get_json()["task"] == "train[1]", res.get_json()
    run_burst(services, 2)
    run = client.get(f"/api/v1/runs/{run_id}", headers=auth).get_json()["result"]
    tries = {t["name"]: [a["try_number"] for a in t["attempts"]] for t in run["tasks"]}
    assert run["state"] == "succeeded" and tries["train[1]"] == [1, 2] and tries["train[0]"] == [1], run


def test_viewer_reads_but_cannot_write(app: Any) -> None:
    client = app.test_client()
    auth = token(client, "viewer", "viewer-pass")
    assert client.get("/api/v1/pipelines/", headers=auth).status_code == 200
    assert (
        client.post(
            "/api/v1/pipelines/", data=PIPELINE, headers={**auth, "Content-Type": "application/yaml"}
        ).status_code
        == 403
    )
    assert client.post("/api/v1/runs/1/stop", headers=auth).status_code == 403


def test_me_accepts_the_jwt_like_every_other_endpoint(app: Any) -> None:
    client = app.test_client()
    auth = token(client, "viewer", "viewer-pass")
    res = client.get("/api/v1/me/", headers=auth)
    assert res.status_code == 200, res.get_data(as_text=True)
    me = res.get_json()
    assert me["username"] == "viewer" and me["roles"] == ["Viewer"] and me["is_admin"] is False
    assert me["can"]["Runs"] == {"read": True, "write": False}
    assert "access_token" not in me, "a JWT must not renew itself through /me/"
    assert client.get("/api/v1/me/").status_code == 401
    assert client.get("/api/v1/me/", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    admin_auth = token(client, "admin", "admin-pass")
    assert client.get("/api/v1/me/", headers=admin_auth).get_json()["is_admin"] is True


def test_openapi_document_lists_the_api(admin: tuple[FlaskClient, dict[str, str]]) -> None:
    client, auth = admin
    doc = client.get("/api/v1/_openapi", headers=auth)
    assert doc.status_code == 200
    paths = doc.get_json()["paths"]
    for path in (
        "/api/v1/pipelines/",
        "/api/v1/pipelines/{pk}/runs",
        "/api/v1/runs/{pk}/retry",
        "/api/v1/runs/{pk}/slices/{name}/retry",
        "/api/v1/runs/{pk}/logs",
    ):
        assert path in paths, sorted(paths)
