"""Value types handed between the stores, the executors and the entry points (frozen dataclasses).

They belong to no adapter: the database stores build and take them, executors run them, the web
and the CLI ask for them. Imports nothing outside the standard library and the core.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from myapp.core.model import PipelineSpec, TaskSpec
from myapp.core.states import Trigger


@dataclass(frozen=True)
class NewRun:
    """What a caller asks for when starting a run."""

    pipeline_id: int
    trigger: Trigger
    execution_date: datetime
    params: Mapping[str, str]
    user_id: int | None = None
    runner: str = ""
    version_id: int | None = None
    debug_task: str | None = None
    debug_inputs: Mapping[str, Any] | None = None
    copied_from: int | None = None


@dataclass(frozen=True)
class AttemptContext:
    """Everything an executor needs to run one attempt, read in the claim transaction."""

    attempt_id: int
    task_instance_id: int
    try_number: int
    run_id: int
    pipeline_id: int
    pipeline_name: str
    spec: PipelineSpec
    task: TaskSpec
    trigger: str
    execution_date: str
    params: Mapping[str, str]
    creator: str
    runner: str
    user_id: int | None
    token: str
    upstream_outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    debug_inputs: Mapping[str, Any] | None = None
    deadline_at: datetime | None = None
    project_id: int | None = None  # whose account the local executor runs the task as (docs/security.md §3)


@dataclass(frozen=True)
class AttemptResult:
    """How an attempt ended, as the executor saw it."""

    succeeded: bool
    exit_code: int | None = None
    message: str = ""
    outputs: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Any] = field(default_factory=dict)
    skipped: bool = False  # with succeeded: nothing ran, its condition was false (R14); the task is skipped


@dataclass(frozen=True)
class LogKey:
    """Identifies one attempt's log (live in Redis, archived under the logs directory)."""

    run_id: int
    task_name: str
    try_number: int

    @property
    def redis_key(self) -> str:
        return f"myapp:log:{self.run_id}:{self.task_name}:{self.try_number}"

    def path(self, logs_dir: Path) -> Path:
        return logs_dir / str(self.run_id) / self.task_name / f"{self.try_number}.log"
