"""Task templates: strict parsing, loading from folders and entry points, the in-memory catalog."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from myapp.catalog.plugins import (
    MemoryCatalog,
    TemplateError,
    load_templates,
    parse_template,
    template_to_dict,
    version_key,
)
from myapp.core.errors import SpecError
from myapp.core.model import ParamDef, TemplateSpec
from tests.factories import PLUGINS_DIR, builtin_templates, make_template

TEMPLATE_YAML = """\
name: {name}
version: "{version}"
command: [echo, $(params.msg)]
parameters:
  msg: {{type: string, default: hi}}
"""


def write_plugin(root: Path, folder: str, text: str, readme: str | None = None) -> Path:
    path = root / folder
    path.mkdir(parents=True)
    (path / "template.yaml").write_text(text)
    if readme is not None:
        (path / "README.md").write_text(readme)
    return path


def test_builtin_shell_and_python_templates() -> None:
    by_name = {t.name: t for t in builtin_templates()}
    shell, python = by_name["shell"], by_name["python"]
    assert shell.command == ("bash", "-c", "$(params.script)")
    assert shell.parameters[0] == ParamDef(
        "script", type="text", required=True, script=True, label="Script", description=shell.parameters[0].description
    )
    assert python.command == ("python3", "-c", "$(params.code)")
    assert python.param("code") is not None and python.param("code").script  # type: ignore[union-attr]
    assert shell.readme.startswith("# shell") and python.readme.startswith("# python")


def test_parse_template_full_and_round_trip() -> None:
    data = {
        "name": "train",
        "version": 2,
        "kind": "distributed",
        "category": "ml",
        "description": "d",
        "image": "trainer:1",
        "command": ["python", "train.py", "--epochs=$(params.epochs)"],
        "parameters": {"epochs": {"type": "integer", "default": 3, "minimum": 1}, "token": {"type": "secret"}},
        "outputs": [{"name": "model", "path": "/tmp/model", "type": "file"}],
        "env": {"A": 1},
        "mounts": ["/data"],
        "resources": {"cpu": 2, "memory": "4Gi", "gpu": 1},
        "args_style": "env",
        "monitoring": True,
        "extra": {"replicas": 2},
    }
    spec = parse_template(data, "x.yaml")
    assert (spec.ref, spec.kind, spec.env, spec.resources.cpu, spec.extra) == (
        "train@2",
        "distributed",
        {"A": "1"},
        "2",
        {"replicas": 2},
    )
    assert parse_template(template_to_dict(spec)) == spec


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "x", "colour": "red"}, "colour"),
        ({"name": "Bad_Name"}, "name"),
        ({}, "name"),
        ({"name": "x", "version": 1.10}, "version"),
        ({"name": "x", "kind": "job"}, "kind"),
        ({"name": "x", "args_style": "argv"}, "args_style"),
        ({"name": "x", "command": "echo hi"}, "command"),
        ({"name": "x", "parameters": {"a": {"type": "float"}}}, "parameters.a.type"),
        ({"name": "x", "parameters": {"a-b": {}}}, "parameters.a-b"),
        ({"name": "x", "parameters": {"a": "string"}}, "parameters.a"),
        ({"name": "x", "parameters": [{"name": "a"}]}, "parameters"),
        ({"name": "x", "outputs": [{"name": "o", "path": "/p"}, {"name": "o", "path": "/q"}]}, "outputs"),
        ({"name": "x", "outputs": [{"name": "o"}]}, "outputs[0].path"),
        ({"name": "x", "command": ["echo", "$(params.nope)"]}, "command[1]"),
        (
            {
                "name": "x",
                "command": ["sh", "-c", "x; $(params.s)"],
                "parameters": {"s": {"type": "text", "script": True}},
            },
            "command[2]",
        ),
    ],
)
def test_parse_template_is_strict(data: dict[str, object], field: str) -> None:
    with pytest.raises(TemplateError) as err:
        parse_template(data, "src.yaml")
    assert (err.value.field, err.value.source) == (field, "src.yaml")
    assert isinstance(err.value, SpecError)


def test_load_folders_reports_bad_plugins_and_duplicates(tmp_path: Path) -> None:
    write_plugin(tmp_path / "a", "hello", TEMPLATE_YAML.format(name="hello", version="1"), readme="# hello\n")
    write_plugin(tmp_path / "a", "broken", "name: broken\nkind: [\n")
    write_plugin(tmp_path / "a", "strict", "name: strict\nversion: '1'\ncolour: red\n")
    write_plugin(tmp_path / "a", "alias", "name: &n alias\ndescription: *n\n")
    (tmp_path / "a" / "not-a-plugin").mkdir()
    write_plugin(tmp_path / "b", "hello-again", TEMPLATE_YAML.format(name="hello", version="1"))
    write_plugin(tmp_path / "b", "hello2", TEMPLATE_YAML.format(name="hello", version="2"))
    result = load_templates([tmp_path / "a", tmp_path / "b", tmp_path / "missing"], entry_points=False)
    assert [t.ref for t in result.templates] == ["hello@1", "hello@2"]
    assert result.templates[0].readme == "# hello\n"
    errors = {
        ((Path(e.source_file).relative_to(tmp_path).parts[1:2] or ("missing",))[0], e.field): e.message
        for e in result.errors
    }
    assert set(errors) == {
        ("alias", ""),
        ("broken", ""),
        ("strict", "colour"),
        ("hello-again", "name"),
        ("missing", ""),
    }
    assert "duplicate template hello@1" in errors[("hello-again", "name")]
    assert "aliases" in errors[("alias", "")]
    assert "line 2" in errors[("broken", "")] or "line 3" in errors[("broken", "")]


def test_load_repository_plugins_has_no_errors() -> None:
    result = load_templates([PLUGINS_DIR], entry_points=False)
    assert result.errors == ()
    assert {"shell@1", "python@1"} <= {t.ref for t in result.templates}


ENTRY_MODULE = """
from pathlib import Path
from myapp.core.model import TemplateSpec

SPEC = TemplateSpec(name="from-spec", command=("echo", "1"))
DICT = {"name": "from-dict", "version": "3", "command": ["echo"]}
PATH = str(Path(__file__).parent / "folder" / "template.yaml")
NUMBER = 42
BAD = {"name": "from-bad", "colour": 1}


def many():
    return [DICT | {"name": "many-a"}, DICT | {"name": "many-b"}]


def boom():
    raise RuntimeError("plugin crashed")
"""

ENTRY_POINTS = """\
[myapp.templates]
spec = {module}:SPEC
dict = {module}:DICT
path = {module}:PATH
many = {module}:many
dup = {module}:SPEC
number = {module}:NUMBER
bad = {module}:BAD
boom = {module}:boom
missing = {module}_nope:X
"""


@pytest.fixture
def entry_point_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An installed distribution (a .dist-info on sys.path) exposing myapp.templates entry points."""
    module = f"myapp_fake_plugin_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(ENTRY_MODULE)
    write_plugin(tmp_path, "folder", TEMPLATE_YAML.format(name="from-path", version="1"), readme="# from path\n")
    dist = tmp_path / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS.format(module=module))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield module
    sys.modules.pop(module, None)


def test_entry_points_give_specs_dicts_paths_and_lists(entry_point_package: str) -> None:
    module = entry_point_package
    result = load_templates([], entry_points=True)
    mine = [t.ref for t in result.templates if t.name.startswith(("from-", "many-"))]
    assert mine == ["from-spec@1", "from-dict@3", "from-path@1", "many-a@3", "many-b@3"]
    path_template = next(t for t in result.templates if t.name == "from-path")
    assert path_template.readme == "# from path\n"
    errors = {e.source_file.split(" = ")[0]: e for e in result.errors if module in e.source_file}
    assert set(errors) == {
        "entry point dup",
        "entry point number",
        "entry point bad",
        "entry point boom",
        "entry point missing",
    }
    assert "duplicate template from-spec@1" in errors["entry point dup"].message
    assert errors["entry point bad"].field == "colour"
    assert "plugin crashed" in errors["entry point boom"].message


def test_memory_catalog_picks_the_highest_version_naturally() -> None:
    catalog = MemoryCatalog([make_template("t", version=v) for v in ("1.9", "1.10", "1.2", "0.99")])
    assert catalog.get("t") == make_template("t", version="1.10")
    assert catalog.get("t@1.2") == make_template("t", version="1.2")
    assert catalog.get("t@7") is None and catalog.get("nope") is None
    assert [t.version for t in catalog.all()] == ["0.99", "1.2", "1.9", "1.10"]


def test_version_key_is_natural() -> None:
    assert sorted(["10", "2", "1.10", "1.9", "1.9a"], key=version_key) == ["1.9", "1.9a", "1.10", "2", "10"]


def test_template_spec_from_code_is_validated() -> None:
    spec = TemplateSpec(name="x", command=("echo", "$(params.nope)"))
    with pytest.raises(TemplateError):
        parse_template(template_to_dict(spec))
