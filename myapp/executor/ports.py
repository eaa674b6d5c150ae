"""What the executors and their use-cases are given: ports, not the process's whole Services.

`myapp.services.Services` satisfies these Protocols structurally; tests may hand in fakes. Each
member is a read-only property so a narrower implementation (AttemptStore for AttemptPort) fits.
"""

from __future__ import annotations

from typing import Protocol

from myapp.core.ports import ArtifactRepository, AttemptPort, Clock, Reconnecting, TemplateCatalog
from myapp.db.session import Database
from myapp.logs.attempt_logs import RedisLike
from myapp.settings import Settings


class ExecutorPorts(Protocol):
    """The ports a worker's claim -> run -> finish use-case and the Kubernetes launch reach."""

    @property
    def settings(self) -> Settings: ...

    @property
    def templates(self) -> TemplateCatalog: ...

    @property
    def attempts(self) -> AttemptPort: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def redis(self) -> RedisLike | None: ...

    @property
    def db(self) -> Reconnecting: ...

    @property
    def artifacts(self) -> ArtifactRepository: ...


class RunTokens(Protocol):
    """Returns the run-scoped token a task is given (masked in its logs)."""

    def run_token(self, run_id: int) -> str: ...


class WatcherPorts(ExecutorPorts, Protocol):
    """The Kubernetes watcher adds the run tokens (log masking) and the database its book reads."""

    @property
    def runs(self) -> RunTokens: ...

    @property
    def db(self) -> Database: ...
