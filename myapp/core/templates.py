"""Task templates as data: template.yaml <-> TemplateSpec, and the natural order of versions.

Pure (no file, no entry point, no database): the plugin loader (myapp/catalog/plugins.py) reads folders
and entry points and hands their dicts here; the database stores parse what they read back. The
checks of a template kind (distributed, resource) are passed in as `kind_check`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import cast, get_args

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

KindCheck = Callable[[TemplateSpec], list[SpecError]]

TEMPLATE_KEYS = (
    "name",
    "version",
    "kind",
    "category",
    "description",
    "image",
    "command",
    "parameters",
    "outputs",
    "env",
    "mounts",
    "resources",
    "args_style",
    "monitoring",
    "readme",
    "extra",
)
TEMPLATE_NAME = re.compile(r"[a-z0-9-]{1,63}")
VERSION = re.compile(r"[A-Za-z0-9._-]{1,32}")


class TemplateError(SpecError):
    """A template definition breaks a rule; `source` says where it came from (file, entry point)."""

    def __init__(self, source: str, field: str, message: str) -> None:
        super().__init__(field, message)
        self.source = source


def parse_template(data: Mapping[str, object], source: str = "", kind_check: KindCheck | None = None) -> TemplateSpec:
    """Build a TemplateSpec from its plain dict (template.yaml); TemplateError names the field.

    `kind_check` adds the checks of a template kind (myapp/builtins/kinds.py kind_errors); the
    plugin loader and the user-template store pass it, reads of stored templates need not.
    """
    try:
        spec = _parse_template(data)
    except TemplateError:
        raise
    except SpecError as exc:
        raise TemplateError(source, exc.field, exc.message) from None
    problems = template_command_errors(spec) + (kind_check(spec) if kind_check is not None else [])
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
        ("kind", spec.kind, "pod"),
        ("category", spec.category, "general"),
        ("description", spec.description, ""),
        ("image", spec.image, ""),
        ("command", list(spec.command), []),
        ("parameters", {p.name: param_def_to_dict(p) for p in spec.parameters}, {}),
        ("outputs", [output_to_dict(o) for o in spec.outputs], []),
        ("env", dict(spec.env), {}),
        ("mounts", list(spec.mounts), []),
        ("resources", resources_to_dict(spec.resources), {}),
        ("args_style", spec.args_style, "cli"),
        ("monitoring", spec.monitoring, False),
        ("readme", spec.readme, ""),
        ("extra", dict(spec.extra), {}),
    )
    out.update({key: value for key, value, empty in optional if value != empty})
    return out


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Return a sort key in natural version order: 1.9 < 1.10 < 2."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.findall(r"\d+|\D+", version))
