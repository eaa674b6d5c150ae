"""The sweep of leftover private /tmp directories (`WORKFLOW_SPACE/RUN/TASK/.TRY-private`).

The local executor removes an attempt's private /tmp in a background thread once the attempt ends
(myapp/executor/local.py `_Remover`); a worker killed (SIGKILL, the OOM killer) or leaving with
`os._exit` (a pool child) before that removal leaves the directory behind. The sweep removes such a
directory when the database does not know its attempt (its run was deleted) or says the attempt
ended more than PRIVATE_TMP_GRACE ago (core/retention.py). Nothing else is touched: working
directories, workspaces, `.runtime`, anything not named like a private /tmp.

Never the private /tmp of a running attempt:
- the directories are listed before the database is read, and a worker makes one only after its
  claim committed the attempt as running (AttemptStore.claim, then LocalExecutor.run); try numbers
  are never reused (each claim counts up; unique per task instance). So what the database says of
  a directory's attempt is never older than the directory, and an attempt ended never runs again;
- a stopped or lost attempt ends in the database before its process does: the grace covers that;
- a directory is moved away (renamed `.TRY-private.swept-XXXXXXXX`, then removed) only under the
  exclusive lock of its task directory, taken without waiting: an attempt on this machine holds it
  shared from before it makes its private /tmp until that is removed (local.lock_task_dir). Two
  sweeps at once: one moves it, the other finds it gone.

Runs from `myapp db clean` (the workflow space of the machine it runs on) and from the reconciler
at most once per SWEEP_EVERY per process (`sweep_when_due`). The rule is core/retention.py's
`private_tmp_sweepable`; the attempts are read by db/retention_store.py `attempt_ends`.
Must not import Celery, Flask or kubernetes.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from myapp.core.retention import PRIVATE_TMP_GRACE, private_tmp_sweepable
from myapp.executor.local import lock_task_dir

log = logging.getLogger(__name__)
PRIVATE = re.compile(r"\.(\d+)-private")
SWEPT = re.compile(r"\.\d+-private\.swept-[0-9a-f]+")  # moved away by a sweep that did not finish
SWEEP_EVERY = 3600.0  # seconds between two sweeps of the reconciler in one process
BATCH = 500  # runs whose attempts are read in one query
AttemptEnds = Callable[[Sequence[int]], Mapping[tuple[int, str, int], tuple[str, datetime | None]]]


@dataclass
class SweepReport:
    """What a sweep did (or, dry, would do)."""

    removed: int = 0  # leftovers removed
    kept: int = 0  # private /tmp of attempts running, ended within the grace, or locked on this machine
    failed: int = 0  # could not be removed (logged)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self, dry_run: bool) -> str:
        failed = f", {self.failed:,} could not be removed (see the log)" if self.failed else ""
        return (
            f"{'would remove' if dry_run else 'removed'} {self.removed:,} leftover private /tmp directories; "
            f"kept {self.kept:,} of attempts running or ended less than "
            f"{PRIVATE_TMP_GRACE.total_seconds() / 60:.0f} minutes ago{failed}"
        )


@dataclass(frozen=True)
class _Found:
    run_id: int
    task: str
    try_number: int
    path: Path


def sweep(workflow_space: Path, attempt_ends: AttemptEnds, now: datetime, *, dry_run: bool = False) -> SweepReport:
    """Remove (or count, with `dry_run`) the leftover private /tmp directories of `workflow_space`.

    `attempt_ends(run_ids)` returns (run id, task, try) -> (state, ended_at) of those runs' attempts.
    """
    report = SweepReport()
    found, swept = _listing(workflow_space)  # first: see docstring
    for path in swept:
        if dry_run:
            report.removed += 1
        else:
            _delete(path, report)
    runs = sorted(found)
    for start in range(0, len(runs), BATCH):
        chunk = runs[start : start + BATCH]
        ends = attempt_ends(chunk)
        for run_id in chunk:
            for leftover in found[run_id]:
                if not private_tmp_sweepable(ends.get((run_id, leftover.task, leftover.try_number)), now):
                    report.kept += 1
                else:
                    _remove(leftover.path, report, dry_run)
    return report


def sweep_workflow_space(services: Any, now: datetime, *, dry_run: bool = False) -> SweepReport:
    """Sweep `services.settings.workflow_space` against `services.db`."""
    from myapp.db.retention_store import attempt_ends

    def ends(run_ids: Sequence[int]) -> Mapping[tuple[int, str, int], tuple[str, datetime | None]]:
        with services.db.read() as s:
            return attempt_ends(s, run_ids)

    return sweep(services.settings.workflow_space, ends, now, dry_run=dry_run)


_due = threading.Lock()
_next_at = 0.0


def sweep_when_due(services: Any, now: datetime) -> SweepReport | None:
    """Sweep if this process has not for SWEEP_EVERY seconds (the first call sweeps); never raises.

    Called by the reconciler: on the machine whose worker runs it, at most once an hour per process.
    """
    global _next_at
    if services.settings.executor == "kubernetes" or not _due.acquire(blocking=False):
        return None
    try:
        if time.monotonic() < _next_at:
            return None
        _next_at = time.monotonic() + SWEEP_EVERY
        report = sweep_workflow_space(services, now)
    except Exception:  # noqa: BLE001  a sweep must never stop the reconciler
        log.warning("sweeping leftover private /tmp directories failed", exc_info=True)
        return None
    finally:
        _due.release()
    if report.removed or report.failed:
        log.info("swept leftover private /tmp directories: %s", report.to_dict())
    return report


def _listing(workflow_space: Path) -> tuple[dict[int, list[_Found]], list[Path]]:
    """Return run id -> the private /tmp directories under it, and what a sweep moved away and left."""
    found: dict[int, list[_Found]] = {}
    swept: list[Path] = []
    for run in _dirs(workflow_space):
        if not run.name.isdigit():  # workspaces, .runtime, ...
            continue
        for task in _dirs(Path(run.path)):
            for entry in _dirs(Path(task.path)):
                if (match := PRIVATE.fullmatch(entry.name)) is not None:
                    found.setdefault(int(run.name), []).append(
                        _Found(int(run.name), task.name, int(match[1]), Path(entry.path))
                    )
                elif SWEPT.fullmatch(entry.name):
                    swept.append(Path(entry.path))
    return found, swept


def _dirs(path: Path) -> list[os.DirEntry[str]]:
    """Return the directories in `path` (links not followed); none if it went meanwhile."""
    try:
        with os.scandir(path) as entries:
            return [e for e in entries if e.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _remove(path: Path, report: SweepReport, dry_run: bool) -> None:
    """Move `path` away under its task directory's exclusive lock, then delete it (dry: count it)."""
    try:
        fd = lock_task_dir(path.parent, exclusive=True)
    except FileNotFoundError:
        return
    except OSError as exc:
        log.warning("cannot lock %s to sweep %s: %s", path.parent, path.name, exc)
        report.failed += 1
        return
    if fd is None:  # an attempt of this machine is making, using or removing a private /tmp there
        report.kept += 1
        return
    if dry_run:
        os.close(fd)
        report.removed += 1
        return
    trash = path.with_name(f"{path.name}.swept-{secrets.token_hex(4)}")
    try:
        os.rename(path, trash)
    except FileNotFoundError:  # another sweep moved it, or its worker removed it
        return
    except OSError as exc:
        log.warning("cannot move %s away: %s", path, exc)
        report.failed += 1
        return
    finally:
        os.close(fd)
    _delete(trash, report)


def _delete(path: Path, report: SweepReport) -> None:
    try:
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        else:
            shutil.rmtree(path)
    except OSError as exc:
        if os.path.lexists(path):  # else another sweep deleted it meanwhile
            log.warning("cannot delete %s: %s", path, exc)
            report.failed += 1
            return
    report.removed += 1
