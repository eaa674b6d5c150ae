"""SeqPod on the local executor: the steps rendered one by one, run in sequence by one runner process.

Each step is rendered as a pod template of its own (myapp/builtins/seqpod.py step_template), so
`$(params.NAME)` in a step obeys the rules of a template's command. The runner is the POSIX `sh`
runner the Kubernetes executor puts in the pod (`sh_runner_argv`): it needs nothing but /bin/sh, so
it starts under a per-project task account, which cannot execute the worker's own Python when that
lives in a private home (docs/security.md §1). It runs in the attempt's working directory, in the
attempt's process group (a stop or timeout kills the current step with the runner), and writes the
failed step's words to TERMINATION_FILE there, which `seqpod_failure` reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from myapp.builtins.seqpod import failure_message, parse_steps, sh_runner_argv, step_template
from myapp.core.model import TaskSpec, TemplateSpec
from myapp.core.render import RenderContext, RenderedTask, render_task

TERMINATION_ENV = "MYAPP_TERMINATION_LOG"  # where the sh runner writes "step 'NAME' failed with exit code N"
TERMINATION_FILE = ".myapp/seqpod-failed"  # relative: in the attempt's working directory
_FAILED = re.compile(r"step '(.+)' failed with exit code (\d+)")


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
    """Return the local runner's argv and env for `task` (env: every step's env and the runner's result file)."""
    steps, rendered = render_steps(task, template, ctx, inputs, secret_params)
    return replace(rendered, argv=sh_runner_argv(steps), env={**rendered.env, TERMINATION_ENV: TERMINATION_FILE})


def seqpod_failure(task: str, workdir: Path, code: int) -> str:
    """Return the attempt's error for a runner that ended with `code`: which step failed, when known."""
    try:
        found = _FAILED.search((workdir / TERMINATION_FILE).read_text())
    except OSError:
        found = None
    return failure_message(task, found.group(1), int(found.group(2))) if found else f"exit code {code}"
