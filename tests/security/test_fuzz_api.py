"""Fuzz the REST API from its own OpenAPI document (schemathesis + hypothesis): never a 5xx, never SQL text.

Bounded for CI: a few examples per operation, positive and negative generation, each case also
replayed on real objects (a pipeline and a run of project "sec"), plus random JSON bodies to every
POST/PUT (the document declares no bodies). Authenticated as the admin via the JWT header, so every
check runs past authorization. A 5xx prints the request so it can be replayed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from tests.security.conftest import World

schemathesis = pytest.importorskip("schemathesis")
pytestmark = pytest.mark.integration
SKIPPED_PREFIXES = (
    "/api/v1/security/",
    "/api/v1/menu/",
    "/api/{version}/",
    "/api/v1/me/logout",
)  # it would end the fuzzer's own sign-in (tested in test_web_hardening)
BUDGET_SECONDS = 60.0  # the whole module's fuzzing time per database backend
EXAMPLES = 8
SQL_WORDS = ("SELECT ", "INSERT INTO", "sqlalchemy", "psycopg", "sqlite3", "Traceback")
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
BODY_KEYS = st.sampled_from(
    [
        "name",
        "tasks",
        "params",
        "state",
        "inputs",
        "debug_task",
        "schedule",
        "parameters",
        "project",
        "template",
        "username",
        "role",
        "reason",
        "message",
        "comment",
    ]
)


class Fuzzer:
    def __init__(self, client: FlaskClient, auth: dict[str, str], real: dict[str, int]) -> None:
        self.client, self.auth, self.real = client, auth, real
        self.failures: list[str] = []
        self.started = time.monotonic()

    def over_budget(self) -> bool:
        return time.monotonic() - self.started > BUDGET_SECONDS

    def send(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        kw: dict[str, Any] = {"query_string": query or {}, "headers": {**(headers or {}), **self.auth}}
        if body is not None:
            kw["json"] = body
        elif data is not None:
            kw["data"] = data
        res = self.client.open(path, method=method, **kw)
        text = res.get_data(as_text=True)
        if res.status_code >= 500 or any(word in text for word in SQL_WORDS):
            self.failures.append(
                f"{res.status_code} {method} {path} query={query!r} "
                f"body={json.dumps(body)[:300] if body is not None else data!r} -> {text[:300]}"
            )

    def real_path(self, template: str, path_parameters: dict[str, Any]) -> str:
        values = {
            "pk": self.real["run"] if template.startswith("/api/v1/runs/") else self.real["pipeline"],
            "pipeline_id": self.real["pipeline"],
            "user_id": self.real["user"],
        }
        if template.startswith("/api/v1/projects/"):
            values["pk"] = self.real["project"]
        if template.startswith("/api/v1/user_templates/"):
            values["pk"] = self.real["template"]
        out = template
        for name in path_parameters:
            out = out.replace("{" + name + "}", str(values.get(name, 1)))
        return out


@pytest.fixture(scope="module")
def fuzzer(clients: dict[str, tuple[FlaskClient, dict[str, str]]], world: World) -> Iterator[Fuzzer]:
    client, auth = clients["admin"]
    run_id = world.run()
    member, member_auth = clients["member"]
    tid = member.post(
        "/api/v1/user_templates/",
        headers=member_auth,
        json={
            "template": {"name": "fuzzed", "version": "1", "image": "busybox", "command": ["true"]},
            "project": "sec",
        },
    ).get_json()
    real = {
        "pipeline": world.pipeline(),
        "run": run_id,
        "project": world.project_id("sec"),
        "user": world.user_id("zed"),
        "template": int(tid["result"]["id"]),
    }
    yield Fuzzer(client, auth, real)


def operations(client: FlaskClient, auth: dict[str, str]) -> list[Any]:
    doc = client.get("/api/v1/_openapi", headers=auth).get_json()
    doc["paths"] = {p: ops for p, ops in doc["paths"].items() if not p.startswith(SKIPPED_PREFIXES)}
    schema = schemathesis.openapi.from_dict(doc)
    return [result.ok() for result in schema.get_all_operations()]


def fuzz_operation(fuzzer: Fuzzer, op: Any, mode: Any) -> None:
    """Send EXAMPLES generated cases of one operation, as generated and on real objects."""

    @FUZZ
    @given(case=op.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        kw = case.as_transport_kwargs(base_url="http://localhost")
        path = kw["url"].removeprefix("http://localhost")
        query, body = kw.get("params") or {}, kw.get("json")
        headers = {
            k: str(v)
            for k, v in (kw.get("headers") or {}).items()
            if k.lower() not in ("authorization", "content-length", "host")
        }
        fuzzer.send(case.method, path, query=query, body=body, data=kw.get("data"), headers=headers)
        fuzzer.send(
            case.method, fuzzer.real_path(op.path, case.path_parameters or {}), query=query, body=body, headers=headers
        )

    try:
        check()
    except Unsatisfiable:  # nothing to make negative: an operation without parameters
        pass


def fuzz_bodies(fuzzer: Fuzzer, method: str, path: str) -> None:
    """Send random JSON (objects with the keys the handlers read) and random YAML text to one endpoint."""

    @FUZZ
    @given(body=st.dictionaries(BODY_KEYS, JSON, max_size=5) | JSON, text=st.text(max_size=200), as_yaml=st.booleans())
    def check(body: Any, text: str, as_yaml: bool) -> None:
        fuzzer.send(method, path, body=body)
        if as_yaml:
            fuzzer.send(method, path, data=text.encode(), headers={"Content-Type": "application/yaml"})

    check()


def test_schema_driven_fuzzing_finds_no_5xx(fuzzer: Fuzzer) -> None:
    from schemathesis import GenerationMode

    ops = operations(fuzzer.client, fuzzer.auth)
    assert len(ops) > 20
    for op in ops:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if not fuzzer.over_budget():
                fuzz_operation(fuzzer, op, mode)
    assert not fuzzer.failures, "\n".join(fuzzer.failures[:20])


def test_random_bodies_find_no_5xx(fuzzer: Fuzzer) -> None:
    """Every POST/PUT gets random bodies."""
    for op in operations(fuzzer.client, fuzzer.auth):
        if op.method.upper() in ("POST", "PUT") and not fuzzer.over_budget():
            names = {name: 1 for name in ("pk", "pipeline_id", "user_id") if "{" + name + "}" in op.path}
            fuzz_bodies(fuzzer, op.method.upper(), fuzzer.real_path(op.path, names))
    assert not fuzzer.failures, "\n".join(fuzzer.failures[:20])
