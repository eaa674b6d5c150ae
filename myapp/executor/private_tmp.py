"""The sweep of the workflow space: leftover private /tmp directories (`WORKFLOW_SPACE/RUN/TASK/.TRY-private`)
and the working directories of deleted runs (`WORKFLOW_SPACE/RUN`).

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

A run's directory (`remove_run_dir`) goes when retention deleted its run (myapp/retention/clean.py,
after the batch's COMMIT) or when the sweep finds no run of its id in the database (`sweep_orphans`:
a run deleted on another machine, by hand, or by a clean that failed to remove it). Never an
existing run's, by the same order: the top of the workflow space is listed before the database is
read, and a run's directory is made only by a worker whose claim of one of its attempts committed,
so after the run's row (LocalExecutor.workdir); a deleted run's id is never given again (migration
0011 on SQLite; sequences elsewhere). It is moved away (renamed `.RUN.swept-XXXXXXXX`) only under
the exclusive locks of all its task directories, taken without waiting: one an attempt on this
machine holds keeps the whole directory. Only names that are a run id (digits, no leading zero)
and real directories (no links) are touched; never workspaces, `.runtime` or anything else. Not
with the Kubernetes executor: there a run's directory is `WORKFLOW_SPACE/PROJECT/RUN` and a project
may be named like a run id.

Only in a workflow space of this database: the default `/tmp/workflow_space` is the same for every
installation on a machine, and another installation's run directories are named like this one's run
ids. The first sweep or removal writes `WORKFLOW_SPACE/.myapp-database` (OWNER) with the database's
identity (`database_identity`: its URL without the password, a SQLite file's absolute path); a
space whose marker names another database has no run directory removed (logged; the private /tmp
sweep goes on: a running attempt's holds its lock, and an ended one's is garbage whoever ran it).

Runs from `myapp db clean` (the workflow space of the machine it runs on) and from the reconciler
at most once per SWEEP_EVERY per process (`sweep_when_due`). The rule is core/retention.py's
`private_tmp_sweepable`; the attempts are read by db/retention_store.py `attempt_ends`, the runs
that exist by `existing_runs`. Must not import Celery, Flask or kubernetes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from myapp.core.retention import PRIVATE_TMP_GRACE, private_tmp_sweepable
from myapp.executor.local import lock_task_dir

log = logging.getLogger(__name__)
PRIVATE = re.compile(r"\.(\d+)-private")
SWEPT = re.compile(r"\.\d+-private\.swept-[0-9a-f]+")  # moved away by a sweep that did not finish
RUN = re.compile(r"[1-9][0-9]*")  # a run's directory, WORKFLOW_SPACE/RUN
RUN_SWEPT = re.compile(r"\.[1-9][0-9]*\.swept-[0-9a-f]+")  # a run's directory moved away, not yet deleted
SWEEP_EVERY = 3600.0  # seconds between two sweeps of the reconciler in one process
BATCH = 500  # runs whose attempts are read in one query
OWNER = ".myapp-database"  # WORKFLOW_SPACE/OWNER: the identity of the database whose runs' directories these are
AttemptEnds = Callable[[Sequence[int]], Mapping[tuple[int, str, int], tuple[str, datetime | None]]]
ExistingRuns = Callable[[Sequence[int]], set[int]]


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


@dataclass
class RunDirReport(SweepReport):
    """What the removal of runs' working directories did (or, dry, would do)."""

    # removed: directories removed; kept: left because an attempt on this machine holds one of
    # their task directories locked; failed: could not be removed (logged)
    runs: set[int] = field(default_factory=set)  # the runs whose directories went (dry: would go)
    foreign: bool = False  # the workflow space is another database's: no run directory was touched

    def to_dict(self) -> dict[str, int]:
        return {"removed": self.removed, "kept": self.kept, "failed": self.failed, "foreign_space": int(self.foreign)}

    def summary(self, dry_run: bool) -> str:
        if self.foreign:
            return f"removed no working directory of a run: the workflow space's {OWNER} names another database"
        kept = f", kept {self.kept:,} an attempt on this machine holds" if self.kept else ""
        failed = f", {self.failed:,} could not be removed (see the log)" if self.failed else ""
        return (
            f"{'would remove' if dry_run else 'removed'} {self.removed:,} working directories of runs no "
            f"longer in the database{kept}{failed}"
        )


@dataclass(frozen=True)
class _Found:
    run_id: int
    task: str
    try_number: int
    path: Path


def sweep(
    workflow_space: Path,
    attempt_ends: AttemptEnds,
    now: datetime,
    *,
    dry_run: bool = False,
    skip: Collection[int] = (),
) -> SweepReport:
    """Remove (or count, with `dry_run`) the leftover private /tmp directories of `workflow_space`.

    `attempt_ends(run_ids)` returns (run id, task, try) -> (state, ended_at) of those runs' attempts.
    Not under the runs of `skip` (whose whole directories a dry sweep of orphans counted already).
    """
    report = SweepReport()
    found, swept = _listing(workflow_space)  # first: see docstring
    for run_id in skip:
        found.pop(run_id, None)
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


def sweep_orphans(workflow_space: Path, existing_runs: ExistingRuns, *, dry_run: bool = False) -> RunDirReport:
    """Remove (or count, with `dry_run`) the directories `WORKFLOW_SPACE/RUN` of runs no longer in the database.

    `existing_runs(run_ids)` returns those of `run_ids` the database has. What a removal moved away
    and did not delete goes too.
    """
    report = RunDirReport()
    runs: list[tuple[int, Path]] = []
    for entry in _dirs(workflow_space):  # first: see the module's docstring
        if RUN.fullmatch(entry.name):
            runs.append((int(entry.name), Path(entry.path)))
        elif RUN_SWEPT.fullmatch(entry.name):
            if dry_run:
                report.removed += 1
            else:
                _delete(Path(entry.path), report)
    runs.sort()
    for start in range(0, len(runs), BATCH):
        chunk = runs[start : start + BATCH]
        known = existing_runs([run_id for run_id, _ in chunk])
        for run_id, path in chunk:
            if run_id not in known:
                removed = report.removed
                remove_run_dir(path, report, dry_run=dry_run)
                if report.removed > removed:
                    report.runs.add(run_id)
    return report


def remove_run_dir(path: Path, report: SweepReport, *, dry_run: bool = False) -> None:
    """Move a run's directory away under the exclusive locks of its task directories, then delete it
    (dry: count it). Kept when an attempt on this machine holds one; nothing if it is not there or a link.

    The caller knows the run is gone from the database (see the module's docstring).
    """
    if path.is_symlink() or not path.is_dir():
        return
    trash = path.with_name(f".{path.name}.swept-{secrets.token_hex(4)}")
    _move_away(path, lambda: [Path(task.path) for task in _dirs(path)], trash, report, dry_run)


def workdirs_removable(services: Any) -> bool:
    """Whether runs' directories are `WORKFLOW_SPACE/RUN` here (not with the Kubernetes executor)."""
    return bool(services.settings.executor != "kubernetes")


def database_identity(db: Any) -> str:
    """Return a short stable identity of the database `db` is connected to (not its password)."""
    url = db.engine.url
    if url.get_backend_name() == "sqlite":
        text = f"sqlite:{Path(url.database).resolve() if url.database not in (None, '', ':memory:') else ':memory:'}"
    else:
        text = url.set(password=None, drivername=url.get_backend_name()).render_as_string(hide_password=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def owns_space(space: Path, identity: str, *, dry_run: bool = False) -> bool:
    """Whether the run directories in `space` are those of the database `identity` names (module docstring).

    The first caller writes the marker (atomically: a link of a complete file); a dry run only reads it.
    A space that does not exist yet has nothing to remove. Logs a warning when the space is another's.
    """
    marker = space / OWNER
    try:
        found = marker.read_text().strip()
    except FileNotFoundError:
        if dry_run or not space.is_dir():
            return space.is_dir()
        tmp = space / f"{OWNER}.{secrets.token_hex(4)}"
        try:
            tmp.write_text(identity + "\n")
            try:
                os.link(tmp, marker)  # fails if another sweep wrote it first: read theirs
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
        found = marker.read_text().strip()
    except OSError as exc:
        log.warning("cannot read %s: %s; no run directory removed", marker, exc)
        return False
    if found != identity:
        log.warning("%s names another database: no run directory removed there (docs/reliability.md)", marker)
        return False
    return True


def run_dir_remover(services: Any) -> Callable[[Sequence[int], bool], tuple[int, int, int]] | None:
    """Return what removes (dry: counts) the directories of runs retention deleted, as (removed, kept,
    failed); None with the Kubernetes executor. Called after the COMMIT that deleted them. Nothing in
    a workflow space of another database (`owns_space`)."""
    if not workdirs_removable(services):
        return None
    space: Path = services.settings.workflow_space
    identity = database_identity(services.db)

    def remove(run_ids: Sequence[int], dry_run: bool) -> tuple[int, int, int]:
        tally = RunDirReport()
        if not owns_space(space, identity, dry_run=dry_run):
            return 0, 0, 0
        for run_id in run_ids:
            remove_run_dir(space / str(int(run_id)), tally, dry_run=dry_run)
        return tally.removed, tally.kept, tally.failed

    return remove


@dataclass
class SpaceReport:
    """One sweep of the workflow space: leftover private /tmp directories and deleted runs' directories."""

    private_tmp: SweepReport
    orphans: RunDirReport

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {"private_tmp": self.private_tmp.to_dict(), "orphan_workdirs": self.orphans.to_dict()}

    @property
    def removed(self) -> int:
        return self.private_tmp.removed + self.orphans.removed

    @property
    def failed(self) -> int:
        return self.private_tmp.failed + self.orphans.failed


def sweep_workflow_space(services: Any, now: datetime, *, dry_run: bool = False) -> SpaceReport:
    """Sweep `services.settings.workflow_space` against `services.db`: first the directories of runs
    no longer in the database (not with the Kubernetes executor), then the private /tmp leftovers."""
    from myapp.db.retention_store import attempt_ends, existing_runs

    def ends(run_ids: Sequence[int]) -> Mapping[tuple[int, str, int], tuple[str, datetime | None]]:
        with services.db.read() as s:
            return attempt_ends(s, run_ids)

    def existing(run_ids: Sequence[int]) -> set[int]:
        with services.db.read() as s:
            return existing_runs(s, run_ids)

    space = services.settings.workflow_space
    orphans = RunDirReport()
    if workdirs_removable(services):
        if owns_space(space, database_identity(services.db), dry_run=dry_run):
            orphans = sweep_orphans(space, existing, dry_run=dry_run)
        else:
            orphans.foreign = space.is_dir()
    return SpaceReport(sweep(space, ends, now, dry_run=dry_run, skip=orphans.runs), orphans)


_due = threading.Lock()
_next_at = 0.0


def sweep_when_due(services: Any, now: datetime) -> SpaceReport | None:
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
        log.warning("sweeping the workflow space failed", exc_info=True)
        return None
    finally:
        _due.release()
    if report.removed or report.failed:
        log.info("swept the workflow space: %s", report.to_dict())
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
    """Move a private /tmp away under its task directory's exclusive lock, then delete it (dry: count it)."""
    trash = path.with_name(f"{path.name}.swept-{secrets.token_hex(4)}")
    _move_away(path, lambda: [path.parent], trash, report, dry_run)


def _move_away(
    path: Path, task_dirs: Callable[[], list[Path]], trash: Path, report: SweepReport, dry_run: bool
) -> None:
    """Rename `path` to `trash` under the exclusive locks of `task_dirs()`, taken without waiting, then
    delete it (dry: count it). Kept if an attempt on this machine holds one of them; gone meanwhile
    (another sweep, its worker): nothing; any other error: logged and counted as failed."""
    held: list[int] = []
    try:
        for task_dir in task_dirs():
            fd = lock_task_dir(task_dir, exclusive=True)
            if fd is None:  # an attempt of this machine is making, using or removing a private /tmp there
                report.kept += 1
                return
            held.append(fd)
        if dry_run:
            report.removed += 1
            return
        os.rename(path, trash)
    except FileNotFoundError:
        return
    except OSError as exc:
        log.warning("cannot move %s away: %s", path, exc)
        report.failed += 1
        return
    finally:
        for fd in held:
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
