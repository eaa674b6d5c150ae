"""Process commands: `init`, `standalone`, `webserver`, `worker [--burst]`, `beat`."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click

from myapp.cli import fail, get_services, handle_errors
from myapp.core.secret_policy import password_problem
from myapp.settings import Settings


def init_database(
    services: Any, *, admin_user: str, admin_password: str | None, admin_email: str, quiet: bool = False
) -> None:
    """Create or upgrade the schema, roles, the admin user, the default project and templates."""
    from myapp.catalog.plugins import load_templates
    from myapp.db.migrate import upgrade
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
                click.echo(
                    f"created admin user {admin_user!r}"
                    + ("" if admin_password else f" (password in {settings.home / 'admin_password'})")
                )
        elif settings.production and admin_password and admin_user in admins_with_shipped_passwords(sm):
            sm.reset_password(existing.id, admin_password)  # an install from before production checks
            click.echo(f"replaced the placeholder password of admin user {admin_user!r} with MYAPP_ADMIN_PASSWORD")
    result = load_templates(settings.plugin_paths())
    for err in result.errors:
        click.echo(f"myapp: warning: plugin skipped: {err}", err=True)
    services.templates.sync(result.templates, "plugin", services.clock.now())
    _ensure_project(services)
    _prepare_task_accounts(services)
    if not quiet:
        click.echo(
            f"database ready: {settings.effective_database_url.split('@')[-1]}; "
            f"{len(result.templates)} templates registered"
        )


def _prepare_task_accounts(services: Any) -> None:
    """As root: create the task account of every project and lock MYAPP_HOME away from them (docs/security.md §3)."""
    from myapp.db.projects import project_ids
    from myapp.executor.task_user import TaskAccounts
    from myapp.executor.worker import prepare_task_isolation

    settings: Settings = services.settings
    if settings.executor != "local":
        return
    iso = prepare_task_isolation(settings)
    if not iso.switches_users:
        return
    with services.db.read() as s:
        ids = project_ids(s)
    accounts = TaskAccounts(settings.task_user, settings.task_uid_base)
    for project_id in ids:
        accounts.for_project(project_id)


def announce_task_isolation(settings: Settings, *, prefix: str = "myapp", silent: bool = False) -> None:
    """Say plainly at worker start how tasks are kept apart; stop if task_isolation cannot be given.

    `silent`: check only (standalone's own worker: standalone has said it once already).
    """
    if settings.executor != "local":
        return
    from myapp.executor.worker import prepare_task_isolation

    iso = prepare_task_isolation(settings)
    if not iso.switches_users and not silent and iso.message not in _ANNOUNCED:
        _ANNOUNCED.add(iso.message)
        click.echo(f"{prefix}: warning: task isolation: {iso.message}", err=True)


_ANNOUNCED: set[str] = set()  # a burst worker run many times in one process says it once


def _dev_password(settings: Settings) -> str:
    if settings.production:
        fail("MYAPP_ADMIN_PASSWORD: required in production mode (no default password)", 2)
    path = settings.home / "admin_password"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(12) + "\n", encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def _ensure_project(services: Any) -> None:
    from myapp.db.projects import ensure_project

    with services.db.write() as s:
        ensure_project(s, "default", "Default project", services.clock.now())


@click.command("init")
@click.option("--admin-user", envvar="MYAPP_ADMIN_USER", default="admin", show_default=True)
@click.option(
    "--admin-password",
    envvar="MYAPP_ADMIN_PASSWORD",
    default=None,
    help="Default: a random password kept in MYAPP_HOME/admin_password (refused in production).",
)
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
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="One line per request on stdout.")
@click.option(
    "--graceful-timeout",
    type=int,
    default=30,
    show_default=True,
    help="Seconds a stopping worker may finish its requests.",
)
@click.pass_context
@handle_errors
def webserver(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    workers: int | None,
    threads: int | None,
    access_log: bool,
    graceful_timeout: int,
) -> None:
    """Serve the web pages and the REST API with gunicorn (threaded workers, client timeouts)."""
    from myapp.web.server import gunicorn_argv

    settings = get_services(ctx).settings
    bind = f"{host or settings.web_host}:{port or settings.web_port}"
    os.environ.setdefault("PGAPPNAME", "myapp-webserver")  # gunicorn's argv does not name the command
    argv = gunicorn_argv(
        settings, bind, workers, threads, access_log=access_log, graceful_timeout=graceful_timeout, chdir=package_root()
    )
    os.execvpe(argv[0], argv, safe_env(os.environ))


def package_root() -> Path:
    """Return the directory that holds the `myapp` package (gunicorn imports from there, not the cwd)."""
    import myapp

    return Path(myapp.__file__).resolve().parent.parent


def safe_env(env: Mapping[str, str]) -> dict[str, str]:
    """Return `env` for a child Python that must not import from its working directory.

    `python -m` puts the working directory first on sys.path: started from a directory holding a
    folder named `myapp` (a checkout, say), `import myapp` found that folder as a namespace
    package ("cannot import name ... 'myapp.catalog.plugins' (unknown location)"). PYTHONSAFEPATH
    (Python 3.11) leaves it out.
    """
    return {**env, "PYTHONSAFEPATH": "1"}


def celery_worker_argv(
    settings: Settings, *, beat: bool, concurrency: int | None, pool: str = "prefork", quiet: bool = False
) -> list[str]:
    """Return the argv of a Celery worker (optionally with the embedded beat; quiet: no banner, warnings only).

    It consumes the execute queue and the control queue (passes, wakes, reconciler, alerts).
    """
    from myapp.queue.celery_app import CONTROL_QUEUE, QUEUE

    argv = ["--quiet"] if quiet else []
    argv += [
        "worker",
        f"--loglevel={'WARNING' if quiet else 'INFO'}",
        f"--concurrency={concurrency or settings.worker_concurrency}",
        f"--pool={pool}",
        "-Q",
        f"{QUEUE},{CONTROL_QUEUE}",
        "--without-gossip",
        "--without-mingle",
        "-n",
        f"myapp-{os.getpid()}@%h",
    ]
    if beat:
        argv += ["-B", f"--schedule={settings.home / 'celerybeat-schedule'}"]
    return argv


@click.command("worker")
@click.option("--burst", is_flag=True, help="Run queued work until none is left, then exit (no broker needed).")
@click.option("--concurrency", "-c", type=int, default=None)
@click.option("--beat", is_flag=True, help="Also run the beat scheduler in this worker.")
@click.option(
    "--pool",
    type=click.Choice(["prefork", "solo", "threads"]),
    default="prefork",
    show_default=True,
    help="Celery pool; solo runs one attempt at a time in this process (start several workers).",
)
@click.option("--quiet", is_flag=True, help="No banner; log warnings and errors only.")
@click.pass_context
@handle_errors
def worker(ctx: click.Context, burst: bool, concurrency: int | None, beat: bool, pool: str, quiet: bool) -> None:
    """Run a Celery worker that executes task attempts."""
    services = get_services(ctx)
    announce_task_isolation(services.settings, silent=os.environ.get("MYAPP_STANDALONE_CHILD") == "1")
    if burst:
        n = run_burst(services, concurrency or services.settings.worker_concurrency)
        click.echo(f"burst worker: {n} attempts run; no work left")
        return
    from myapp.queue.celery_app import create_celery

    settings = services.settings
    if quiet:
        _hush_worker_notices()
    app, _ = create_celery(settings)
    liveness = _watch_liveness(app, settings)
    code, asked = run_celery_worker(
        app, celery_worker_argv(settings, beat=beat, concurrency=concurrency, pool=pool, quiet=quiet)
    )
    if liveness is not None and liveness.failed.is_set():
        fail(
            f"the Celery worker stopped taking messages from the broker for {liveness.timeout} s "
            "(broker_liveness_timeout); it stopped so that its supervisor starts it again",
            1,
        )
    if code and not asked:
        fail(f"the Celery worker stopped by itself with exit code {code} (its log above says why)", code)
    sys.exit(code)


def _watch_liveness(app: Any, settings: Settings) -> Any:
    """On a Redis broker, probe this worker's consumer once it is ready (myapp/queue/liveness.py)."""
    if not settings.effective_broker_url.startswith(("redis://", "rediss://")):
        return None
    from celery.signals import worker_ready

    from myapp.queue.liveness import install, start_watchdog

    liveness = install(app, settings.broker_liveness_timeout)
    if liveness is not None:
        worker_ready.connect(lambda **_: start_watchdog(app, liveness), weak=False)
    return liveness


def _hush_worker_notices() -> None:
    """Leave out the notices a quiet worker would print at every start (standalone's console)."""
    import logging
    import warnings

    from celery.platforms import SecurityWarning

    warnings.filterwarnings("ignore", category=SecurityWarning)  # running as root: a development machine
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)  # "No hostname was supplied" (folder broker)


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
    from myapp.db.run_creation import creating_runs, finish_creation
    from myapp.executor.worker import execute_task_instance, local_executor

    announce_task_isolation(services.settings)
    executor, s, ran = local_executor(services), services.settings, 0
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        while True:
            for run_id in creating_runs(services.runs):  # large runs asked for through the API (B15)
                finish_creation(services.runs, run_id, services.clock.now())
            services.attempts.reconcile(
                services.clock.now(),
                heartbeat_timeout=s.heartbeat_timeout,
                watcher_timeout=s.k8s_watcher_timeout,
                requeue_after=s.requeue_after,
            )
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
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Also print the worker's banner and log, beat ticks and one line per web request.",
)
@click.pass_context
@handle_errors
def standalone(ctx: click.Context, port: int | None, verbose: bool) -> None:
    """Run web + scheduler + worker in one command on the embedded default (SQLite, no Redis).

    Quiet by default: a line when it is ready, one per run that starts or ends, and errors.
    Ctrl-C or SIGTERM stops every process (see docs/standalone.md).
    """
    services = get_services(ctx)
    init_database(
        services,
        admin_user=os.environ.get("MYAPP_ADMIN_USER", "admin"),
        admin_password=os.environ.get("MYAPP_ADMIN_PASSWORD"),
        admin_email="admin@localhost",
        quiet=not verbose,
    )
    settings = services.settings
    port = port or settings.web_port
    _resend_queued(services)
    env = safe_env({**os.environ, "MYAPP_HOME": str(settings.home), "MYAPP_STANDALONE_CHILD": "1"})
    quiet = [] if verbose else ["--quiet"]
    web_quiet = [] if verbose else ["--no-access-log"]
    commands = [
        [sys.executable, "-m", "myapp", "worker", "--beat", *quiet],
        [
            sys.executable,
            "-m",
            "myapp",
            "webserver",
            "--port",
            str(port),
            "--workers",
            "1",
            "--graceful-timeout",
            "3",
            *web_quiet,
        ],
    ]
    ready = ReadyLine(
        settings.web_host,
        port,
        f"myapp standalone: http://{settings.web_host}:{port}/  (user admin, password in "
        f"{settings.home / 'admin_password'} unless MYAPP_ADMIN_PASSWORD was set); Ctrl-C stops",
        after=lambda: announce_task_isolation(settings, prefix="myapp standalone"),  # once, not by its worker
    )
    reporter = RunReporter(services)

    def every_second() -> None:
        ready()  # before the run lines: a run started once the page answers is reported after it
        reporter.report()

    # A worker that died may have taken messages it never ran: send the queued ones again.
    _supervise(
        commands,
        env,
        before_restart=lambda i: _resend_queued(services) if i == 0 else None,
        every_second=every_second,
    )


class ReadyLine:
    """Standalone's ready line: printed once its web server accepts connections, not before.

    Printed at start, the address was refused for the second or two the web server takes to bind,
    the first thing a newcomer who clicks it sees. `after` runs once, right after the line.
    """

    def __init__(self, host: str, port: int, text: str, after: Callable[[], None]) -> None:
        self.address = ("127.0.0.1" if host in ("", "0.0.0.0") else host, port)  # noqa: S104  a check, not a bind
        self.text, self.after, self.said = text, after, False

    def __call__(self) -> None:
        if self.said:
            return
        try:
            socket.create_connection(self.address, timeout=0.5).close()
        except OSError:
            return
        self.said = True
        click.echo(self.text)
        self.after()


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


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _supervise(
    commands: list[list[str]],
    env: dict[str, str],
    max_restarts: int = 5,
    before_restart: Callable[[int], None] | None = None,
    every_second: Callable[[], None] | None = None,
    grace: float = 15.0,
) -> None:
    """Run the commands; restart one that dies by itself (the database keeps the work); stop all on a signal.

    SIGINT (Ctrl-C), SIGTERM and SIGHUP stop everything, in the foreground or the background
    (a background job of a script starts with SIGINT ignored; the handlers are installed
    explicitly). Once stopping, nothing is restarted. Each child gets SIGTERM, then SIGKILL after
    `grace` seconds (the worker's reaper kills the process groups of attempts it ran).
    `before_restart(i)` runs before command `i` is started again; `every_second()` once a second.
    """
    procs = [subprocess.Popen(cmd, env=env) for cmd in commands]
    restarts = [0] * len(commands)
    stopping: list[int] = []

    def stop(signum: int = 0, *_: Any) -> None:
        if not stopping:
            stopping.append(signum)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)

    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)
    last_report = 0.0
    try:
        while not stopping:
            for i, p in enumerate(procs):
                if p.poll() is None or stopping:
                    continue
                if restarts[i] >= max_restarts:
                    click.echo(f"myapp standalone: {' '.join(commands[i][2:])} keeps failing; stopping", err=True)
                    stop()
                    break
                restarts[i] += 1
                click.echo(
                    f"myapp standalone: {' '.join(commands[i][2:4])} exited ({p.returncode}); restarting", err=True
                )
                if before_restart is not None:
                    try:
                        before_restart(i)
                    except Exception as exc:  # noqa: BLE001  the restart matters more
                        click.echo(f"myapp standalone: before restarting: {exc}", err=True)
                procs[i] = subprocess.Popen(commands[i], env=env)
            if every_second is not None and time.monotonic() - last_report >= 1.0:
                last_report = time.monotonic()
                try:
                    every_second()
                except Exception as exc:  # noqa: BLE001  reporting must never stop the processes
                    click.echo(f"myapp standalone: cannot report runs: {str(exc).splitlines()[0]}", err=True)
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        began = time.monotonic()
        stop()
        _wait_all(procs, grace)
        click.echo(f"myapp standalone: stopped in {time.monotonic() - began:.1f} s")
    if any(n >= max_restarts for n in restarts):
        sys.exit(1)


def _wait_all(procs: list[subprocess.Popen[bytes]], grace: float) -> None:
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class RunReporter:
    """Prints one line when a run starts and one when it ends (standalone's quiet console)."""

    def __init__(self, services: Any) -> None:
        from myapp.db.run_feed import newest_run_id

        self.services = services
        with services.db.read() as s:  # runs that exist already are not news
            self.seen = newest_run_id(s)
        self.active: dict[int, str] = {}

    def report(self) -> None:
        """Print the runs that started or ended since the last call."""
        from myapp.core.states import RUN_TERMINAL, RunState
        from myapp.db.run_feed import runs_since

        with self.services.db.read() as s:
            rows = runs_since(s, self.seen, self.active)
        for r in rows:
            what = f"run {r.id} {r.name}" + (f" (debug {r.debug_task})" if r.debug_task else f" ({r.trigger})")
            if r.id > self.seen:
                self.seen = r.id
                click.echo(f"{what} started")
            if RunState(r.state) in RUN_TERMINAL:
                self.active.pop(r.id, None)
                took = f" in {(r.ended_at - r.started_at).total_seconds():.0f} s" if r.ended_at and r.started_at else ""
                click.echo(f"{what} {r.state}{took}" + (f": {r.message}" if r.message else ""))
            else:
                self.active[r.id] = r.state


def register(main: click.Group) -> None:
    for cmd in (init, webserver, worker, beat, standalone):
        main.add_command(cmd)
