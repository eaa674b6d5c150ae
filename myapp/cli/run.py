"""`myapp run list|show|logs|stop|retry|copy|mark` and `myapp task debug`."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from myapp.cli import echo_json, get_services, handle_errors
from myapp.cli.display import duration, log_line, parse_instant, shown_of, table, when
from myapp.cli.pipeline import admin_id, attach_dispatch, parse_params, runner_name, wait_for
from myapp.core.states import RunState, Trigger
from myapp.db.attempt_index import attempts_of
from myapp.db.run_views import RunFilter, run_count, run_detail, run_rows
from myapp.db.tables import Pipeline
from myapp.logs.attempt_logs import LogKey


@click.group("run")
def run_group() -> None:
    """Inspect and operate runs."""


@run_group.command("list")
@click.option("--pipeline", default=None)
@click.option("--state", default=None, type=click.Choice([s.value for s in RunState]))
@click.option("--trigger", default=None, type=click.Choice([t.value for t in Trigger]))
@click.option("--since", default=None, help="Execution date from (YYYY-MM-DD or an ISO instant, inclusive).")
@click.option("--until", default=None, help="Execution date before (YYYY-MM-DD or an ISO instant, exclusive).")
@click.option("--limit", default=50, show_default=True, help="Show the newest N.")
@click.option("--all", "show_all", is_flag=True, help="Show every matching run.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def list_(
    ctx: click.Context,
    pipeline: str | None,
    state: str | None,
    trigger: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    show_all: bool,
    as_json: bool,
) -> None:
    """List runs, newest first, with how many match in all."""
    services = get_services(ctx)
    tz = services.settings.timezone
    where = RunFilter(
        pipeline_id=services.pipelines.find(pipeline).id if pipeline else None,
        state=state,
        trigger=trigger,
        since=parse_instant(since, "--since", tz),
        until=parse_instant(until, "--until", tz),
    )
    with services.db.read() as s:
        total = run_count(s, where)
        rows = run_rows(
            s,
            pipeline_id=where.pipeline_id,
            state=state,
            trigger=trigger,
            since=where.since,
            until=where.until,
            limit=total if show_all else max(limit, 0),
        )
    if as_json:
        echo_json(rows)
        return
    table(
        ["ID", "PIPELINE", "TRIGGER", "STATE", "EXECUTION DATE", "STARTED", "DURATION"],
        [
            [
                r["id"],
                r["pipeline"],
                r["trigger"],
                r["state"],
                when(r["execution_instant"], tz),
                when(r["started_at"], tz),
                duration(r["started_at"], r["ended_at"]),
            ]
            for r in rows
        ],
    )
    shown_of(len(rows), total)


@run_group.command("show")
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def show(ctx: click.Context, run_id: int, as_json: bool) -> None:
    """Show a run, its tasks and every attempt of each (the number in brackets is the try number)."""
    services = get_services(ctx)
    tz = services.settings.timezone
    with services.db.read() as s:
        data = run_detail(s, run_id)
    if as_json:
        echo_json(data)
        return
    click.echo(
        f"run {data['id']}  {data['pipeline']} v{data['version']}  {data['trigger']}  {data['state']}"
        f"{'  (' + data['message'] + ')' if data['message'] else ''}"
    )
    click.echo(
        f"execution date {when(data['execution_instant'], tz)}  started {when(data['started_at'], tz)}  "
        f"duration {duration(data['started_at'], data['ended_at'])}"
    )
    click.echo(f"params {data['params']}")
    rows: list[list[Any]] = []
    for t in data["tasks"]:
        rows.append(
            [
                task_label(t["name"], t["try_number"]),
                t["state"],
                "",
                when(t["started_at"], tz),
                duration(t["started_at"], t["ended_at"]),
                t["message"],
            ]
        )
        for a in t["attempts"] if len(t["attempts"]) > 1 else []:
            rows.append(
                [
                    f"  try {a['try_number']}",
                    a["state"],
                    a["exit_code"],
                    when(a["started_at"], tz),
                    duration(a["started_at"], a["ended_at"]),
                    a["message"],
                ]
            )
    click.echo("")
    table(["TASK (TRY)", "STATE", "EXIT", "STARTED", "DURATION", "MESSAGE"], rows, right=())


def task_label(name: str, try_number: int) -> str:
    """Return a task's name with its try number in brackets, as every page and listing shows it."""
    return f"{name} ({try_number})" if try_number > 0 else name


@run_group.command("logs")
@click.argument("run_id", type=int)
@click.argument("task", required=False)
@click.option("--try", "try_number", type=int, default=None, help="Attempt number (default: every attempt).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing lines until the run ends.")
@click.option("--plain", is_flag=True, help="Print the lines as the task wrote them, without time or stream marks.")
@click.pass_context
@handle_errors
def logs(
    ctx: click.Context, run_id: int, task: str | None, try_number: int | None, follow: bool, plain: bool = False
) -> None:
    """Print the logs of a run's attempts: each line with the time it was written; stderr marked."""
    services = get_services(ctx)
    tz = services.settings.timezone
    printed: dict[LogKey, int] = {}
    while True:
        keys, active = _log_keys(services, run_id, task, try_number)
        for key in keys:
            entries, _ = services.logs.entries(key, printed.get(key, 0))
            printed[key] = printed.get(key, 0) + len(entries)
            prefix = f"[{key.task_name} ({key.try_number})] " if task is None else ""
            for entry in entries:
                click.echo(prefix + (entry.plain if plain else log_line(entry, tz)), nl=False)
        if not follow or not active:
            return
        time.sleep(0.5)


def _log_keys(services: Any, run_id: int, task: str | None, try_number: int | None) -> tuple[list[LogKey], bool]:
    pairs, active = attempts_of(services.db, run_id, task, try_number)
    return [LogKey(run_id, name, n) for name, n in pairs], active


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
@click.option(
    "--slice",
    "slice_name",
    default=None,
    metavar="NAME[i]",
    help="Retry this one failed slice alone (e.g. 'train[1]'), its sliced task and what that task held back.",
)
@click.option("--wait", is_flag=True)
@click.pass_context
@handle_errors
def retry(ctx: click.Context, run_id: int, slice_name: str | None, wait: bool) -> None:
    """Re-run the failed, upstream_failed and stopped tasks of a finished run (same run), or one slice (R15)."""
    services = get_services(ctx)
    attach_dispatch(services)
    if slice_name is None:
        services.runs.retry_run(run_id, services.clock.now())
        click.echo(f"run {run_id} retrying")
    else:
        # The same service function as POST /api/v1/runs/ID/slices/NAME[i]/retry, so the same refusals.
        services.runs.retry_slice(run_id, slice_name, services.clock.now())
        click.echo(f"run {run_id} retrying slice {slice_name}")
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
    new_id = services.runs.copy_run(
        run_id, services.clock.now(), parse_params(params), user_id=admin_id(services), runner=runner_name()
    )
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
