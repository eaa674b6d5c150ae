"""`myapp pipeline create --from-template NAME [--name N] [--project P]` and `myapp pipeline templates`.

Pipeline templates are ready-made pipeline YAML files in the repository's top-level `templates/`
(daily ETL with backfill, ML train -> evaluate -> publish, the parameter-passing demo). Creating
one validates and saves it exactly like `pipeline import`, under the name and project given.
Registered after pipeline.py (modules register in alphabetical order), into its group.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from myapp.cli import echo_json, get_services, handle_errors
from myapp.cli.pipeline import admin_id, attach_dispatch, confirm_backfill, read_spec
from myapp.core.errors import NotFound
from myapp.settings import REPO_ROOT

TEMPLATES_DIR = REPO_ROOT / "templates"


def template_files(directory: Path = TEMPLATES_DIR) -> dict[str, Path]:
    """Return pipeline template name (file stem) -> path, sorted by name."""
    if not directory.is_dir():
        return {}
    return {p.stem: p for p in sorted(directory.glob("*.yaml"))}


def find_template(name: str, directory: Path = TEMPLATES_DIR) -> Path:
    """Return the file of template `name` (or `name` itself when it is a YAML file); NotFound otherwise."""
    files = template_files(directory)
    if name in files:
        return files[name]
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    raise NotFound(f"pipeline template {name!r} not found; available: {', '.join(files) or 'none'}")


@click.command("create")
@click.option(
    "--from-template", "template", required=True, help="A name from `myapp pipeline templates`, or a YAML file."
)
@click.option("--name", default=None, help="Pipeline name (default: the template's).")
@click.option("--project", default=None, help="Project (default: the template's, else default).")
@click.option("--message", "-m", default="", help="Version message.")
@click.option(
    "--yes", "-y", is_flag=True, help="Confirm a schedule whose backfill starts more runs than backfill_confirm."
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def create(
    ctx: click.Context, template: str, name: str | None, project: str | None, message: str, yes: bool, as_json: bool
) -> None:
    """Create (or update) a pipeline from a ready-made pipeline template."""
    services = get_services(ctx)
    path = find_template(template)
    spec = read_spec(str(path), services.settings.timezone)
    spec = dataclasses.replace(spec, name=name or spec.name, project=project or spec.project)
    services.pipelines.check(spec)
    confirm_backfill(services, spec, services.clock.now(), yes)
    attach_dispatch(services)  # a save that makes a schedule due asks the workers for a pass at once
    res = services.pipelines.save(
        spec, services.clock.now(), user_id=admin_id(services), message=message or f"created from template {path.stem}"
    )
    if as_json:
        echo_json(
            {
                "pipeline": spec.name,
                "project": spec.project,
                "id": res.pipeline_id,
                "version": res.version,
                "changed": res.created_version,
                "template": path.stem,
            }
        )
        return
    what = f"version {res.version}" if res.created_version else f"unchanged (version {res.version})"
    click.echo(f"{spec.name}: {what} (from template {path.stem}, project {spec.project})")


@click.command("templates")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def templates(as_json: bool) -> None:
    """List the ready-made pipeline templates for `pipeline create --from-template`."""
    rows = []
    for stem, path in template_files().items():
        spec = read_spec(str(path))
        rows.append(
            {
                "name": stem,
                "pipeline": spec.name,
                "tasks": len(spec.tasks),
                "description": spec.description,
                "schedule": spec.schedule.cron if spec.schedule.type == "crontab" else "manual",
            }
        )
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['name']:<28} {r['tasks']:>2} tasks  {r['schedule']:<12} {r['description']}")


def register(main: click.Group) -> None:
    group = main.commands["pipeline"]
    assert isinstance(group, click.Group)
    group.add_command(create)
    group.add_command(templates)
