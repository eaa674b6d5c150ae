"""Plain factory functions with defaults for domain values (docs/rules.md S15), and fakes of ports.

`make_pipeline(tasks=[make_task("a"), make_task("b", depends_on=("a",))])`; every field can be
overridden by keyword. `make_catalog()` holds the built-in templates of `plugins/`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

from myapp.catalog.plugins import MemoryCatalog, load_templates
from myapp.core.model import (
    GlobalParam,
    InputBinding,
    OutputSpec,
    ParamDef,
    PipelineSpec,
    ScheduleSpec,
    TaskSpec,
    TemplateSpec,
)
from myapp.core.render import RenderContext

PLUGINS_DIR = Path(__file__).resolve().parent.parent / "plugins"

__all__ = [
    "MemoryCatalog",
    "builtin_templates",
    "from_param",
    "from_task",
    "literal",
    "make_catalog",
    "make_context",
    "make_output",
    "make_param",
    "make_pipeline",
    "make_schedule",
    "make_task",
    "make_template",
    "make_template_task",
]


def make_task(name: str = "t1", **overrides: Any) -> TaskSpec:
    """Return a custom-image task (`echo hi`), valid on its own."""
    values: dict[str, Any] = {"name": name, "image": "busybox", "command": ("echo", "hi")}
    values.update(overrides)
    return TaskSpec(**values)


def make_template_task(name: str = "t1", template: str = "shell", **overrides: Any) -> TaskSpec:
    """Return a template task; by default the shell template running `echo hi`."""
    values: dict[str, Any] = {"name": name, "template": template, "args": {"script": "echo hi"}}
    values.update(overrides)
    return TaskSpec(**values)


def make_output(name: str = "out", path: str = "/tmp/out.txt", type: str = "text") -> OutputSpec:
    """Return a declared task output."""
    return OutputSpec(name=name, path=path, type=type)  # type: ignore[arg-type]


def from_task(name: str, ref: str) -> InputBinding:
    """Return an input bound to `TASK.OUTPUT`."""
    task, _, output = ref.partition(".")
    return InputBinding(name=name, source="task", task=task, output=output)


def from_param(name: str, param: str | None = None) -> InputBinding:
    """Return an input bound to a global parameter (by default of the same name)."""
    return InputBinding(name=name, source="param", param=param or name)


def literal(name: str, value: str) -> InputBinding:
    """Return an input with a literal value."""
    return InputBinding(name=name, source="literal", value=value)


def make_schedule(cron: str | None = "0 2 * * *", **overrides: Any) -> ScheduleSpec:
    """Return a crontab schedule (or `once` when cron is None)."""
    values: dict[str, Any] = {"type": "crontab" if cron else "once", "cron": cron}
    values.update(overrides)
    return ScheduleSpec(**values)


def make_param(name: str = "day", **overrides: Any) -> GlobalParam:
    """Return a global parameter."""
    return GlobalParam(name=name, **overrides)


def make_pipeline(name: str = "demo", tasks: Sequence[TaskSpec] | None = None, **overrides: Any) -> PipelineSpec:
    """Return a pipeline; by default one custom task."""
    values: dict[str, Any] = {"name": name, "tasks": tuple(tasks) if tasks is not None else (make_task(),)}
    values.update(overrides)
    return PipelineSpec(**values)


def make_template(name: str = "train", **overrides: Any) -> TemplateSpec:
    """Return a cli-style template with one required integer and one optional string parameter."""
    values: dict[str, Any] = {
        "name": name,
        "image": "trainer:1",
        "command": ("python", "train.py", "--epochs", "$(params.epochs)"),
        "parameters": (
            ParamDef(name="epochs", type="integer", required=True, minimum=1, maximum=1000),
            ParamDef(name="mode", type="choice", choices=("fast", "full"), default="fast"),
        ),
    }
    values.update(overrides)
    return TemplateSpec(**values)


@cache
def builtin_templates() -> tuple[TemplateSpec, ...]:
    """Return the templates of the repository's plugins/ folder (shell, python, ...)."""
    result = load_templates([PLUGINS_DIR], entry_points=False)
    assert not result.errors, result.errors
    return result.templates


def make_catalog(*templates: TemplateSpec) -> MemoryCatalog:
    """Return a catalog of the built-in templates plus `templates`."""
    return MemoryCatalog([*builtin_templates(), *templates])


def make_context(**overrides: Any) -> RenderContext:
    """Return a render context of run 7 of pipeline 3 at 2026-01-02 03:04:05."""
    base = RenderContext(
        creator="alice",
        runner="bob",
        pipeline_id=3,
        pipeline_name="demo",
        run_id=7,
        task_name="t1",
        cluster_name="local",
        execution_date="2026-01-02 03:04:05",
        params={},
    )
    return replace(base, **overrides)
