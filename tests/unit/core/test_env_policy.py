"""Issue 13 B7: code-loading environment refused for tasks with secrets; encoded secrets masked."""

from __future__ import annotations

import base64
from urllib.parse import quote, quote_plus

import pytest

from myapp.core.env_policy import loads_code
from myapp.core.errors import RenderError
from myapp.core.model import ParamDef, TaskSpec, TemplateSpec
from myapp.core.redact import Redactor
from myapp.core.render import RenderContext, render_task

SECRET = "correct horse/battery+staple="


@pytest.mark.parametrize(
    "name",
    [
        "PYTHONPATH",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "PYTHONSTARTUP",
        "BASH_ENV",
        "NODE_OPTIONS",
        "PERL5OPT",
        "RUBYOPT",
        "JAVA_TOOL_OPTIONS",
        "GIT_SSH_COMMAND",
        "BASH_FUNC_ls%%",
        "PYTHONWARNINGS",
        "OPENSSL_CONF",
    ],
)
def test_code_loading_names(name: str) -> None:
    assert loads_code(name)


@pytest.mark.parametrize("name", ["path", "home", "LANG", "TZ", "MY_SETTING", "PYTHONUNBUFFERED", "DEBUG"])
def test_ordinary_names(name: str) -> None:
    assert not loads_code(name)


def _template(secret: bool) -> TemplateSpec:
    params = (ParamDef(name="token", type="secret" if secret else "string", default="abcdef"),)
    return TemplateSpec(name="t", version="1", image="x", command=("python3", "-c", "print(1)"), parameters=params)


def _ctx() -> RenderContext:
    return RenderContext(
        creator="a",
        runner="a",
        pipeline_id=1,
        pipeline_name="p",
        run_id=1,
        task_name="use",
        cluster_name="local",
        execution_date="2026-01-01",
        params={},
    )


def test_rendering_refuses_a_code_loading_env_for_a_task_with_secrets() -> None:
    task = TaskSpec(name="use", template="t@1", env={"PYTHONPATH": "inputs/lib"})
    with pytest.raises(RenderError, match=r"task 'use', field env.PYTHONPATH: can load code"):
        render_task(task, _template(secret=True), _ctx(), {})
    assert render_task(task, _template(secret=False), _ctx(), {}).env["PYTHONPATH"] == "inputs/lib"


def test_the_masker_knows_base64_hex_and_url_forms() -> None:
    redact = Redactor([SECRET])
    raw = SECRET.encode()
    for form in (
        raw.hex(),
        raw.hex().upper(),
        quote(SECRET, safe=""),
        quote_plus(SECRET),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
    ):
        assert SECRET not in redact(f"x {form} y") and form not in redact(f"x {form} y"), form
        assert "******" in redact(form)
    for prefix in (b"", b"a", b"ab", b"abc"):
        whole = base64.b64encode(prefix + raw + b"tail").decode()
        shown = redact(whole)
        assert "******" in shown and len(shown) < len(whole), (prefix, shown)
        inner = whole[len(prefix) * 4 // 3 + 2 : len(whole) - 10]
        assert inner not in shown, (prefix, shown)
