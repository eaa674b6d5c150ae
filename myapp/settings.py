"""Typed settings: one frozen dataclass read from config/, overridden by MYAPP_* variables.

Loaded once per process by the entry modules and passed down; nothing reads it at import time.
A bad value fails at start with a message naming the setting.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import get_type_hints
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from myapp.core.secret_policy import password_problem, secret_key_problem
from myapp.core.webhook_policy import parse_networks

REPO_ROOT = Path(__file__).resolve().parent.parent
EXECUTORS = ("local", "kubernetes")
_ACCOUNT = re.compile(r"[a-z_][a-z0-9_-]{0,19}")
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")


class SettingsError(ValueError):
    """A configuration value is invalid; the message names the setting."""


@dataclass(frozen=True)
class Settings:
    """Every configuration value of myapp, validated."""

    home: Path = field(default_factory=lambda: Path.home() / ".myapp")
    database_url: str = ""
    broker_url: str = ""
    redis_url: str = ""
    executor: str = "local"
    timezone: str = "UTC"
    cluster_name: str = "local"
    workflow_space: Path = Path("/tmp/workflow_space")
    production: bool = False
    secret_key: str = ""
    secrets_keys: str = ""  # Fernet keys sealing stored secrets, first seals; empty: derived from secret_key
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    # Web server and its defences (docs/security.md)
    web_workers: int = 2  # gunicorn worker processes
    web_threads: int = 8  # threads per worker: one request each
    web_client_timeout: int = 10  # seconds a client may stay silent while sending a request
    web_proxy_hops: int = 0  # reverse proxies in front whose X-Forwarded-* headers are trusted
    web_trusted_origins: str = ""  # extra origins allowed for cookie-authenticated API writes
    login_rate_limit: str = "10 per minute"  # per client address, on the login form and the API login
    password_min_length: int = 12
    jwt_access_minutes: int = 15
    jwt_refresh_hours: int = 12
    template_self_approval: bool = False  # let a template's submitter approve it (single-admin installs)
    webhook_allowed_networks: str = ""  # CIDRs alert webhooks may reach although private (e.g. 10.0.0.0/8)
    schedule_interval: int = 60
    cron_min_interval: int = 60
    backfill_chunk: int = 1000
    backfill_confirm: int = 50  # a save or enable that would start more cron runs needs a confirmation
    run_inline_tasks: int = 1000  # a REST run of more tasks is created by a worker (202, state creating)
    retention_days: int = 0  # the beat runs `myapp db clean --older-than N` daily; 0 = never
    reconcile_interval: int = 10
    sql_fast_paths: bool = True  # PostgreSQL's one-statement claim/finish; false: the generic path
    heartbeat_interval: float = 2.0
    heartbeat_timeout: int = 60
    requeue_after: int = 120
    kill_grace: float = 5.0
    # Who tasks run as on the local executor (docs/security.md §3): auto = one account per project when
    # the worker is root, else the worker's user for one project only; users = demand accounts; none = opt in
    # to every project's tasks running as the worker's user.
    task_isolation: str = "auto"
    task_user: str = "myapp-task"  # project N's tasks run as account <task_user>-N ...
    task_uid_base: int = 2_000_000  # ... with uid = gid = task_uid_base + N
    # private = each attempt's own /tmp and output roots, as a pod has (a root worker: a mount namespace;
    # else a private TMPDIR); shared = the machine's, for pipelines that pass files through /tmp (docs/security.md §3).
    task_tmp: str = "private"
    render_timeout: float = 10.0  # seconds an attempt may spend rendering its Jinja (docs/security.md)
    worker_concurrency: int = 2
    broker_liveness_timeout: int = 120  # seconds a Redis worker may take no probe before it exits; 0 = off
    plugin_dirs: str = "plugins"
    k8s_namespace: str = "myapp"
    k8s_service_account: str = ""
    k8s_image_pull_secrets: str = ""
    k8s_workflow_space_pvc: str = ""
    # Kubernetes executor (issue 5); structured values are JSON/YAML text, parsed by myapp/k8s/config.py
    k8s_kubeconfig: str = ""  # empty: in-cluster when available, else ~/.kube/config
    k8s_context: str = ""
    k8s_group: str = "default"  # worker group: one watcher (`myapp k8s-watcher`) per group
    k8s_workflow_space_mount: str = ""  # path of the workflow space inside pods; empty: workflow_space
    k8s_node_selector: str = ""  # {"disktype": "ssd"} or disktype=ssd,zone=a
    k8s_tolerations: str = ""  # [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]
    k8s_default_resources: str = ""  # {"cpu": "500m", "memory": "512Mi"}
    k8s_resource_packages: str = ""  # {"gpu-small": {"cpu": "4", "memory": "16Gi", "gpu": 1}}
    k8s_projects: str = ""  # per project: {"ml": {"resources": {}, "node_selector": {}, ...}}
    k8s_gpu_resource: str = "nvidia.com/gpu"
    k8s_pod_prefix: str = "myapp"
    k8s_delete_finished: bool = True  # delete pods, services and resources of ended attempts
    k8s_watch_timeout: int = 300  # seconds a watch request lasts before it is resumed
    k8s_log_streams: int = 2000  # most live log streams per watcher; beyond, logs are read at the end
    k8s_image_pull_grace: float = 120.0  # a container that cannot start (image pull, config) fails after this
    k8s_startup_timeout: float = 600.0  # a pod that started no container this long after creation fails
    k8s_lost_node_timeout: float = 300.0  # a pod stuck terminating / on a not-ready node: force-deleted after this
    k8s_create_retry_timeout: float = 300.0  # creates refused by 429/5xx/quota are tried again this long
    k8s_log_read_timeout: float = 120.0  # a log follow silent this long is resumed with sinceTime (0: never)
    k8s_watcher_timeout: int = 120  # attempts of a silent watcher are lost after this (restart, failover)
    k8s_lease_duration: int = 15  # a leading watcher's Lease expires this long after its last renewal
    k8s_missing_grace: int = 60  # a launched attempt whose pods (or resource) stay absent this long fails
    # Who moves file inputs and outputs (docs/artifacts.md): "watcher" (through the shared workflow-space
    # volume) or "pod" (the pod itself, through URLs presigned per attempt; needs an s3:// repository).
    k8s_artifact_transfer: str = "watcher"
    k8s_transfer_image: str = "python:3.12-slim"  # the pod's fetch-inputs/upload-outputs containers (python3)
    output_roots: str = "/tmp"  # absolute output paths must lie under one of these (comma-separated)
    # Where file outputs are kept (docs/artifacts.md): empty = MYAPP_HOME/artifacts on this machine's disk,
    # file:///path, or s3://bucket/prefix (extra [s3]; credentials from AWS_* variables or ~/.aws).
    artifact_repository: str = ""
    artifact_s3_endpoint_url: str = ""  # MinIO or another S3-protocol server, e.g. http://minio:9000
    artifact_s3_region: str = ""
    installation_id: str = ""  # label myapp/installation on every object; empty: derived from the database

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def logs_dir(self) -> Path:
        """Return where finished attempts' logs are archived."""
        return self.home / "logs"

    @property
    def artifacts_dir(self) -> Path:
        """Return where file outputs of runs are stored."""
        return self.home / "artifacts"

    @property
    def effective_database_url(self) -> str:
        """Return the database URL, defaulting to SQLite in `home`."""
        return self.database_url or f"sqlite:///{self.home / 'myapp.db'}"

    @property
    def effective_broker_url(self) -> str:
        """Return the broker URL, defaulting to a folder broker in `home`."""
        return self.broker_url or "filesystem://"

    @property
    def effective_redis_url(self) -> str | None:
        """Return the Redis URL for live logs, or None when running without Redis."""
        if self.redis_url:
            return self.redis_url
        if self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return None

    def plugin_paths(self) -> list[Path]:
        """Return the plugin directories, relative ones resolved against the repository."""
        out = []
        for part in self.plugin_dirs.split(os.pathsep if os.pathsep in self.plugin_dirs else ","):
            if part.strip():
                path = Path(part.strip()).expanduser()
                out.append(path if path.is_absolute() else REPO_ROOT / path)
        return out


def _validate(s: Settings) -> None:
    if s.executor not in EXECUTORS:
        raise SettingsError(f"MYAPP_EXECUTOR: {s.executor!r} is not one of {', '.join(EXECUTORS)}")
    try:
        ZoneInfo(s.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(f"MYAPP_TIMEZONE: {s.timezone!r} is not an IANA timezone") from exc
    if s.database_url and "://" not in s.database_url:
        raise SettingsError(f"MYAPP_DATABASE_URL: {s.database_url!r} is not a database URL")
    scheme = s.broker_url.split("://", 1)[0] if s.broker_url else "filesystem"
    if scheme not in ("redis", "rediss", "filesystem", "memory", "amqp", "sqla+sqlite"):
        raise SettingsError(f"MYAPP_BROKER_URL: unsupported broker {s.broker_url!r}")
    for name in (
        "web_port",
        "web_workers",
        "web_threads",
        "web_client_timeout",
        "password_min_length",
        "jwt_access_minutes",
        "jwt_refresh_hours",
        "schedule_interval",
        "cron_min_interval",
        "backfill_chunk",
        "run_inline_tasks",
        "reconcile_interval",
        "heartbeat_timeout",
        "requeue_after",
        "worker_concurrency",
        "k8s_watch_timeout",
        "k8s_watcher_timeout",
        "k8s_lease_duration",
        "k8s_missing_grace",
        "render_timeout",
    ):
        if getattr(s, name) <= 0:
            raise SettingsError(f"MYAPP_{name.upper()}: must be a positive number")
    if s.backfill_confirm < 0:
        raise SettingsError("MYAPP_BACKFILL_CONFIRM: must be 0 (always ask) or more")
    if s.retention_days < 0:
        raise SettingsError("MYAPP_RETENTION_DAYS: must be 0 (keep everything) or a number of days")
    for name in (
        "k8s_image_pull_grace",
        "k8s_startup_timeout",
        "k8s_lost_node_timeout",
        "k8s_create_retry_timeout",
        "k8s_log_read_timeout",
        "broker_liveness_timeout",
    ):
        if getattr(s, name) < 0:
            raise SettingsError(f"MYAPP_{name.upper()}: must be 0 (off) or a positive number of seconds")
    if any(not root.strip().startswith("/") for root in s.output_roots.split(",") if root.strip()):
        raise SettingsError(f"MYAPP_OUTPUT_ROOTS: {s.output_roots!r}: every location must be an absolute path")
    _validate_artifact_repository(s.artifact_repository.strip())
    if s.k8s_artifact_transfer not in ("watcher", "pod"):
        raise SettingsError(f"MYAPP_K8S_ARTIFACT_TRANSFER: {s.k8s_artifact_transfer!r}: use watcher or pod")
    if s.k8s_artifact_transfer == "pod" and not s.artifact_repository.strip().startswith(("s3://", "s3a://")):
        raise SettingsError(
            "MYAPP_K8S_ARTIFACT_TRANSFER: pod needs an s3:// MYAPP_ARTIFACT_REPOSITORY (pods upload through presigned URLs)"
        )
    if s.installation_id and not _LABEL_VALUE.fullmatch(s.installation_id):
        raise SettingsError(
            f"MYAPP_INSTALLATION_ID: {s.installation_id!r} is not a label value "
            "(up to 63 letters, digits, '-', '_' or '.', alphanumeric at both ends)"
        )
    if s.task_tmp not in ("private", "shared"):
        raise SettingsError(f"MYAPP_TASK_TMP: {s.task_tmp!r} is not one of private, shared")
    if s.task_isolation not in ("auto", "users", "none"):
        raise SettingsError(f"MYAPP_TASK_ISOLATION: {s.task_isolation!r} is not one of auto, users, none")
    if not _ACCOUNT.fullmatch(s.task_user):
        raise SettingsError(
            f"MYAPP_TASK_USER: {s.task_user!r} is not an account name prefix "
            "(lower-case letters, digits, '_' or '-', at most 20, starting with a letter)"
        )
    if not 1000 <= s.task_uid_base <= 4_000_000_000:
        raise SettingsError("MYAPP_TASK_UID_BASE: must be between 1000 and 4000000000")
    for key in (k.strip() for k in s.secrets_keys.split(",") if k.strip()):
        try:
            ok = len(base64.urlsafe_b64decode(key.encode())) == 32
        except ValueError:
            ok = False
        if not ok:
            raise SettingsError(
                "MYAPP_SECRETS_KEYS: each key must be a Fernet key (32 bytes, URL-safe base64; "
                "make one with `myapp secrets new-key`)"
            )
    if s.web_proxy_hops < 0:
        raise SettingsError("MYAPP_WEB_PROXY_HOPS: must be 0 or more")
    try:
        parse_networks(s.webhook_allowed_networks)
    except ValueError as exc:
        raise SettingsError(f"MYAPP_WEBHOOK_ALLOWED_NETWORKS: {exc}") from None
    if s.production:
        _validate_production(s)


def _validate_artifact_repository(url: str) -> None:
    scheme, sep, rest = url.partition("://")
    if url and (not sep or not scheme.isidentifier() or not rest.strip("/")):
        raise SettingsError(
            f"MYAPP_ARTIFACT_REPOSITORY: {url!r} is not a URL like s3://bucket/prefix or "
            "file:///path (empty: MYAPP_HOME/artifacts)"
        )
    if scheme == "file" and not rest.startswith("/"):
        raise SettingsError(f"MYAPP_ARTIFACT_REPOSITORY: {url!r}: a file:// repository needs an absolute path")


def _validate_production(s: Settings) -> None:
    """Refuse what would let anyone in: a missing, shipped or weak secret key or password (item B2)."""
    if not s.secret_key:
        raise SettingsError("MYAPP_SECRET_KEY: required in production mode")
    problem = secret_key_problem(s.secret_key)
    if problem:
        raise SettingsError(f"MYAPP_SECRET_KEY: {problem}; production mode needs a random key of your own")
    for name in ("database_url", "broker_url", "redis_url"):
        password = url_password(getattr(s, name))
        problem = password_problem(password, min_length=s.password_min_length) if password else None
        if problem:
            raise SettingsError(f"MYAPP_{name.upper()}: its password {problem}; production mode needs a strong one")


def url_password(url: str) -> str:
    """Return the password of a URL such as postgresql://user:password@host/db ('' when it has none)."""
    try:
        return unquote(urlsplit(url).password or "")
    except ValueError:
        return ""


def _convert(name: str, kind: object, raw: object) -> object:
    text = str(raw).strip()
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(text)
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is Path:
            return Path(text).expanduser()
    except ValueError:
        raise SettingsError(
            f"MYAPP_{name.upper()}: {text!r} is not a valid {getattr(kind, '__name__', kind)}"
        ) from None
    return text


def _defaults_file(env: Mapping[str, str]) -> Path | None:
    explicit = env.get("MYAPP_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise SettingsError(f"MYAPP_CONFIG: no such file {explicit!r}")
        return path
    candidate = REPO_ROOT / "config" / "myapp.yaml"
    return candidate if candidate.is_file() else None


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read config/ defaults, apply MYAPP_* variables and `overrides`, validate, and return."""
    env = os.environ if env is None else env
    hints = get_type_hints(Settings)
    values: dict[str, object] = {}
    path = _defaults_file(env)
    if path is not None:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise SettingsError(f"{path}: expected a mapping of settings")
        unknown = set(data) - set(hints)
        if unknown:
            raise SettingsError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
        values.update({k: v for k, v in data.items() if v not in ("", None)})
    for f in fields(Settings):
        raw = env.get(f"MYAPP_{f.name.upper()}")
        if raw is not None and raw != "":
            values[f.name] = raw
    values.update(overrides)
    converted = {k: _convert(k, hints[k], v) for k, v in values.items()}
    return Settings(**converted)  # type: ignore[arg-type]


def ensure_secret_key(settings: Settings) -> Settings:
    """Return settings with a secret key: the configured one, else one kept in `home`."""
    if settings.secret_key:
        return settings
    path = settings.home / "secret_key"
    if not path.exists():
        settings.home.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32), encoding="utf-8")
        path.chmod(0o600)
    return dataclasses.replace(settings, secret_key=path.read_text(encoding="utf-8").strip())
