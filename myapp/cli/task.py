"""`myapp task debug PIPELINE TASK`: run one task alone as a debug run, logs streamed live."""

from __future__ import annotations

import sys

import click

from myapp.cli import get_services, handle_errors
from myapp.cli.pipeline import admin_id, attach_dispatch, parse_params, runner_name
from myapp.core.debug_inputs import DebugInput, require_complete
from myapp.core.states import RUN_TERMINAL, RunState, Trigger
from myapp.core.values import NewRun
from myapp.db.debug_source import debug_plan


@click.group("task")
def task_group() -> None:
    """Work with single tasks."""


@task_group.command("debug")
@click.argument("pipeline")
@click.argument("task")
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    help="NAME=VALUE for an input (default: a literal or parameter binding's value, else the "
    "upstream output of the pipeline's latest succeeded run).",
)
@click.option("--param", "-p", "params", multiple=True, help="NAME=VALUE global parameter.")
@click.option("--no-follow", is_flag=True, help="Start the debug run and return.")
@click.pass_context
@handle_errors
def debug(
    ctx: click.Context, pipeline: str, task: str, inputs: tuple[str, ...], params: tuple[str, ...], no_follow: bool
) -> None:
    """Run TASK of PIPELINE alone; its upstream inputs come from the latest succeeded run unless given."""
    services = get_services(ctx)
    attach_dispatch(services)
    row = services.pipelines.find(pipeline)
    spec, _ = services.pipelines.spec(row.id)
    with services.db.read() as s:
        plan = debug_plan(s, row.id, spec, task, parse_params(inputs))
    require_complete(plan, pipeline)
    for item in plan.inputs:
        click.echo(f"  input {item.name} = {_shown(item, plan.source_run_id)}")
    now = services.clock.now()
    run_id = services.runs.create_run(
        NewRun(
            pipeline_id=row.id,
            trigger=Trigger.DEBUG,
            execution_date=now,
            params=parse_params(params),
            user_id=admin_id(services),
            runner=runner_name(),
            debug_task=task,
            debug_inputs=plan.stored(),
        ),
        now,
    )
    click.echo(f"debug run {run_id} of task {task!r} started")
    if no_follow:
        return
    ctx.invoke(_logs_command(), run_id=run_id, task=task, try_number=None, follow=True)
    from myapp.cli.pipeline import wait_for

    state = wait_for(services, run_id)
    click.echo(f"debug run {run_id} {state}")
    sys.exit(0 if state == RunState.SUCCEEDED.value else 1)


def _shown(item: DebugInput, run_id: int | None) -> str:
    if item.filled_from == "param":
        return f"{item.binding} (rendered when the task starts)"
    value = item.value if len(item.value) <= 60 else item.value[:57] + "..."
    if item.filled_from == "run":
        return f"{value!r} ({item.kind} output {item.binding} of run {run_id})"
    return f"{value!r} ({item.filled_from})"


def _logs_command() -> click.Command:
    from myapp.cli.run import logs

    return logs


def register(main: click.Group) -> None:
    main.add_command(task_group)
    _ = RUN_TERMINAL
