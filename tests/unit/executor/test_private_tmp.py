"""The sweep of leftover private /tmp directories on a workflow space made by hand, with the
attempts' states given (the database's part is tests/integration/test_private_tmp_sweep.py)."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from myapp.core.retention import PRIVATE_TMP_GRACE, private_tmp_sweepable
from myapp.executor import local
from myapp.executor.local import lock_task_dir
from myapp.executor.private_tmp import sweep

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - PRIVATE_TMP_GRACE - timedelta(seconds=1)
Ends = Mapping[tuple[int, str, int], tuple[str, datetime | None]]


def leftover(space: Path, run: int, task: str, try_number: int) -> Path:
    """Make what an attempt leaves when its worker dies: the private /tmp with a file the task wrote."""
    base = space / str(run) / task / f".{try_number}-private"
    (base / "0").mkdir(parents=True)
    (base / "0" / "big").write_text("x" * 100)
    (space / str(run) / task / str(try_number)).mkdir()  # its working directory, never swept
    return base


def given(ends: Ends, asked: list[Sequence[int]] | None = None) -> Callable[[Sequence[int]], Ends]:
    def attempt_ends(run_ids: Sequence[int]) -> Ends:
        if asked is not None:
            asked.append(list(run_ids))
        return {key: value for key, value in ends.items() if key[0] in run_ids}

    return attempt_ends


def test_the_rule_keeps_running_and_just_ended_attempts() -> None:
    assert private_tmp_sweepable(None, NOW)  # unknown: its run was deleted
    assert private_tmp_sweepable(("failed", LONG_AGO), NOW)
    assert not private_tmp_sweepable(("running", None), NOW)
    assert not private_tmp_sweepable(("running", LONG_AGO), NOW)
    assert not private_tmp_sweepable(("stopped", NOW - timedelta(seconds=30)), NOW)  # its process may still die
    assert not private_tmp_sweepable(("succeeded", None), NOW)


def test_a_sweep_removes_leftovers_of_ended_and_unknown_attempts_only(tmp_path: Path) -> None:
    space = tmp_path / "ws"
    ended = leftover(space, 1, "a", 1)
    deleted_run = leftover(space, 2, "a", 3)
    running = leftover(space, 3, "b", 2)
    just_stopped = leftover(space, 3, "c", 1)
    (space / "workspaces" / "shared" / ".1-private").mkdir(parents=True)  # not a run's: never looked at
    (space / ".runtime").mkdir()
    ends = {
        (1, "a", 1): ("failed", LONG_AGO),
        (3, "b", 2): ("running", None),
        (3, "c", 1): ("stopped", NOW - timedelta(minutes=1)),
    }
    asked: list[Sequence[int]] = []
    dry = sweep(space, given(ends, asked), NOW, dry_run=True)
    assert (dry.removed, dry.kept, dry.failed) == (2, 2, 0)
    assert ended.exists() and deleted_run.exists()
    report = sweep(space, given(ends, asked), NOW)
    assert (report.removed, report.kept, report.failed) == (2, 2, 0)
    assert not ended.exists() and not deleted_run.exists()
    assert running.exists() and just_stopped.exists()
    assert (space / "1" / "a" / "1").is_dir() and (space / "workspaces" / "shared" / ".1-private").is_dir()
    assert sorted(os.listdir(space / "1" / "a")) == ["1"]  # nothing moved away is left either
    assert asked == [[1, 2, 3], [1, 2, 3]]  # one query per batch of runs


def test_a_task_directory_locked_by_an_attempt_on_this_machine_is_left_alone(tmp_path: Path) -> None:
    space = tmp_path / "ws"
    base = leftover(space, 1, "a", 1)
    held = lock_task_dir(base.parent)  # as LocalExecutor holds it while an attempt makes or uses one
    try:
        report = sweep(space, given({}), NOW)  # whatever the database says
        assert (report.removed, report.kept) == (0, 1) and base.exists()
    finally:
        assert held is not None
        os.close(held)
    assert sweep(space, given({}), NOW).removed == 1 and not base.exists()


def test_a_file_system_without_locks_leaves_the_database_to_decide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    space = tmp_path / "ws"
    ended, running = leftover(space, 1, "a", 1), leftover(space, 2, "a", 1)
    monkeypatch.setattr(local.fcntl, "flock", refused)
    held = lock_task_dir(running.parent)  # an attempt goes on without the lock
    assert held is not None
    os.close(held)
    report = sweep(space, given({(1, "a", 1): ("failed", LONG_AGO), (2, "a", 1): ("running", None)}), NOW)
    assert (report.removed, report.kept) == (1, 1) and not ended.exists() and running.exists()


def test_what_an_interrupted_sweep_moved_away_goes_and_links_are_not_followed(tmp_path: Path) -> None:
    space = tmp_path / "ws"
    moved = leftover(space, 1, "a", 1).rename(space / "1" / "a" / ".1-private.swept-0a1b2c3d")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("k")
    (space / "1" / "a" / ".2-private").symlink_to(outside)  # planted by a task running as the worker
    report = sweep(space, given({}), NOW)
    assert report.removed == 1 and not moved.exists()
    assert (outside / "keep").exists() and (space / "1" / "a" / ".2-private").is_symlink()


def test_a_missing_workflow_space_is_an_empty_sweep(tmp_path: Path) -> None:
    report = sweep(tmp_path / "none", given({}), NOW)
    assert (report.removed, report.kept, report.failed) == (0, 0, 0)


def test_the_reconcilers_sweep_runs_at_most_once_per_interval_and_never_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from myapp.executor import private_tmp

    space = tmp_path / "ws"
    calls: list[Sequence[int]] = []

    class Db:
        def read(self) -> object:
            raise ConnectionError("database away")

    services = SimpleNamespace(settings=SimpleNamespace(executor="local", workflow_space=space), db=Db())
    monkeypatch.setattr(private_tmp, "_next_at", 0.0)
    monkeypatch.setattr(private_tmp, "sweep_workflow_space", lambda svc, now: sweep(space, given({}, calls), now))
    leftover(space, 1, "a", 1)
    first = private_tmp.sweep_when_due(services, NOW)
    assert first is not None and first.removed == 1
    leftover(space, 2, "a", 1)
    assert private_tmp.sweep_when_due(services, NOW) is None  # within the hour: not again
    assert calls == [[1]]
    monkeypatch.setattr(private_tmp, "_next_at", 0.0)
    monkeypatch.undo()  # the real sweep against a database that is away: logged, not raised
    monkeypatch.setattr(private_tmp, "_next_at", 0.0)
    assert private_tmp.sweep_when_due(services, NOW) is None
    services.settings.executor = "kubernetes"
    monkeypatch.setattr(private_tmp, "_next_at", 0.0)
    assert private_tmp.sweep_when_due(services, NOW) is None and (space / "2" / "a" / ".1-private").exists()
