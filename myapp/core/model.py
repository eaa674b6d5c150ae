"""Immutable domain values: pipeline definitions (docs/rules.md P2) and task templates (P6).

These are what the YAML, the REST API and the canvas all parse into, and what the engine and
executors read. Change them with `dataclasses.replace`. No I/O; standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Literal

OutputType = Literal["text", "file", "files"]
ScheduleType = Literal["once", "crontab"]
TemplateKind = Literal["pod", "distributed", "resource", "seqpod"]
ParamType = Literal["string", "integer", "number", "boolean", "choice", "json", "text", "secret"]
ArgsStyle = Literal["cli", "env"]
BindingSource = Literal["task", "param", "literal"]


@dataclass(frozen=True)
class GlobalParam:
    """A pipeline-level input (an "initial input parameter")."""

    name: str
    default: str | None = None
    description: str = ""
    required: bool = False
    secret: bool = False  # masked for viewers, sealed at rest, masked in logs (docs/security.md §5)


@dataclass(frozen=True)
class GlobalOutput:
    """A pipeline-level output taken from one task output (`from: task.output`)."""

    name: str
    task: str
    output: str


@dataclass(frozen=True)
class OutputSpec:
    """A declared task output: `text` is the file's content, `file` a file or directory, `files` a
    directory whose entries are a list of files (R15: a list a downstream task can slice over)."""

    name: str
    path: str
    type: OutputType = "text"
    description: str = ""


@dataclass(frozen=True)
class InputBinding:
    """Where a task input comes from: an ancestor's output, a global parameter, or a literal."""

    name: str
    source: BindingSource
    task: str | None = None  # source == "task"
    output: str | None = None  # source == "task"
    param: str | None = None  # source == "param"
    value: str | None = None  # source == "literal"


@dataclass(frozen=True)
class Resources:
    """Requested compute; strings as Kubernetes quantities ("500m", "1Gi")."""

    cpu: str | None = None
    memory: str | None = None
    gpu: int = 0
    package: str | None = None  # a named resource package from config, instead of cpu/memory/gpu


@dataclass(frozen=True)
class WorkspaceBinding:
    """A named volume a task mounts (core/workspaces.py): a PVC on Kubernetes, a project directory locally."""

    name: str
    claim: str = ""  # the PersistentVolumeClaim (Kubernetes); locally unused
    path: str = ""  # the mount path in pods; "" = /workspaces/NAME


@dataclass(frozen=True)
class SliceSpec:
    """A task fanned out over lists (docs/rules.md R15): one task instance per item (core/slices.py)."""

    inputs: tuple[str, ...]  # inputs whose values are lists; slice i gets item i of each
    parallelism: int = 0  # slices queued or running at once; 0 = no cap
    continue_on_failed: bool = False  # the task succeeds whatever its slices did (success_ratio 0)
    success_ratio: float | None = None  # fraction of slices that must succeed; None = 1.0 (all)


@dataclass(frozen=True)
class TaskSpec:
    """One node of a pipeline: a template instance or a custom image + command."""

    name: str
    template: str | None = None  # "name" or "name@version"
    image: str | None = None
    command: tuple[str, ...] = ()
    args: Mapping[str, object] = field(default_factory=dict)
    inputs: tuple[InputBinding, ...] = ()
    outputs: tuple[OutputSpec, ...] = ()
    depends_on: tuple[str, ...] = ()
    retries: int = 0
    retry_delay: int = 0  # seconds between attempts
    timeout: int = 0  # seconds per attempt, 0 = none
    resources: Resources = field(default_factory=Resources)
    env: Mapping[str, str] = field(default_factory=dict)
    position: tuple[float, float] | None = None  # canvas coordinates
    description: str = ""
    trigger_rule: str = "all_success"  # R13; one of core.trigger_rules.TriggerRule (checked in validate.py)
    when: str = ""  # R14; a sandboxed Jinja condition (core/conditions.py); false skips the task
    workspaces: tuple[WorkspaceBinding, ...] = ()  # named volumes, `$(workspaces.NAME.path)` (core/workspaces.py)
    slices: SliceSpec | None = None  # R15: fanned out over lists, one task instance per item


@dataclass(frozen=True)
class ScheduleSpec:
    """The pipeline's schedule (docs/rules.md P3); `start_time` is a naive wall time in `timezone`."""

    type: ScheduleType = "once"
    cron: str | None = None
    timezone: str = "UTC"
    start_time: datetime | None = None
    depends_on_past: bool = False
    expired_limit: int = 1
    max_active_runs: int = 1
    enabled: bool = True


@dataclass(frozen=True)
class AlertSpec:
    """Webhooks notified on run outcomes."""

    webhooks: tuple[str, ...] = ()
    on: tuple[str, ...] = ("failed", "timeout")


@dataclass(frozen=True)
class PipelineSpec:
    """A whole pipeline definition as in the YAML of docs/rules.md P2."""

    name: str
    project: str = "default"
    description: str = ""
    parameters: tuple[GlobalParam, ...] = ()
    outputs: tuple[GlobalOutput, ...] = ()
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)
    timeout: int = 0
    tasks: tuple[TaskSpec, ...] = ()
    alerts: AlertSpec = field(default_factory=AlertSpec)

    def task(self, name: str) -> TaskSpec:
        """Return the task called `name`; KeyError if absent."""
        return self._by_name[name]

    @cached_property
    def _by_name(self) -> dict[str, TaskSpec]:
        # Built on first use: a worker looks up one task per attempt in pipelines of 1000 tasks.
        return {task.name: task for task in self.tasks}

    @cached_property
    def sliced(self) -> frozenset[str]:
        """Return the names of the tasks fanned out over lists (R15)."""
        return frozenset(task.name for task in self.tasks if task.slices is not None)


@dataclass(frozen=True)
class ParamDef:
    """A declared template parameter: the schema behind validation and the web form."""

    name: str
    type: ParamType = "string"
    default: object = None
    required: bool = False
    description: str = ""
    label: str = ""
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    script: bool = False  # code run by an interpreter: `$name` is left to the shell/env, never spliced


@dataclass(frozen=True)
class TemplateSpec:
    """A registered task template (plugin): what to run and which parameters it takes."""

    name: str
    version: str = "1"
    kind: TemplateKind = "pod"
    category: str = "general"
    description: str = ""
    image: str = ""
    command: tuple[str, ...] = ()  # elements may contain $(params.NAME)
    parameters: tuple[ParamDef, ...] = ()
    outputs: tuple[OutputSpec, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[str, ...] = ()
    resources: Resources = field(default_factory=Resources)
    args_style: ArgsStyle = "cli"  # parameters not used in `command`: --name=value, or env NAME
    monitoring: bool = False  # fixed small resources (docs/rules.md P6 wait-for)
    readme: str = ""
    extra: Mapping[str, object] = field(default_factory=dict)  # kind-specific (manifest, replicas...)

    @property
    def ref(self) -> str:
        """Return `name@version`."""
        return f"{self.name}@{self.version}"

    def param(self, name: str) -> ParamDef | None:
        """Return the declared parameter `name`, or None."""
        return next((p for p in self.parameters if p.name == name), None)
