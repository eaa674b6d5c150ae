"""Task templates (plugins, PRODUCT.md §6): parse, load from folders and entry points, look up.

Two sources, one registry keyed by `name@version`: folders `<plugin dir>/<name>/template.yaml`
(+ README.md) and installed packages exposing the entry-point group `myapp.templates`. A broken
plugin is reported (file, field, message) and skipped; loading never raises. `MemoryCatalog` is
the in-process TemplateCatalog; the database-backed one lives in myapp/db.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast, get_args

from myapp.builtins.kinds import kind_errors
from myapp.core.errors import SpecError
from myapp.core.model import ArgsStyle, ParamDef, TemplateKind, TemplateSpec
from myapp.core.params import param_def_to_dict, parse_param_def
from myapp.core.render import template_command_errors
from myapp.core.spec_fields import (
    check_keys,
    read_bool,
    read_mapping,
    read_str,
    read_str_list,
    read_text_map,
)
from myapp.core.task_spec import output_to_dict, parse_outputs, parse_resources, resources_to_dict
from myapp.core.validate import IDENTIFIER
from myapp.yaml_io import load_yaml_file

ENTRY_POINT_GROUP = "myapp.templates"
TEMPLATE_FILE = "template.yaml"
README_FILE = "README.md"
MAX_README_BYTES = 256 * 1024
TEMPLATE_KEYS = (
    "name", "version", "kind", "category", "description", "image", "command", "parameters", "outputs",
    "env", "mounts", "resources", "args_style", "monitoring", "readme", "extra",
)
TEMPLATE_NAME = re.compile(r"[a-z0-9-]{1,63}")
VERSION = re.compile(r"[A-Za-z0-9._-]{1,32}")


class TemplateError(SpecError):
    """A template definition breaks a rule; `source` says where it came from (file, entry point)."""

    def __init__(self, source: str, field: str, message: str) -> None:
        super().__init__(field, message)
        self.source = source


@dataclass(frozen=True)
class PluginError:
    """A plugin that could not be loaded: shown on the templates page instead of crashing."""

    source_file: str
    field: str
    message: str

    def __str__(self) -> str:
        """Return `file: field: message` on one line (for warnings)."""
        message = " ".join(self.message.split())
        return f"{self.source_file}: {self.field + ': ' if self.field else ''}{message}"


@dataclass(frozen=True)
class LoadResult:
    """Every template loaded, and every plugin skipped with its reason."""

    templates: tuple[TemplateSpec, ...]
    errors: tuple[PluginError, ...]


def parse_template(data: Mapping[str, object], source: str = "") -> TemplateSpec:
    """Build a TemplateSpec from its plain dict (template.yaml); TemplateError names the field."""
    try:
        spec = _parse_template(data)
    except TemplateError:
        raise
    except SpecError as exc:
        raise TemplateError(source, exc.field, exc.message) from None
    problems = template_command_errors(spec) + kind_errors(spec)
    if problems:
        raise TemplateError(source, problems[0].field, problems[0].message)
    return spec


def _parse_template(data: Mapping[str, object]) -> TemplateSpec:
    top = read_mapping(data, "")
    check_keys(top, TEMPLATE_KEYS, "")
    outputs = parse_outputs(top.get("outputs"), "outputs")
    names = [o.name for o in outputs]
    if len(set(names)) != len(names):
        raise SpecError("outputs", "output names must be unique")
    return TemplateSpec(
        name=_name(top),
        version=_version(top.get("version", "1")),
        kind=cast(TemplateKind, _choice(top, "kind", get_args(TemplateKind))),
        category=read_str(top, "category", "", default="general"),
        description=read_str(top, "description", ""),
        image=read_str(top, "image", ""),
        command=read_str_list(top, "command", ""),
        parameters=_parameters(top.get("parameters")),
        outputs=outputs,
        env=read_text_map(top, "env", ""),
        mounts=read_str_list(top, "mounts", ""),
        resources=parse_resources(top.get("resources"), "resources"),
        args_style=cast(ArgsStyle, _choice(top, "args_style", get_args(ArgsStyle))),
        monitoring=read_bool(top, "monitoring", "", default=False),
        readme=read_str(top, "readme", ""),
        extra=dict(read_mapping(top.get("extra") or {}, "extra")),
    )


def _name(top: Mapping[str, object]) -> str:
    name = read_str(top, "name", "", required=True)
    if not TEMPLATE_NAME.fullmatch(name):
        raise SpecError("name", f"{name!r} must be 1-63 characters of a-z, 0-9 and -")
    return name


def _version(raw: object) -> str:
    # An unquoted 1.10 is the float 1.1 in YAML: refuse floats rather than guess.
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str) or not VERSION.fullmatch(raw):
        raise SpecError("version", 'must be text such as "1" or "2.0.1" (quote it in YAML)')
    return raw


def _choice(top: Mapping[str, object], key: str, allowed: tuple[str, ...]) -> str:
    value = top.get(key, allowed[0])
    if value not in allowed:
        raise SpecError(key, f"must be one of {', '.join(allowed)}, not {value!r}")
    return str(value)


def _parameters(raw: object) -> tuple[ParamDef, ...]:
    if raw is None:
        return ()
    data = read_mapping(raw, "parameters")
    for name in data:
        if not IDENTIFIER.fullmatch(name):
            raise SpecError(f"parameters.{name}", "a parameter name is [A-Za-z_][A-Za-z0-9_]* (at most 63)")
    return tuple(parse_param_def(name, read_mapping(value, f"parameters.{name}")) for name, value in data.items())


def template_to_dict(spec: TemplateSpec) -> dict[str, object]:
    """Return the template as the plain dict of template.yaml (defaults omitted, readme included)."""
    out: dict[str, object] = {"name": spec.name, "version": spec.version}
    optional: tuple[tuple[str, object, object], ...] = (
        ("kind", spec.kind, "pod"), ("category", spec.category, "general"),
        ("description", spec.description, ""), ("image", spec.image, ""),
        ("command", list(spec.command), []),
        ("parameters", {p.name: param_def_to_dict(p) for p in spec.parameters}, {}),
        ("outputs", [output_to_dict(o) for o in spec.outputs], []), ("env", dict(spec.env), {}),
        ("mounts", list(spec.mounts), []), ("resources", resources_to_dict(spec.resources), {}),
        ("args_style", spec.args_style, "cli"), ("monitoring", spec.monitoring, False),
        ("readme", spec.readme, ""), ("extra", dict(spec.extra), {}),
    )
    out.update({key: value for key, value, empty in optional if value != empty})
    return out


def read_template_folder(folder: Path) -> TemplateSpec:
    """Read `folder/template.yaml` and its README.md; TemplateError names the file and field."""
    path = folder / TEMPLATE_FILE
    try:
        data = load_yaml_file(path)
    except SpecError as exc:
        raise TemplateError(str(path), exc.field, exc.message) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(str(path), "", f"cannot read: {exc}") from None
    if not isinstance(data, Mapping):
        raise TemplateError(str(path), "", "must be a mapping of name, version, command, ...")
    spec = parse_template(data, str(path))
    readme = _read_readme(folder / README_FILE)
    return replace(spec, readme=readme) if readme and not spec.readme else spec


def _read_readme(path: Path) -> str:
    if not path.is_file():
        return ""
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_README_BYTES).decode("utf-8", errors="replace")
    except OSError as exc:
        raise TemplateError(str(path), "", f"cannot read: {exc}") from None


def load_templates(dirs: Sequence[Path], *, entry_points: bool = True) -> LoadResult:
    """Load every template from the plugin folders, then from entry points; never raises."""
    registry = _Registry()
    for directory in dirs:
        registry.add_folders(directory)
    if entry_points:
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            registry.add_entry_point(entry_point)
    return LoadResult(tuple(registry.templates.values()), tuple(registry.errors))


class _Registry:
    """Accumulates templates by `name@version`, the first source winning, and the errors."""

    def __init__(self) -> None:
        self.templates: dict[str, TemplateSpec] = {}
        self.sources: dict[str, str] = {}
        self.errors: list[PluginError] = []

    def add(self, spec: TemplateSpec, source: str) -> None:
        if spec.ref in self.templates:
            message = f"duplicate template {spec.ref}, already loaded from {self.sources[spec.ref]}"
            self.errors.append(PluginError(source, "name", message))
            return
        self.templates[spec.ref] = spec
        self.sources[spec.ref] = source

    def add_folders(self, directory: Path) -> None:
        if not directory.is_dir():
            self.errors.append(PluginError(str(directory), "", "plugin directory does not exist"))
            return
        for folder in sorted(p for p in directory.iterdir() if (p / TEMPLATE_FILE).is_file()):
            try:
                self.add(read_template_folder(folder), str(folder / TEMPLATE_FILE))
            except TemplateError as exc:
                self.errors.append(PluginError(exc.source, exc.field, exc.message))

    def add_entry_point(self, entry_point: importlib.metadata.EntryPoint) -> None:
        source = f"entry point {entry_point.name} = {entry_point.value}"
        try:
            for spec in _entry_point_templates(entry_point, source):
                self.add(spec, source)
        except TemplateError as exc:
            self.errors.append(PluginError(exc.source or source, exc.field, exc.message))
        except Exception as exc:  # noqa: BLE001 - third-party plugin code may raise anything
            self.errors.append(PluginError(source, "", f"cannot load: {type(exc).__name__}: {exc}"))


def _entry_point_templates(entry_point: importlib.metadata.EntryPoint, source: str) -> Iterator[TemplateSpec]:
    value = entry_point.load()
    if callable(value) and not isinstance(value, (TemplateSpec, Mapping, str, os.PathLike)):
        value = value()
    items = value if isinstance(value, (list, tuple)) else [value]
    for item in items:
        yield _template_from_object(item, source)


def _template_from_object(item: object, source: str) -> TemplateSpec:
    if isinstance(item, TemplateSpec):
        return parse_template(template_to_dict(item), source)
    if isinstance(item, Mapping):
        return parse_template(item, source)
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        return read_template_folder(path.parent if path.name == TEMPLATE_FILE else path)
    raise TemplateError(source, "", "an entry point must give a TemplateSpec, a dict or a path to template.yaml")


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Return a sort key in natural version order: 1.9 < 1.10 < 2."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.findall(r"\d+|\D+", version))


class MemoryCatalog:
    """TemplateCatalog over a fixed set: "name" gives the highest version, "name@version" that one."""

    def __init__(self, templates: Iterable[TemplateSpec] = ()) -> None:
        self._by_ref = {t.ref: t for t in templates}
        self._newest: dict[str, TemplateSpec] = {}
        for spec in self._by_ref.values():
            current = self._newest.get(spec.name)
            if current is None or version_key(spec.version) > version_key(current.version):
                self._newest[spec.name] = spec

    def get(self, ref: str) -> TemplateSpec | None:
        """Return the template for "name" (highest version) or "name@version", or None."""
        if "@" in ref:
            return self._by_ref.get(ref)
        return self._newest.get(ref)

    def all(self) -> tuple[TemplateSpec, ...]:
        """Return every template, sorted by name then version."""
        return tuple(sorted(self._by_ref.values(), key=lambda t: (t.name, version_key(t.version))))
