"""`myapp schedule tick|preview|records`: scheduler passes by hand (time travel), previews, records."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from myapp.cli import echo_json, get_services, handle_errors
from myapp.cli.pipeline import attach_dispatch
from myapp.core.cron import year_problem
from myapp.core.errors import SpecError
from myapp.core.states import RecordStatus

STATUSES = tuple(s.value for s in RecordStatus)


def parse_instant(text: str, option: str = "--now") -> datetime:
    """Parse ISO 8601 with an offset or Z; a time without offset is UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise SpecError(
            option, f"{text!r} is not an ISO 8601 instant such as 2026-01-01T02:00:00+08:00 or 2026-01-01T00:00:00Z"
        ) from None
    problem = year_problem(value)
    if problem:
        raise SpecError(option, problem)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@click.group("schedule")
def schedule_group() -> None:
    """Run scheduler passes by hand, preview a cron schedule, list schedule records."""


@schedule_group.command("tick")
@click.option(
    "--now",
    "nows",
    multiple=True,
    metavar="T",
    help="Instant of the pass (ISO 8601; no offset = UTC). Repeat for several passes, in order. Default: the clock.",
)
@click.option("--batch", default=500, show_default=True, hidden=True, help="Pipelines claimed per transaction.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def tick(ctx: click.Context, nows: tuple[str, ...], batch: int, as_json: bool) -> None:
    """Run one scheduler pass (make_timerun_config) at instant T: materialize, expire, launch."""
    from myapp.scheduling.scheduler import run_pass

    services = get_services(ctx)
    instants = [parse_instant(text) for text in nows] or [services.clock.now()]
    attach_dispatch(services)
    reports = [run_pass(services, now, batch_size=max(batch, 1)).to_dict() for now in instants]
    if as_json:
        echo_json(reports[0] if len(reports) == 1 else reports)
        return
    for report in reports:
        runs = f" (runs {', '.join(map(str, report['run_ids']))})" if report["run_ids"] else ""
        click.echo(
            f"pass at {report['now']}: {report['pipelines']} pipelines due, {report['created']} records "
            f"created, {report['expired']} expired, {report['launched']} runs launched{runs}, "
            f"{report['skipped']} fire times skipped"
        )
        for error in report["errors"]:
            click.echo(f"  error: {error.get('pipeline', error['pipeline_id'])}: {error['error']}")


@schedule_group.command("preview")
@click.argument("pipeline")
@click.option("--now", default=None, metavar="T", help="Preview from instant T (ISO 8601). Default: the clock.")
@click.option("-n", "count", default=10, show_default=True, help="How many fire times.")
@click.option("--project", default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def preview(ctx: click.Context, pipeline: str, now: str | None, count: int, project: str | None, as_json: bool) -> None:
    """Show the next fire times and what a pass would do with each, in words."""
    from myapp.scheduling.scheduler import preview_pipeline

    services = get_services(ctx)
    row = services.pipelines.find(pipeline, project)
    data = preview_pipeline(services, row.id, parse_instant(now) if now else services.clock.now(), max(count, 1))
    if as_json:
        echo_json(data)
        return
    click.echo(data["summary"])
    if data["schedule_error"]:
        click.echo(f"last pass error: {data['schedule_error']}")
    for line in data["fire_times"]:
        click.echo(f"  {line['local']}  {line['action']:<8} {line['reason']}")


@schedule_group.command("records")
@click.option("--pipeline", default=None)
@click.option("--project", default=None)
@click.option("--status", default=None, type=click.Choice(STATUSES))
@click.option("--since", default=None, help="Execution date from (YYYY-MM-DD or an ISO instant, inclusive).")
@click.option("--until", default=None, help="Execution date before (YYYY-MM-DD or an ISO instant, exclusive).")
@click.option("--limit", default=100, show_default=True, help="Show the newest N.")
@click.option("--all", "show_all", is_flag=True, help="Show every matching record.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def records(
    ctx: click.Context,
    pipeline: str | None,
    project: str | None,
    status: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    show_all: bool,
    as_json: bool,
) -> None:
    """List schedule records (newest first) with their runs, how many match in all, and the skipped spans."""
    from myapp.cli.display import parse_instant as parse_day
    from myapp.cli.display import shown_of, table
    from myapp.db.schedule_store import record_count, record_rows, skip_rows

    services = get_services(ctx)
    tz = services.settings.timezone
    pid = services.pipelines.find(pipeline, project).id if pipeline else None
    start, end = parse_day(since, "--since", tz), parse_day(until, "--until", tz)
    with services.db.read() as s:
        total = record_count(s, pipeline_id=pid, status=status, since=start, until=end)
        rows = record_rows(
            s, pipeline_id=pid, status=status, limit=total if show_all else max(limit, 0), since=start, until=end
        )
        skips = skip_rows(s, pipeline_id=pid, limit=100)
    if as_json:
        echo_json({"records": rows, "total": total, "skipped": skips})
        return
    table(
        ["PIPELINE", "EXECUTION DATE", "STATUS", "RUN", "RUN STATE", "NOTE"],
        [
            [r["pipeline"], r["execution_local"], r["status"], r["run_id"] or "-", r["run_state"] or "-", r["message"]]
            for r in rows
        ],
        right=(3,),
    )
    shown_of(len(rows), total)
    for skip in skips:
        click.echo(f"skipped: {skip['pipeline']}: {skip['text']}")


def register(main: click.Group) -> None:
    main.add_command(schedule_group)
