"""`myapp db clean`: delete finished runs, their attempts, logs and working directories, and old
schedule records (retention); sweep the workflow space of this machine."""

from __future__ import annotations

import click

from myapp.cli import echo_json, fail, get_services, handle_errors
from myapp.cli.schedule import parse_instant


@click.group("db")
def db_group() -> None:
    """Database maintenance: retention."""


@db_group.command("clean")
@click.option(
    "--older-than",
    "days",
    type=int,
    required=True,
    metavar="DAYS",
    help="Delete what finished more than DAYS days ago (at least 1).",
)
@click.option(
    "--dry-run", is_flag=True, help="Count what would be deleted or removed, per kind; delete and remove nothing."
)
@click.option("--batch", default=200, show_default=True, help="Runs deleted per transaction.")
@click.option("--now", default=None, metavar="T", hidden=True, help="Instant to count DAYS back from (ISO 8601).")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON instead of progress lines.")
@click.pass_context
@handle_errors
def clean(ctx: click.Context, days: int, dry_run: bool, batch: int, now: str | None, as_json: bool) -> None:
    """Delete finished runs (task instances, attempts, archived logs, live-log keys, file outputs,
    alerts, and their working directories WORKFLOW_SPACE/RUN on this machine, after each batch's
    COMMIT) and schedule records older than DAYS, in short transactions. Kept whatever their age:
    unfinished runs, waiting records, each pipeline's newest record and newest launched record
    with their runs (what the scheduler and depends_on_past read), a run a newer run was copied from.

    Then, whatever DAYS, this machine's workflow space is swept: the directories WORKFLOW_SPACE/RUN
    of runs no longer in the database, and the private /tmp directories killed workers left, of
    attempts ended (over 10 minutes ago) or deleted. Never touched: an existing run's directory, a
    running attempt's private /tmp, a task directory an attempt on this machine holds locked,
    workspaces, .runtime, links. With the Kubernetes executor, or in a workflow space whose
    .myapp-database marker names another database, no run directory is removed.
    A directory that cannot be removed is counted and logged, never fatal."""
    from myapp.executor.private_tmp import run_dir_remover, sweep_workflow_space
    from myapp.retention.clean import clean as run_clean

    if days < 1:
        fail(f"--older-than must be at least 1 day, got {days}", 2)
    services = get_services(ctx)
    at = parse_instant(now) if now else services.clock.now()
    report = run_clean(
        services,
        at,
        days,
        dry_run=dry_run,
        batch=max(batch, 1),
        progress=(lambda line: None) if as_json else click.echo,
        remove_workdirs=run_dir_remover(services),
    )
    swept = sweep_workflow_space(services, services.clock.now(), dry_run=dry_run)
    if as_json:
        echo_json({**report.to_dict(), **swept.to_dict()})
    else:
        click.echo(swept.orphans.summary(dry_run))
        click.echo(swept.private_tmp.summary(dry_run))


def register(main: click.Group) -> None:
    main.add_command(db_group)
