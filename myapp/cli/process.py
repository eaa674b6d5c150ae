"""Process commands: `init`, `standalone`, `webserver`, `worker [--burst]`, `beat`."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import click

from myapp.cli import fail, get_services, handle_errors
from myapp.core.secret_policy import password_problem
from myapp.settings import Settings


def init_database(services: Any, *, admin_user: str, admin_password: str | None, admin_email: str,
                  quiet: bool = False) -> None:
    """Create or upgrade the schema, roles, the admin user, the default project and templates."""
    from myapp.db.migrate import upgrade
    from myapp.plugins import load_templates
    from myapp.web.app import create_app
    from myapp.web.security import admins_with_shipped_passwords

    settings: Settings = services.settings
    if admin_password is not None and settings.production:
        problem = password_problem(admin_password, min_length=settings.password_min_length, username=admin_user)
        if problem:
            fail(f"MYAPP_ADMIN_PASSWORD: {problem}; production mode needs a strong password of your own", 2)
    upgrade(services.db)
    app = create_app(settings, services, update_perms=True, create_db=True)
    with app.app_context():
        sm = app.appbuilder.sm  # type: ignore[attr-defined]
        sm.create_builtin_roles()
        existing = sm.find_user(username=admin_user)
        if existing is None:
            password = admin_password or _dev_password(settings)
            role = sm.find_role("Admin")
            if not sm.add_user(admin_user, "Admin", "User", admin_email, role, password):
                fail(f"could not create admin user {admin_user!r}")
            if not quiet:
                click.echo(f"created admin user {admin_user!r}"
                           + ("" if admin_password else f" (password in {settings.home / 'admin_password'})"))
        elif settings.production and admin_password and admin_user in admins_with_shipped_passwords(sm):
            sm.reset_password(existing.id, admin_password)   # an install from before production checks
            click.echo(f"replaced the placeholder password of admin user {admin_user!r} with MYAPP_ADMIN_PASSWORD")
    result = load_templates(settings.plugin_paths())
    for err in result.errors:
        click.echo(f"myapp: warning: plugin skipped: {err}", err=True)
    services.templates.sync(result.templates, "plugin", services.clock.now())
    _ensure_project(services)
    if not quiet:
        click.echo(f"database ready: {settings.effective_database_url.split('@')[-1]}; "
                   f"{len(result.templates)} templates registered")


def _dev_password(settings: Settings) -> str:
    if settings.production:
        fail("MYAPP_ADMIN_PASSWORD: required in production mode (no default password)", 2)
    path = settings.home / "admin_password"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(12) + "\n", encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def _ensure_project(services: Any) -> None:
    from sqlalchemy import select

    from myapp.db.tables import Project

    with services.db.write() as s:
        if s.scalar(select(Project.id).where(Project.name == "default")) is None:
            s.add(Project(name="default", description="Default project", created_at=services.clock.now()))


@click.command("init")
@click.option("--admin-user", envvar="MYAPP_ADMIN_USER", default="admin", show_default=True)
@click.option("--admin-password", envvar="MYAPP_ADMIN_PASSWORD", default=None,
              help="Default: a random password kept in MYAPP_HOME/admin_password (refused in production).")
@click.option("--admin-email", envvar="MYAPP_ADMIN_EMAIL", default="admin@localhost", show_default=True)
@click.pass_context
@handle_errors
def init(ctx: click.Context, admin_user: str, admin_password: str | None, admin_email: str) -> None:
    """Create or upgrade the database schema, roles and admin user (safe to run twice)."""
    init_database(get_services(ctx), admin_user=admin_user, admin_password=admin_password, admin_email=admin_email)


@click.command("webserver")
@click.option("--host", default=None)
@click.option("--port", type=int, default=None)
@click.option("--workers", type=int, default=None, help="Worker processes (default: MYAPP_WEB_WORKERS, 2).")
@click.option("--threads", type=int, default=None, help="Threads per worker (default: MYAPP_WEB_THREADS, 8).")
@click.pass_context
@handle_errors
def webserver(ctx: click.Context, host: str | None, port: int | None, workers: int | None,
              threads: int | None) -> None:
    """Serve the web pages and the REST API with gunicorn (threaded workers, client timeouts)."""
    from myapp.web.server import gunicorn_argv

    settings = get_services(ctx).settings
    bind = f"{host or settings.web_host}:{port or settings.web_port}"
    os.environ.setdefault("PGAPPNAME", "myapp-webserver")  # gunicorn's argv does not name the command
    argv = gunicorn_argv(settings, bind, workers, threads)
    os.execvp(argv[0], argv)


def celery_worker_argv(settings: Settings, *, beat: bool, concurrency: int | None, pool: str = "prefork") -> list[str]:
    """Return the argv of a Celery worker (optionally with the embedded beat)."""
    argv = ["worker", "--loglevel=INFO", f"--concurrency={concurrency or settings.worker_concurrency}", f"--pool={pool}",
            "-Q", "myapp", "--without-gossip", "--without-mingle", "-n", f"myapp-{os.getpid()}@%h"]
    if beat:
        argv += ["-B", f"--schedule={settings.home / 'celerybeat-schedule'}"]
    return argv


@click.command("worker")
@click.option("--burst", is_flag=True, help="Run queued work until none is left, then exit (no broker needed).")
@click.option("--concurrency", "-c", type=int, default=None)
@click.option("--beat", is_flag=True, help="Also run the beat scheduler in this worker.")
@click.option("--pool", type=click.Choice(["prefork", "solo", "threads"]), default="prefork", show_default=True,
              help="Celery pool; solo runs one attempt at a time in this process (start several workers).")
@click.pass_context
@handle_errors
def worker(ctx: click.Context, burst: bool, concurrency: int | None, beat: bool, pool: str) -> None:
    """Run a Celery worker that executes task attempts."""
    services = get_services(ctx)
    if burst:
        n = run_burst(services, concurrency or services.settings.worker_concurrency)
        click.echo(f"burst worker: {n} attempts run; no work left")
        return
    from myapp.queue.celery_app import create_celery

    app, _ = create_celery(services.settings)
    code, asked = run_celery_worker(app, celery_worker_argv(services.settings, beat=beat, concurrency=concurrency,
                                                            pool=pool))
    if code and not asked:
        fail(f"the Celery worker stopped by itself with exit code {code} (its log above says why)", code)
    sys.exit(code)


def run_celery_worker(app: Any, argv: list[str]) -> tuple[int, bool]:
    """Run a Celery worker until it stops; return its exit code and whether a signal asked it to stop.

    Celery's `app.worker_main` drops the code, so a worker stopped by an "Unrecoverable error"
    exited 0 and a supervisor restarting only failures left it down.
    """
    from celery.signals import worker_init, worker_shutting_down

    workers: list[Any] = []
    asked: list[str] = []

    def remember(sender: Any, **_: Any) -> None:
        workers.append(sender)

    def note_signal(sig: str = "", **_: Any) -> None:
        asked.append(sig)

    worker_init.connect(remember, weak=False)
    worker_shutting_down.connect(note_signal, weak=False)
    try:
        app.worker_main(argv)
    finally:
        worker_init.disconnect(remember)
        worker_shutting_down.disconnect(note_signal)
    return (int(workers[-1].exitcode or 0) if workers else 1), bool(asked)


def run_burst(services: Any, concurrency: int, poll: float = 0.2) -> int:
    """Claim and run queued task instances straight from the database until nothing is left."""
    from myapp.executor.worker import execute_task_instance, local_executor

    executor, s, ran = local_executor(services), services.settings, 0
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        while True:
            services.attempts.reconcile(services.clock.now(), heartbeat_timeout=s.heartbeat_timeout,
                                        requeue_after=s.requeue_after)
            ids = services.attempts.claimable(limit=concurrency * 4)
            if ids:
                ran += sum(pool.map(lambda i: execute_task_instance(i, services, executor), ids))
                continue
            if not services.attempts.has_pending_work(services.clock.now()):
                return ran
            time.sleep(poll)


@click.command("beat")
@click.pass_context
@handle_errors
def beat(ctx: click.Context) -> None:
    """Run the Celery beat scheduler (make_timerun_config and the reconciler)."""
    from myapp.queue.celery_app import create_celery

    settings = get_services(ctx).settings
    app, _ = create_celery(settings)
    app.start(["beat", "--loglevel=INFO", f"--schedule={settings.home / 'celerybeat-schedule'}"])


@click.command("standalone")
@click.option("--port", type=int, default=None)
@click.pass_context
@handle_errors
def standalone(ctx: click.Context, port: int | None) -> None:
    """Run web + scheduler + worker in one command on the embedded default (SQLite, no Redis)."""
    services = get_services(ctx)
    init_database(services, admin_user=os.environ.get("MYAPP_ADMIN_USER", "admin"),
                  admin_password=os.environ.get("MYAPP_ADMIN_PASSWORD"), admin_email="admin@localhost")
    settings = services.settings
    port = port or settings.web_port
    _resend_queued(services)
    env = {**os.environ, "MYAPP_HOME": str(settings.home)}
    commands = [
        [sys.executable, "-m", "myapp", "worker", "--beat"],
        [sys.executable, "-m", "myapp", "webserver", "--port", str(port), "--workers", "1"],
    ]
    click.echo(f"myapp standalone: http://{settings.web_host}:{port}/  (user admin, password in "
               f"{settings.home / 'admin_password'} unless MYAPP_ADMIN_PASSWORD was set); Ctrl-C stops")
    # A worker that died may have taken messages it never ran: send the queued ones again.
    _supervise(commands, env, before_restart=lambda i: _resend_queued(services) if i == 0 else None)


def _resend_queued(services: Any) -> None:
    """Send a message for every queued task instance before the worker starts.

    The folder broker hands a message over by deleting its file: one a worker had taken when
    standalone was stopped (or killed) is gone, and the reconciler would re-send it only after
    `requeue_after` (2 minutes). Standalone is the only worker of its MYAPP_HOME; a message still
    in the folder becomes a duplicate, which claims nothing.
    """
    from myapp.cli.pipeline import attach_dispatch

    queued = services.attempts.claimable(limit=None)
    if queued:
        attach_dispatch(services)
        services.runs.dispatch(queued)
        click.echo(f"myapp standalone: {len(queued)} queued task(s) sent to the worker again")


def _supervise(commands: list[list[str]], env: dict[str, str], max_restarts: int = 5,
               before_restart: Callable[[int], None] | None = None) -> None:
    """Run the commands; restart one that dies (the database keeps the work), stop all on a signal.

    `before_restart(i)` runs before command `i` is started again.
    """
    procs = [subprocess.Popen(cmd, env=env) for cmd in commands]
    restarts = [0] * len(commands)
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            for i, p in enumerate(procs):
                if p.poll() is not None and not stopping:
                    if restarts[i] >= max_restarts:
                        click.echo(f"myapp standalone: {' '.join(commands[i][2:])} keeps failing; stopping", err=True)
                        stop()
                        break
                    restarts[i] += 1
                    click.echo(f"myapp standalone: {' '.join(commands[i][2:])} exited ({p.returncode}); restarting",
                               err=True)
                    if before_restart is not None:
                        try:
                            before_restart(i)
                        except Exception as exc:  # noqa: BLE001  the restart matters more
                            click.echo(f"myapp standalone: before restarting: {exc}", err=True)
                    procs[i] = subprocess.Popen(commands[i], env=env)
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    if any(n >= max_restarts for n in restarts):
        sys.exit(1)


def register(main: click.Group) -> None:
    for cmd in (init, webserver, worker, beat, standalone):
        main.add_command(cmd)
