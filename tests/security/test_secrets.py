"""Adversarial suite, secrets (issue 13 B6): sealed at rest, masked for viewers everywhere.

A viewer of project "sec" used to see literal secret args in `GET /pipelines/N` and `/export` and
secret global parameters in run params; everything was stored in plain text.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import text

from myapp.db.sealed import KEYRING, PREFIX, Keyring, SealError, derive_key
from tests.security.conftest import World, unique
from tests.security.test_task_isolation import Clients, publish_template, run_tasks

pytestmark = pytest.mark.integration
ARG_SECRET = "arg-secret-7f3a9c-template-token"
DEFAULT_SECRET = "default-secret-19be44-global"
RUN_SECRET = "run-secret-c0ffee-supplied"
TEMPLATE_SECRET = "template-default-secret-5a5a5a"


def _sha(value: str) -> str:
    import hashlib

    return hashlib.sha256(value.encode()).hexdigest()


def _raw(services: Any, sql: str, **params: Any) -> str:
    with services.db.read() as s:
        return str(s.execute(text(sql), params).scalar())


def _pipeline(world: World, clients: Clients) -> tuple[int, str]:
    name = publish_template(
        world,
        clients,
        {
            "name": unique("keyed"),
            "version": "1",
            "image": "debian",
            "command": ["bash", "-c", "$(params.script)"],
            "parameters": {
                "script": {"type": "text", "script": True, "required": True},
                "token": {"type": "secret", "default": TEMPLATE_SECRET},
            },
        },
    )
    script = (
        f'[ "$(printf %s "$token" | sha256sum | cut -c1-64)" = "{_sha(ARG_SECRET)}" ] && echo TOKEN-MATCH\n'
        'echo "token=$token"'
    )
    res = world.call(
        "POST",
        "/pipelines/",
        json={
            "name": unique("secrets"),
            "project": "sec",
            "parameters": [
                {"name": "gp", "default": DEFAULT_SECRET, "secret": True},
                {"name": "plain", "default": "p"},
            ],
            "tasks": [
                {"name": "keyed", "template": f"{name}@1", "args": {"script": script, "token": ARG_SECRET}},
                {
                    "name": "reads",
                    "template": "shell",
                    "inputs": {"gp": {"from": "params.gp"}},
                    "args": {
                        "script": f'[ "$(printf %s "$gp" | sha256sum | cut -c1-64)" = "{_sha(RUN_SECRET)}" ] '
                        '&& echo GP-MATCH\necho "gp=$gp"'
                    },
                },
            ],
        },
    )
    assert res.status_code == 200, res.get_json()
    return int(res.get_json()["id"]), name


def test_b6_secrets_are_sealed_in_the_database(world: World, clients: Clients, services: Any) -> None:
    pid, template = _pipeline(world, clients)
    stored = _raw(services, "SELECT spec FROM task_templates WHERE name = :n", n=template)
    assert TEMPLATE_SECRET not in stored and PREFIX in stored, stored
    stored = _raw(services, "SELECT spec FROM pipeline_versions WHERE pipeline_id = :p", p=pid)
    assert ARG_SECRET not in stored and DEFAULT_SECRET not in stored and stored.count(PREFIX) == 2, stored
    run = world.call("POST", f"/pipelines/{pid}/runs", json={"params": {"gp": RUN_SECRET}})
    assert run.status_code == 201, run.get_json()
    params = _raw(services, "SELECT params FROM runs WHERE id = :r", r=run.get_json()["id"])
    assert RUN_SECRET not in params and PREFIX in params, params


def test_b6_viewers_see_secrets_masked_in_the_pipeline_and_its_export(
    world: World, clients: Clients, services: Any
) -> None:
    pid, _ = _pipeline(world, clients)
    for role in ("viewer",):
        client, auth = clients[role]
        shown = client.get(f"/api/v1/pipelines/{pid}", headers=auth)
        assert shown.status_code == 200
        exported = client.get(f"/api/v1/pipelines/{pid}/export", headers=auth)
        assert exported.status_code == 200
        for body in (shown.get_data(as_text=True), exported.get_data(as_text=True)):
            assert ARG_SECRET not in body and DEFAULT_SECRET not in body and PREFIX not in body, (role, body)
            assert body.count("******") == 2, (role, body)
    # Who may edit the pipeline sees what they wrote.
    client, auth = clients["member"]
    body = client.get(f"/api/v1/pipelines/{pid}", headers=auth).get_data(as_text=True)
    assert ARG_SECRET in body and DEFAULT_SECRET in body


def test_b6_run_params_are_masked_and_tasks_get_the_values(world: World, clients: Clients, services: Any) -> None:
    pid, _ = _pipeline(world, clients)
    spec = world.call("GET", f"/pipelines/{pid}").get_json()["definition"]
    detail, logs = run_tasks(world, services, spec["tasks"], parameters=spec["parameters"], params={"gp": RUN_SECRET})
    assert detail["state"] == "succeeded", detail
    assert "TOKEN-MATCH\n" in logs["keyed"] and "token=******\n" in logs["keyed"], logs
    assert "GP-MATCH\n" in logs["reads"] and "gp=******\n" in logs["reads"], logs
    for role in ("viewer", "member", "admin"):
        client, auth = clients[role] if role != "admin" else (world.client, world.auth)
        run = client.get(f"/api/v1/runs/{detail['id']}", headers=auth).get_data(as_text=True)
        listed = client.get("/api/v1/runs/", headers=auth).get_data(as_text=True)
        for body in (run, listed):
            assert RUN_SECRET not in body and PREFIX not in body, (role, body)
        assert '"gp": "******"' in run or '"gp":"******"' in run, run
        reads = [
            t for t in world.call("GET", f"/runs/{detail['id']}").get_json()["result"]["tasks"] if t["name"] == "reads"
        ][0]
        assert RUN_SECRET not in str(reads), reads
    # A copy of the run shown masked keeps the secret value.
    copied = world.call("POST", f"/runs/{detail['id']}/copy", json={"params": {"gp": "******"}})
    assert copied.status_code == 201, copied.get_json()
    params = _raw(services, "SELECT params FROM runs WHERE id = :r", r=copied.get_json()["id"])
    assert RUN_SECRET not in params and "******" not in params and PREFIX in params, params
    with services.db.read() as s:
        from myapp.db.sealed import open_tree
        from myapp.db.tables import Run

        assert open_tree(s.get(Run, copied.get_json()["id"]).params)["gp"] == RUN_SECRET


def test_b6_rotation_reseals_with_the_new_key(world: World, clients: Clients, services: Any) -> None:
    from cryptography.fernet import Fernet

    from myapp.db.reseal import reseal_all

    pid, _ = _pipeline(world, clients)
    before = _raw(services, "SELECT spec FROM pipeline_versions WHERE pipeline_id = :p", p=pid)
    new = Fernet.generate_key()
    old_only = Keyring()
    old_only.configure([derive_key(services.settings.secret_key)])
    KEYRING.configure([new])  # the new key first; the old one still opens
    count = reseal_all(services.db, services.templates)
    assert count.versions >= 1 and count.templates >= 1, count
    after = _raw(services, "SELECT spec FROM pipeline_versions WHERE pipeline_id = :p", p=pid)
    assert after != before and ARG_SECRET not in after
    # Fernet tokens are URL-safe base64; the column reads back as JSON text (SQLite) or a dict (PostgreSQL)
    sealed = re.findall(re.escape(PREFIX) + r"([A-Za-z0-9_=-]+)", after)
    assert sealed, after
    new_only = Keyring()
    new_only.configure([new])
    assert {new_only.open(PREFIX + token) for token in sealed} == {ARG_SECRET, DEFAULT_SECRET}
    with pytest.raises(SealError, match="not in MYAPP_SECRETS_KEYS"):
        old_only.open(PREFIX + sealed[0])
    # The server still reads the pipeline (and would run it) with the old key gone from the front.
    client, auth = clients["member"]
    assert ARG_SECRET in client.get(f"/api/v1/pipelines/{pid}", headers=auth).get_data(as_text=True)
