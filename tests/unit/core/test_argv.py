"""Argument vectors: which element is interpreter code, and one-pass `$` substitution."""

from __future__ import annotations

import pytest

from myapp.core.argv import CodeSlot, expand, find_code, param_refs, shell_quoted, substitute_inputs, whole_param_ref


@pytest.mark.parametrize(("argv", "slot"), [
    (["bash", "-c", "x"], CodeSlot(2, True)),
    (["/bin/sh", "-euc", "x"], CodeSlot(2, True)),
    (["bash", "--norc", "-o", "pipefail", "+e", "-c", "x", "arg0"], CodeSlot(6, True)),
    (["env", "A=1", "-i", "dash", "-c", "x"], CodeSlot(5, True)),
    (["python3", "-u", "-c", "x"], CodeSlot(3, False)),
    (["python", "-W", "ignore", "-c", "x"], CodeSlot(4, False)),
    (["node", "--eval", "x"], CodeSlot(2, False)),
    (["ruby", "-e", "x"], CodeSlot(2, False)),
    (["bash", "script.sh", "-c", "x"], None),
    (["python", "-m", "http.server", "-c", "x"], None),
    (["bash", "-c"], None),
    (["echo", "-c", "x"], None),
    ([], None),
])
def test_find_code(argv: list[str], slot: CodeSlot | None) -> None:
    assert find_code(argv) == slot


def test_substitution_is_one_pass() -> None:
    values = {"a": "$b", "b": "B", "a_b": "AB"}
    assert substitute_inputs("$a ${b}x $a_b $$a $c ${c} $ $1", values) == "$b Bx AB $a $c ${c} $ $1"


def test_expand_parameters_and_code_mode() -> None:
    params = {"who": "w o"}
    assert expand("$(params.who) $x $$", params, {"x": "X"}) == "w o X $"
    assert expand("$(params.who) $x $$ $(params.nope)", params, {"x": "X"}, code=True) == "w o $x $$ $(params.nope)"
    assert expand("echo $(params.who)", shell_quoted(params, frozenset()), {}, code=True) == "echo 'w o'"


def test_param_refs() -> None:
    assert param_refs("--a=$(params.a) $(params.b)") == ("a", "b")
    assert whole_param_ref("$(params.a)") == "a"
    assert whole_param_ref("x$(params.a)") is None
