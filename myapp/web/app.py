"""The web application factory: Flask-AppBuilder (login, roles, JWT, OpenAPI) plus myapp's REST API.

`create_app(settings)` builds everything from settings; nothing is configured at import time.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, redirect, send_from_directory, url_for
from flask_appbuilder import AppBuilder, IndexView, expose
from flask_appbuilder.const import AUTH_DB
from flask_appbuilder.models.sqla import Model
from flask_appbuilder.utils.legacy import get_sqla_class

from myapp.db.session import driver_url
from myapp.services import Services, build_services
from myapp.settings import Settings, SettingsError, ensure_secret_key
from myapp.web.guards import add_security_headers, refuse_cross_site_writes, refuse_hostile_input
from myapp.web.security import MyappSecurityManager, admins_with_shipped_passwords, limit_api_login


def builtin_roles() -> dict[str, list[list[str]]]:
    """Return FAB's built-in roles as (view-menu regex, permission regex) pairs.

    Project-level roles (owner, member, viewer) are kept per project in project_members.
    """
    from myapp.web.pages import menu_access_pattern

    menus = [menu_access_pattern(), "menu_access"]
    return {
        "User": [["Pipelines|Runs|Templates|Schedules", "can_read|can_write"], menus],
        "Viewer": [["Pipelines|Runs|Templates|Schedules", "can_read"], menus],
    }


class HomeView(IndexView):
    """The landing page is the pipeline list; an anonymous visitor goes to the login page first."""

    @expose("/")
    def index(self) -> Any:
        return redirect(url_for("PipelinePages.list"))


def flask_config(settings: Settings, *, create_db: bool, update_perms: bool) -> dict[str, Any]:
    """Return the Flask/FAB configuration derived from settings."""
    url = driver_url(settings.effective_database_url)  # mysql:// too (it named MySQLdb, not installed)
    options: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        options = {"connect_args": {"timeout": 60, "check_same_thread": False}}
    from datetime import timedelta

    from myapp.web.security import password_validator

    return {
        "SECRET_KEY": settings.secret_key,
        "SQLALCHEMY_DATABASE_URI": url,
        "SQLALCHEMY_ENGINE_OPTIONS": options,
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "AUTH_TYPE": AUTH_DB,
        "AUTH_ROLE_ADMIN": "Admin",
        "AUTH_ROLE_PUBLIC": "Public",
        "FAB_ROLES": builtin_roles(),
        "FAB_ADD_SECURITY_API": True,
        "FAB_API_SWAGGER_UI": True,
        "FAB_CREATE_DB": create_db,
        "FAB_UPDATE_PERMS": update_perms,
        "APP_NAME": "myapp",
        "LANGUAGES": {"en": {"flag": "gb", "name": "English"}, "zh": {"flag": "cn", "name": "Chinese"}},
        "BABEL_DEFAULT_LOCALE": "en",
        "WTF_CSRF_ENABLED": True,
        "WTF_CSRF_EXEMPT_LIST": [],
        "JSON_SORT_KEYS": False,
        "MAX_CONTENT_LENGTH": 4 * 1024 * 1024,
        # Sign-in (docs/security.md): a per-address limit on login attempts (Redis when there is one, so
        # every worker counts together), the password policy on new passwords, short-lived tokens.
        # FAB sets RATELIMIT_ENABLED to False by default: AUTH_RATE_LIMITED alone limits nothing.
        "AUTH_RATE_LIMITED": True,
        "AUTH_RATE_LIMIT": settings.login_rate_limit,
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": settings.effective_redis_url or "memory://",
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        "FAB_PASSWORD_COMPLEXITY_ENABLED": True,
        "FAB_PASSWORD_COMPLEXITY_VALIDATOR": password_validator(settings.password_min_length),
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=settings.jwt_access_minutes),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(hours=settings.jwt_refresh_hours),
    }


def create_app(
    settings: Settings, services: Services | None = None, *, update_perms: bool = False, create_db: bool = False
) -> Flask:
    """Build the Flask app; `myapp init` must have created the schema first."""
    settings = ensure_secret_key(settings)
    logging.getLogger("flask_appbuilder").setLevel(logging.ERROR)
    app = Flask("myapp")
    app.config.update(flask_config(settings, create_db=create_db, update_perms=update_perms))
    guard_requests(app, settings)
    db = get_sqla_class()(model_class=Model)
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name in ("mysql", "mariadb"):
            # FAB's models name sequences (ab_user_id_seq, ...) that only PostgreSQL's schema has; MariaDB
            # would use them (it has sequences) and fail: our migrations give MySQL AUTO_INCREMENT ids.
            # The dialect sets the flag at its first connection: connect first, then clear it.
            db.engine.connect().close()
            db.engine.dialect.supports_sequences = False
        appbuilder = AppBuilder(
            indexview=HomeView, update_perms=update_perms, security_manager_class=MyappSecurityManager
        )
        appbuilder.init_app(app, db.session)
        limit_api_login(app, settings.login_rate_limit)
        if settings.production and not create_db:
            refuse_shipped_admin_passwords(appbuilder.sm)
        svc = services or build_services(settings)
        if services is None:
            from myapp.queue.celery_app import create_celery, use_celery

            celery, _ = create_celery(settings)
            use_celery(svc, celery)
        app.extensions["myapp"] = svc
        from myapp.web.api import register_apis
        from myapp.web.pages import register_pages

        register_apis(appbuilder)
        register_pages(appbuilder)

    @app.errorhandler(BlockingIOError)
    def client_too_slow(exc: BlockingIOError) -> Any:  # the web server's client timeout (myapp/web/server.py)
        return {"message": "the request body did not arrive in time"}, 408

    @app.get("/health")
    def health() -> Any:
        return health_report(app.extensions["myapp"])

    @app.get("/docs")
    def docs() -> Any:
        return redirect("/swagger/v1")

    @app.get("/favicon.ico")
    def favicon() -> Any:  # browsers ask for it on every page, FAB's login page included
        return send_from_directory(
            Path(__file__).parent / "static", "favicon.svg", mimetype="image/svg+xml", max_age=86400
        )

    return app


def health_report(svc: Services) -> dict[str, Any]:
    """The body of /health: always 200 (a liveness probe must not restart the web server for a
    watcher's trouble); `status` is `degraded` when a Kubernetes watcher reports a failing watch or
    has gone silent. Its `k8s_watchers` entries are short: the reasons in full are in the watcher's
    log and on the run page (docs/kubernetes.md)."""
    settings = svc.settings
    if settings.executor != "kubernetes":
        # How a worker started like this server keeps tasks apart (docs/security.md §3).
        from myapp.executor.task_user import describe

        return {"status": "ok", "task_isolation": describe(settings.task_isolation)}
    from myapp.executor.kubernetes.watcher_health import judge, read_reports
    from myapp.k8s.config import installation_id

    if svc.redis is None:
        return {"status": "ok", "k8s_watchers": "not reported (no Redis configured)"}
    try:
        reports = read_reports(svc.redis)
    except Exception as exc:  # noqa: BLE001  /health answers whatever is down
        return {
            "status": "degraded",
            "k8s_watchers": f"cannot read the watchers' reports from Redis ({type(exc).__name__})",
        }
    healthy, entries = judge(
        reports,
        installation=installation_id(settings),
        now=svc.clock.now(),
        silent_after=max(settings.k8s_watcher_timeout, settings.heartbeat_timeout),
        expected_group=settings.k8s_group,
    )
    return {"status": "ok" if healthy else "degraded", "k8s_watchers": entries}


def guard_requests(app: Flask, settings: Settings) -> None:
    """Install the request guards and security headers (myapp/web/guards.py), and trust configured proxies."""
    refuse_hostile_input(app)
    refuse_cross_site_writes(app, settings.web_trusted_origins)
    add_security_headers(app, production=settings.production)
    if settings.web_proxy_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.web_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]


def refuse_shipped_admin_passwords(sm: Any) -> None:
    """Stop a production start while an admin still has a password our files suggest (B2)."""
    found = admins_with_shipped_passwords(sm)
    if found:
        raise SettingsError(
            f"MYAPP_ADMIN_PASSWORD: admin user(s) {', '.join(found)} still have a placeholder "
            "password; run `myapp init` with MYAPP_ADMIN_PASSWORD set to a strong password"
        )
