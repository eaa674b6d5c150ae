"""Template versions through the database: a pipeline pins `name@version` when saved, and
publishing a newer version (by plugin sync or by review) never changes an existing pipeline."""

from __future__ import annotations

from typing import Any

import pytest

from myapp.builtins.kinds import kind_errors
from myapp.catalog.plugins import parse_template
from myapp.cli.process import run_burst
from myapp.db.template_review import UserTemplates
from myapp.web.authz import Actor, ProjectRole
from tests.integration.engine_helpers import save, start, task_lines, wait_finished

pytestmark = pytest.mark.integration


def greet(version: str) -> Any:
    return parse_template({"name": "greet", "version": version, "command": ["echo", f"greet v{version}"]})


def run_once(services: Any, pipeline_id: int) -> list[str]:
    run_id = start(services, pipeline_id)
    run_burst(services, 1)
    run = wait_finished(services, run_id, 30)
    assert run["state"] == "succeeded", run["tasks"]
    return task_lines(services, run_id, "hi")


def test_a_pipeline_keeps_the_version_it_was_saved_with(services: Any) -> None:
    now = services.clock.now
    services.templates.sync([greet("1")], "plugin", now())
    pid = save(services, "name: pinned\ntasks:\n  - {name: hi, template: greet}\n")
    explicit = save(services, "name: explicit\ntasks:\n  - {name: hi, template: greet@1}\n")
    assert services.pipelines.export(pid)["tasks"][0]["template"] == "greet@1"
    services.templates.sync([greet("2")], "plugin", now())  # a newer version is published
    assert services.templates.get("greet").version == "2"
    assert services.pipelines.export(pid)["tasks"][0]["template"] == "greet@1"
    assert [v["number"] for v in services.pipelines.versions(pid)] == [1]
    assert run_once(services, pid) == ["greet v1"]
    assert run_once(services, explicit) == ["greet v1"]
    pid2 = save(services, "name: fresh\ntasks:\n  - {name: hi, template: greet}\n")
    assert services.pipelines.export(pid2)["tasks"][0]["template"] == "greet@2"
    assert run_once(services, pid2) == ["greet v2"]


def test_a_reviewed_new_version_does_not_change_pipelines(services: Any) -> None:
    from flask_appbuilder.security.sqla.models import User
    from sqlalchemy import select

    with services.db.read() as s:
        admin_id = s.scalar(select(User.id).where(User.username == "admin"))
    admin = Actor(admin_id, "admin", frozenset({"Admin"}), {})
    owner = Actor(admin_id, "admin", frozenset({"Admin"}), {1: ProjectRole.OWNER})
    # one admin submits and approves: the single-admin setting (template_self_approval)
    reviews, now = UserTemplates(services.db, kind_check=kind_errors, self_approval=True), services.clock.now
    for version in ("1", "2"):
        tid = reviews.create(
            owner, {"name": "reviewed", "version": version, "command": ["echo", f"reviewed v{version}"]}, now()
        )
        reviews.submit(owner, tid, now())
        if version == "1":
            reviews.approve(admin, tid, now(), scope="all")
            pid = save(services, "name: uses-reviewed\ntasks:\n  - {name: hi, template: reviewed}\n")
    assert services.templates.get("reviewed").version == "1"  # version 2 is pending, not published
    reviews.approve(admin, tid, now(), scope="all")
    assert services.templates.get("reviewed").version == "2"
    assert services.pipelines.export(pid)["tasks"][0]["template"] == "reviewed@1"
    assert run_once(services, pid) == ["reviewed v1"]


def test_a_template_lookup_whose_connection_drops_is_repeated(services: Any, monkeypatch: Any) -> None:
    # An attempt's first template lookup in a worker process reads the database before the task starts;
    # a PostgreSQL restart at that instant failed the attempt as "internal error" (issue 14 item 5).
    from sqlalchemy.exc import OperationalError

    class AdminShutdown(Exception):
        """Stands in for psycopg's error class (only its module is looked at)."""

    AdminShutdown.__module__ = "psycopg.errors"
    template = parse_template({"name": "lookup-retried", "version": "3", "command": ["true"]})
    services.templates.sync([template], "plugin", services.clock.now())
    real, calls = services.db.read, []

    def flaky() -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError(
                "SELECT", {}, AdminShutdown("terminating connection due to unexpected postmaster exit")
            )
        return real()

    monkeypatch.setattr(services.db, "read", flaky)
    assert services.templates.get("lookup-retried").version == "3"
    assert len(calls) == 2
