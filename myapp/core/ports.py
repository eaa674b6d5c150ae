"""Ports: the Protocols through which the core and the use-cases reach the outside world.

Adapters in myapp/db, myapp/queue, myapp/executor and myapp/k8s implement them; tests use fakes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from myapp.core.model import TemplateSpec


class Clock(Protocol):
    """The only source of the current time; entry modules hold one and pass `now` down."""

    def now(self) -> datetime:
        """Return the current instant, UTC, tz-aware."""
        ...


class TemplateCatalog(Protocol):
    """Looks up registered task templates by reference."""

    def get(self, ref: str) -> TemplateSpec | None:
        """Return the template for "name" (newest published version) or "name@version"."""
        ...
