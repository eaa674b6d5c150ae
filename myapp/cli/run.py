"""`myapp run list|show|logs|stop|retry|copy|mark` and `myapp task debug`."""

from __future__ import annotations

import sys
import time
from typing import Any

import click
from sqlalchemy import select

from myapp.cli import echo_json, get_services, handle_errors
from myapp.cli.pipeline import admin_id, attach_dispatch, parse_params, runner_name, wait_for
from myapp.core.errors import NotFound
from myapp.core.states import RUN_TERMINAL, RunState
from myapp.db.tables import Pipeline, Run, TaskAttempt, TaskInstance
from myapp.logs import LogKey
from myapp.runs_view import run_detail, run_rows


@click.group("run")
def run_group() -> None:
    """Inspect and operate runs."""


@run_group.command("list")
@click.option("--pipeline", default=None)
@click.option("--state", default=None, type=click.Choice([s.value for s in RunState]))
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def list_(ctx: click.Context, pipeline: str | None, state: str | None, limit: int, as_json: bool) -> None:
    """List runs, newest first."""
    services = get_services(ctx)
    pid = services.pipelines.find(pipeline).id if pipeline else None
    with services.db.read() as s:
        rows = run_rows(s, pipeline_id=pid, state=state, limit=limit)
    if as_json:
        echo_json(rows)
        return
    click.echo(f"{'ID':>5}  {'PIPELINE':<24} {'TRIGGER':<7} {'STATE':<10} {'EXECUTION DATE':<20} CREATED")
    for r in rows:
        click.echo(f"{r['id']:>5}  {r['pipeline']:<24} {r['trigger']:<7} {r['state']:<10} "
                   f"{r['execution_date']:<20} {r['created_at'][:19]}")


@run_group.command("show")
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def show(ctx: click.Context, run_id: int, as_json: bool) -> None:
    """Show a run and its task instances."""
    services = get_services(ctx)
    with services.db.read() as s:
        data = run_detail(s, run_id)
    if as_json:
        echo_json(data)
        return
    click.echo(f"run {data['id']}  {data['pipeline']} v{data['version']}  {data['trigger']}  {data['state']}"
               f"{'  (' + data['message'] + ')' if data['message'] else ''}")
    click.echo(f"execution date {data['execution_date']}  params {data['params']}")
    for t in data["tasks"]:
        retries = f" ({t['try_number']})" if t["try_number"] > 1 else ""
        click.echo(f"  {t['name']}{retries:<6} {t['state']:<16} {t['message']}")


@run_group.command("logs")
@click.argument("run_id", type=int)
@click.argument("task", required=False)
@click.option("--try", "try_number", type=int, default=None, help="Attempt number (default: every attempt).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing lines until the run ends.")
@click.pass_context
@handle_errors
def logs(ctx: click.Context, run_id: int, task: str | None, try_number: int | None, follow: bool) -> None:
    """Print the logs of a run's attempts (live while running, archived after)."""
    services = get_services(ctx)
    printed: dict[LogKey, int] = {}
    while True:
        keys, active = _log_keys(services, run_id, task, try_number)
        for key in keys:
            lines, _ = services.logs.lines(key, printed.get(key, 0))
            printed[key] = printed.get(key, 0) + len(lines)
            prefix = f"[{key.task_name}#{key.try_number}] " if task is None else ""
            for line in lines:
                click.echo(prefix + line, nl=False)
        if not follow or not active:
            return
        time.sleep(0.5)


def _log_keys(services: Any, run_id: int, task: str | None, try_number: int | None) -> tuple[list[LogKey], bool]:
    with services.db.read() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise NotFound(f"run {run_id} not found")
        q = (select(TaskInstance.task_name, TaskAttempt.try_number)
             .join(TaskAttempt, TaskAttempt.task_instance_id == TaskInstance.id)
             .where(TaskInstance.run_id == run_id).order_by(TaskAttempt.started_at, TaskAttempt.id))
        if task:
            if s.scalar(select(TaskInstance.id).where(TaskInstance.run_id == run_id, TaskInstance.task_name == task)) is None:
                raise NotFound(f"task {task!r} not found in run {run_id}")
            q = q.where(TaskInstance.task_name == task)
        if try_number:
            q = q.where(TaskAttempt.try_number == try_number)
        rows = s.execute(q).all()
        return [LogKey(run_id, name, n) for name, n in rows], RunState(run.state) not in RUN_TERMINAL


@run_group.command("stop")
@click.argument("run_id", type=int)
@click.pass_context
@handle_errors
def stop(ctx: click.Context, run_id: int) -> None:
    """Stop a run: kill running attempts; nothing else starts."""
    services = get_services(ctx)
    services.runs.stop_run(run_id, services.clock.now(), by=runner_name())
    click.echo(f"run {run_id} stopped")


@run_group.command("retry")
@click.argument("run_id", type=int)
@click.option("--wait", is_flag=True)
@click.pass_context
@handle_errors
def retry(ctx: click.Context, run_id: int, wait: bool) -> None:
    """Re-run the failed, upstream_failed and stopped tasks of a finished run (same run)."""
    services = get_services(ctx)
    attach_dispatch(services)
    services.runs.retry_run(run_id, services.clock.now())
    click.echo(f"run {run_id} retrying")
    if wait:
        state = wait_for(services, run_id)
        click.echo(f"run {run_id} {state}")
        sys.exit(0 if state == RunState.SUCCEEDED.value else 1)


@run_group.command("copy")
@click.argument("run_id", type=int)
@click.option("--param", "-p", "params", multiple=True, help="NAME=VALUE overriding the copied value.")
@click.pass_context
@handle_errors
def copy(ctx: click.Context, run_id: int, params: tuple[str, ...]) -> None:
    """Start a new run of the same version with the same (or edited) parameters."""
    services = get_services(ctx)
    attach_dispatch(services)
    new_id = services.runs.copy_run(run_id, services.clock.now(), parse_params(params),
                                    user_id=admin_id(services), runner=runner_name())
    click.echo(f"run {new_id} started (copy of {run_id})")


@run_group.command("mark")
@click.argument("run_id", type=int)
@click.option("--state", required=True, type=click.Choice(["succeeded", "failed"]))
@click.pass_context
@handle_errors
def mark(ctx: click.Context, run_id: int, state: str) -> None:
    """Set a finished run's state to succeeded or failed."""
    services = get_services(ctx)
    services.runs.mark_run(run_id, RunState(state), services.clock.now(), by=runner_name())
    click.echo(f"run {run_id} marked {state}")


def register(main: click.Group) -> None:
    main.add_command(run_group)
    _ = Pipeline
