"""An OP's code as a `python` task holds it: what it contains, and running it in a subprocess (run_op)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from myapp.sdk import OPRunError, PythonOPTemplate, run_op
from myapp.sdk import runtime as runtime_module
from myapp.sdk.runtime import OPError, read_inputs
from myapp.sdk.script import INTERPRETED, parse_code
from tests.unit.sdk.ops import WriteFile, directory, lying, read_files, templated, total


def test_the_code_is_readable_python_with_only_the_imports_the_op_uses() -> None:
    code = PythonOPTemplate(read_files).code
    ast.parse(code)
    assert "def read_files(" in code and "@op" in code
    assert "from pathlib import Path" in code and "from myapp.sdk import Artifact, op" in code
    assert "import pytest" not in code and "import json" not in code  # imported by ops.py, unused by the OP
    assert not any(token in code for token in INTERPRETED)


def test_code_the_product_would_render_travels_encoded() -> None:
    code = PythonOPTemplate(templated).code
    assert not any(token in code for token in INTERPRETED) and "def templated" not in code
    script = parse_code(code)
    assert script is not None and script.name == "templated"


@pytest.mark.parametrize("target", [WriteFile, read_files, templated, total])
def test_the_name_and_signature_are_read_back_from_the_code(target: object) -> None:
    template = PythonOPTemplate(target)
    script = parse_code(template.code)
    assert script is not None
    assert (script.name, script.signature) == (template.name, template.signature)
    assert PythonOPTemplate(script).code == template.code


def test_the_runtime_shipped_in_every_task_is_python_3_8_syntax() -> None:
    runtime = Path(runtime_module.__file__).read_text()  # images such as python:3.8 run it
    ast.parse(runtime, feature_version=(3, 8))
    ast.parse(PythonOPTemplate(read_files).code, feature_version=(3, 8))


def test_code_not_written_by_the_sdk_is_not_an_op() -> None:
    assert parse_code("print('hi')") is None
    assert parse_code("# myapp.sdk OP x\nthis is not python") is None


def test_the_hello_world_pair_runs_in_subprocesses(tmp_path: Path) -> None:
    first = run_op(WriteFile, {"msg": "Hello", "number": 3}, workdir=tmp_path / "one")
    files = first.outputs["out_art"]
    assert [p.name for p in files] == ["msg.txt", "results.txt"] and first.outputs["length"] == 5
    second = run_op(read_files, {"files": files, "length": first.outputs["length"]}, workdir=tmp_path / "two")
    assert second.outputs["summary"] == "Hello/3/10.0"
    assert second.outputs["copy"].read_text() == "Hello|3"
    assert second.outputs["meta"] == {"files": ["msg.txt", "results.txt"], "ok": True}


def test_the_task_runs_without_myapp_installed(tmp_path: Path) -> None:
    # -I: isolated mode (no PYTHONPATH, no user site, no current directory): only the standard library.
    isolated = tmp_path / "python"
    isolated.write_text(f'#!/bin/sh\nexec {sys.executable} -I "$@"\n')
    isolated.chmod(0o755)
    result = run_op(total, {"items": [1, 2, 3.5], "flag": True}, python=str(isolated), workdir=tmp_path / "w")
    assert result.outputs == {"total": -6.5}


def test_templated_text_reaches_the_op_as_data(tmp_path: Path) -> None:
    assert run_op(templated, {"text": "x"}, workdir=tmp_path).outputs["out"] == '{{ x }} $(params.code) {"a": {"b": 1}}'


def test_a_directory_artifact_keeps_its_tree(tmp_path: Path) -> None:
    tree = run_op(directory, {"name": "leafy"}, workdir=tmp_path).outputs["tree"]
    assert (tree / "sub" / "leaf.txt").read_text() == "leafy"


def test_an_output_of_the_wrong_type_fails_the_task_naming_it(tmp_path: Path) -> None:
    with pytest.raises(OPRunError, match="output 'count': expected int, got str") as caught:
        run_op(lying, {"n": 3}, workdir=tmp_path)
    assert caught.value.result.exit_code == 3


def test_an_input_of_the_wrong_type_is_refused_before_the_op_runs() -> None:
    sign = PythonOPTemplate(WriteFile).signature.to_data()["inputs"]
    with pytest.raises(OPError, match="input 'number': expected int, got 'three'") as caught:
        read_inputs(sign, {"msg": "x", "number": "three"})
    assert caught.value.code == 2
    with pytest.raises(OPError, match="input 'msg' has no value"):
        read_inputs(sign, {"number": "3"})
    with pytest.raises(TypeError, match="expected int"):
        run_op(WriteFile, {"msg": "x", "number": "three"})
