"""Domain errors shared by the core and its adapters. Imports nothing outside the standard library."""

from __future__ import annotations


class MyappError(Exception):
    """Base class of every error the product reports to a user."""


class SpecError(MyappError):
    """A pipeline or template definition breaks a rule; `field` names where (task and field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class IllegalTransition(MyappError):
    """A state change that the transition table does not allow."""

    def __init__(self, kind: str, current: str, target: str) -> None:
        super().__init__(f"{kind} cannot go from {current} to {target}")
        self.current = current
        self.target = target


class NotFound(MyappError):
    """A named object (pipeline, run, task, template) does not exist."""


class Conflict(MyappError):
    """The request contradicts the current state (e.g. retrying a running run)."""


class RenderError(MyappError):
    """A template expression failed to render; names the task and field."""

    def __init__(self, task: str, field: str, message: str) -> None:
        super().__init__(f"task {task!r}, field {field}: {message}")
        self.task = task
        self.field = field


class OutputError(MyappError):
    """A declared output could not be collected (missing, too long)."""


class ArtifactError(MyappError):
    """The artifact repository could not store, find or hand over a file output."""
