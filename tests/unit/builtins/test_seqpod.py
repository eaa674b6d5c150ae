"""`kind: seqpod` templates: steps parsed and checked with the field named; scripts become `-c`
arguments; the runner runs steps in order, labels their output and stops at the first failure."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from myapp.builtins.seqpod import Step, parse_steps
from myapp.catalog.plugins import parse_template
from myapp.core.templates import TemplateError, template_to_dict


def seq(steps: list[Any], **more: Any) -> dict[str, Any]:
    return {"name": "s", "kind": "seqpod", "image": "alpine:3", "extra": {"steps": steps}, **more}


def refused(data: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(TemplateError) as caught:
        parse_template(data, "t.yaml")
    return caught.value.field, caught.value.message


def test_steps_parse_with_scripts_as_interpreter_arguments_and_round_trip() -> None:
    data = seq(
        [
            {"name": "a", "image": "busybox", "command": ["sh", "-c", "echo a > f"]},
            {"name": "b", "script": "print(open('f').read())", "language": "python"},
            {"name": "c", "script": "cat f"},
        ]
    )
    spec = parse_template(data)
    assert parse_steps(spec) == (
        Step("a", "busybox", ("sh", "-c", "echo a > f")),
        Step("b", "", ("python3", "-c", "print(open('f').read())")),
        Step("c", "", ("bash", "-c", "cat f")),
    )
    assert parse_template(template_to_dict(spec)) == spec


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (seq([]), "extra.steps", "non-empty list"),
        (seq([{"name": "a", "command": ["x"]}, {"name": "a", "command": ["y"]}]), "extra.steps[1].name", "twice"),
        (seq([{"name": "Bad_Name", "command": ["x"]}]), "extra.steps[0].name", "a-z"),
        (seq([{"name": "a"}]), "extra.steps[0]", "exactly one of"),
        (seq([{"name": "a", "command": ["x"], "script": "y"}]), "extra.steps[0]", "exactly one of"),
        (seq([{"name": "a", "script": "y", "language": "ruby"}]), "extra.steps[0].language", "python, shell"),
        (seq([{"name": "a", "command": "echo hi"}]), "extra.steps[0].command", "list of text"),
        (seq([{"name": "a", "command": ["x"], "shell": True}]), "extra.steps[0].shell", "unknown key"),
        (seq([{"name": "a", "command": ["x"]}], image=""), "extra.steps[0].image", "needs an image"),
        (seq([{"name": "a", "command": ["x"]}], command=["y"]), "command", "no command"),
        (seq([{"name": "a", "command": ["echo", "$(params.nope)"]}]), "extra.steps[0].command[1]", "unknown parameter"),
        (
            seq(
                [{"name": "a", "script": "print('$(params.n)')", "language": "python"}],
                parameters={"n": {"type": "string"}},
            ),
            "extra.steps[0].command[2]",
            "not spliced into code",
        ),
    ],
)
def test_bad_steps_are_refused_with_the_field_named(data: dict[str, Any], field: str, words: str) -> None:
    got_field, message = refused(data)
    assert got_field == field and words in message, (got_field, message)


def test_a_step_that_cannot_start_fails_the_sequence_with_its_name(tmp_path: Path) -> None:
    import os
    import subprocess

    from myapp.builtins.seqpod import sh_runner_argv

    argv = sh_runner_argv([("gone", ["/nonexistent/program"]), ("after", ["touch", "never"])])
    done = subprocess.run(
        argv,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "MYAPP_TERMINATION_LOG": str(tmp_path / "term")},
    )
    assert done.returncode == 127
    assert (tmp_path / "term").read_text() == "step 'gone' failed with exit code 127\n"
    assert not (tmp_path / "never").exists()


def test_the_sh_runner_passes_each_argv_exactly_and_names_the_failed_step(tmp_path: Path) -> None:
    import os
    import subprocess

    from myapp.builtins.seqpod import sh_runner_argv

    tricky = ["x y", "$(touch pwned)", '"q"', "a;b", "*", ""]
    argv = sh_runner_argv(
        [
            ("one", ["sh", "-c", "echo shared > f; echo err >&2"]),
            (
                "two",
                [
                    sys.executable,
                    "-c",
                    "import sys; print(open('f').read().strip(), sys.argv[1:]); sys.exit(5)",
                    *tricky,
                ],
            ),
            ("three", ["touch", "never"]),
        ]
    )
    done = subprocess.run(
        argv,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "MYAPP_TERMINATION_LOG": str(tmp_path / "term")},
    )
    assert done.returncode == 5
    assert done.stdout.splitlines() == ["[one] err", f"[two] shared {tricky!r}"]  # stderr merged, labelled
    assert (tmp_path / "term").read_text() == "step 'two' failed with exit code 5\n"
    assert not (tmp_path / "never").exists() and not (tmp_path / "pwned").exists()
