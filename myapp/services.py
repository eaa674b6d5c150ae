"""Per-process wiring: settings -> database, stores, catalog, logs. Built once by each entry module."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from myapp.artifacts import open_repository
from myapp.core.cron import validate_cron, validate_timezone
from myapp.core.errors import SpecError
from myapp.core.model import TaskSpec, TemplateSpec
from myapp.core.output_paths import parse_roots
from myapp.core.ports import ArtifactRepository, Dispatch
from myapp.core.validate import CronCheck, TaskCheck, UrlCheck
from myapp.db.attempt_store import AttemptStore
from myapp.db.pipeline_store import PipelineStore
from myapp.db.run_store import RunStore
from myapp.db.sealed import KEYRING, keys_from_settings
from myapp.db.session import Database
from myapp.db.specs import VersionSpecs
from myapp.db.template_store import TemplateStore
from myapp.logs.attempt_logs import LogReader
from myapp.settings import Settings, SettingsError, ensure_secret_key

if TYPE_CHECKING:
    from redis import Redis


class SystemClock:
    """The real clock (UTC)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def _no_dispatch(ids: Sequence[int]) -> None:
    """Leave queued tasks to a worker's reconciler/burst loop (used where no broker is wired)."""


@dataclass
class Services:
    settings: Settings
    db: Database
    templates: TemplateStore
    pipelines: PipelineStore
    runs: RunStore
    attempts: AttemptStore
    logs: LogReader
    redis: Redis | None  # live logs and liveness; None where no Redis is configured
    clock: SystemClock
    artifacts: ArtifactRepository  # file outputs: on this disk or in S3 (myapp/artifacts/)

    def set_dispatch(self, dispatch: Dispatch) -> None:
        """Route newly queued task instances to `dispatch` (after each commit)."""
        self.runs.dispatch = dispatch


def resource_check_for(settings: Settings) -> TaskCheck:
    """Return the save-time check of resource manifests against this installation's k8s settings."""
    from myapp.builtins.k8s_resource import check_task_manifest
    from myapp.builtins.manifest_policy import ManifestPolicy
    from myapp.executor.kubernetes.pod_plan import manifest_policy, workspace_claim_problems
    from myapp.k8s.config import kube_config

    try:
        cfg = kube_config(settings)
    except SettingsError:  # k8s settings are only checked when the Kubernetes executor starts
        cfg = None

    def check(task: TaskSpec, template: TemplateSpec | None, project: str) -> list[SpecError]:
        policy = manifest_policy(cfg, project) if cfg is not None else ManifestPolicy()
        errors = check_task_manifest(task, template, policy)
        if settings.executor == "kubernetes":  # a claim the pod could not mount is refused on save, not at run
            pvc = cfg.workflow_space_pvc if cfg is not None else ""
            errors += [
                SpecError(f"tasks[{task.name}].workspaces.{name}.claim", problem)
                for name, problem in workspace_claim_problems(task, project, pvc)
            ]
        return errors

    return check


def cron_check_for(settings: Settings) -> CronCheck:
    """Return the cron and timezone validator used at save time (R12, D14)."""

    def check(cron: str, timezone: str) -> None:
        validate_timezone(timezone)
        validate_cron(cron, timedelta(seconds=settings.cron_min_interval))

    return check


def webhook_check_for(settings: Settings) -> UrlCheck:
    """Return the save-time check of alert webhook URLs (no DNS; the sender checks addresses again)."""
    from myapp.core.webhook_policy import parse_networks, url_problem

    allowed = parse_networks(settings.webhook_allowed_networks)
    return lambda url: url_problem(url, allowed)


def make_redis(settings: Settings) -> Redis | None:
    """Return a Redis client for live logs, or None when no Redis is configured."""
    url = settings.effective_redis_url
    if not url:
        return None
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def build_services(settings: Settings, dispatch: Dispatch | None = None) -> Services:
    """Build every store of this process on one engine."""
    settings = ensure_secret_key(settings)
    settings.home.mkdir(parents=True, exist_ok=True)
    KEYRING.configure(keys_from_settings(settings.secrets_keys, settings.secret_key))  # secrets at rest
    db = Database.from_url(settings.effective_database_url)
    templates = TemplateStore(db)
    runs = RunStore(db, VersionSpecs(), dispatch or _no_dispatch, secret=settings.secret_key)
    redis_client = make_redis(settings)
    return Services(
        settings=settings,
        db=db,
        templates=templates,
        pipelines=PipelineStore(
            db,
            templates,
            cron_check_for(settings),
            parse_roots(settings.output_roots),
            resource_check_for(settings),
            webhook_check_for(settings),
        ),
        runs=runs,
        attempts=AttemptStore(runs, fast_path=settings.sql_fast_paths),
        logs=LogReader(settings.logs_dir, redis_client),
        redis=redis_client,
        clock=SystemClock(),
        artifacts=open_repository(settings),
    )
