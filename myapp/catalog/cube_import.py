"""Cube Studio job templates -> myapp templates (`myapp template import-cube FILE`).

A Cube record (its init-job-template.json entries, or the fields of its job-template page) has
`job_template_name`, `image_name`, `job_template_command`, `job_template_env` (KEY=VALUE lines),
`job_template_volume`, `job_template_account`, `job_template_describe`, `project_name` and
`job_template_args`: groups of parameters, each with `type`, `item_type`, `label`, `require`,
`choice`, `range` ("$min,$max", max exclusive), `default`, `placeholder`, `describe`, `editable`.
Cube hands every parameter to the image as a command-line flag; so does the template made here
(`args_style: cli`, `--name=value`). docs/templates.md has the full mapping table. Pure: data in,
TemplateSpec out; SpecError names the field (`job_template_args.训练.--epochs.type`).
"""

from __future__ import annotations

import html
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from myapp.catalog.plugins import parse_template, template_to_dict
from myapp.core.errors import SpecError
from myapp.core.model import ParamDef, TemplateSpec
from myapp.core.params import coerce_value, is_deferred
from myapp.core.validate import IDENTIFIER

RECORD_KEYS = ("job_template_name", "job_template_args", "image_name", "job_template_command")
STRING_TYPES = frozenset({"str", "string", "text", "date", "datetime", "file", "list", "multiple", "enum"})
PATTERNS = {"date": r"\d{4}-\d{2}-\d{2}", "datetime": r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?"}
TYPE_MAP = {
    "str": "string",
    "string": "string",
    "text": "text",
    "file": "text",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "json": "json",
    "dict": "json",
    "enum": "choice",
    "date": "string",
    "datetime": "string",
    "list": "string",
    "multiple": "string",
}
_LINK = re.compile(r"<a\b[^>]*href=['\"]([^'\"]+)['\"][^>]*>(.*?)</a\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def cube_records(data: object) -> list[tuple[str, Mapping[str, Any]]]:
    """Return (key, record) pairs from a file holding one record, a list, or a mapping of them."""
    if isinstance(data, Mapping) and any(k in data for k in RECORD_KEYS):
        return [("", data)]
    if isinstance(data, Mapping) and data and all(isinstance(v, Mapping) for v in data.values()):
        return [(str(k), v) for k, v in data.items()]
    if isinstance(data, list) and data and all(isinstance(v, Mapping) for v in data):
        return [("", v) for v in data]
    raise SpecError(
        "",
        "expected a Cube job template (job_template_name, image_name, job_template_args, ...), "
        "a list of them, or a mapping of name -> template",
    )


def cube_to_template(
    record: Mapping[str, Any], *, key: str = "", name: str | None = None, version: str = "1"
) -> TemplateSpec:
    """Convert one Cube job template; the result passes every template rule (parse_template)."""
    params, groups, flags, ui = _parameters(record.get("job_template_args") or {})
    extra = {
        "cube": {
            k: v
            for k, v in {
                "groups": groups,
                "flags": flags,
                "ui": ui,
                "service_account": record.get("job_template_account") or None,
                "expand": record.get("job_template_expand") or None,
                "stage": record.get("job_template_version") or None,
                "gitpath": record.get("gitpath") or None,
                "name": record.get("job_template_name") or key or None,
            }.items()
            if v
        }
    }
    spec = TemplateSpec(
        name=name or _template_name(record, key),
        version=version,
        category=_text(record.get("project_name")) or "cube",
        description=plain_text(_text(record.get("job_template_describe"))),
        image=_image(record),
        command=_command(record),
        parameters=params,
        env=_env(record.get("job_template_env")),
        mounts=tuple(v.strip() for v in _text(record.get("job_template_volume")).split(",") if v.strip()),
        args_style="cli",
        extra=extra,
    )
    spec = parse_template(template_to_dict(spec), "cube")
    return replace(spec, readme=cube_readme(spec, record))


def plain_text(text: str) -> str:
    """Return Cube's HTML descriptions as text: `<a href=U>T</a>` -> `T (U)`, other tags dropped."""
    text = _LINK.sub(lambda m: f"{m.group(2).strip()} ({m.group(1)})", text)
    return html.unescape(_TAG.sub("", text)).strip()


def cube_readme(spec: TemplateSpec, record: Mapping[str, Any]) -> str:
    """Return a README.md for an imported template: origin, command, parameters."""
    cube: Mapping[str, Any] = spec.extra.get("cube", {})  # type: ignore[assignment]
    expand = record.get("job_template_expand")
    help_url = expand.get("help_url") if isinstance(expand, Mapping) else None
    lines = [
        f"# {spec.name}",
        "",
        spec.description or "(no description)",
        "",
        f"Imported from the Cube Studio job template {cube.get('name', spec.name)!r}.",
        "",
    ]
    if help_url:
        lines += [f"Upstream documentation: {help_url}", ""]
    lines += [
        f"Image: `{spec.image}`",
        "",
        f"Command: `{shlex.join(spec.command) or '(the image entrypoint)'}` "
        "followed by `--name=value` for every parameter that has a value.",
        "",
        "## Parameters",
        "",
        "| name | type | required | default | description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for p in spec.parameters:
        shown = p.default if isinstance(p.default, str) else json.dumps(p.default, ensure_ascii=False)
        default = "" if p.default is None else shown.replace("|", "\\|")
        lines.append(
            f"| {p.name} | {p.type} | {'yes' if p.required else 'no'} | {default} | {p.description.replace('|', '/')} |"
        )
    return "\n".join(lines) + "\n"


def _parameters(raw: object) -> tuple[tuple[ParamDef, ...], dict[str, list[str]], dict[str, str], dict[str, Any]]:
    if not isinstance(raw, Mapping):
        raise SpecError("job_template_args", "must be a mapping of group -> parameters")
    params: list[ParamDef] = []
    groups: dict[str, list[str]] = {}
    flags: dict[str, str] = {}
    ui: dict[str, Any] = {}
    for group, attrs in raw.items():
        if not isinstance(attrs, Mapping):
            raise SpecError(f"job_template_args.{group}", "must be a mapping of parameter -> attributes")
        for flag, attr in attrs.items():
            where = f"job_template_args.{group}.{flag}"
            defn = _param(str(flag), attr, where)
            if any(p.name == defn.name for p in params):
                raise SpecError(where, f"two parameters become {defn.name!r}")
            params.append(defn)
            groups.setdefault(str(group), []).append(defn.name)
            if str(flag) != f"--{defn.name}":
                flags[defn.name] = str(flag)
            ui[defn.name] = {
                k: attr[k] for k in ("placeholder", "editable", "item_type") if attr.get(k) not in (None, "")
            }
    return tuple(params), groups, flags, {k: v for k, v in ui.items() if v}


def _param(flag: str, attr: object, where: str) -> ParamDef:
    if not isinstance(attr, Mapping):
        raise SpecError(where, "must be a mapping of type, label, require, default, ...")
    cube_type = str(attr.get("type") or "str").lower()
    if cube_type not in TYPE_MAP:
        raise SpecError(f"{where}.type", f"unknown Cube type {cube_type!r}; known: {', '.join(sorted(TYPE_MAP))}")
    choices = tuple(str(c) for c in attr.get("choice") or ())
    kind = "choice" if choices and cube_type in ("str", "string", "enum") else TYPE_MAP[cube_type]
    if kind == "choice" and not choices:
        kind = "string"
    low, high = _range(str(attr.get("range") or ""), cube_type)
    defn = ParamDef(
        name=_param_name(flag, where),
        type=kind,  # type: ignore[arg-type]
        required=_flag(attr.get("require")),
        label=plain_text(_text(attr.get("label"))),
        description=plain_text(_text(attr.get("describe"))),
        choices=choices if kind == "choice" else (),
        minimum=low,
        maximum=high,
        pattern=_pattern(cube_type, choices),
        default=_default(attr.get("default"), cube_type),
    )
    if defn.default is not None and not is_deferred(defn.default):
        try:
            coerce_value(defn, defn.default)
        except ValueError as exc:
            raise SpecError(f"{where}.default", str(exc)) from None
    return defn


def _param_name(flag: str, where: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", flag.lstrip("-"))
    name = f"_{name}" if name[:1].isdigit() else name
    if not IDENTIFIER.fullmatch(name):
        raise SpecError(where, f"{flag!r} cannot become a parameter name ([A-Za-z_][A-Za-z0-9_]*)")
    return name


def _range(text: str, cube_type: str) -> tuple[float | None, float | None]:
    if cube_type not in ("int", "float") or "," not in text:
        return None, None
    low_text, high_text = (part.strip() for part in text.split(",", 1))
    low, high = _number(low_text), _number(high_text)
    if high is not None and cube_type == "int":
        high = high - 1  # Cube's max is exclusive
    return low, high


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else value


def _pattern(cube_type: str, choices: tuple[str, ...]) -> str | None:
    if cube_type == "multiple" and choices:
        one = "|".join(re.escape(c) for c in choices)
        return f"({one})(,({one}))*"
    return PATTERNS.get(cube_type)


def _default(raw: object, cube_type: str) -> object:
    if raw is None or raw == "" or raw == [] or raw == {}:
        return None
    if cube_type in ("int", "float") and isinstance(raw, str) and _number(raw) is not None:
        return _number(raw)
    if cube_type in ("list", "multiple") and isinstance(raw, list):
        return ",".join(str(v) for v in raw)
    if cube_type in STRING_TYPES and not isinstance(raw, str):
        return str(raw)
    return raw


def _flag(raw: object) -> bool:
    return str(raw).strip().lower() in ("1", "true", "yes")


def _text(raw: object) -> str:
    return "" if raw is None else str(raw)


def _template_name(record: Mapping[str, Any], key: str) -> str:
    for candidate in (_text(record.get("job_template_name")), key):
        slug = re.sub(r"[^a-z0-9]+", "-", candidate.lower()).strip("-")[:63].strip("-")
        if slug:
            return slug
    raise SpecError("job_template_name", "cannot make a template name (a-z, 0-9, -) from it; give --name")


def _image(record: Mapping[str, Any]) -> str:
    image = _text(record.get("image_name") or record.get("images")).strip()
    if not image:
        raise SpecError("image_name", "a Cube job template needs an image")
    return image


def _command(record: Mapping[str, Any]) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(_text(record.get("job_template_command"))))
    except ValueError as exc:
        raise SpecError("job_template_command", f"cannot split into arguments: {exc}") from None


def _env(raw: object) -> dict[str, str]:
    if isinstance(raw, Mapping):
        return {str(k): _text(v) for k, v in raw.items()}
    env: dict[str, str] = {}
    for number, line in enumerate(_text(raw).splitlines(), 1):
        if not line.strip() or line.strip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not IDENTIFIER.fullmatch(key.strip()):
            raise SpecError("job_template_env", f"line {number} {line!r} is not KEY=VALUE")
        env[key.strip()] = value.strip()
    return env
