"""SeqPod on the local executor: the steps rendered one by one, run in sequence by one runner process.

Each step is rendered as a pod template of its own (myapp/builtins/seqpod.py step_template), so
`$(params.NAME)` in a step obeys the rules of a template's command; the runner
(myapp/builtins/seqpod_runner.py) runs them in the attempt's working directory, in the attempt's
process group (a stop or timeout kills the current step with the runner).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from myapp.builtins.seqpod import failure_message, parse_steps, step_template
from myapp.builtins.seqpod_runner import PLAN_ENV, RESULT
from myapp.core.model import TaskSpec, TemplateSpec
from myapp.core.render import RenderContext, RenderedTask, render_task


def render_steps(
    task: TaskSpec,
    template: TemplateSpec,
    ctx: RenderContext,
    inputs: Mapping[str, str],
    secret_params: frozenset[str] | set[str],
) -> tuple[list[tuple[str, tuple[str, ...]]], RenderedTask]:
    """Return each step's (name, rendered argv) and the task as rendered for the last step, with every step's env."""
    env: dict[str, str] = {}
    secret_env: set[str] = set()
    steps = []
    for step in parse_steps(template):
        rendered = render_task(task, step_template(template, step), ctx, inputs, secret_params)
        env.update(rendered.env)
        secret_env |= rendered.secret_env
        steps.append((step.name, rendered.argv))
    return steps, replace(rendered, env=env, secret_env=frozenset(secret_env))


def render_seqpod(
    task: TaskSpec,
    template: TemplateSpec,
    ctx: RenderContext,
    inputs: Mapping[str, str],
    secret_params: frozenset[str] | set[str],
) -> RenderedTask:
    """Return the local runner's argv and env for `task` (env: every step's env and the plan)."""
    steps, rendered = render_steps(task, template, ctx, inputs, secret_params)
    plan = {"steps": [{"name": name, "argv": list(argv)} for name, argv in steps]}
    argv = (sys.executable, "-m", "myapp.builtins.seqpod_runner")
    return replace(rendered, argv=argv, env={**rendered.env, PLAN_ENV: json.dumps(plan)})


def seqpod_failure(task: str, workdir: Path, code: int) -> str:
    """Return the attempt's error for a runner that ended with `code`: which step failed, when known."""
    try:
        found = json.loads((workdir / RESULT).read_text())
        return failure_message(task, str(found["step"]), int(found["exit_code"]))
    except (OSError, ValueError, KeyError, TypeError):
        return f"exit code {code}"
