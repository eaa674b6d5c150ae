"""YAML text <-> plain data, guarded against hostile input. The core never sees YAML, only dicts.

`load_yaml` uses PyYAML's safe loader (libyaml when present; no Python objects) and refuses what safe_load lets through
and would hurt later: texts over 2 MiB, aliases (the "billion laughs" expand when the data is
walked), nesting deeper than 64 and duplicate mapping keys (PyYAML silently keeps the last).
Every refusal is a SpecError with the line and column, so the CLI and the API report it like any
other spec error.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, ScalarNode

from myapp.core.errors import SpecError
from myapp.core.nesting import MAX_NESTING, nesting_problem

MAX_YAML_BYTES = 2 * 1024 * 1024
MAX_DEPTH = MAX_NESTING  # the JSON guard of the web API uses the same limit
_LINE_WIDTH = 4096


_FastSafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class GuardedLoader(_FastSafeLoader):  # type: ignore[valid-type, misc]
    """The (libyaml when present) safe loader, refusing duplicate mapping keys.

    Booleans are YAML 1.2's `true`/`false` only: YAML 1.1 also reads on/off/yes/no as
    booleans, which turns `alerts: {on: [failed]}` into a `True` key and a country code `NO`
    into False.
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Construct a mapping, refusing a key written twice."""
        seen: set[tuple[str, object]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode):
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise ConstructorError(None, None, f"duplicate key {key_node.value!r}", key_node.start_mark)
                seen.add(key)
        result: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return result


GuardedLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_yaml(text: str) -> object:
    """Parse one YAML document into plain data; SpecError (with line and column) when refused."""
    if len(text.encode("utf-8", errors="replace")) > MAX_YAML_BYTES:
        raise SpecError("", f"YAML text larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB")
    try:
        _check_events(text)
        data = yaml.load(text, Loader=GuardedLoader)  # GuardedLoader is a safe loader
    except yaml.MarkedYAMLError as exc:
        if "maximum nesting depth" in str(exc):  # PyYAML >= 6.0.4 stops deep flow nesting in its scanner
            mark = exc.problem_mark or exc.context_mark
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise SpecError("", f"invalid YAML{where}: nesting deeper than {MAX_DEPTH} levels") from None
        raise SpecError("", f"invalid YAML: {exc}") from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise SpecError("", f"invalid YAML: {exc}") from None
    problem = nesting_problem(data)  # a NUL written as "\0" in a quoted scalar
    if problem:
        raise SpecError("", f"invalid YAML: the document {problem}")
    return data


def _check_events(text: str) -> None:
    # A first pass over the event stream (fast, iterative) before anything is composed.
    depth = 0
    for event in yaml.parse(text, Loader=GuardedLoader):
        if isinstance(event, yaml.AliasEvent):
            raise _refused(event, "aliases (*name) are not supported")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise _refused(event, f"nesting deeper than {MAX_DEPTH} levels")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _refused(event: yaml.Event, message: str) -> SpecError:
    mark = event.start_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return SpecError("", f"invalid YAML{where}: {message}")


def load_yaml_file(path: Path) -> object:
    """Read and parse a YAML file, refusing files over the size limit before reading them."""
    with path.open("rb") as handle:
        data = handle.read(MAX_YAML_BYTES + 1)
    if len(data) > MAX_YAML_BYTES:
        raise SpecError("", f"YAML file larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError("", f"not UTF-8 text: {exc}") from None
    return load_yaml(text)


class BlockDumper(yaml.SafeDumper):
    """SafeDumper writing block style, multi-line text as `|` blocks and no anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        """Write shared objects out in full instead of as anchors and aliases."""
        return True


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def _represent_tuple(dumper: yaml.SafeDumper, data: tuple[Any, ...]) -> yaml.SequenceNode:
    return dumper.represent_list(list(data))


BlockDumper.add_representer(str, _represent_str)
BlockDumper.add_representer(tuple, _represent_tuple)


def dump_yaml(data: object) -> str:
    """Return `data` as block-style YAML, keys in their given order, Unicode kept as is."""
    return yaml.dump(
        data, Dumper=BlockDumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=_LINE_WIDTH
    )
