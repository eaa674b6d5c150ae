"""OP signatures from type hints, explicit signs and class OPs; the values' text forms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from myapp.sdk import Artifact, Parameter, SignatureError, op, signature_of
from myapp.sdk.runtime import decode_parameter, encode_parameter, unwrap_artifact, write_artifact
from tests.unit.sdk.ops import WriteFile, read_files, total


def kinds(specs: Any) -> dict[str, tuple[str, str]]:
    return {s.name: (s.kind, s.type) for s in specs}


def test_class_op_signature_comes_from_its_signs() -> None:
    sign = signature_of(WriteFile)
    assert kinds(sign.inputs) == {"msg": ("parameter", "str"), "number": ("parameter", "int")}
    assert kinds(sign.outputs) == {"out_art": ("artifact", "paths"), "length": ("parameter", "int")}


def test_function_op_signature_comes_from_type_hints_and_defaults() -> None:
    sign = signature_of(read_files)
    assert kinds(sign.inputs) == {
        "files": ("artifact", "paths"),
        "length": ("parameter", "int"),
        "scale": ("parameter", "float"),
    }
    scale = sign.input("scale")
    assert scale is not None and scale.has_default and scale.default == 2.0
    assert kinds(sign.outputs) == {
        "summary": ("parameter", "str"),
        "copy": ("artifact", "path"),
        "meta": ("parameter", "json"),
    }


def test_explicit_signs_win_over_hints() -> None:
    sign = signature_of(total)
    assert kinds(sign.inputs) == {"items": ("parameter", "json"), "flag": ("parameter", "bool")}
    assert sign.input("flag").default is False  # type: ignore[union-attr]
    assert kinds(sign.outputs) == {"total": ("parameter", "float")}


def test_bare_path_hints_and_a_dict_return_annotation_declare_the_signature() -> None:
    @op
    def f(a: Path, b: list[Path], c: str) -> {"d": Path}:  # type: ignore[valid-type]  # noqa: F821, UP037
        return {"d": a}

    sign = signature_of(f)
    assert kinds(sign.inputs) == {"a": ("artifact", "path"), "b": ("artifact", "paths"), "c": ("parameter", "str")}
    assert kinds(sign.outputs) == {"d": ("artifact", "path")}


def test_signature_survives_its_data_form() -> None:
    sign = signature_of(read_files)
    assert type(sign).from_data(sign.to_data()) == sign


@pytest.mark.parametrize(
    "declare,message",
    [
        (lambda: op(lambda code: None), "cannot be an input"),
        (lambda: op(inputs={"PATH": str}, outputs={})(lambda PATH: None), "cannot be an input"),
        (lambda: op(inputs={"x": set}, outputs={})(lambda x: None), "not a parameter type"),
        (lambda: op(inputs={"x": Artifact(int)}, outputs={})(lambda x: None), "an artifact is"),
        (lambda: op(inputs={"x": Parameter(int, default="one")}, outputs={})(lambda x: None), "the default"),
        (lambda: op(inputs={"y": int}, outputs={})(lambda x: None), "not a parameter of the function"),
    ],
)
def test_unusable_signatures_are_refused_with_the_reason(declare: Any, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        signature_of(declare())


def test_a_non_op_is_refused() -> None:
    with pytest.raises(SignatureError, match="not an OP"):
        signature_of(print)


@pytest.mark.parametrize(
    "value,type_name,text",
    [
        ("a b\n", "str", "a b\n"),
        (3, "int", "3"),
        (2.5, "float", "2.5"),
        (2, "float", "2"),
        (True, "bool", "true"),
        ({"b": [1, 2], "a": None}, "json", '{"a":null,"b":[1,2]}'),
    ],
)
def test_parameters_round_trip_through_their_text(value: Any, type_name: str, text: str) -> None:
    assert encode_parameter(value, type_name) == text
    assert decode_parameter(text, type_name) == value


@pytest.mark.parametrize(
    "value,type_name", [("3", "int"), (True, "int"), (1.5, "int"), (1, "bool"), (3, "str"), ({1, 2}, "json")]
)
def test_parameters_of_the_wrong_type_are_refused(value: Any, type_name: str) -> None:
    with pytest.raises(TypeError, match="expected"):
        encode_parameter(value, type_name)


@pytest.mark.parametrize("text,type_name", [("x", "int"), ("1.5.2", "float"), ("maybe", "bool"), ("{", "json")])
def test_text_that_is_not_of_the_type_is_refused(text: str, type_name: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        decode_parameter(text, type_name)


def test_artifacts_keep_their_names_and_order(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second, same = tmp_path / "z.txt", tmp_path / "a" / "y.txt", tmp_path / "b" / "y.txt"
    for path in (first, second, same):
        path.write_text(path.parent.name)
    write_artifact([first, second], "paths", tmp_path / "out1")
    assert [p.name for p in unwrap_artifact(str(tmp_path / "out1"), "paths")] == ["z.txt", "y.txt"]
    write_artifact([second, same], "paths", tmp_path / "out2")  # the same name twice: numbered folders
    got = unwrap_artifact(str(tmp_path / "out2"), "paths")
    assert [p.read_text() for p in got] == ["a", "b"] and got[0] != got[1]
    write_artifact(tmp_path / "a", "path", tmp_path / "out3")
    assert unwrap_artifact(str(tmp_path / "out3"), "path").joinpath("y.txt").read_text() == "a"
    with pytest.raises(TypeError, match="not found"):
        write_artifact(tmp_path / "missing", "path", tmp_path / "out4")


def test_artifacts_without_a_manifest_are_taken_as_they_are(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "2").write_text("")
    (tmp_path / "d" / "1").write_text("")
    assert unwrap_artifact(str(tmp_path / "d"), "path") == tmp_path / "d"
    assert [p.name for p in unwrap_artifact(str(tmp_path / "d"), "paths")] == ["1", "2"]
