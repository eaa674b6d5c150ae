"""Count the SQL statements and commits of other processes (the Celery workers) without touching the product.

`sitecustomize_dir(counts)` writes a `sitecustomize.py` that Python imports at start-up in every
process that has the directory first on its PYTHONPATH; it calls `install`, which listens on every
SQLAlchemy engine (`before_cursor_execute`, `commit` of a transaction: not in autocommit) and keeps two counters per process in a
16-byte file of `counts` mapped into memory (`<pid>.count`): they survive any way the process
ends, a prefork child that the pool replaces included, and cost one memory write per statement.
`read(counts)` sums them over every process so far.
"""

from __future__ import annotations

import mmap
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

_FORMAT = "<QQ"  # statements, commits
_SIZE = struct.calcsize(_FORMAT)


class _Counter:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pid = -1
        self.map: mmap.mmap | None = None
        self.values = [0, 0]

    def _mapped(self) -> mmap.mmap:
        if self.pid != os.getpid() or self.map is None:  # a forked child counts in a file of its own
            self.pid, self.values = os.getpid(), [0, 0]
            path = self.directory / f"{self.pid}.count"
            with path.open("wb") as out:
                out.write(bytes(_SIZE))
            with path.open("r+b") as file:
                self.map = mmap.mmap(file.fileno(), _SIZE)
        return self.map

    def add(self, index: int) -> None:
        mapped = self._mapped()
        self.values[index] += 1
        struct.pack_into(_FORMAT, mapped, 0, *self.values)


def install(directory: str | Path) -> None:
    """Count this process's (and its forks') statements and commits into `directory`."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    counter = _Counter(Path(directory))

    def statement(*_args: Any) -> None:
        counter.add(0)

    def commit(conn: Any) -> None:
        if not autocommit(conn):
            counter.add(1)

    event.listen(Engine, "before_cursor_execute", statement)
    event.listen(Engine, "commit", commit)


def autocommit(conn: Any) -> bool:
    """Whether a SQLAlchemy connection runs in autocommit: its commit is no round trip and no
    transaction (each of its statements is one on the server). Commits are counted without these:
    what is counted is a transaction's BEGIN and COMMIT, two round trips besides its statements."""
    return bool(conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT")


def sitecustomize_dir(counts: Path) -> Path:
    """Return a directory with a sitecustomize.py installing the counter into `counts` (put it first on PYTHONPATH)."""
    site = Path(tempfile.mkdtemp(prefix="myapp-bench-site-"))
    (site / "sitecustomize.py").write_text(
        "import os\n"
        "if os.environ.get('MYAPP_BENCH_STATEMENTS'):\n"
        "    from benchmarks.statement_counter import install\n"
        "    install(os.environ['MYAPP_BENCH_STATEMENTS'])\n"
        "if os.environ.get('MYAPP_BENCH_PROFILE'):\n"
        "    from benchmarks.celery_profile import install as install_profile\n"
        "    install_profile(os.environ['MYAPP_BENCH_PROFILE'])\n"
    )
    counts.mkdir(parents=True, exist_ok=True)
    return site


def read(counts: Path) -> tuple[int, int]:
    """Return (statements, commits) summed over every counted process so far."""
    statements = commits = 0
    for path in counts.glob("*.count"):
        data = path.read_bytes()
        if len(data) == _SIZE:
            s, c = struct.unpack(_FORMAT, data)
            statements, commits = statements + s, commits + c
    return statements, commits
