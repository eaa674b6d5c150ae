"""Retention (`myapp db clean --older-than DAYS`, the daily `retention_days` policy): delete what is old.

Finished runs created and ended before the cutoff go with their task instances, attempts, alert
outbox rows, archived log files, live-log Redis keys, file outputs (in the artifact repository)
and working directories in this machine's workflow space (`WORKFLOW_SPACE/RUN`, local executor);
schedule records unchanged since the cutoff (not waiting), skipped spans and delivered alerts go
too. Kept whatever their age: unfinished runs, waiting records, each pipeline's newest record and newest launched record (the
depends_on_past predecessor) with their runs, and a run a staying run was copied from.

Batched: each batch is one short transaction (`batch` runs or `batch * 5` other rows), so neither
the database nor a running scheduler waits behind a giant one; files and keys of a batch are
removed after its COMMIT. `dry_run` counts the same batches and deletes nothing.
Must not import Celery, Flask or kubernetes.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from myapp.core.retention import KINDS, cutoff
from myapp.db.retention_store import (
    Needed,
    copied_sources,
    delete_rows,
    delete_runs,
    old_rows,
    old_runs,
    schedule_needs,
)

log = logging.getLogger(__name__)
BATCH = 200
Progress = Callable[[str], None]
# Removes (dry: counts) the working directories of deleted runs on this machine: (run ids, dry run)
# -> (removed, kept, failed). myapp/executor/private_tmp.py `run_dir_remover`; retention cannot
# import the executor, so the entry point hands it over (`myapp db clean` does; the beat's daily
# policy runs on any worker, and leaves them to each worker's hourly sweep of the workflow space).
RemoveWorkdirs = Callable[[Sequence[int], bool], tuple[int, int, int]]


@dataclass
class CleanReport:
    """What a clean deleted (or, dry, would delete), per kind."""

    cutoff: datetime
    dry_run: bool
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    kept_runs: int = 0  # old finished runs kept because a schedule or a copy still needs them
    kept_records: int = 0  # old records kept because a schedule still needs them
    # deleted runs' working directories (counts["workdirs"]: removed) kept because an attempt on this
    # machine holds one of their task directories locked, or that failed to go (logged): a later sweep tries again
    workdirs_kept: int = 0
    workdirs_failed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
            **self.counts,
            "kept_runs": self.kept_runs,
            "kept_records": self.kept_records,
            "workdirs_kept": self.workdirs_kept,
            "workdirs_failed": self.workdirs_failed,
        }

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        parts = ", ".join(f"{n:,} {kind.replace('_', ' ')}" for kind, n in self.counts.items())
        left = (
            f"; {self.workdirs_failed + self.workdirs_kept:,} working directories of deleted runs could not be "
            "removed (see the log; the next sweep tries again)"
            if self.workdirs_failed or self.workdirs_kept
            else ""
        )
        return (
            f"{verb} {parts} older than {self.cutoff.isoformat()}; kept {self.kept_runs:,} old runs and "
            f"{self.kept_records:,} old records a schedule or a retry still needs{left}"
        )


def clean(
    services: Any,
    now: datetime,
    days: int,
    *,
    dry_run: bool = False,
    batch: int = BATCH,
    progress: Progress | None = None,
    remove_workdirs: RemoveWorkdirs | None = None,
) -> CleanReport:
    """Delete (or count, with `dry_run`) what is older than `days` at `now`; return the counts.

    With `remove_workdirs`, each batch's runs' working directories go too, after its COMMIT."""
    report = CleanReport(cutoff(now, days), dry_run)
    say = progress or (lambda line: log.info("%s", line))
    with services.db.read() as s:
        needed = schedule_needs(s)
        needed.runs |= copied_sources(s, report.cutoff)
    gone = _runs(services, report, needed, max(1, batch), say, remove_workdirs)
    for kind in ("records", "skips", "outbox"):
        _rows(services, report, needed, kind, max(1, batch) * 5, say, gone)
    say(report.summary())
    return report


def _runs(
    services: Any, report: CleanReport, needed: Needed, batch: int, say: Progress, workdirs: RemoveWorkdirs | None
) -> set[int]:
    """Delete old runs batch by batch; return, on a dry run, the ids it would delete."""
    after, gone = 0, set[int]()
    while True:
        with services.db.read() if report.dry_run else services.db.write() as s:
            found = old_runs(
                s, services.db, report.cutoff, needed, after_id=after, limit=batch, lock=not report.dry_run
            )
            if found is None:
                return gone
            if not report.dry_run:
                found.counts["runs"] = delete_runs(s, found.run_ids)
        after = found.last_id
        report.kept_runs += found.kept
        for kind, n in found.counts.items():
            report.counts[kind] += n
        if not report.dry_run:  # the batch committed: its runs are gone, and their ids never come back
            report.counts["logs"] += _remove_files(services, found.run_ids, found.log_keys)
        else:
            gone.update(found.run_ids)
            report.counts["logs"] += sum(1 for key in found.log_keys if key.path(services.settings.logs_dir).exists())
        if workdirs is not None and found.run_ids:
            _remove_workdirs(workdirs, found.run_ids, report)
        say(
            f"runs: {report.counts['runs']:,} {'to delete' if report.dry_run else 'deleted'} so far "
            f"(up to run id {after})"
        )


def _remove_files(services: Any, run_ids: list[int], keys: list[Any]) -> int:
    """Remove the archived logs and file outputs of deleted runs, and their live-log keys; return
    how many archived log files went. Failures are logged: the rows are gone already."""
    logs_dir: Path = services.settings.logs_dir
    removed = sum(1 for key in keys if key.path(logs_dir).exists())
    for run_id in run_ids:
        shutil.rmtree(logs_dir / str(run_id), ignore_errors=True)
        try:
            services.artifacts.delete_run(run_id)  # on disk or in the object store (myapp/artifacts/)
        except Exception:  # noqa: BLE001  a store out of reach must not stop the clean; say which run
            log.warning(
                "deleting the artifacts of run %d failed; delete them from the store by hand", run_id, exc_info=True
            )
    if services.redis is not None and keys:
        try:
            for start in range(0, len(keys), 1000):
                services.redis.delete(*(key.redis_key for key in keys[start : start + 1000]))
        except Exception:  # noqa: BLE001  live keys expire by themselves (LIVE_TTL_SECONDS)
            log.warning(
                "deleting the live-log keys of %d runs failed; they expire by themselves", len(run_ids), exc_info=True
            )
    return removed


def _remove_workdirs(workdirs: RemoveWorkdirs, run_ids: list[int], report: CleanReport) -> None:
    """Remove (dry: count) the deleted runs' working directories; a failure is counted, never raised:
    the rows are gone already, and the sweep of the workflow space takes what is left."""
    try:
        removed, kept, failed = workdirs(run_ids, report.dry_run)
    except Exception:  # noqa: BLE001
        log.warning("removing the working directories of %d deleted runs failed", len(run_ids), exc_info=True)
        removed, kept, failed = 0, 0, len(run_ids)
    report.counts["workdirs"] += removed
    report.workdirs_kept += kept
    report.workdirs_failed += failed


def _rows(
    services: Any, report: CleanReport, needed: Needed, kind: str, batch: int, say: Progress, gone: set[int]
) -> None:
    after = 0
    while True:
        with services.db.read() if report.dry_run else services.db.write() as s:
            found = old_rows(
                s,
                services.db,
                kind,
                report.cutoff,
                needed,
                after_id=after,
                limit=batch,
                lock=not report.dry_run,
                gone_runs=gone,
            )
            if found is None:
                break
            ids, after, kept = found
            n = len(ids) if report.dry_run else delete_rows(s, kind, ids)
        report.counts[kind] += n
        if kind == "records":
            report.kept_records += kept
        say(f"{kind}: {report.counts[kind]:,} {'to delete' if report.dry_run else 'deleted'} so far")
