"""Who may call which REST endpoint, generated from the app's own OpenAPI document (issue 7 item 3).

Every (path, method) under /api/v1, except Flask-AppBuilder's own security and menu endpoints,
must have an entry in EXPECTED: a new endpoint without one fails `test_matrix`. Each entry says how
to build a fresh object for one call (as the admin, or as the member for user templates) and the
status code each role gets. Project rules (myapp/core/authz.py): admin everything; owner and member
read, write and run in their project; viewer reads only; a user of another project gets 404 (no leak of
existence) and filtered lists; anonymous 401. FAB roles still gate by resource ("readonly" is a project
member whose FAB role is Viewer: reads pass, writes are 403).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from myapp.db.tables import Pipeline, Project, Run, TaskInstance
from tests.security.conftest import ROLES, World, pipeline_yaml, unique

pytestmark = pytest.mark.integration
Clients = dict[str, tuple[FlaskClient, dict[str, str]]]
Request = tuple[str, dict[str, Any]]  # path under /api/v1, keyword arguments of client.open
Setup = Callable[[World, Clients], Request]
SKIPPED_PREFIXES = ("/api/v1/security/", "/api/v1/menu/", "/api/{version}/")


def row(
    admin: int, owner: int, member: int, viewer: int, outsider: int, readonly: int, anonymous: int = 401
) -> dict[str, int]:
    return dict(zip(ROLES, (admin, owner, member, viewer, outsider, readonly, anonymous), strict=True))


EVERYONE = row(200, 200, 200, 200, 200, 200)
READ = row(200, 200, 200, 200, 404, 200)


def write(ok: int) -> dict[str, int]:
    """Write/run on an object of project "sec": viewer 403, readonly 403 (FAB), outsider 404."""
    return row(ok, ok, ok, 403, 404, 403)


def template_body(name: str, project: str | None = "sec") -> dict[str, Any]:
    return {"template": {"name": name, "version": "1", "image": "busybox", "command": ["true"]}, "project": project}


def user_template(world: World, clients: Clients, *, submit: bool) -> int:
    """Create (and submit) a template of project "sec" as its member."""
    client, auth = clients["member"]
    res = client.post("/api/v1/user_templates/", json=template_body(unique("tool")), headers=auth)
    assert res.status_code == 201, res.get_json()
    tid = int(res.get_json()["result"]["id"])
    if submit:
        assert client.post(f"/api/v1/user_templates/{tid}/submit", headers=auth).status_code == 200
    return tid


def artifact(world: World, clients: Clients) -> Request:
    """A run of project "sec" whose task `hello` has a file output `out` in the artifact store."""
    run_id = world.run()
    path = world.services.settings.artifacts_dir / str(run_id) / "hello" / "1" / "out" / "out.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("hi")
    with world.services.db.write() as s:
        ti = s.scalar(select(TaskInstance).where(TaskInstance.run_id == run_id, TaskInstance.task_name == "hello"))
        ti.outputs = {"out": {"type": "file", "path": str(path)}}
    return f"/runs/{run_id}/artifacts/hello/out", {}


def stopped_slice(world: World, clients: Clients) -> Request:
    """A stopped run of project "sec" whose task `hello` is sliced in two: its slice hello[0] may be retried."""
    yaml = (
        f"name: {unique('sliced')}\nproject: sec\ntasks:\n  - name: hello\n    template: shell\n"
        "    args: {script: 'echo \"$who\"'}\n    inputs: {who: [a, b]}\n    slices: {inputs: [who]}\n"
    )
    res = world.call("POST", "/pipelines/", data=yaml, headers={"Content-Type": "application/yaml"})
    assert res.status_code == 200, res.get_json()
    run_id = world.run(int(res.get_json()["id"]), stopped=True)
    return f"/runs/{run_id}/slices/hello[0]/retry", {}


def fixed(path: str, **kw: Any) -> Setup:
    return lambda world, clients: (path, kw)


EXPECTED: dict[tuple[str, str], tuple[Setup, dict[str, int]]] = {
    # /me/ accepts the session or a JWT like every endpoint (it hands a new JWT to a session only).
    ("/api/v1/me/", "get"): (fixed("/me/"), EVERYONE),
    # Signing out ends the caller's own login: each role signs in again first (own_login).
    ("/api/v1/me/logout", "post"): (fixed("/me/logout", own_login=True), EVERYONE),
    ("/api/v1/pipelines/", "get"): (fixed("/pipelines/"), EVERYONE),
    ("/api/v1/pipelines/", "post"): (
        lambda w, c: ("/pipelines/", {"data": pipeline_yaml(unique("new")), "content_type": "application/yaml"}),
        row(200, 200, 200, 403, 403, 403),
    ),
    ("/api/v1/pipelines/validate", "post"): (
        lambda w, c: ("/pipelines/validate", {"data": pipeline_yaml("v"), "content_type": "application/yaml"}),
        EVERYONE,
    ),
    ("/api/v1/pipelines/{pk}", "get"): (lambda w, c: (f"/pipelines/{w.pipeline()}", {}), READ),
    ("/api/v1/pipelines/{pk}/export", "get"): (lambda w, c: (f"/pipelines/{w.pipeline()}/export", {}), READ),
    ("/api/v1/pipelines/{pk}/versions", "get"): (lambda w, c: (f"/pipelines/{w.pipeline()}/versions", {}), READ),
    ("/api/v1/pipelines/{pk}/runs", "post"): (
        lambda w, c: (f"/pipelines/{w.pipeline()}/runs", {"json": {"params": {"who": "x"}}}),
        write(201),
    ),
    ("/api/v1/overview/pipelines", "get"): (fixed("/overview/pipelines"), EVERYONE),
    ("/api/v1/overview/pipelines/{pk}/grid", "get"): (
        lambda w, c: (f"/overview/pipelines/{w.pipeline()}/grid", {}),
        READ,
    ),
    ("/api/v1/overview/pipelines/{pk}/debug_inputs", "get"): (
        lambda w, c: (f"/overview/pipelines/{w.pipeline()}/debug_inputs", {"query_string": {"task": "hello"}}),
        READ,
    ),
    ("/api/v1/overview/pipelines/{pk}/schedule", "post"): (
        lambda w, c: (f"/overview/pipelines/{w.pipeline()}/schedule", {"json": {"enabled": False}}),
        write(200),
    ),
    ("/api/v1/projects/", "get"): (fixed("/projects/"), EVERYONE),
    ("/api/v1/projects/", "post"): (
        lambda w, c: ("/projects/", {"json": {"name": unique("proj")}}),
        row(201, 403, 403, 403, 403, 403),
    ),
    ("/api/v1/projects/{pk}/members", "post"): (
        lambda w, c: (f"/projects/{w.project_id('sec')}/members", {"json": {"username": "zed", "role": "viewer"}}),
        row(200, 200, 403, 403, 404, 403),
    ),
    ("/api/v1/projects/{pk}/members/{user_id}", "delete"): (
        lambda w, c: (
            w.call("POST", f"/projects/{w.project_id('sec')}/members", json={"username": "zed", "role": "viewer"})
            and f"/projects/{w.project_id('sec')}/members/{w.user_id('zed')}",
            {},
        ),
        row(200, 200, 403, 403, 404, 403),
    ),
    ("/api/v1/runs/", "get"): (fixed("/runs/"), EVERYONE),
    ("/api/v1/runs/{pk}", "get"): (lambda w, c: (f"/runs/{w.run()}", {}), READ),
    ("/api/v1/runs/{pk}/logs", "get"): (
        lambda w, c: (f"/runs/{w.run()}/logs", {"query_string": {"task": "hello"}}),
        READ,
    ),
    ("/api/v1/runs/{pk}/artifacts/{task}/{output}", "get"): (artifact, READ),
    ("/api/v1/runs/{pk}/stop", "post"): (lambda w, c: (f"/runs/{w.run()}/stop", {}), write(200)),
    ("/api/v1/runs/{pk}/retry", "post"): (lambda w, c: (f"/runs/{w.run(stopped=True)}/retry", {}), write(200)),
    ("/api/v1/runs/{pk}/slices/{name}/retry", "post"): (stopped_slice, write(200)),
    ("/api/v1/runs/{pk}/copy", "post"): (lambda w, c: (f"/runs/{w.run()}/copy", {"json": {}}), write(201)),
    ("/api/v1/runs/{pk}/mark", "post"): (
        lambda w, c: (f"/runs/{w.run(stopped=True)}/mark", {"json": {"state": "failed"}}),
        write(200),
    ),
    ("/api/v1/schedules/records", "get"): (fixed("/schedules/records"), EVERYONE),
    ("/api/v1/schedules/preview/{pipeline_id}", "get"): (
        lambda w, c: (f"/schedules/preview/{w.pipeline()}", {"query_string": {"n": 2}}),
        READ,
    ),
    ("/api/v1/templates/", "get"): (fixed("/templates/"), EVERYONE),
    ("/api/v1/user_templates/", "get"): (fixed("/user_templates/"), EVERYONE),
    # Creating in project "sec": the outsider is told "not found", as for a project that does not exist.
    ("/api/v1/user_templates/", "post"): (
        lambda w, c: ("/user_templates/", {"json": template_body(unique("t"))}),
        row(201, 201, 201, 403, 404, 403),
    ),
    # A pending template of "sec" owned by the member: reviewers (admin, project owner) and its owner see it.
    ("/api/v1/user_templates/{pk}", "get"): (
        lambda w, c: (f"/user_templates/{user_template(w, c, submit=True)}", {}),
        row(200, 200, 200, 404, 404, 404),
    ),
    ("/api/v1/user_templates/{pk}/history", "get"): (
        lambda w, c: (f"/user_templates/{user_template(w, c, submit=True)}/history", {}),
        row(200, 200, 200, 404, 404, 404),
    ),
    # A draft is its owner's only: editing and submitting are theirs.
    ("/api/v1/user_templates/{pk}", "put"): (
        lambda w, c: (
            f"/user_templates/{user_template(w, c, submit=False)}",
            {"json": template_body(unique("t"))["template"]},
        ),
        row(403, 404, 200, 404, 404, 403),
    ),
    ("/api/v1/user_templates/{pk}/submit", "post"): (
        lambda w, c: (f"/user_templates/{user_template(w, c, submit=False)}/submit", {}),
        row(403, 404, 200, 404, 404, 403),
    ),
    ("/api/v1/user_templates/{pk}/approve", "post"): (
        lambda w, c: (f"/user_templates/{user_template(w, c, submit=True)}/approve", {"json": {"scope": "project"}}),
        row(200, 200, 403, 404, 404, 403),
    ),
    ("/api/v1/user_templates/{pk}/reject", "post"): (
        lambda w, c: (f"/user_templates/{user_template(w, c, submit=True)}/reject", {"json": {"reason": "no"}}),
        row(200, 200, 403, 404, 404, 403),
    ),
}


def fresh_login(client: FlaskClient, role: str) -> dict[str, str]:
    """Sign `role` in again and return its new bearer header (for endpoints that end a login)."""
    res = client.post("/api/v1/security/login", json={"username": role, "password": f"{role}-pass", "provider": "db"})
    assert res.status_code == 200, res.get_data(as_text=True)
    return {"Authorization": f"Bearer {res.get_json()['access_token']}"}


def operations(clients: Clients) -> list[tuple[str, str]]:
    """Return every (path, method) of the OpenAPI document this suite must cover."""
    client, auth = clients["admin"]
    doc = client.get("/api/v1/_openapi", headers=auth)
    assert doc.status_code == 200
    return sorted(
        (path, method)
        for path, ops in doc.get_json()["paths"].items()
        for method in ops
        if method in ("get", "post", "put", "patch", "delete") and not path.startswith(SKIPPED_PREFIXES)
    )


def test_every_endpoint_has_an_entry(clients: Clients) -> None:
    ops = operations(clients)
    missing = [op for op in ops if op not in EXPECTED]
    assert not missing, f"add these endpoints to EXPECTED in {__file__}: {missing}"
    stale = [op for op in EXPECTED if op not in ops]
    assert not stale, f"EXPECTED lists endpoints the API no longer has: {stale}"


@pytest.mark.parametrize("role", ROLES)
def test_matrix(clients: Clients, world: World, role: str) -> None:
    client, auth = clients[role]
    wrong = []
    for path, method in operations(clients):
        setup, codes = EXPECTED[(path, method)]
        url, kw = setup(world, clients)
        kw = dict(kw)  # `fixed` hands out the same dict every time
        headers = {**auth, **kw.pop("headers", {})}
        if kw.pop("own_login", False) and role != "anonymous":
            headers = fresh_login(client, role)
        res = client.open(f"/api/v1{url}", method=method.upper(), headers=headers, **kw)
        if res.status_code != codes[role]:
            wrong.append(
                f"{method.upper()} {url}: {res.status_code} (expected {codes[role]}) {res.get_data(as_text=True)[:200]}"
            )
        if res.status_code == 404 and role == "outsider" and any(p.isdigit() for p in url.split("/")):
            # the same answer as for an id that does not exist
            parts = url.split("/")
            at = next(i for i, part in enumerate(parts) if part.isdigit())
            real, parts[at] = parts[at], "987654"
            missing = client.open(f"/api/v1{'/'.join(parts)}", method=method.upper(), headers=auth, **kw)
            assert missing.status_code == 404, url
            assert res.get_json()["message"].replace(real, "N") == missing.get_json()["message"].replace("987654", "N")
    assert not wrong, "\n".join(wrong)


def _names(clients: Clients, role: str, path: str, key: str = "id") -> set[Any]:
    client, auth = clients[role]
    res = client.get(f"/api/v1{path}", headers=auth)
    assert res.status_code == 200
    return {r[key] for r in res.get_json()["result"]}


def test_lists_are_filtered_by_project(clients: Clients, world: World, services: Any) -> None:
    mine, theirs = world.pipeline("sec"), world.pipeline("elsewhere")
    run_mine, run_theirs = world.run(mine), world.run(theirs)
    for role in ("owner", "member", "viewer", "readonly"):
        assert mine in _names(clients, role, "/pipelines/") and theirs not in _names(clients, role, "/pipelines/")
        runs = _names(clients, role, "/runs/?limit=500")
        assert run_mine in runs and run_theirs not in runs
        assert _names(clients, role, f"/runs/?pipeline_id={theirs}") == set()
    assert theirs in _names(clients, "outsider", "/pipelines/") and mine not in _names(
        clients, "outsider", "/pipelines/"
    )
    assert {mine, theirs} <= _names(clients, "admin", "/pipelines/")
    for role in ("owner", "outsider"):
        client, auth = clients[role]
        other = theirs if role == "owner" else mine
        assert client.get(f"/api/v1/schedules/records?pipeline_id={other}", headers=auth).status_code == 404
        records = client.get("/api/v1/schedules/records", headers=auth).get_json()["result"]
        assert all(r["pipeline_id"] != other for r in records)


def test_schedule_records_are_scoped(clients: Clients, world: World, services: Any) -> None:
    from datetime import timedelta

    from myapp.scheduling.scheduler import run_pass

    mine, theirs = world.pipeline("sec", "*/5 * * * *"), world.pipeline("elsewhere", "*/5 * * * *")
    run_pass(services, services.clock.now() + timedelta(minutes=11))
    for role, seen, hidden in (("owner", mine, theirs), ("outsider", theirs, mine)):
        ids = _names(clients, role, "/schedules/records?limit=1000", "pipeline_id")
        assert hidden not in ids, role
        assert seen in ids, role


def count(services: Any, table: Any) -> int:
    with services.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(table)))


@pytest.mark.parametrize(
    ("role", "project", "status"),
    [
        ("member", "elsewhere", 403),
        ("member", "brand-new", 403),
        ("owner", "brand-new", 403),
        ("outsider", "sec", 403),
        ("viewer", "sec", 403),
        ("admin", "brand-new", 200),
    ],
)
def test_save_needs_write_on_the_project(clients: Clients, services: Any, role: str, project: str, status: int) -> None:
    client, auth = clients[role]
    before = (count(services, Project), count(services, Pipeline))
    res = client.post(
        "/api/v1/pipelines/",
        data=pipeline_yaml(unique("s"), project),
        headers={**auth, "Content-Type": "application/yaml"},
    )
    assert res.status_code == status, res.get_json()
    if status == 403:
        assert (count(services, Project), count(services, Pipeline)) == before
        assert project in res.get_json()["message"]


def test_secrets_are_masked(clients: Clients, world: World, services: Any) -> None:
    """Template secret defaults and secret task inputs never leave the API in clear."""
    from myapp.cli.process import run_burst

    owner, owner_auth = clients["member"]
    name = unique("vault")
    body: dict[str, Any] = {
        "template": {
            "name": name,
            "version": "1",
            "image": "busybox",
            "command": ["true"],
            "parameters": {"token": {"type": "secret", "default": "tok-default-123"}},
        },
        "project": "sec",
    }
    tid = owner.post("/api/v1/user_templates/", json=body, headers=owner_auth).get_json()["result"]["id"]
    owner.post(f"/api/v1/user_templates/{tid}/submit", headers=owner_auth)
    assert world.call("POST", f"/user_templates/{tid}/approve", json={"scope": "project"}).status_code == 200
    pipeline = world.call(
        "POST",
        "/pipelines/",
        json={
            "name": unique("secretive"),
            "project": "sec",
            "parameters": [{"name": "tok", "default": "tok-param-456"}],
            "tasks": [{"name": "use", "template": f"{name}@1", "inputs": {"token": {"from": "params.tok"}}}],
        },
    )
    assert pipeline.status_code == 200, pipeline.get_json()
    run_id = world.run(pipeline.get_json()["id"])
    run_burst(services, 1)
    for role in ("admin", "owner", "member", "viewer"):
        client, auth = clients[role]
        detail = client.get(f"/api/v1/runs/{run_id}", headers=auth)
        assert detail.status_code == 200
        text = detail.get_data(as_text=True)
        assert "tok-param-456" not in text.replace('"params": {"tok": "tok-param-456"}', ""), role
        inputs = detail.get_json()["result"]["tasks"][0]["inputs"]
        assert inputs["token"]["value"] == "******", inputs
        for path in ("/api/v1/templates/", "/api/v1/user_templates/", f"/api/v1/user_templates/{tid}"):
            listing = client.get(path, headers=auth).get_data(as_text=True)
            assert "tok-default-123" not in listing, (role, path)


def test_runs_table_unchanged_by_refused_calls(clients: Clients, world: World, services: Any) -> None:
    run_id = world.run()
    before = count(services, Run)
    for role in ("viewer", "outsider", "readonly", "anonymous"):
        client, auth = clients[role]
        for action in ("copy", "stop"):
            assert client.post(f"/api/v1/runs/{run_id}/{action}", headers=auth, json={}).status_code in (401, 403, 404)
    assert count(services, Run) == before
    assert world.call("GET", f"/runs/{run_id}").get_json()["result"]["state"] != "stopped"


def test_run_token_reads_its_own_run_only_while_it_is_unfinished(clients: Clients, world: World, services: Any) -> None:
    """MYAPP_TOKEN (`run-<id>.<hmac>`) may GET its run and that run's logs, nothing else, until the run ends."""
    pipeline_id = world.pipeline()
    run_id, other = world.run(pipeline_id), world.run(pipeline_id)
    token = services.runs.run_token(run_id)
    client = clients["anonymous"][0]
    bearer = {"Authorization": f"Bearer {token}"}
    res = client.get(f"/api/v1/runs/{run_id}", headers=bearer)
    assert res.status_code == 200 and res.get_json()["result"]["id"] == run_id
    assert client.get(f"/api/v1/runs/{run_id}/logs?task=hello", headers=bearer).status_code == 200
    refused = [
        ("GET", f"/runs/{other}"),
        ("GET", f"/runs/{other}/logs?task=hello"),
        ("GET", "/runs/"),
        ("GET", "/pipelines/"),
        ("GET", f"/pipelines/{pipeline_id}"),
        ("POST", f"/runs/{run_id}/stop"),
        ("POST", f"/runs/{run_id}/copy"),
        ("POST", f"/runs/{run_id}/mark"),
        ("POST", f"/runs/{run_id}/retry"),
        ("POST", f"/pipelines/{pipeline_id}/runs"),
        ("GET", "/schedules/records"),
        ("GET", "/templates/"),
        ("GET", "/user_templates/"),
        ("GET", "/projects/"),
        ("GET", "/me/"),
    ]
    for method, path in refused:
        assert client.open(f"/api/v1{path}", method=method, headers=bearer, json={}).status_code == 401, path
    forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    assert client.get(f"/api/v1/runs/{run_id}", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    assert (
        client.get(
            f"/api/v1/runs/{other}", headers={"Authorization": f"Bearer run-{other}.{token.split('.')[1]}"}
        ).status_code
        == 401
    )
    assert world.call("POST", f"/runs/{run_id}/stop").status_code == 200  # the run finishes
    assert client.get(f"/api/v1/runs/{run_id}", headers=bearer).status_code == 401
    assert client.get(f"/api/v1/runs/{run_id}/logs?task=hello", headers=bearer).status_code == 401
