"""The sweep of leftover private /tmp directories and of deleted runs' working directories on a
workflow space made by hand, with the attempts' states and the runs given (the database's part is
tests/integration/test_private_tmp_sweep.py and tests/integration/test_retention.py)."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from myapp.core.retention import PRIVATE_TMP_GRACE, private_tmp_sweepable
from myapp.executor import local, private_tmp
from myapp.executor.local import lock_task_dir
from myapp.executor.private_tmp import (
    OWNER,
    RunDirReport,
    database_identity,
    owns_space,
    remove_run_dir,
    run_dir_remover,
    sweep,
    sweep_orphans,
)

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


def known(*run_ids: int, asked: list[Sequence[int]] | None = None) -> Callable[[Sequence[int]], set[int]]:
    def existing_runs(listed: Sequence[int]) -> set[int]:
        if asked is not None:
            asked.append(list(listed))
        return set(listed) & set(run_ids)

    return existing_runs


def workdir(space: Path, run: int, task: str = "a") -> Path:
    """Make a run's working directory with an input the task was given."""
    (space / str(run) / task / "1").mkdir(parents=True)
    (space / str(run) / task / "1" / "input.csv").write_text("x" * 100)
    return space / str(run)


def test_the_directories_of_runs_no_longer_in_the_database_go_and_nothing_else(tmp_path: Path) -> None:
    space = tmp_path / "ws"
    live, deleted, other = workdir(space, 1), workdir(space, 2), workdir(space, 3)
    leftover(space, 2, "b", 1)  # a private /tmp inside goes with it
    moved = workdir(space, 9).rename(space / ".9.swept-0a1b2c3d")  # a removal interrupted
    outside = tmp_path / "outside"
    (outside / "a").mkdir(parents=True)
    (space / "4").symlink_to(outside)  # a link named like a run: not followed, not removed
    (space / "5").write_text("not a directory")
    for name in ("007", "0", "workspaces", ".runtime", "x1"):  # not a run id: never looked at
        (space / name / "a").mkdir(parents=True)
    asked: list[Sequence[int]] = []
    dry = sweep_orphans(space, known(1, 3, asked=asked), dry_run=True)
    assert (dry.removed, dry.kept, dry.failed) == (2, 0, 0) and deleted.exists() and moved.exists()
    report = sweep_orphans(space, known(1, 3, asked=asked))
    assert (report.removed, report.kept, report.failed) == (2, 0, 0)
    assert not deleted.exists() and not moved.exists()
    assert (live / "a" / "1" / "input.csv").exists() and (other / "a" / "1" / "input.csv").exists()
    assert (space / "4").is_symlink() and (outside / "a").is_dir() and (space / "5").is_file()
    assert sorted(os.listdir(space)) == sorted(["1", "3", "4", "5", "007", "0", "workspaces", ".runtime", "x1"])
    assert asked == [[1, 2, 3], [1, 2, 3]]  # the listing's run ids (dry and real), in one query per batch
    assert "removed 2 working directories" in report.summary(False)


def test_a_run_directory_made_after_the_listing_is_never_taken_for_an_orphan(tmp_path: Path) -> None:
    space = tmp_path / "ws"
    workdir(space, 1)

    def existing_runs(listed: Sequence[int]) -> set[int]:
        workdir(space, 2)  # a run created meanwhile: its row committed, then its worker made this
        return set()

    report = sweep_orphans(space, existing_runs)
    assert report.removed == 1 and not (space / "1").exists() and (space / "2" / "a" / "1").is_dir()


def test_a_run_directory_with_a_task_directory_locked_on_this_machine_is_kept(tmp_path: Path) -> None:
    space = tmp_path / "ws"
    run = workdir(space, 1, "a")
    (run / "b").mkdir()
    held = lock_task_dir(run / "b")  # an attempt of this machine makes, uses or removes its private /tmp
    try:
        report = sweep_orphans(space, known())
        assert (report.removed, report.kept) == (0, 1) and (run / "a" / "1" / "input.csv").exists()
        tally = RunDirReport()
        remove_run_dir(run, tally)  # retention's removal of a deleted run's directory: the same rule
        assert (tally.removed, tally.kept) == (0, 1) and run.exists()
    finally:
        assert held is not None
        os.close(held)
    assert sweep_orphans(space, known()).removed == 1 and not run.exists()


def test_a_run_directory_that_cannot_be_moved_is_counted_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = tmp_path / "ws"
    run = workdir(space, 1)

    def refused(src: object, dst: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(private_tmp.os, "rename", refused)
    report = sweep_orphans(space, known())
    assert (report.removed, report.kept, report.failed) == (0, 0, 1) and run.exists()
    assert "1 could not be removed" in report.summary(False)


def test_the_removal_for_retention_is_not_made_under_kubernetes(tmp_path: Path) -> None:
    from types import SimpleNamespace

    space = tmp_path / "ws"
    gone, other = workdir(space, 1), workdir(space, 2)
    services = SimpleNamespace(settings=SimpleNamespace(executor="local", workflow_space=space), db=sqlite_db(tmp_path))
    remove = run_dir_remover(services)
    assert remove is not None
    assert remove([1, 7], True) == (1, 0, 0) and gone.exists()  # dry: counted; 7 has none
    assert remove([1, 7], False) == (1, 0, 0) and not gone.exists() and other.exists()
    services.settings.executor = "kubernetes"  # there a run's directory is WORKFLOW_SPACE/PROJECT/RUN
    assert run_dir_remover(services) is None


def sqlite_db(tmp_path: Path, name: str = "myapp.db") -> object:
    from types import SimpleNamespace

    from sqlalchemy.engine import make_url

    return SimpleNamespace(engine=SimpleNamespace(url=make_url(f"sqlite:///{tmp_path / name}")))


def test_a_database_identity_names_the_database_and_not_the_password_or_driver() -> None:
    from types import SimpleNamespace

    from sqlalchemy.engine import make_url

    def of(url: str) -> str:
        return database_identity(SimpleNamespace(engine=SimpleNamespace(url=make_url(url))))

    assert of("postgresql+psycopg://me:secret@db:5432/myapp") == of("postgresql://me:other@db:5432/myapp")
    assert of("postgresql://me@db:5432/myapp") != of("postgresql://me@db:5432/theirs")
    assert of("postgresql://me@db:5432/myapp") != of("postgresql://me@db2:5432/myapp")
    assert of("sqlite:////a/myapp.db") != of("sqlite:////b/myapp.db")
    assert "secret" not in of("postgresql://me:secret@db/myapp")


def test_the_first_sweep_claims_the_space_and_another_databases_space_is_refused(tmp_path: Path) -> None:
    space = tmp_path / "ws"
    assert not owns_space(space, "ours")  # no space yet: nothing to remove, nothing written
    space.mkdir()
    assert owns_space(space, "ours", dry_run=True) and not (space / OWNER).exists()  # a dry run writes nothing
    assert owns_space(space, "ours") and (space / OWNER).read_text() == "ours\n"
    assert owns_space(space, "ours")
    assert not owns_space(space, "theirs") and not owns_space(space, "theirs", dry_run=True)
    assert [p.name for p in space.iterdir()] == [OWNER]  # no temporary file left


def test_the_removal_for_retention_touches_nothing_in_another_databases_space(tmp_path: Path) -> None:
    from types import SimpleNamespace

    space = tmp_path / "ws"
    theirs = workdir(space, 1)  # the other installation's run 1, named like one of ours
    (space / OWNER).write_text("another database\n")
    services = SimpleNamespace(settings=SimpleNamespace(executor="local", workflow_space=space), db=sqlite_db(tmp_path))
    remove = run_dir_remover(services)
    assert remove is not None
    assert remove([1], False) == (0, 0, 0) and theirs.is_dir()
    (space / OWNER).write_text(database_identity(services.db) + "\n")
    assert remove([1], False) == (1, 0, 0) and not theirs.exists()
