"""`myapp template list|show|sync|validate|import-cube`.

Secret parameters' defaults are masked in every listing. `validate` checks folders without
touching the database; `import-cube` turns Cube Studio job templates into plugin folders and
registers them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from myapp.catalog.plugins import (
    README_FILE,
    TEMPLATE_FILE,
    TemplateError,
    load_templates,
    read_template_folder,
    template_to_dict,
)
from myapp.cli import echo_json, fail, get_services, handle_errors
from myapp.core.errors import SpecError
from myapp.core.model import TemplateSpec


def masked(spec: TemplateSpec) -> dict[str, object]:
    """Return the template as a dict with secret defaults masked."""
    from myapp.db.template_review import masked_template_dict

    return masked_template_dict(spec)


@click.group("template")
def template_group() -> None:
    """Task templates (plugins)."""


@template_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def list_(ctx: click.Context, as_json: bool) -> None:
    """List registered (published) templates."""
    rows = get_services(ctx).templates.list()
    if as_json:
        echo_json([masked(t) for t in rows])
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
    data = masked(t)
    if as_json:
        echo_json(data)
        return
    click.echo(f"{t.ref}  ({t.kind}, {t.category})  {t.description}")
    click.echo(f"command: {list(t.command)}")
    shown: dict[str, Any] = data.get("parameters") or {}  # type: ignore[assignment]
    for p in t.parameters:
        req = " required" if p.required else ""
        click.echo(f"  --{p.name}: {p.type}{req} default={shown[p.name].get('default')!r}  {p.description}")
    for o in t.outputs:
        click.echo(f"  output {o.name}: {o.type} at {o.path}  {o.description}")
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
    """Check plugin folders (each holding template.yaml, or a directory of them); exit 2 on any error."""
    errors = 0
    for folder in map(Path, folders):
        if (folder / TEMPLATE_FILE).is_file():
            try:
                click.echo(f"{read_template_folder(folder).ref}: ok ({folder})")
            except TemplateError as exc:
                errors += 1
                click.echo(f"{exc.source}: {exc}", err=True)
            continue
        result = load_templates([folder], entry_points=False)
        for err in result.errors:
            click.echo(str(err), err=True)
        for t in result.templates:
            click.echo(f"{t.ref}: ok")
        errors += len(result.errors)
    if errors:
        raise SystemExit(2)


@template_group.command("import-cube")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", default=None, help="Template name (default: from job_template_name).")
@click.option("--version", "version", default="1", show_default=True)
@click.option("--out", default=None, help="Folder for the plugin folders (default: the first plugin directory).")
@click.option("--register/--no-register", default=True, show_default=True, help="Also register them (published).")
@click.option("--force", is_flag=True, help="Overwrite existing plugin folders.")
@click.option("--dry-run", is_flag=True, help="Print the template.yaml files; write nothing.")
@click.pass_context
@handle_errors
def import_cube(
    ctx: click.Context,
    file: str,
    name: str | None,
    version: str,
    out: str | None,
    register: bool,
    force: bool,
    dry_run: bool,
) -> None:
    """Turn a Cube Studio job template (JSON or YAML; one, a list, or name -> template) into myapp templates."""
    from myapp.catalog.cube_import import cube_records, cube_to_template
    from myapp.yaml_io import dump_yaml

    records = cube_records(_read_data(Path(file)))
    if name and len(records) > 1:
        raise SpecError("--name", f"the file holds {len(records)} templates; --name needs exactly one")
    specs = [cube_to_template(record, key=key, name=name, version=version) for key, record in records]
    if dry_run:
        for spec in specs:
            click.echo(f"# {spec.ref}\n{dump_yaml(_folder_dict(spec))}")
        return
    services: Any = get_services(ctx) if register or out is None else None
    root = Path(out) if out else Path(services.settings.plugin_paths()[0])
    for spec in specs:
        folder = write_plugin_folder(root, spec, force=force)
        click.echo(f"{spec.ref}: written to {folder}")
    if register and services is not None:
        refs = services.templates.sync(specs, "cube", services.clock.now())
        click.echo(f"{len(refs)} templates registered: {', '.join(refs)}")


def _read_data(path: Path) -> object:
    from myapp.yaml_io import load_yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError("", f"cannot read {path}: {exc}") from None
    try:
        return json.loads(text)
    except ValueError:
        return load_yaml(text)


def _folder_dict(spec: TemplateSpec) -> dict[str, object]:
    data = template_to_dict(spec)
    data.pop("readme", None)  # README.md sits beside template.yaml
    return data


def write_plugin_folder(root: Path, spec: TemplateSpec, *, force: bool = False) -> Path:
    """Write `root/NAME/template.yaml` and README.md; refuse to overwrite unless `force`."""
    from myapp.yaml_io import dump_yaml

    folder = root / spec.name
    if (folder / TEMPLATE_FILE).exists() and not force:
        raise SpecError("--out", f"{folder} already holds a template; use --force to overwrite")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TEMPLATE_FILE).write_text(dump_yaml(_folder_dict(spec)), encoding="utf-8")
    (folder / README_FILE).write_text(spec.readme, encoding="utf-8")
    return folder


def register(main: click.Group) -> None:
    main.add_command(template_group)
