"""Run-time rendering: Jinja sandbox, `$name` substitution, code left to interpreters, templates."""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from myapp.core.errors import RenderError, SpecError
from myapp.core.model import GlobalParam, ParamDef, TaskSpec, TemplateSpec
from myapp.core.render import render_global_params, render_task, render_text, template_command_errors
from tests.factories import from_param, from_task, literal, make_catalog, make_context, make_output, make_task

CATALOG = make_catalog()
SHELL = CATALOG.get("shell")
PYTHON = CATALOG.get("python")
CTX = make_context()
STEP2_SCRIPT = "echo $step1param1\necho $step1param2\necho $step1param3\ncat $step1param2\nls $step1param3\n"


def step2() -> TaskSpec:
    """Task step2 of the reference example (parameter passing between step1 and step2)."""
    return TaskSpec(
        name="step2",
        template="shell",
        depends_on=("step1",),
        args={"script": STEP2_SCRIPT},
        inputs=(
            from_task("step1param1", "step1.output_param1"),
            from_task("step1param2", "step1.output_param2"),
            from_task("step1param3", "step1.output_param3"),
        ),
    )


def step2_inputs(tmp: Path) -> dict[str, str]:
    return {"step1param1": "outpraram1", "step1param2": f"{tmp}/outpraram2.txt", "step1param3": f"{tmp}/outpraram3"}


def test_reference_example_renders_to_bash_with_inputs_in_env() -> None:
    inputs = step2_inputs(Path("/w"))
    rendered = render_task(step2(), SHELL, CTX, inputs)
    assert rendered.argv == ("bash", "-c", STEP2_SCRIPT)
    assert rendered.env == inputs
    assert rendered.image == "debian:bookworm-slim"


def test_reference_example_runs(tmp_path: Path) -> None:
    (tmp_path / "outpraram2.txt").write_text("outpraram2\n")
    (tmp_path / "outpraram3").mkdir()
    (tmp_path / "outpraram3" / "file1").touch()
    rendered = render_task(step2(), SHELL, CTX, step2_inputs(tmp_path))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **rendered.env}
    out = subprocess.run(rendered.argv, env=env, cwd=tmp_path, capture_output=True, text=True, check=True, timeout=30)
    assert out.stdout == f"outpraram1\n{tmp_path}/outpraram2.txt\n{tmp_path}/outpraram3\noutpraram2\nfile1\n"


def test_hostile_input_value_is_never_code(tmp_path: Path) -> None:
    task = TaskSpec(name="t", template="shell", args={"script": 'echo "$x"'}, inputs=(literal("x", "x"),))
    hostile = '"; touch pwned; echo "$(touch pwned2)`touch pwned3`{{ 7*7 }}'
    rendered = render_task(task, SHELL, CTX, {"x": hostile})
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **rendered.env}
    out = subprocess.run(rendered.argv, env=env, cwd=tmp_path, capture_output=True, text=True, check=True, timeout=30)
    assert out.stdout == hostile + "\n"
    assert list(tmp_path.iterdir()) == []


def test_python_template_reads_inputs_from_environ(tmp_path: Path) -> None:
    task = TaskSpec(
        name="t",
        template="python",
        inputs=(literal("day", "x"),),
        args={"code": "import os; print(os.environ['day'], '{{ run_id }}')"},
    )
    rendered = render_task(task, PYTHON, CTX, {"day": "'); import os; os.system('touch pwned"})
    assert rendered.argv == ("python3", "-c", "import os; print(os.environ['day'], '7')")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **rendered.env}
    out = subprocess.run(rendered.argv, env=env, cwd=tmp_path, capture_output=True, text=True, check=True, timeout=30)
    assert out.stdout == "'); import os; os.system('touch pwned 7\n"
    assert list(tmp_path.iterdir()) == []


def test_custom_task_substitutes_inputs_in_plain_arguments() -> None:
    task = make_task(
        "load",
        image="python:3.12-slim",
        command=("python", "-c", "import sys; print(sys.argv[1:])", "$day", "${raw}/x", "$$day", "$other"),
        inputs=(from_task("day", "e.day"), from_task("raw", "e.raw")),
        env={"LOG_LEVEL": "info"},
    )
    rendered = render_task(task, None, CTX, {"day": "2026-01-02", "raw": "/w/raw"})
    assert rendered.argv == (
        "python",
        "-c",
        "import sys; print(sys.argv[1:])",
        "2026-01-02",
        "/w/raw/x",
        "$day",
        "$other",
    )
    assert rendered.env == {"LOG_LEVEL": "info", "day": "2026-01-02", "raw": "/w/raw"}
    assert rendered.image == "python:3.12-slim"


@pytest.mark.parametrize(
    "command",
    [
        ("bash", "-c", "echo $day"),
        ("sh", "-ec", "echo $day"),
        ("/bin/bash", "-o", "pipefail", "-xc", "echo $day"),
        ("/usr/bin/env", "LC_ALL=C", "zsh", "-c", "echo $day"),
        ("python3.11", "-u", "-c", "echo $day"),
        ("node", "-e", "echo $day"),
        ("perl", "-pe", "echo $day"),
    ],
)
def test_interpreter_code_is_left_to_the_interpreter(command: tuple[str, ...]) -> None:
    task = make_task("t", command=command, inputs=(literal("day", "x"),))
    assert render_task(task, None, CTX, {"day": "; rm -rf /"}).argv == command


def test_script_file_arguments_are_substituted() -> None:
    task = make_task("t", command=("bash", "run.sh", "$day", "-c", "$day"), inputs=(literal("day", "x"),))
    assert render_task(task, None, CTX, {"day": "D"}).argv == ("bash", "run.sh", "D", "-c", "D")


def test_input_values_are_never_evaluated_or_rescanned() -> None:
    task = make_task("t", command=("echo", "$a", "{{ run_id }}"), inputs=(literal("a", ""), literal("b", "")))
    rendered = render_task(task, None, CTX, {"a": "{{ 7*7 }} $b ${b}", "b": "B"})
    assert rendered.argv == ("echo", "{{ 7*7 }} $b ${b}", "7")


def test_jinja_variables() -> None:
    ctx = make_context(params={"day": "2026-01-02"})
    text = (
        "{{ creator }}|{{ runner }}|{{ pipeline_id }}|{{ pipeline_name }}|{{ run_id }}|{{ task_name }}|"
        "{{ cluster_name }}|{{ execution_date }}|{{ params.day }}|{{ inputs.parameters.x }}"
    )
    assert render_text(text, ctx, {"x": "X"}, task="t", field="f") == (
        "alice|bob|3|demo|7|t1|local|2026-01-02 03:04:05|2026-01-02|X"
    )


def test_datetime_and_uuid_helpers() -> None:
    out = render_text(
        '{{ uuid.uuid4().hex[:4] }} {{ datetime.datetime.now().strftime("%Y%m%d") }} '
        "{{ (datetime.datetime(2026, 1, 1) + datetime.timedelta(days=1)).date() }} "
        "{{ datetime.timezone.utc }} {{ uuid.UUID(int=1).hex[-1:] }}",
        CTX,
        {},
        task="t",
        field="f",
    )
    hex4, day, tomorrow, utc, one = out.split(" ")
    assert len(hex4) == 4 and int(hex4, 16) >= 0
    assert len(day) == 8 and day.isdigit()
    assert (tomorrow, utc, one) == ("2026-01-02", "UTC", "1")


def test_text_without_jinja_is_returned_untouched() -> None:
    assert render_text("a {x} $y\n", CTX, {}, task="t", field="f") == "a {x} $y\n"
    assert render_text("{{ run_id }}\n", CTX, {}, task="t", field="f") == "7\n"


SSTI = [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ config }}",
    "{{ self._TemplateReference__context }}",
    "{{ datetime.__builtins__ }}",
    "{{ uuid.os }}",
    "{{ datetime.sys }}",
    "{{ lipsum.__globals__ }}",
    "{{ request }}",
    "{% for x in ().__class__.__base__.__subclasses__() %}{% endfor %}",
    "{{ ''|attr('__class__') }}",
    "{{ datetime.datetime.__subclasses__() }}",
    "{{ uuid.uuid4.__globals__ }}",
    "{{ uuid.uuid4().__class__.__init__.__globals__['os'] }}",
    "{{ range(10) }}",
    "{{ namespace() }}",
    "{{ joiner() }}",
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}",
    "{{ params.__class__ }}",
    "{{ inputs.parameters.pop('x') }}",
    "{{ 'a' * 100000000 }}",
    "{{ (10 ** 1000) ** 1000 }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ 'x'.ljust(999999999) }}",
    "{{ 'x'|center(999999999) }}",
    "{% set s = 'a' * 100000 %}{{ s.replace('a', s) }}",
    "{% set s = 'a' * 100000 %}{% for i in s %}{{ s }}{% endfor %}",
    "{{ unclosed",
    # gaps checked for issue 4: globals through bound methods, reduce, escapes, formats, huge lists
    "{{ ''.format.__globals__ }}",
    "{{ datetime.date.today.__self__ }}",
    "{{ uuid.uuid4().__reduce__() }}",
    "{{ uuid.UUID.__init__.__globals__['os'] }}",
    "{{ ''['\\x5f\\x5fclass\\x5f\\x5f'] }}",
    "{{ inputs.parameters.__class__.__base__.__subclasses__() }}",
    "{{ execution_date.__class__.__mro__[1].__subclasses__() }}",
    "{{ '%.999999f' % 1.0 }}",
    "{{ '{0:,}'.format(10**100000) }}",
    "{{ [1] * 10**8 }}",
    "{{ 'abc'|list|join('x' * 10**7) }}",
    "{% for i in range(10**9) %}{% endfor %}",
]


@pytest.mark.parametrize("text", SSTI)
def test_template_injection_is_refused(text: str) -> None:
    with pytest.raises(RenderError) as err:
        render_text(text, CTX, {"x": "1"}, task="t", field="args.script")
    assert (err.value.task, err.value.field) == ("t", "args.script")


def test_inputs_are_refused_inside_code_with_a_hint() -> None:
    task = TaskSpec(
        name="t", template="shell", args={"script": "echo {{ inputs.parameters.x }}"}, inputs=(literal("x", "1"),)
    )
    with pytest.raises(RenderError, match=r"\$NAME"):
        render_task(task, SHELL, CTX, {"x": "; rm -rf /"})
    custom = make_task("c", command=("bash", "-c", "echo {{ inputs.parameters.x }}"), inputs=(literal("x", "1"),))
    with pytest.raises(RenderError, match="environment"):
        render_task(custom, None, CTX, {"x": "1"})


TRAIN = TemplateSpec(
    name="train",
    image="trainer:1",
    command=("python", "train.py", "--data=$(params.data)", "$(params.epochs)"),
    parameters=(
        ParamDef("data", required=True),
        ParamDef("epochs", type="integer", default=3),
        ParamDef("mode", type="choice", choices=("fast", "full"), default="fast"),
        ParamDef("config", type="json", default={"lr": 0.1}),
        ParamDef("note"),
    ),
    outputs=(make_output("model", "/tmp/model", "file"), make_output("score")),
    env={"STAGE": "{{ pipeline_name }}"},
)


def test_template_cli_style_appends_unreferenced_parameters() -> None:
    task = TaskSpec(
        name="t",
        template="train",
        args={"data": "$raw/x", "mode": "full"},
        inputs=(from_task("raw", "e.raw"),),
        env={"EXTRA": "1"},
    )
    rendered = render_task(task, TRAIN, CTX, {"raw": "/w/raw"})
    assert rendered.argv == ("python", "train.py", "--data=/w/raw/x", "3", "--mode=full", '--config={"lr":0.1}')
    assert rendered.env == {"STAGE": "demo", "EXTRA": "1", "raw": "/w/raw"}
    assert rendered.image == "trainer:1"


def test_template_env_style_and_binding_wins_over_default() -> None:
    tmpl = TemplateSpec(**{**TRAIN.__dict__, "args_style": "env"})
    task = TaskSpec(
        name="t",
        template="train",
        image="trainer:2",
        args={"data": "d"},
        inputs=(from_param("epochs"),),
        outputs=(make_output("score", "/tmp/s2"), make_output("log")),
    )
    rendered = render_task(task, tmpl, CTX, {"epochs": "12"})
    assert rendered.argv == ("python", "train.py", "--data=d", "12")
    assert rendered.env == {"STAGE": "demo", "mode": "fast", "config": '{"lr":0.1}', "epochs": "12"}
    assert rendered.image == "trainer:2"
    assert [(o.name, o.path) for o in rendered.outputs] == [
        ("model", "/tmp/model"),
        ("score", "/tmp/s2"),
        ("log", "/tmp/out.txt"),
    ]


def test_bound_parameter_value_is_coerced_and_not_rescanned() -> None:
    task = TaskSpec(name="t", template="train", args={"data": "d"}, inputs=(from_task("epochs", "e.n"),))
    with pytest.raises(RenderError) as err:
        render_task(task, TRAIN, CTX, {"epochs": "many"})
    assert err.value.field == "inputs.epochs"
    task = TaskSpec(name="t", template="train", inputs=(from_task("data", "e.d"), literal("x", "X")))
    assert render_task(task, TRAIN, CTX, {"data": "$x {{ 1 }}", "x": "X"}).argv[2] == "--data=$x {{ 1 }}"


def test_unset_optional_parameter_splices_as_empty_text() -> None:
    tmpl = TemplateSpec(name="x", command=("tool", "--note=$(params.note)"), parameters=(ParamDef("note"),))
    assert render_task(TaskSpec(name="t", template="x"), tmpl, CTX, {}).argv == ("tool", "--note=")


def test_missing_required_parameter_and_missing_input() -> None:
    with pytest.raises(RenderError, match="required parameter"):
        render_task(TaskSpec(name="t", template="train"), TRAIN, CTX, {})
    with pytest.raises(RenderError) as err:
        render_task(make_task("t", inputs=(literal("a", "1"),)), None, CTX, {})
    assert err.value.field == "inputs.a"


@pytest.mark.parametrize(
    "code",
    [
        "echo hello $(params.who)",
        'echo "hello $(params.who)"',
        "echo 'hello $(params.who)'",
    ],
)
@pytest.mark.parametrize("wrapper", [(), ("timeout", "30"), ("nice", "-n", "5"), ("env", "X=1")])
def test_parameters_reach_shell_code_as_environment_references(
    tmp_path: Path, code: str, wrapper: tuple[str, ...]
) -> None:
    tmpl = TemplateSpec(
        name="greet", command=(*wrapper, "bash", "-c", code), parameters=(ParamDef("who", required=True),)
    )
    task = TaskSpec(name="t", template="greet", inputs=(from_task("who", "e.name"),))
    hostile = "world; touch pwned $(touch pwned2) `touch pwned3` ' \""
    rendered = render_task(task, tmpl, CTX, {"who": hostile})
    assert rendered.argv[-1] == code.replace("$(params.who)", "${MYAPP_PARAM_who}")
    assert rendered.env["MYAPP_PARAM_who"] == hostile
    out = subprocess.run(
        rendered.argv,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", **rendered.env},
    )
    assert hostile in out.stdout or "${MYAPP_PARAM_who}" in out.stdout  # single quotes: the reference, unexpanded
    assert list(tmp_path.iterdir()) == []


def test_a_value_never_becomes_code_even_as_the_interpreter_name() -> None:
    task = make_task("t", command=("$prog", "-c", "$code"), inputs=(literal("prog", ""), literal("code", "")))
    with pytest.raises(RenderError) as err:
        render_task(task, None, CTX, {"prog": "bash", "code": "id"})
    assert err.value.field == "command[2]" and "interpreter code" in str(err.value)
    # A harmless program keeps its data arguments.
    assert render_task(task, None, CTX, {"prog": "echo", "code": "id"}).argv == ("echo", "-c", "id")


def test_jinja_that_names_an_interpreter_renders_its_code_as_code() -> None:
    task = make_task(
        "t", command=("{{ params.shell }}", "-c", "echo $who {{ inputs.parameters.who }}"), inputs=(literal("who", ""),)
    )
    ctx = replace(CTX, params={"shell": "bash"})
    with pytest.raises(RenderError, match="inputs are not spliced into code"):
        render_task(task, None, ctx, {"who": "x; id"})


def test_custom_commands_behind_wrappers_keep_inputs_out_of_code() -> None:
    for command in (
        ("timeout", "30", "bash", "-c", "echo got: $msg"),
        ("nice", "sh", "-c", "echo $msg"),
        ("bash", "--rcfile", "/dev/null", "-c", "echo $msg"),
        ("nice", "python3", "-c", "print('$msg')"),
    ):
        task = make_task("t", command=command, inputs=(literal("msg", ""),))
        rendered = render_task(task, None, CTX, {"msg": "x; id; echo INJECTED $(id -un)"})
        assert rendered.argv == command and rendered.env["msg"] == "x; id; echo INJECTED $(id -un)"


def test_template_command_errors() -> None:
    bad = TemplateSpec(
        name="x",
        command=("python3", "-c", "print('$(params.msg)')", "$(params.nope)"),
        parameters=(ParamDef("msg"), ParamDef("code", type="text", script=True)),
    )
    assert [(e.field, e.message[:20]) for e in template_command_errors(bad)] == [
        ("command[2]", "parameters are not s"),
        ("command[3]", "unknown parameter 'n"),
    ]
    mixed = TemplateSpec(
        name="x",
        command=("bash", "-c", "set -e; $(params.code)"),
        parameters=(ParamDef("code", type="text", script=True),),
    )
    assert [e.field for e in template_command_errors(mixed)] == ["command[2]"]
    with pytest.raises(RenderError):
        render_task(TaskSpec(name="t", template="x", args={"code": "x"}), mixed, CTX, {})
    assert template_command_errors(SHELL) == [] and template_command_errors(PYTHON) == []  # type: ignore[arg-type]


def test_nul_characters_are_refused() -> None:
    task = make_task("t", command=("echo", "$a"), inputs=(literal("a", ""),))
    with pytest.raises(RenderError, match="NUL"):
        render_task(task, None, CTX, {"a": "x\0y"})


def test_global_params_defaults_are_rendered_and_supplied_values_win() -> None:
    params = (
        GlobalParam("day", default="{{ execution_date[:10] }}"),
        GlobalParam("tag", default="{{ params.day }}-x"),
        GlobalParam("who", default="me"),
        GlobalParam("opt"),
    )
    assert render_global_params(params, {"who": "{{ you }}"}, CTX) == {
        "day": "2026-01-02",
        "tag": "2026-01-02-x",
        "who": "{{ you }}",
        "opt": "",
    }


def test_global_params_errors() -> None:
    with pytest.raises(SpecError) as err:
        render_global_params((GlobalParam("day", required=True),), {}, CTX)
    assert err.value.field == "params.day"
    with pytest.raises(SpecError) as err:
        render_global_params((GlobalParam("day"),), {"dya": "x"}, CTX)
    assert err.value.field == "params.dya"
    with pytest.raises(SpecError) as err:
        render_global_params((GlobalParam("day", default="{{ nope }}"),), {}, CTX)
    assert err.value.field == "parameters[day].default"
