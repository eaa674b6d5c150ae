"""`myapp pipeline import|export|validate|list|run|versions|create`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from myapp.cli import echo_json, fail, get_services, handle_errors
from myapp.cli.display import shown_of, table, when
from myapp.core.errors import SpecError
from myapp.core.pipeline_spec import parse_pipeline
from myapp.core.states import RUN_TERMINAL, RunState, Trigger
from myapp.core.values import NewRun
from myapp.db.pipeline_views import SORTS, ListQuery, pipeline_list
from myapp.yaml_io import dump_yaml, load_yaml


def read_spec(path: str, default_timezone: str = "UTC") -> Any:
    """Parse a pipeline YAML file (or - for stdin) into a PipelineSpec; SpecError on bad input."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError("", f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SpecError("", f"{path} is not UTF-8 text") from None
    try:
        data = load_yaml(text)
    except ValueError as exc:
        raise SpecError("", f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError("", f"{path}: a pipeline must be a YAML mapping")
    return parse_pipeline(data, default_timezone=default_timezone)


def parse_params(pairs: tuple[str, ...]) -> dict[str, str]:
    """Parse repeated --param k=v options."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SpecError("--param", f"expected NAME=VALUE, got {pair!r}")
        out[key] = value
    return out


@click.group("pipeline")
def pipeline_group() -> None:
    """Import, export, validate, list and run pipelines."""


@pipeline_group.command("validate")
@click.argument("files", nargs=-1, required=True)
@click.pass_context
@handle_errors
def validate(ctx: click.Context, files: tuple[str, ...]) -> None:
    """Check pipeline YAML files against every rule without saving anything."""
    services = get_services(ctx)
    for path in files:
        services.pipelines.check(read_spec(path, services.settings.timezone))
        click.echo(f"{path}: ok")


@pipeline_group.command("import")
@click.argument("files", nargs=-1, required=True)
@click.option("--message", "-m", default="", help="Version message.")
@click.option(
    "--yes", "-y", is_flag=True, help="Confirm a schedule whose backfill starts more runs than backfill_confirm."
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def import_(ctx: click.Context, files: tuple[str, ...], message: str, yes: bool, as_json: bool) -> None:
    """Save pipelines from YAML; a changed pipeline gets a new version."""
    services = get_services(ctx)
    specs = [(path, read_spec(path, services.settings.timezone)) for path in files]
    now = services.clock.now()
    for _path, spec in specs:  # all files valid (and their backfills confirmed) before anything is written
        services.pipelines.check(spec)
        confirm_backfill(services, spec, now, yes)
    attach_dispatch(services)  # a save that makes a schedule due asks the workers for a pass at once
    results = []
    for path, spec in specs:
        res = services.pipelines.save(spec, services.clock.now(), user_id=admin_id(services), message=message)
        results.append(
            {
                "file": path,
                "pipeline": spec.name,
                "id": res.pipeline_id,
                "version": res.version,
                "changed": res.created_version,
            }
        )
        if not as_json:
            what = f"version {res.version}" if res.created_version else f"unchanged (version {res.version})"
            click.echo(f"{spec.name}: {what}")
    if as_json:
        echo_json(results)


def confirm_backfill(services: Any, spec: Any, now: Any, yes: bool) -> None:
    """Refuse (exit 1, naming --yes) a save whose schedule would start more backfill runs than allowed."""
    from myapp.scheduling.backfill_guard import guard, save_backfill

    backfill = save_backfill(services, spec, now)
    guard(
        backfill,
        services.settings.backfill_confirm,
        yes,
        f"add --yes to save {spec.name!r} anyway, or keep fewer with schedule.expired_limit "
        "or a later schedule.start_time",
    )
    if backfill.runs:
        click.echo(f"{spec.name}: {backfill.describe()}", err=True)


@pipeline_group.command("export")
@click.argument("pipeline")
@click.option("--version", "version", type=int, default=None)
@click.option("--project", default=None)
@click.pass_context
@handle_errors
def export(ctx: click.Context, pipeline: str, version: int | None, project: str | None) -> None:
    """Print a pipeline version as canonical YAML."""
    services = get_services(ctx)
    row = services.pipelines.find(pipeline, project)
    click.echo(dump_yaml(services.pipelines.export(row.id, version)), nl=False)


@pipeline_group.command("list")
@click.option("--search", "-s", default="", help="Only pipelines whose name or description contains this.")
@click.option("--sort", default="name", show_default=True, type=click.Choice(SORTS))
@click.option("--limit", default=50, show_default=True, help="Show the first N.")
@click.option("--all", "show_all", is_flag=True, help="Show every matching pipeline.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def list_(ctx: click.Context, search: str, sort: str, limit: int, show_all: bool, as_json: bool) -> None:
    """List pipelines: the states of their last runs (newest right), schedule in words, next fire time."""
    services = get_services(ctx)
    tz = services.settings.timezone
    with services.db.read() as s:
        rows, total = pipeline_list(
            s, ListQuery(search=search, sort=sort, limit=None if show_all else limit), services.clock.now()
        )
    if as_json:
        echo_json(rows)
        return
    table(
        ["ID", "PROJECT", "NAME", "OWNER", "VER", "LAST RUNS", "SCHEDULE", "NEXT RUN"],
        [
            [
                r["id"],
                r["project"],
                r["name"],
                r["owner"] or "-",
                r["version"] or "-",
                strip(r["runs"]),
                _schedule_text(r["schedule"]),
                when(r["schedule"]["next_fire_at"], tz),
            ]
            for r in rows
        ],
        right=(0, 4),
    )
    for r in rows:
        if r["schedule_error"]:
            click.echo(f"{r['name']}: schedule error: {r['schedule_error']}")
    shown_of(len(rows), total, more="--all or --limit N")
    if any(r["runs"] for r in rows):
        click.echo("last runs: S succeeded  F failed  R running  Q queued  C creating  X stopped (newest right)")


def strip(runs: list[dict[str, Any]]) -> str:
    """Return the states of the newest runs as letters, oldest left, newest right."""
    letters = {"succeeded": "S", "failed": "F", "running": "R", "queued": "Q", "stopped": "X", "creating": "C"}
    return "".join(letters.get(r["state"], "?") for r in reversed(runs)) or "-"


def _schedule_text(sch: dict[str, Any]) -> str:
    if sch["type"] != "crontab":
        return "manual"
    paused = "" if sch["enabled"] else " (disabled)"
    return f"{sch['cron']} {sch['timezone']}: {sch['text']}{paused}"


@pipeline_group.command("enable")
@click.argument("pipeline")
@click.option("--project", default=None)
@click.option("--yes", "-y", is_flag=True, help="Confirm a backfill of more runs than backfill_confirm.")
@click.pass_context
@handle_errors
def enable(ctx: click.Context, pipeline: str, project: str | None, yes: bool) -> None:
    """Enable a pipeline's cron schedule (a new version); a large backfill needs --yes."""
    _set_enabled(ctx, pipeline, project, True, yes)


@pipeline_group.command("disable")
@click.argument("pipeline")
@click.option("--project", default=None)
@click.pass_context
@handle_errors
def disable(ctx: click.Context, pipeline: str, project: str | None) -> None:
    """Disable (pause) a pipeline's cron schedule (a new version); running runs go on."""
    _set_enabled(ctx, pipeline, project, False, True)


def _set_enabled(ctx: click.Context, pipeline: str, project: str | None, enabled: bool, yes: bool) -> None:
    from myapp.scheduling.backfill_guard import set_enabled

    services = get_services(ctx)
    attach_dispatch(services)  # enabling makes the schedule due: the workers get a pass at once
    row = services.pipelines.find(pipeline, project)
    version, changed, backfill = set_enabled(
        services,
        row.id,
        enabled,
        services.clock.now(),
        user_id=admin_id(services),
        confirmed=yes,
        how=f"see them with `myapp schedule preview {row.name}`; add --yes to enable it anyway",
    )
    word = "enabled" if enabled else "disabled"
    click.echo(
        f"{row.name}: schedule {word} (version {version})"
        if changed
        else f"{row.name}: schedule already {word} (version {version})"
    )
    if backfill.runs:
        click.echo(f"{row.name}: {backfill.describe()}")


@pipeline_group.command("versions")
@click.argument("pipeline")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def versions(ctx: click.Context, pipeline: str, as_json: bool) -> None:
    """List the versions of a pipeline."""
    services = get_services(ctx)
    rows = services.pipelines.versions(services.pipelines.find(pipeline).id)
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"v{r['number']:<4} {r['created_at']}  {r['tasks']} tasks  {r['message']}")


@pipeline_group.command("run")
@click.argument("pipeline")
@click.option("--param", "-p", "params", multiple=True, help="NAME=VALUE, repeatable.")
@click.option("--wait", is_flag=True, help="Wait for the run to finish; exit 1 unless it succeeded.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def run(ctx: click.Context, pipeline: str, params: tuple[str, ...], wait: bool, as_json: bool) -> None:
    """Start a manual run of the current version."""
    services = get_services(ctx)
    attach_dispatch(services)
    row = services.pipelines.find(pipeline)
    now = services.clock.now()
    run_id = services.runs.create_run(
        NewRun(
            pipeline_id=row.id,
            trigger=Trigger.MANUAL,
            execution_date=now,
            params=parse_params(params),
            user_id=admin_id(services),
            runner=runner_name(),
        ),
        now,
    )
    if not as_json:
        click.echo(f"run {run_id} started")
    state = wait_for(services, run_id) if wait else None
    if as_json:
        echo_json({"run_id": run_id, "state": state})
    elif state:
        click.echo(f"run {run_id} {state}")
    if state and state != RunState.SUCCEEDED.value:
        sys.exit(1)


def wait_for(services: Any, run_id: int, poll: float = 0.3) -> str:
    """Block until the run is finished; return its state."""
    from myapp.db.tables import Run

    while True:
        with services.db.read() as s:
            state = s.get(Run, run_id).state
        if RunState(state) in RUN_TERMINAL:
            return str(state)
        time.sleep(poll)


def runner_name() -> str:
    """Return who runs this command (for {{ runner }})."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def admin_id(services: Any) -> int | None:
    """Return the id of the first admin user (the CLI acts as the operator), or None."""
    from myapp.db.users import first_user_id

    return first_user_id(services.db)


def attach_dispatch(services: Any) -> None:
    """Send queued tasks to the broker so running workers pick them up at once."""
    from myapp.queue.celery_app import create_celery, use_celery

    app, _ = create_celery(services.settings)
    use_celery(services, app)


def register(main: click.Group) -> None:
    main.add_command(pipeline_group)
    _ = fail
