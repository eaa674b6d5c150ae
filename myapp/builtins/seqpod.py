"""`kind: seqpod` templates: steps run one after another in one task, sharing its working directory.

A step is `{name, image?, command: [...]}` or `{name, image?, script: CODE, language: python|shell}`
in the template's `extra.steps`. A script becomes `python3 -c CODE` or `bash -c CODE` (an argument,
never a shell string built from values), so `$(params.NAME)` follows the same rules as in a
template's `command` (docs/security.md §2). Both executors run the steps through the POSIX `sh`
runner below (`sh_runner_argv`): the local one as the attempt's process, the Kubernetes one in one
container of the template's image, or in one container per step when steps have images of their own
(init containers, then `main`: myapp/executor/kubernetes/pod_plan.py). Pure; imports myapp.core only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from myapp.core.errors import SpecError
from myapp.core.model import TemplateSpec
from myapp.core.render import template_command_errors

STEP_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?")
STEP_KEYS = ("name", "image", "command", "script", "language")
LANGUAGES: Mapping[str, tuple[str, ...]] = {"python": ("python3", "-c"), "shell": ("bash", "-c")}
MAX_STEPS = 32


@dataclass(frozen=True)
class Step:
    """One step of a SeqPod: its name, image ("" = the template's) and argv (a script as `-c`)."""

    name: str
    image: str
    command: tuple[str, ...]


def parse_steps(template: TemplateSpec) -> tuple[Step, ...]:
    """Return the steps of a `kind: seqpod` template; SpecError names the field (`extra.steps[1].name`)."""
    raw = template.extra.get("steps")
    if not isinstance(raw, list) or not raw:
        raise SpecError("extra.steps", "a seqpod template needs a non-empty list of steps")
    if len(raw) > MAX_STEPS:
        raise SpecError("extra.steps", f"at most {MAX_STEPS} steps")
    steps = [_step(item, f"extra.steps[{i}]") for i, item in enumerate(raw)]
    seen: set[str] = set()
    for i, step in enumerate(steps):
        if step.name in seen:
            raise SpecError(f"extra.steps[{i}].name", f"step {step.name!r} is defined twice")
        seen.add(step.name)
    return tuple(steps)


def _step(item: object, field: str) -> Step:
    if not isinstance(item, Mapping):
        raise SpecError(field, "must be a mapping with name and command or script")
    unknown = sorted(str(k) for k in item if k not in STEP_KEYS)
    if unknown:
        raise SpecError(f"{field}.{unknown[0]}", f"unknown key (allowed: {', '.join(STEP_KEYS)})")
    name = item.get("name")
    if not isinstance(name, str) or not STEP_NAME.fullmatch(name):
        raise SpecError(f"{field}.name", "a step name is 1-42 characters of a-z, 0-9 and - (not at the ends)")
    image = item.get("image", "")
    if not isinstance(image, str):
        raise SpecError(f"{field}.image", "must be text")
    command, script = item.get("command"), item.get("script")
    if (command is None) == (script is None):
        raise SpecError(field, "give exactly one of command (a list) and script (text)")
    if script is not None:
        language = item.get("language", "shell")
        if language not in LANGUAGES:
            raise SpecError(f"{field}.language", f"must be one of {', '.join(LANGUAGES)}, not {language!r}")
        if not isinstance(script, str) or not script.strip():
            raise SpecError(f"{field}.script", "must be non-empty text")
        return Step(name, image, (*LANGUAGES[str(language)], script))
    if "language" in item:
        raise SpecError(f"{field}.language", "only with script")
    if not isinstance(command, list) or not command or not all(isinstance(el, str) for el in command):
        raise SpecError(f"{field}.command", "must be a non-empty list of text")
    return Step(name, image, tuple(command))


def step_template(template: TemplateSpec, step: Step) -> TemplateSpec:
    """Return `template` as if it were a pod template running `step` (parameters not used reach it as env)."""
    return replace(
        template, kind="pod", command=step.command, args_style="env", image=step.image or template.image, extra={}
    )


def check_seqpod_template(template: TemplateSpec) -> list[SpecError]:
    """Return what is wrong with a `kind: seqpod` template (its steps and their commands)."""
    if template.command:
        return [SpecError("command", "a seqpod template has no command: its steps have")]
    try:
        steps = parse_steps(template)
    except SpecError as exc:
        return [exc]
    errors: list[SpecError] = []
    for i, step in enumerate(steps):
        if not (step.image or template.image):
            errors.append(SpecError(f"extra.steps[{i}].image", "needs an image (or the template's image)"))
        errors += [
            SpecError(f"extra.steps[{i}].{e.field}", e.message)
            for e in template_command_errors(step_template(template, step))
        ]
    return errors


def failure_message(task: str, step: str, code: int) -> str:
    """Return the attempt's error for a failed step (the same words on every executor)."""
    return f"task {task!r}: step {step!r} failed with exit code {code}"


def step_names(steps: Sequence[Step]) -> list[str]:
    """Return the names of `steps`, in order."""
    return [s.name for s in steps]


# The runner of a SeqPod (both executors): `sh -c SH_RUNNER seqpod NAME N ARG1..ARGN ...`.
# `eval` only ever sees positional references built from integers ("${7}"), never a value, so each
# step runs as its exact argv. Each line is labelled `[NAME] ` (stderr merged into stdout); the first
# failure writes "step 'NAME' failed with exit code N" to stderr and the termination message.
SH_RUNNER = r"""mkdir -p .myapp || exit 125
i=1
while [ "$i" -le "$#" ]; do
  eval "name=\${$i} n=\${$((i + 1))}"
  i=$((i + 2)); cmd=""; j=0
  while [ "$j" -lt "$n" ]; do cmd="$cmd \"\${$((i + j))}\""; j=$((j + 1)); done
  i=$((i + n))
  { eval "$cmd"; echo "$?" > .myapp/seqpod.rc; } 2>&1 |
    while IFS= read -r line || [ -n "$line" ]; do printf '[%s] %s\n' "$name" "$line"; done
  rc=$(cat .myapp/seqpod.rc 2>/dev/null || echo 1)
  if [ "$rc" != 0 ]; then
    printf "step '%s' failed with exit code %s\n" "$name" "$rc" | tee "${MYAPP_TERMINATION_LOG:-/dev/null}" >&2
    exit "$rc"
  fi
done
"""


def sh_runner_argv(steps: Sequence[tuple[str, Sequence[str]]]) -> tuple[str, ...]:
    """Return the argv running `steps` ((name, argv) in order) in sequence in one container with `sh`."""
    out: list[str] = ["sh", "-c", SH_RUNNER, "seqpod"]
    for name, argv in steps:
        out += [name, str(len(argv)), *argv]
    return tuple(out)
