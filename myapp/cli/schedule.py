"""`myapp schedule tick|preview|records`: scheduler passes by hand (time travel), previews, records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from myapp.cli import echo_json, get_services, handle_errors
from myapp.cli.pipeline import attach_dispatch
from myapp.core.cron import year_problem
from myapp.core.errors import SpecError

STATUSES = ("waiting", "launched", "expired")


def parse_instant(text: str, option: str = "--now") -> datetime:
    """Parse ISO 8601 with an offset or Z; a time without offset is UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise SpecError(option, f"{text!r} is not an ISO 8601 instant such as 2026-01-01T02:00:00+08:00 "
                                "or 2026-01-01T00:00:00Z") from None
    problem = year_problem(value)
    if problem:
        raise SpecError(option, problem)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@click.group("schedule")
def schedule_group() -> None:
    """Run scheduler passes by hand, preview a cron schedule, list schedule records."""


@schedule_group.command("tick")
@click.option("--now", "nows", multiple=True, metavar="T",
              help="Instant of the pass (ISO 8601; no offset = UTC). Repeat for several passes, in order. "
                   "Default: the clock.")
@click.option("--batch", default=500, show_default=True, hidden=True, help="Pipelines claimed per transaction.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def tick(ctx: click.Context, nows: tuple[str, ...], batch: int, as_json: bool) -> None:
    """Run one scheduler pass (make_timerun_config) at instant T: materialize, expire, launch."""
    from myapp.scheduler import run_pass

    services = get_services(ctx)
    instants = [parse_instant(text) for text in nows] or [services.clock.now()]
    attach_dispatch(services)
    reports = [run_pass(services, now, batch_size=max(batch, 1)).to_dict() for now in instants]
    if as_json:
        echo_json(reports[0] if len(reports) == 1 else reports)
        return
    for report in reports:
        runs = f" (runs {', '.join(map(str, report['run_ids']))})" if report["run_ids"] else ""
        click.echo(f"pass at {report['now']}: {report['pipelines']} pipelines due, {report['created']} records "
                   f"created, {report['expired']} expired, {report['launched']} runs launched{runs}, "
                   f"{report['skipped']} fire times skipped")
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
def preview(ctx: click.Context, pipeline: str, now: str | None, count: int, project: str | None,
            as_json: bool) -> None:
    """Show the next fire times and what a pass would do with each, in words."""
    from myapp.scheduler import preview_pipeline

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
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def records(ctx: click.Context, pipeline: str | None, project: str | None, status: str | None, limit: int,
            as_json: bool) -> None:
    """List schedule records (newest first) with their runs, and the skipped spans."""
    from myapp.db.schedule_store import record_rows, skip_rows

    services = get_services(ctx)
    pid = services.pipelines.find(pipeline, project).id if pipeline else None
    with services.db.read() as s:
        rows = record_rows(s, pipeline_id=pid, status=status, limit=limit)
        skips = skip_rows(s, pipeline_id=pid, limit=limit)
    if as_json:
        echo_json({"records": rows, "skipped": skips})
        return
    _print_records(rows, skips)


def _print_records(rows: list[dict[str, Any]], skips: list[dict[str, Any]]) -> None:
    click.echo(f"{'PIPELINE':<24} {'EXECUTION DATE':<26} {'STATUS':<9} {'RUN':>6}  {'RUN STATE':<10} NOTE")
    for r in rows:
        click.echo(f"{r['pipeline']:<24} {r['execution_local']:<26} {r['status']:<9} {r['run_id'] or '-':>6}  "
                   f"{r['run_state'] or '-':<10} {r['message']}")
    for skip in skips:
        click.echo(f"skipped: {skip['pipeline']}: {skip['text']}")


def register(main: click.Group) -> None:
    main.add_command(schedule_group)
