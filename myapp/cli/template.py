"""`myapp template list|show|sync|validate`."""

from __future__ import annotations

from pathlib import Path

import click

from myapp.cli import echo_json, fail, get_services, handle_errors
from myapp.plugins import load_templates, template_to_dict


@click.group("template")
def template_group() -> None:
    """Task templates (plugins)."""


@template_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def list_(ctx: click.Context, as_json: bool) -> None:
    """List registered templates."""
    rows = get_services(ctx).templates.list()
    if as_json:
        echo_json([template_to_dict(t) for t in rows])
        return
    click.echo(f"{'TEMPLATE':<24} {'KIND':<12} {'CATEGORY':<12} DESCRIPTION")
    for t in rows:
        click.echo(f"{t.ref:<24} {t.kind:<12} {t.category:<12} {t.description}")


@template_group.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def show(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Show one template: parameters, outputs, README."""
    t = get_services(ctx).templates.get(ref)
    if t is None:
        fail(f"template {ref!r} not found")
        return
    if as_json:
        echo_json(template_to_dict(t))
        return
    click.echo(f"{t.ref}  ({t.kind}, {t.category})  {t.description}")
    click.echo(f"command: {list(t.command)}")
    for p in t.parameters:
        req = " required" if p.required else ""
        click.echo(f"  --{p.name}: {p.type}{req} default={p.default!r}  {p.description}")
    if t.readme:
        click.echo("\n" + t.readme)


@template_group.command("sync")
@click.pass_context
@handle_errors
def sync(ctx: click.Context) -> None:
    """Register the templates of the plugin folders and installed packages."""
    services = get_services(ctx)
    result = load_templates(services.settings.plugin_paths())
    for err in result.errors:
        click.echo(f"myapp: warning: plugin skipped: {err}", err=True)
    refs = services.templates.sync(result.templates, "plugin", services.clock.now())
    click.echo(f"{len(refs)} templates registered: {', '.join(refs)}")


@template_group.command("validate")
@click.argument("folders", nargs=-1, required=True)
def validate(folders: tuple[str, ...]) -> None:
    """Check plugin folders (each holding template.yaml) without registering them."""
    result = load_templates([Path(f).parent if (Path(f) / "template.yaml").exists() else Path(f) for f in folders],
                            entry_points=False)
    for err in result.errors:
        click.echo(f"{err}", err=True)
    for t in result.templates:
        click.echo(f"{t.ref}: ok")
    if result.errors:
        raise SystemExit(2)


def register(main: click.Group) -> None:
    main.add_command(template_group)
