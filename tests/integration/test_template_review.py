"""User templates through REST: create, edit, submit, reject with a reason, fix, approve; who may do what.

Roles: admin (FAB Admin), project owner, project member, project viewer, a user of another
project, a FAB Viewer, and anonymous. Logs in with JWT through /api/v1/security/login.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from flask.testing import FlaskClient

from myapp.core.states import TEMPLATE, TemplateStatus
from myapp.db.template_review import transition
from myapp.web.app import create_app
from myapp.web.authz import Action, Actor, ProjectRole, can, readable_projects
from tests.accounts import ensure_member, ensure_project, ensure_user

pytestmark = pytest.mark.integration
USERS = {  # name: (FAB role, project role in "ml" or "other")
    "alice": ("User", ("ml", "owner")),
    "bob": ("User", ("ml", "member")),
    "bea": ("User", ("ml", "member")),
    "carol": ("User", ("ml", "viewer")),
    "dave": ("User", ("other", "owner")),
    "vera": ("Viewer", None),
}
_names = itertools.count(1)


@pytest.fixture(scope="module")
def app(services: Any) -> Any:
    application = create_app(services.settings, services)
    application.config["TESTING"] = True
    with application.app_context():
        for name in ("ml", "other"):
            ensure_project(services, name)
        for user, (role, membership) in USERS.items():
            row = ensure_user(application, user, role)
            if membership is not None:
                ensure_member(services, row.id, *membership)
    return application


@pytest.fixture(scope="module")
def clients(app: Any) -> dict[str, tuple[FlaskClient, dict[str, str]]]:
    out = {"anonymous": (app.test_client(), {})}
    for user, password in [("admin", "admin-pass")] + [(u, f"{u}-pass") for u in USERS]:
        client = app.test_client()
        res = client.post("/api/v1/security/login", json={"username": user, "password": password, "provider": "db"})
        assert res.status_code == 200, res.get_data(as_text=True)
        out[user] = (client, {"Authorization": f"Bearer {res.get_json()['access_token']}"})
    return out


class Api:
    """Calls as one user."""

    def __init__(self, clients: dict[str, tuple[FlaskClient, dict[str, str]]], user: str) -> None:
        self.client, self.auth = clients[user]

    def call(self, method: str, path: str, **kw: Any) -> Any:
        headers = {**self.auth, **kw.pop("headers", {})}
        return self.client.open(f"/api/v1/user_templates{path}", method=method, headers=headers, **kw)


def template(name: str, version: str = "1", script: str = "echo hi", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "description": "a user tool",
        "image": "busybox",
        "command": ["bash", "-c", "$(params.script)"],
        "parameters": {"script": {"type": "text", "default": script, "script": True}},
        **extra,
    }


def pending(clients: Any, project: str | None = "ml", owner: str = "bob") -> int:
    """Create and submit a fresh template as `owner`; return its id."""
    api = Api(clients, owner)
    res = api.call("POST", "/", json={"template": template(f"tool-{next(_names)}"), "project": project})
    assert res.status_code == 201, res.get_json()
    tid = int(res.get_json()["result"]["id"])
    assert api.call("POST", f"/{tid}/submit").status_code == 200
    return tid


def published_names(clients: Any, user: str) -> set[str]:
    client, auth = clients[user]
    return {t["name"] for t in client.get("/api/v1/templates/", headers=auth).get_json()["result"]}


def test_submit_reject_fix_approve_then_visible_in_its_project(clients: Any, services: Any) -> None:
    bob, alice, dave = Api(clients, "bob"), Api(clients, "alice"), Api(clients, "dave")
    res = bob.call("POST", "/", json={"template": template("my-tool", script="ech hi"), "project": "ml"})
    assert res.status_code == 201 and res.get_json()["result"]["status"] == "draft"
    tid = res.get_json()["result"]["id"]
    assert alice.call("GET", f"/{tid}").status_code == 404  # a draft: its owner only
    assert bob.call("POST", f"/{tid}/submit", json={"message": "please"}).get_json()["result"]["status"] == "pending"
    assert alice.call("GET", f"/{tid}").get_json()["result"]["can_review"] is True
    assert dave.call("GET", f"/{tid}").status_code == 404
    assert alice.call("POST", f"/{tid}/reject", json={"reason": " "}).status_code == 400
    rejected = alice.call("POST", f"/{tid}/reject", json={"reason": "typo: ech"}).get_json()["result"]
    assert rejected == {"id": tid, "status": "rejected"}  # back to its owner: the reviewer sees no more
    mine = bob.call("GET", f"/{tid}").get_json()["result"]
    assert (mine["status"], mine["rejection_reason"], mine["can_edit"]) == ("rejected", "typo: ech", True)
    assert "my-tool" not in published_names(clients, "dave") and services.templates.get("my-tool") is None
    fixed = bob.call("PUT", f"/{tid}", json=template("my-tool", script="echo hi")).get_json()["result"]
    assert fixed["status"] == "draft" and fixed["definition"]["parameters"]["script"]["default"] == "echo hi"
    assert bob.call("POST", f"/{tid}/submit").status_code == 200
    assert bob.call("POST", f"/{tid}/approve", json={"scope": "project"}).status_code == 403  # a member cannot
    assert alice.call("POST", f"/{tid}/approve", json={"comment": "lgtm"}).status_code == 400  # no scope chosen
    assert alice.call("POST", f"/{tid}/approve", json={"scope": "all"}).status_code == 403  # admins only
    approved = alice.call("POST", f"/{tid}/approve", json={"comment": "lgtm", "scope": "project"}).get_json()["result"]
    assert (approved["status"], approved["publish_scope"]) == ("published", "project")
    assert dave.call("GET", f"/{tid}").status_code == 404  # published to project "ml" only
    assert "my-tool" in published_names(clients, "bea") and "my-tool" not in published_names(clients, "dave")
    assert (
        services.templates.get("my-tool@1", "ml") is not None and services.templates.get("my-tool@1", "other") is None
    )
    assert bob.call("PUT", f"/{tid}", json=template("my-tool", script="echo changed")).status_code == 409
    history = bob.call("GET", f"/{tid}/history").get_json()["result"]
    assert [(h["action"], h["user"], h["reason"]) for h in history] == [
        ("create", "bob", ""),
        ("submit", "bob", "please"),
        ("reject", "alice", "typo: ech"),
        ("edit", "bob", ""),
        ("submit", "bob", ""),
        ("approve", "alice", "lgtm"),
    ]


def test_rejection_reason_is_shown_to_reviewers_too(clients: Any) -> None:
    tid = pending(clients)
    alice = Api(clients, "alice")
    alice.call("POST", f"/{tid}/reject", json={"reason": "needs a README"})
    assert alice.call("GET", f"/{tid}").status_code == 404  # rejected: back to its owner only
    assert Api(clients, "admin").call("GET", f"/{tid}").get_json()["result"]["rejection_reason"] == "needs a README"


# Who may see and approve a pending template of project "ml" owned by bob.
MATRIX = [
    ("admin", 200, 200),
    ("alice", 200, 200),
    ("bob", 200, 403),
    ("bea", 404, 404),
    ("carol", 404, 404),
    ("dave", 404, 404),
    ("vera", 404, 403),
    ("anonymous", 401, 401),
]


@pytest.mark.parametrize(("user", "see", "approve"), MATRIX)
def test_who_may_see_and_approve_a_pending_template(clients: Any, user: str, see: int, approve: int) -> None:
    tid = pending(clients)
    api = Api(clients, user)
    assert api.call("GET", f"/{tid}").status_code == see
    assert api.call("POST", f"/{tid}/approve", json={"scope": "project"}).status_code == approve
    assert api.call("POST", f"/{tid}/reject", json={"reason": "x"}).status_code in (
        (409,) if approve == 200 else (approve,)
    )


@pytest.mark.parametrize(
    ("user", "status"),
    [
        # dave belongs to another project: "ml" is as unknown to him as a missing project (404, no leak)
        ("admin", 201),
        ("alice", 201),
        ("bob", 201),
        ("carol", 403),
        ("dave", 404),
        ("vera", 403),
        ("anonymous", 401),
    ],
)
def test_who_may_create_in_a_project(clients: Any, user: str, status: int) -> None:
    res = Api(clients, user).call("POST", "/", json={"template": template(f"new-{next(_names)}"), "project": "ml"})
    assert res.status_code == status, res.get_json()


@pytest.mark.parametrize(("user", "status"), [("bob", 200), ("admin", 200), ("alice", 404), ("bea", 404)])
def test_a_draft_is_visible_to_its_owner_only(clients: Any, user: str, status: int) -> None:
    res = Api(clients, "bob").call("POST", "/", json={"template": template(f"draft-{next(_names)}"), "project": "ml"})
    tid = res.get_json()["result"]["id"]
    assert Api(clients, user).call("GET", f"/{tid}").status_code == status
    assert Api(clients, user).call("GET", f"/{tid}/history").status_code == status
    listed = {t["id"] for t in Api(clients, user).call("GET", "/").get_json()["result"]}
    assert (tid in listed) is (status == 200)


def test_only_the_owner_edits_and_submits(clients: Any) -> None:
    res = Api(clients, "bob").call("POST", "/", json={"template": template(f"own-{next(_names)}"), "project": "ml"})
    tid = res.get_json()["result"]["id"]
    admin = Api(clients, "admin")
    assert admin.call("PUT", f"/{tid}", json=template("hijack")).status_code == 403
    assert admin.call("POST", f"/{tid}/submit").status_code == 403
    assert admin.call("POST", f"/{tid}/approve").status_code == 409  # not submitted yet


def test_a_personal_template_is_approved_by_an_admin_only(clients: Any) -> None:
    tid = pending(clients, project=None, owner="dave")
    assert Api(clients, "alice").call("POST", f"/{tid}/approve").status_code == 404
    assert Api(clients, "admin").call("GET", "/?scope=review").get_json()["result"][0]["id"] is not None
    assert tid in {t["id"] for t in Api(clients, "admin").call("GET", "/?scope=review").get_json()["result"]}
    assert tid not in {t["id"] for t in Api(clients, "alice").call("GET", "/?scope=review").get_json()["result"]}
    assert Api(clients, "admin").call("POST", f"/{tid}/approve", json={"scope": "project"}).status_code == 400
    assert Api(clients, "admin").call("POST", f"/{tid}/approve", json={"scope": "all"}).status_code == 200
    assert "tool" in str(published_names(clients, "dave")) and tid in {
        t["id"] for t in Api(clients, "carol").call("GET", "/").get_json()["result"]
    }


def test_names_belong_to_their_owner(clients: Any) -> None:
    bob, dave = Api(clients, "bob"), Api(clients, "dave")
    assert bob.call("POST", "/", json={"template": template("shell", version="9")}).status_code == 409
    name = f"owned-{next(_names)}"
    assert bob.call("POST", "/", json={"template": template(name)}).status_code == 201
    assert dave.call("POST", "/", json={"template": template(name, version="2")}).status_code == 409
    assert bob.call("POST", "/", json={"template": template(name)}).status_code == 409  # same version
    assert bob.call("POST", "/", json={"template": template(name, version="2")}).status_code == 201


def test_invalid_templates_are_clean_400s(clients: Any) -> None:
    bob = Api(clients, "bob")
    res = bob.call("POST", "/", json={"name": "Bad Name"})
    assert res.status_code == 400 and res.get_json()["errors"][0]["field"] == "name"
    res = bob.call("POST", "/", data="name: x\nkind: [\n", headers={"Content-Type": "application/yaml"})
    assert res.status_code == 400
    yaml_ok = bob.call(
        "POST",
        "/?project=ml",
        data=f"name: yaml-{next(_names)}\ncommand: [echo]\n",
        headers={"Content-Type": "application/yaml"},
    )
    assert yaml_ok.status_code == 201 and yaml_ok.get_json()["result"]["project"] == "ml"
    assert bob.call("GET", "/?scope=everything").status_code == 400
    assert bob.call("POST", "/", json={"template": template(f"p-{next(_names)}"), "project": "nope"}).status_code == 404


def test_secret_defaults_are_masked_everywhere(clients: Any, services: Any) -> None:
    bob, admin = Api(clients, "bob"), Api(clients, "admin")
    body = template(f"secretive-{next(_names)}") | {
        "parameters": {"token": {"type": "secret", "default": "tok-123"}},
        "command": ["env"],
    }
    tid = bob.call("POST", "/", json={"template": body, "project": "ml"}).get_json()["result"]["id"]
    bob.call("POST", f"/{tid}/submit")
    approved = admin.call("POST", f"/{tid}/approve", json={"scope": "all"})
    assert approved.get_json()["result"]["definition"]["parameters"]["token"]["default"] == "******"
    for text in (
        bob.call("GET", f"/{tid}").get_data(as_text=True),
        admin.call("GET", "/").get_data(as_text=True),
        clients["dave"][0].get("/api/v1/templates/", headers=clients["dave"][1]).get_data(as_text=True),
    ):
        assert "tok-123" not in text and "******" in text


def test_authz_table() -> None:
    owner = Actor(1, projects={5: ProjectRole.OWNER})
    member, viewer = Actor(2, projects={5: ProjectRole.MEMBER}), Actor(3, projects={5: ProjectRole.VIEWER})
    admin, anonymous = Actor(4, fab_roles=frozenset({"Admin"})), Actor(None)
    assert [can(a, Action.REVIEW, 5) for a in (owner, member, viewer, admin, anonymous)] == [
        True,
        False,
        False,
        True,
        False,
    ]
    assert [can(a, Action.WRITE, 5) for a in (owner, member, viewer)] == [True, True, False]
    assert not can(owner, Action.READ, 6) and not can(owner, Action.REVIEW, None) and can(admin, Action.MANAGE, None)
    assert readable_projects(viewer) == frozenset({5}) and readable_projects(admin) is None


def test_status_transitions() -> None:
    assert not TEMPLATE.transitions[TemplateStatus.PUBLISHED]
    assert transition("pending", TemplateStatus.PUBLISHED, "x@1") is TemplateStatus.PUBLISHED
    from myapp.core.errors import Conflict

    with pytest.raises(Conflict, match="immutable"):
        transition("published", TemplateStatus.DRAFT, "x@1")
    with pytest.raises(Conflict):
        transition("draft", TemplateStatus.PUBLISHED, "x@1")
