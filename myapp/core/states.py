"""Every lifecycle of the product: one enum and one transition table each (docs/rules.md, L1-L3).

The lifecycles are runs, task instances, attempts, schedule records, user-template reviews
and alert deliveries. Each is a `Lifecycle`: its initial state, its transition table, and what is derived from
the table (terminal states, the states a target may be reached from). Nothing else lists states:
the database stores derive their guarded UPDATEs (`WHERE state IN (...)`) and their column
defaults from these tables (myapp/db/guards.py), so adding a state is one edit here, and the
test of the table (tests/unit/core/test_states.py) fails until its transitions are stated.

Operator actions that reopen a finished run (retry) or overwrite its outcome (mark) have their
own small sets so the engine tables keep their terminal states terminal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from myapp.core.errors import IllegalTransition

S = TypeVar("S", bound=StrEnum)


class RunState(StrEnum):
    CREATING = "creating"  # a large run whose task instances a worker is writing (issue 13 B15)
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"


class TaskState(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    UP_FOR_RETRY = "up_for_retry"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UPSTREAM_FAILED = "upstream_failed"
    STOPPED = "stopped"
    SKIPPED = "skipped"


class AttemptState(StrEnum):
    """One try of a task instance: a process group, or a set of pods, started by a claim."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"


class RecordStatus(StrEnum):
    """A schedule record: one materialized cron instant of one pipeline (R2, R4, R5)."""

    WAITING = "waiting"
    LAUNCHED = "launched"
    EXPIRED = "expired"


class TemplateStatus(StrEnum):
    """A user template's review: draft -> pending -> published, or rejected and submitted again."""

    DRAFT = "draft"
    PENDING = "pending"
    PUBLISHED = "published"
    REJECTED = "rejected"


class AlertStatus(StrEnum):
    """One webhook delivery of one run outcome (the alert outbox): retried while pending."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Trigger(StrEnum):
    MANUAL = "manual"
    CRON = "cron"
    DEBUG = "debug"


@dataclass(frozen=True)
class Lifecycle(Generic[S]):
    """One state machine: its name (for errors), its initial state and its transition table."""

    name: str
    initial: S
    transitions: Mapping[S, frozenset[S]]

    @property
    def terminal(self) -> frozenset[S]:
        """Return the states with no way out."""
        return frozenset(s for s, nexts in self.transitions.items() if not nexts)

    @property
    def unfinished(self) -> frozenset[S]:
        """Return the states with a way out."""
        return frozenset(self.transitions) - self.terminal

    def sources(self, target: S) -> frozenset[S]:
        """Return the states from which `target` may be reached (the guard of an UPDATE to it)."""
        return frozenset(s for s, nexts in self.transitions.items() if target in nexts)

    def check(self, current: S, target: S) -> S:
        """Return `target` if the table allows current -> target, else raise IllegalTransition."""
        if target not in self.transitions[current]:
            raise IllegalTransition(self.name, current, target)
        return target


RUN = Lifecycle(
    "run",
    RunState.CREATING,
    {
        # A run is drafted, its task instances written, then started. Small runs are inserted already
        # queued or running in one transaction; a large one (REST, above `run_inline_tasks`) is first
        # inserted alone as `creating` and a worker writes its task instances and starts it.
        RunState.CREATING: frozenset({RunState.QUEUED, RunState.RUNNING, RunState.FAILED, RunState.STOPPED}),
        RunState.QUEUED: frozenset({RunState.RUNNING, RunState.FAILED, RunState.STOPPED}),
        RunState.RUNNING: frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.STOPPED}),
        RunState.SUCCEEDED: frozenset(),
        RunState.FAILED: frozenset(),
        RunState.STOPPED: frozenset(),
    },
)

TASK = Lifecycle(
    "task",
    TaskState.PENDING,
    {
        TaskState.PENDING: frozenset(
            {TaskState.QUEUED, TaskState.UPSTREAM_FAILED, TaskState.STOPPED, TaskState.SKIPPED}
        ),
        TaskState.QUEUED: frozenset({TaskState.RUNNING, TaskState.FAILED, TaskState.STOPPED}),
        TaskState.RUNNING: frozenset(  # skipped: its condition (`when`, R14) rendered false
            {TaskState.SUCCEEDED, TaskState.FAILED, TaskState.UP_FOR_RETRY, TaskState.STOPPED, TaskState.SKIPPED}
        ),
        TaskState.UP_FOR_RETRY: frozenset({TaskState.QUEUED, TaskState.FAILED, TaskState.STOPPED}),
        TaskState.SUCCEEDED: frozenset(),
        TaskState.FAILED: frozenset(),
        TaskState.UPSTREAM_FAILED: frozenset(),
        TaskState.STOPPED: frozenset(),
        TaskState.SKIPPED: frozenset(),
    },
)

# An attempt is created running by the claim; it ends once: succeeded or failed by its executor
# (or failed by the reconciler when its worker is lost, or by a run timeout), stopped by a stop.
ATTEMPT = Lifecycle(
    "attempt",
    AttemptState.RUNNING,
    {
        AttemptState.RUNNING: frozenset({AttemptState.SUCCEEDED, AttemptState.FAILED, AttemptState.STOPPED}),
        AttemptState.SUCCEEDED: frozenset(),
        AttemptState.FAILED: frozenset(),
        AttemptState.STOPPED: frozenset(),
    },
)

# R2: a record is created waiting; R4: only waiting records expire; R5: a waiting record launches.
RECORD = Lifecycle(
    "schedule record",
    RecordStatus.WAITING,
    {
        RecordStatus.WAITING: frozenset({RecordStatus.LAUNCHED, RecordStatus.EXPIRED}),
        RecordStatus.LAUNCHED: frozenset(),
        RecordStatus.EXPIRED: frozenset(),
    },
)

# A user template starts as a draft (edits keep it a draft); published versions are immutable.
# Templates registered from plugins and packages are created published (they are not reviewed).
TEMPLATE = Lifecycle(
    "template",
    TemplateStatus.DRAFT,
    {
        TemplateStatus.DRAFT: frozenset({TemplateStatus.DRAFT, TemplateStatus.PENDING}),
        TemplateStatus.PENDING: frozenset({TemplateStatus.PUBLISHED, TemplateStatus.REJECTED, TemplateStatus.DRAFT}),
        TemplateStatus.REJECTED: frozenset({TemplateStatus.DRAFT, TemplateStatus.PENDING}),
        TemplateStatus.PUBLISHED: frozenset(),
    },
)

# An alert is written pending in the transaction that ends its run; a failed try leaves it pending
# (with a later next_attempt_at) until it is sent or given up.
ALERT = Lifecycle(
    "alert",
    AlertStatus.PENDING,
    {
        AlertStatus.PENDING: frozenset({AlertStatus.SENT, AlertStatus.FAILED}),
        AlertStatus.SENT: frozenset(),
        AlertStatus.FAILED: frozenset(),
    },
)

LIFECYCLES: tuple[
    Lifecycle[RunState]
    | Lifecycle[TaskState]
    | Lifecycle[AttemptState]
    | Lifecycle[RecordStatus]
    | Lifecycle[TemplateStatus]
    | Lifecycle[AlertStatus],
    ...,
] = (RUN, TASK, ATTEMPT, RECORD, TEMPLATE, ALERT)

# The names the engine has always used, derived from the tables above.
RUN_TRANSITIONS = RUN.transitions
RUN_TERMINAL = RUN.terminal
RUN_ACTIVE = RUN.unfinished

# Operator actions on finished runs (R10, rules.md O1-O3): retry reopens, mark overwrites the outcome.
RUN_RETRYABLE = frozenset({RunState.FAILED, RunState.STOPPED})
RUN_MARKABLE = RUN_TERMINAL
RUN_MARK_TARGETS = frozenset({RunState.SUCCEEDED, RunState.FAILED})

TASK_TRANSITIONS = TASK.transitions
TASK_TERMINAL = TASK.terminal
TASK_UNFINISHED = TASK.unfinished
TASK_DONE_OK = frozenset({TaskState.SUCCEEDED, TaskState.SKIPPED})
# Retry (R10): these go back to pending in the same run; succeeded ones keep their outputs.
TASK_RETRYABLE = frozenset({TaskState.FAILED, TaskState.UPSTREAM_FAILED, TaskState.STOPPED})


def check_run_transition(current: RunState, target: RunState) -> RunState:
    """Return `target` if the run table allows current -> target, else raise IllegalTransition."""
    return RUN.check(current, target)


def check_task_transition(current: TaskState, target: TaskState) -> TaskState:
    """Return `target` if the task table allows current -> target, else raise IllegalTransition."""
    return TASK.check(current, target)


def run_sources(target: RunState) -> frozenset[RunState]:
    """Return the run states from which the engine may move to `target` (for guarded UPDATEs)."""
    return RUN.sources(target)


def task_sources(target: TaskState) -> frozenset[TaskState]:
    """Return the task states from which the engine may move to `target` (for guarded UPDATEs)."""
    return TASK.sources(target)
