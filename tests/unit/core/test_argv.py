"""Argument vectors: which elements are interpreter code (wherever the interpreter stands), and
one-pass `$` substitution."""

from __future__ import annotations

import pytest

from myapp.core.argv import (
    CodeSlot,
    code_slots,
    expand,
    find_code,
    param_env_name,
    param_env_refs,
    param_refs,
    substitute_inputs,
    whole_param_ref,
)


@pytest.mark.parametrize(
    ("argv", "slot"),
    [
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
        (["python3", "train.py", "-c", "$config"], None),
        (["bash", "-c"], None),
        (["echo", "-c", "x"], None),
        ([], None),
    ],
)
def test_find_code(argv: list[str], slot: CodeSlot | None) -> None:
    assert find_code(argv) == slot


# The wrappers and spellings of issue 13 (B8) and their relatives: the interpreter is found wherever it stands.
@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["timeout", "30", "bash", "-c", "echo got: $msg"], [4]),
        (["nice", "sh", "-c", "x"], [3]),
        (["nice", "-n", "5", "python3", "-c", "print('$(params.msg)')"], [5]),
        (["env", "X=1", "sh", "-c", "x"], [4]),
        (["bash", "--rcfile", "F", "-c", "x"], [4]),
        (["bash", "--init-file", "F", "-ic", "x"], [4]),
        (["xargs", "-0", "sh", "-c", "x"], [4]),
        (["stdbuf", "-oL", "bash", "-c", "x"], [4]),
        (["/usr/bin/timeout", "-k", "5", "30", "/usr/bin/python3.11", "-c", "x"], [6]),
        (["setsid", "-w", "ionice", "-c", "3", "bash", "-c", "x"], [7]),
        (["busybox", "sh", "-c", "x"], [3]),
        (["kubectl", "exec", "pod", "--", "bash", "-c", "x"], [6]),
        (["find", ".", "-exec", "sh", "-c", "a", ";", "-exec", "bash", "-c", "b", ";"], [5, 10]),
        (["python3", "-cprint(1)"], [1]),
        (["python3", "-Wignore", "-Ic", "x"], [3]),
        (["perl", "-le", "print 1", "-e", "2"], [2, 4]),
        (["perl", "-Mstrict", "-e", "x"], [3]),
        (["awk", "-F,", "{print $1}", "f"], [2]),
        (["awk", "-v", "x=1", "--", "{print}"], [4]),
        (["awk", "-f", "p.awk", "-e", "x"], [4]),
        (["awk", "-f", "p.awk", "data"], []),
        (["sed", "-n", "s/a/b/p", "file"], [2]),
        (["sed", "-e", "s/a/b/", "-e", "p"], [2, 4]),
        (["jq", "--arg", "a", "b", ".x"], [4]),
        (["jq", "-f", "prog.jq", "data.json"], []),
        (["su", "root", "-c", "id"], [3]),
        (["flock", "/tmp/l", "-c", "id"], [3]),
        (["env", "-S", "bash -c x"], [2]),
        (["env", "-Sbash -c x"], [1]),
        (["watch", "-n", "1", "ls", "$x"], [3, 4]),
        (["ssh", "-p", "22", "host", "ls", "$x"], [4, 5]),
        (["sudo", "-s", "ls", "x"], [2, 3]),
        (["sudo", "ls", "x"], []),
        (["make", "X=$(shell id)", "all"], [1]),
        (["psql", "db", "-c", "select 1"], [3]),
        (["gdb", "prog", "-ex", "shell id"], [3]),
        (["deno", "eval", "x"], [2]),
        (["node", "--eval=x"], [1]),
        (["vim", "+!id"], [1]),
        (["sh", "-c", 'echo "$1"', "sh", "$msg"], [2]),
        (["mytool", "--input", "$path"], []),
    ],
)
def test_code_slots_see_through_wrappers(argv: list[str], code: list[int]) -> None:
    assert sorted(code_slots(argv)) == code


def test_substitution_is_one_pass() -> None:
    values = {"a": "$b", "b": "B", "a_b": "AB"}
    assert substitute_inputs("$a ${b}x $a_b $$a $c ${c} $ $1", values) == "$b Bx AB $a $c ${c} $ $1"


def test_expand_parameters_and_code_mode() -> None:
    params = {"who": "w o"}
    assert expand("$(params.who) $x $$", params, {"x": "X"}) == "w o X $"
    assert expand("$(params.who) $x $$ $(params.nope)", params, {"x": "X"}, code=True) == "w o $x $$ $(params.nope)"
    assert expand("echo $(params.who)", param_env_refs(["who"]), {}, code=True) == "echo ${MYAPP_PARAM_who}"
    assert param_env_name("my-param") == "MYAPP_PARAM_my_param"


def test_param_refs() -> None:
    assert param_refs("--a=$(params.a) $(params.b)") == ("a", "b")
    assert whole_param_ref("$(params.a)") == "a"
    assert whole_param_ref("x$(params.a)") is None


def test_docs_security_lists_every_interpreter_and_wrapper() -> None:
    from pathlib import Path

    from myapp.core.argv import INTERPRETERS, SHELL_STRING_OPERANDS, SHELL_STRING_OPTIONS, WRAPPERS

    text = (Path(__file__).resolve().parents[3] / "docs" / "security.md").read_text(encoding="utf-8")
    section = text[text.index("## 2. Interpreter code") :]
    missing = [
        name
        for name in (*INTERPRETERS, *SHELL_STRING_OPTIONS, *SHELL_STRING_OPERANDS, *WRAPPERS)
        if name not in section
    ]
    assert missing == []
