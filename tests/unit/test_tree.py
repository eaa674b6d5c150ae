"""The test tree mirrors the package (docs/architecture.md): the unit tests of `myapp/<pkg>/<module>.py`
are `tests/unit/<pkg>/test_<module>.py` (`myapp/settings.py`: `tests/unit/test_settings.py`).

A module without that file needs an entry saying where it is tested instead, or that it has no
behaviour of its own: in WITHOUT_UNIT_TEST (one module, one reason) or in BY_PACKAGE (one reason
for the listed modules of a package tested together through a database, Flask or a Kubernetes API
server). A new module with neither fails the test, and so does an entry that is no longer needed
(its module got its test file, or is gone): the tables say only what is true today.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MYAPP, UNIT = ROOT / "myapp", ROOT / "tests" / "unit"

_INTEGRATION = "tests/integration/"
# Modules of a package tested together through their real neighbours (a database, Flask, a
# Kubernetes API server): one reason per package, and the modules it covers, by name, so that a
# new module of the package still has to be added here (or get its test file).
BY_PACKAGE: dict[str, tuple[str, str]] = {
    "myapp.db": (
        "the stores against SQLite, PostgreSQL and MariaDB: tests/integration/test_attempt_store.py, "
        "test_engine_rules.py (contract suites), test_migrations.py, test_scheduler*.py, test_template_review.py, "
        "test_launch_templates.py",
        "alert_outbox attempt_index attempt_statements attempt_store auth_tables base bulk debug_source "
        "launch_templates migrate pipeline_store projects reseal retention_store run_creation run_drafts run_feed run_store slice_store "
        "schedule_store schedule_tables sealed specs tables template_review template_store types users watcher_attempts",
    ),
    "myapp.web": (
        "Flask's test client: tests/integration/test_rest_api.py, test_overview_api.py, tests/security/, "
        "tests/browser/",
        "access api app artifact_api authz catalog_api guards overview_api pages pages_api pipelines_api "
        "runs_api schedule_api security server template_api wsgi",
    ),
    "myapp.cli": (
        "CliRunner and real processes: tests/integration/test_cli.py, test_scheduler_cli.py, "
        "test_templates_cli.py, test_readme_tour.py, test_standalone.py",
        "db display k8s login pipeline_create run schedule secrets task template",
    ),
    "myapp.k8s": (
        "the fake API server (tests/k8sfake/) and the real one: tests/integration/test_k8s_*.py",
        "cleanup client launcher logs outcome podcache retry status stream tracked watcher",
    ),
    "myapp.executor.kubernetes": (
        "against the test API server: tests/integration/test_k8s_*.py",
        "launch pod_attempts pod_finish pod_outputs pod_plan",
    ),
    "myapp.sdk": (
        "tests/integration/test_sdk.py, test_sdk_docs.py, test_sdk_k8s.py",
        "credentials local_run runtime server",
    ),
}
WITHOUT_UNIT_TEST: dict[str, str] = {
    # Declarations: no behaviour of their own.
    "myapp.core.errors": "exception types",
    "myapp.core.model": "frozen value types (parsing them: tests/unit/core/test_pipeline_spec.py)",
    "myapp.core.ports": "Protocols",
    "myapp.core.values": "value types",
    "myapp.executor.ports": "Protocols",
    # Tested through the test file of the module that uses them.
    "myapp.core.dag": "tests/unit/core/test_engine.py, test_implied_edges.py, test_trigger_rules.py",
    "myapp.core.inputs": "tests/unit/core/test_debug_inputs.py, " + _INTEGRATION + "test_engine_rules.py",
    "myapp.core.task_spec": "the task half of the pipeline YAML: tests/unit/core/test_pipeline_spec.py, test_validate.py",
    "myapp.core.spec_fields": "the field readers of the YAML parsers: tests/unit/core/test_pipeline_spec.py",
    "myapp.core.nesting": "tests/unit/test_yaml_io.py (the nesting limit of YAML documents)",
    "myapp.core.templates": "tests/unit/catalog/test_plugins.py (catalog/plugins.py adds the kind checks to it)",
    "myapp.core.alerts": "tests/unit/alerts/test_delivery.py, " + _INTEGRATION + "test_alerts.py",
    "myapp.core.authz": "tests/security/test_authz_matrix.py (every route against every role)",
    "myapp.core.retention": _INTEGRATION + "test_retention.py",
    "myapp.core.secret_policy": "tests/unit/test_settings.py (secret key and admin password checks)",
    "myapp.core.secrets": "tests/security/test_web_hardening.py, test_k8s_secrets.py (secrets masked and sealed)",
    "myapp.core.webhook_policy": "tests/security/test_web_hardening.py (with alerts/webhook_http.py)",
    "myapp.alerts.webhook_http": "tests/security/test_web_hardening.py (refused addresses, pinned POST)",
    "myapp.builtins.conditions": "tests/unit/builtins/test_k8s_resource.py",
    "myapp.builtins.http_call": "tests/unit/builtins/test_http.py",
    "myapp.builtins.kinds": "tests/unit/builtins/test_*.py (each kind's checks), "
    + _INTEGRATION
    + "test_templates_versions.py",
    "myapp.builtins.polling": "tests/unit/builtins/test_wait_for.py",
    "myapp.builtins.values": "tests/unit/builtins/test_distributed.py",
    "myapp.artifacts.repository": _INTEGRATION + "test_artifact_repository.py, test_artifacts_s3.py",
    "myapp.executor.local": _INTEGRATION + "test_local_executor.py, test_output_confinement.py (real processes)",
    "myapp.executor.outputs": _INTEGRATION + "test_output_confinement.py",
    "myapp.executor.seqpod_local": _INTEGRATION + "test_seqpod_local.py (real engine and processes)",
    "myapp.executor.worker": _INTEGRATION + "test_engine_scenarios.py (real Celery workers), tests/faults/",
    "myapp.queue.celery_app": _INTEGRATION + "test_engine_scenarios.py, tests/faults/ (a real broker)",
    "myapp.retention.clean": _INTEGRATION + "test_retention.py",
    "myapp.scheduling.backfill_guard": _INTEGRATION
    + "test_scheduler_cli.py, test_scheduler_disable_race.py, test_rest_api.py",
    "myapp.scheduling.batch": _INTEGRATION + "test_scheduler.py, test_scheduler_statements.py (one pass's writes)",
    "myapp.core.cron_text": _INTEGRATION + "test_overview_api.py (the schedule in words, both locales)",
    "myapp.services": "every integration test builds it (the `services` fixture)",
    "myapp.db.pipeline_views": _INTEGRATION + "test_overview_api.py; tests/unit/test_i18n.py (its labels)",
    "myapp.db.run_views": _INTEGRATION + "test_cli.py, test_rest_api.py",
    "myapp.db.prebuilt": "tests/unit/db/test_session.py (Database.run_prebuilt on PostgreSQL), "
    + _INTEGRATION
    + "test_attempt_store.py (the claim and fast finish it runs)",
}


def modules() -> list[str]:
    """Every module of myapp/ that has code of its own (not __init__, __main__ or a migration)."""
    found = []
    for path in sorted(MYAPP.rglob("*.py")):
        rel = path.relative_to(MYAPP)
        if "migrations" in rel.parts or path.name in ("__init__.py", "__main__.py"):
            continue
        found.append(".".join(("myapp", *rel.with_suffix("").parts)))
    return found


def unit_test_path(module: str) -> Path:
    """Return where the unit tests of `module` live: tests/unit/<package path>/test_<name>.py."""
    *packages, name = module.split(".")[1:]
    return UNIT.joinpath(*packages, f"test_{name}.py")


def entry_for(module: str) -> str | None:
    """Return the entry that says why `module` has no test file: its WITHOUT_UNIT_TEST key, its package's
    BY_PACKAGE key, or None."""
    if module in WITHOUT_UNIT_TEST:
        return module
    package, name = module.rsplit(".", 1)
    if package in BY_PACKAGE and name in BY_PACKAGE[package][1].split():
        return package
    return None


def test_every_module_has_its_test_file_or_says_why_not() -> None:
    untested = [m for m in modules() if not unit_test_path(m).exists() and entry_for(m) is None]
    assert not untested, (
        f"add tests/unit/<package>/test_<module>.py, or an entry in WITHOUT_UNIT_TEST or BY_PACKAGE "
        f"saying where it is tested: {untested}"
    )


def test_every_entry_is_still_needed() -> None:
    untested = {m for m in modules() if not unit_test_path(m).exists()}
    listed = set(WITHOUT_UNIT_TEST) | {
        f"{pkg}.{name}" for pkg, (_, names) in BY_PACKAGE.items() for name in names.split()
    }
    stale = sorted(listed - untested)
    assert not stale, f"delete these entries (the module has its test file now, or is gone): {stale}"


def test_an_entry_names_a_test_place() -> None:
    reasons = {**WITHOUT_UNIT_TEST, **{pkg: why for pkg, (why, _) in BY_PACKAGE.items()}}
    vague = [
        key
        for key, why in reasons.items()
        if "tests/" not in why
        and why not in {"exception types", "Protocols", "value types"}
        and not why.startswith(("frozen value types", "every integration test"))
    ]
    assert not vague, f"say where these are tested: {vague}"


def test_the_check_sees_a_new_module() -> None:
    assert entry_for("myapp.core.brand_new") is None
    assert entry_for("myapp.web.brand_new_api") is None  # a package entry names its modules
    assert entry_for("myapp.web.runs_api") == "myapp.web"
    assert entry_for("myapp.core.dag") == "myapp.core.dag"
    assert unit_test_path("myapp.core.brand_new") == UNIT / "core" / "test_brand_new.py"
    assert unit_test_path("myapp.executor.kubernetes.pod_plan") == UNIT / "executor" / "kubernetes" / "test_pod_plan.py"
    assert unit_test_path("myapp.settings") == UNIT / "test_settings.py"
