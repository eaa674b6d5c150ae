"""The sweep of leftover private /tmp directories with real workers: a burst worker killed with
SIGKILL in the middle of an attempt leaves the attempt's `.1-private` behind; the sweep keeps it
while the database says the attempt runs, removes it once the attempt ended, and never touches the
private /tmp of an attempt another worker is running, even with the database blind to it (the
task directory's lock). Then `myapp db clean` sweeps too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from myapp.core.retention import PRIVATE_TMP_GRACE
from myapp.core.values import AttemptResult
from myapp.db.tables import TaskAttempt, TaskInstance
from myapp.executor.private_tmp import sweep, sweep_orphans, sweep_workflow_space
from tests.conftest import worker_env
from tests.integration.engine_helpers import save, start, wait_finished, wait_until
from tests.integration.test_retention import myapp_cli
from tests.processes import alive, wait_gone

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
SETTINGS_OVERRIDES = {"task_tmp": "private"}
REPO = Path(__file__).resolve().parents[2]


class Burst:
    """`myapp worker --burst` in a process of its own, its output in a file (for failure reports)."""

    def __init__(self, services: Any, broker_url: str, name: str) -> None:
        self.out = services.settings.home / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "myapp", "worker", "--burst", "--concurrency", "1"],
            env=worker_env(services.settings, broker_url),
            cwd=REPO,
            stdout=self.out.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.out.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=60)


@pytest.fixture()
def bursts(services: Any, broker_url: str) -> Iterator[list[Burst]]:
    started: list[Burst] = []
    yield started
    for burst in started:
        burst.kill()


def attempt_id(services: Any, run_id: int, task: str) -> int:
    with services.db.read() as s:
        return int(
            s.scalar(
                select(TaskAttempt.id)
                .join(TaskInstance, TaskInstance.id == TaskAttempt.task_instance_id)
                .where(TaskInstance.run_id == run_id, TaskInstance.task_name == task)
            )
        )


def running_with_pid(services: Any, run_id: int, task: str, worker: Burst) -> int:
    """Wait until the task's first attempt runs a process and its private /tmp exists; return its pid."""
    base = services.settings.workflow_space / str(run_id) / task / ".1-private"
    try:
        data = wait_until(
            services,
            run_id,
            lambda d: d["by_name"][task]["attempts"] and d["by_name"][task]["attempts"][0]["pid"] and base.is_dir(),
            what=f"{task} running with its private /tmp",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nworker log:\n{worker.log()}") from None
    return int(data["by_name"][task]["attempts"][0]["pid"])


def test_a_killed_workers_leftover_is_swept_and_a_running_attempts_is_not(
    services: Any, broker_url: str, bursts: list[Burst]
) -> None:
    space = services.settings.workflow_space
    release = space / "release-live"  # under the workflow space: the task's private /tmp hides the test's
    doomed = start(
        services,
        save(
            services,
            """
            name: doomed
            tasks:
              - name: victim
                template: shell
                args: {script: 'echo scratch > /tmp/scratch; sleep 600'}
            """,
        ),
    )
    bursts.append(victim := Burst(services, broker_url, "victim"))
    task_pid = running_with_pid(services, doomed, "victim", victim)
    leftover = space / str(doomed) / "victim" / ".1-private"
    victim.proc.send_signal(signal.SIGKILL)  # the worker dies mid-attempt: no removal, no atexit
    assert wait_gone(victim.proc.pid, 60) and wait_gone(task_pid, 60), "the worker or its task outlived the kill"
    assert leftover.is_dir(), "the killed worker's attempt left no private /tmp: nothing to sweep"

    # The database still says the attempt runs (until the reconciler declares it lost): kept.
    now = services.clock.now()
    first = sweep_workflow_space(services, now).private_tmp
    assert (first.removed, first.kept) == (0, 1) and leftover.is_dir()

    live = start(
        services,
        save(
            services,
            f"""
            name: live
            tasks:
              - name: steady
                template: shell
                args: {{script: 'echo mine > /tmp/mine; while [ ! -e {release} ]; do sleep 0.1; done; cat /tmp/mine'}}
            """,
        ),
    )
    bursts.append(other := Burst(services, broker_url, "other"))
    live_pid = running_with_pid(services, live, "steady", other)
    live_private = space / str(live) / "steady" / ".1-private"

    # The reconciler's verdict on the killed worker's attempt, as it writes it.
    services.attempts.finish(
        attempt_id(services, doomed, "victim"), AttemptResult(succeeded=False, message="worker lost"), now
    )
    later = now + PRIVATE_TMP_GRACE + timedelta(seconds=1)
    within = sweep_workflow_space(services, now + timedelta(seconds=1)).private_tmp
    assert (within.removed, within.kept) == (0, 2) and leftover.is_dir()  # ended just now: its process may linger
    swept = sweep_workflow_space(services, later).private_tmp
    assert (swept.removed, swept.kept, swept.failed) == (1, 1, 0), swept
    assert not leftover.exists() and sorted(os.listdir(leftover.parent)) == ["1"]  # its workdir stays
    assert live_private.is_dir() and alive(live_pid)

    # Even a sweep that believes every attempt unknown leaves the running one's alone: its worker
    # holds the task directory's lock.
    blind = sweep(space, lambda run_ids: {}, later)
    assert (blind.removed, blind.kept) == (0, 1) and live_private.is_dir()

    # Working directories: both runs exist, so both stay. Once the killed worker's run is deleted by
    # hand (a bare DELETE), the sweep takes its directory; the running one's stays, even for a
    # sweep that believes no run exists (its worker holds its task directory locked).
    assert not any((swept_all := sweep_workflow_space(services, later)).orphans.to_dict().values()), swept_all
    with services.db.write() as s:
        s.execute(text("DELETE FROM runs WHERE id = :id"), {"id": doomed})
    orphaned = sweep_workflow_space(services, later).orphans
    assert (orphaned.removed, orphaned.kept, orphaned.failed) == (1, 0, 0) and not (space / str(doomed)).exists()
    blind_orphans = sweep_orphans(space, lambda run_ids: set())
    assert (blind_orphans.removed, blind_orphans.kept) == (0, 1) and live_private.is_dir() and alive(live_pid)

    release.touch()
    data = wait_finished(services, live)
    assert data["state"] == "succeeded", (data, other.log())
    assert other.proc.wait(timeout=120) == 0, other.log()
    assert not any(space.rglob("*-private*")), "a private /tmp outlived its attempt"


def test_db_clean_sweeps_the_workflow_space(services: Any) -> None:
    base = services.settings.workflow_space / "999999" / "gone" / ".2-private"  # its run was deleted
    (base / "0").mkdir(parents=True)
    (base / "0" / "f").write_text("x")

    def clean(*args: str) -> subprocess.CompletedProcess[str]:
        return myapp_cli(services, "db", "clean", "--older-than", "30", *args)

    dry = clean("--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    counted = json.loads(dry.stdout)
    assert counted["orphan_workdirs"] == {"removed": 1, "kept": 0, "failed": 0, "foreign_space": 0}
    assert base.is_dir()
    assert counted["private_tmp"] == {"removed": 0, "kept": 0, "failed": 0}  # inside the run's directory
    out = clean()
    assert out.returncode == 0, out.stderr
    assert "removed 1 working directories of runs no longer in the database" in out.stdout, out.stdout
    assert "removed 0 leftover private /tmp directories" in out.stdout, out.stdout
    assert not (services.settings.workflow_space / "999999").exists()
    queued = start(  # no worker runs it: it stays, and so does its directory
        services,
        save(
            services,
            """
            name: queued
            tasks:
              - name: idle
                template: shell
                args: {script: 'true'}
            """,
        ),
    )
    leftover = services.settings.workflow_space / str(queued) / "gone" / ".2-private"
    (leftover / "0").mkdir(parents=True)
    out = clean("--json")
    assert out.returncode == 0, out.stderr
    swept = json.loads(out.stdout)
    assert swept["private_tmp"]["removed"] == 1 and swept["orphan_workdirs"]["removed"] == 0
    assert not leftover.exists() and (services.settings.workflow_space / str(queued) / "gone").is_dir()
    # Another installation's space (the default /tmp/workflow_space is shared by a machine's
    # installations): its run directories are named like this database's run ids, none is removed.
    marker = services.settings.workflow_space / ".myapp-database"
    assert marker.read_text().strip()  # the first real sweep claimed the space for this database
    marker.write_text("another-database\n")
    theirs = services.settings.workflow_space / "888888" / "step" / "1"
    theirs.mkdir(parents=True)
    out = clean("--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["orphan_workdirs"] == {"removed": 0, "kept": 0, "failed": 0, "foreign_space": 1}
    assert theirs.is_dir()
    out = clean()
    assert "the workflow space's .myapp-database names another database" in out.stdout, out.stdout
