"""Template parameter schema: parsing declarations, coercing values, masking secrets."""

from __future__ import annotations

import pytest

from myapp.core.errors import SpecError
from myapp.core.model import ParamDef
from myapp.core.params import coerce_value, is_deferred, mask, param_def_to_dict, parse_param_def, value_text


def test_parse_full_declaration() -> None:
    defn = parse_param_def(
        "epochs",
        {
            "type": "integer",
            "default": 10,
            "required": True,
            "description": "passes",
            "label": "Epochs",
            "minimum": 1,
            "maximum": 100,
        },
    )
    assert defn == ParamDef(
        name="epochs",
        type="integer",
        default=10,
        required=True,
        description="passes",
        label="Epochs",
        minimum=1,
        maximum=100,
    )
    assert parse_param_def("epochs", param_def_to_dict(defn)) == defn


def test_parse_defaults_to_string() -> None:
    assert parse_param_def("x", {}) == ParamDef(name="x")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"type": "float"}, "parameters.p.type"),
        ({"colour": "red"}, "parameters.p.colour"),
        ({"type": "choice"}, "parameters.p.choices"),
        ({"type": "string", "choices": ["a"]}, "parameters.p.choices"),
        ({"type": "choice", "choices": ["a", "a"]}, "parameters.p.choices"),
        ({"type": "string", "minimum": 1}, "parameters.p.minimum"),
        ({"type": "integer", "minimum": 5, "maximum": 1}, "parameters.p.maximum"),
        ({"type": "integer", "pattern": "x"}, "parameters.p.pattern"),
        ({"pattern": "("}, "parameters.p.pattern"),
        ({"required": "yes"}, "parameters.p.required"),
        ({"type": "integer", "default": "ten"}, "parameters.p.default"),
        ({"type": "boolean", "script": True}, "parameters.p.script"),
        ({"description": 3}, "parameters.p.description"),
    ],
)
def test_parse_refuses_bad_declarations(data: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_param_def("p", data)
    assert err.value.field == field


def test_jinja_default_is_checked_at_run_time() -> None:
    assert parse_param_def("n", {"type": "integer", "default": "{{ params.n }}"}).default == "{{ params.n }}"
    assert is_deferred("{{ x }}") and is_deferred("{% if a %}{% endif %}") and not is_deferred(3)


@pytest.mark.parametrize(
    ("defn", "value", "text"),
    [
        (ParamDef("s"), "hello", "hello"),
        (ParamDef("s"), 12, "12"),
        (ParamDef("s"), True, "true"),
        (ParamDef("i", type="integer"), "42", "42"),
        (ParamDef("i", type="integer"), 7.0, "7"),
        (ParamDef("i", type="integer"), " -3 ", "-3"),
        (ParamDef("n", type="number"), "2.50", "2.5"),
        (ParamDef("n", type="number"), 3, "3"),
        (ParamDef("n", type="number"), 0.1, "0.1"),
        (ParamDef("b", type="boolean"), True, "true"),
        (ParamDef("b", type="boolean"), "Yes", "true"),
        (ParamDef("b", type="boolean"), "0", "false"),
        (ParamDef("c", type="choice", choices=("1", "2")), 2, "2"),
        (ParamDef("j", type="json"), {"a": [1, 2], "b": "é"}, '{"a":[1,2],"b":"é"}'),
        (ParamDef("j", type="json"), '{ "a" : 1 }', '{"a":1}'),
        (ParamDef("t", type="text"), "line1\nline2", "line1\nline2"),
        (ParamDef("p", pattern=r"[a-z]+"), "abc", "abc"),
    ],
)
def test_coerce_gives_canonical_text(defn: ParamDef, value: object, text: str) -> None:
    assert coerce_value(defn, value) == text


@pytest.mark.parametrize(
    ("defn", "value", "words"),
    [
        (ParamDef("s"), None, "required"),
        (ParamDef("s"), [1], "single value"),
        (ParamDef("i", type="integer"), "1.5", "not an integer"),
        (ParamDef("i", type="integer"), True, "not an integer"),
        (ParamDef("i", type="integer", minimum=1), 0, "below the minimum"),
        (ParamDef("i", type="integer", maximum=9), 10, "above the maximum"),
        (ParamDef("n", type="number"), "nan", "finite"),
        (ParamDef("n", type="number"), "x", "not a number"),
        (ParamDef("n", type="number"), False, "not a number"),
        (ParamDef("b", type="boolean"), "maybe", "not a boolean"),
        (ParamDef("c", type="choice", choices=("a", "b")), "c", "not one of a, b"),
        (ParamDef("j", type="json"), "{bad", "not valid JSON"),
        (ParamDef("j", type="json"), float("inf"), "not valid JSON"),
        (ParamDef("p", pattern=r"[a-z]+"), "ABC", "does not match"),
    ],
)
def test_coerce_refuses_with_a_clear_message(defn: ParamDef, value: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        coerce_value(defn, value)


def test_mask_hides_secrets_only() -> None:
    assert mask(ParamDef("pw", type="secret"), "hunter2") == "******"
    assert mask(ParamDef("pw", type="secret"), "") == ""
    assert mask(ParamDef("n", type="integer"), 5) == "5"
    assert mask(ParamDef("n", type="integer"), "bad") == "bad"


def test_value_text_of_containers_is_compact_json() -> None:
    assert value_text([1, {"a": None}]) == '[1,{"a":null}]'
    assert value_text(1.5) == "1.5"
