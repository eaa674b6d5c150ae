"""Task templates (plugins, docs/templates.md): load from folders and entry points, look up.

Two sources, one registry keyed by `name@version`: folders `<plugin dir>/<name>/template.yaml`
(+ README.md) and installed packages exposing the entry-point group `myapp.templates`. A broken
plugin is reported (file, field, message) and skipped; loading never raises. `MemoryCatalog` is
the in-process TemplateCatalog; the database-backed one lives in myapp/db. Parsing a template's
dict is pure and lives in myapp/core/templates.py; `parse_template` here adds the kind checks.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from myapp.builtins.kinds import kind_errors
from myapp.core.errors import SpecError
from myapp.core.model import TemplateSpec
from myapp.core.templates import TEMPLATE_KEYS as TEMPLATE_KEYS  # re-exported: the pure half lives in core
from myapp.core.templates import TemplateError as TemplateError
from myapp.core.templates import parse_template as parse_core
from myapp.core.templates import template_to_dict as template_to_dict
from myapp.core.templates import version_key as version_key
from myapp.yaml_io import load_yaml_file

ENTRY_POINT_GROUP = "myapp.templates"
TEMPLATE_FILE = "template.yaml"
README_FILE = "README.md"
MAX_README_BYTES = 256 * 1024


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
    """Build a TemplateSpec from its plain dict with every check, the kind's included (core/templates.py)."""
    return parse_core(data, source, kind_errors)


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
