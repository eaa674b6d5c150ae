"""A task's condition, `when:` (docs/rules.md R14): a Jinja expression rendered in the sandbox.

`when: "{{ tasks.check.outputs.score | float > 0.9 }}"` is rendered with the variables of the
task's templates (render.py: params, execution_date, ...) plus `tasks.NAME.outputs.OUTPUT`, the
outputs of the upstream tasks it names. The rendered text decides: true/yes/on/1 run the task,
false/no/off/0/none or nothing skip it (any case, spaces around ignored); anything else is an
error naming the task and the field. Rendering is bounded like every template (sandbox.py).
Imports the sandbox (jinja2) and the render variables only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateSyntaxError

from myapp.core.errors import RenderError
from myapp.core.sandbox import environment

if TYPE_CHECKING:
    from myapp.core.render import RenderContext

TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0", "none", ""})
# `tasks.NAME` or `tasks['NAME']` / `tasks["NAME"]`: the upstream outputs a condition reads are
# loaded for these names only (a name computed at run time finds nothing).
_REFERENCE = re.compile(r"""\btasks\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*(['"])([^'"]+)\2\s*\])""")


def referenced_tasks(when: str) -> tuple[str, ...]:
    """Return the task names a condition refers to (`tasks.NAME`, `tasks['NAME']`), each once, in order."""
    found = (m.group(1) or m.group(3) for m in _REFERENCE.finditer(when))
    return tuple(dict.fromkeys(found))


def condition_problem(when: str) -> str | None:
    """Return why `when` is not a condition (no `{{ }}`, or a Jinja syntax error), else None."""
    if "{{" not in when:
        return "must be a Jinja expression such as {{ params.go == 'yes' }} or {{ tasks.check.outputs.ok }}"
    try:
        environment().parse(when)
    except TemplateSyntaxError as exc:
        return f"Jinja syntax error: {exc.message}"
    return None


def is_condition_met(when: str, ctx: RenderContext, outputs: Mapping[str, Mapping[str, Any]]) -> bool:
    """Render the condition and return whether the task runs; RenderError(task, "when") otherwise.

    `outputs`: {task: {output: stored output}} of the upstream tasks it refers to; a condition sees
    a `text` output's text and a `file` output's path.
    """
    from myapp.core.render import render_text  # here: render.py imports validate.py, which imports this module

    tasks = {name: {"outputs": {out: _value_of(v) for out, v in values.items()}} for name, values in outputs.items()}
    text = render_text(when, ctx, {}, task=ctx.task_name, field="when", extra={"tasks": tasks})
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise RenderError(ctx.task_name, "when", f"rendered {text[:80]!r}, which is neither true nor false")


def _value_of(stored: Any) -> str:
    """Return what a condition sees of one stored output ({type, value} or {type, path}; plain text in tests)."""
    if isinstance(stored, Mapping) and stored.get("type") == "files":  # a list of files (R15): its JSON list
        return json.dumps(list(stored.get("paths") or []))
    if isinstance(stored, Mapping):
        return str(stored.get("path") if stored.get("type") == "file" else stored.get("value", ""))
    return str(stored)
