"""The reaper kills a worker's task process groups when the worker is killed (myapp/executor/reaper.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from tests.processes import alive, wait_gone

# A stand-in worker: starts task groups the way the local executor does, registers two with the
# reaper, forgets the second (as if it had ended), registers a third (in the slot the second left),
# prints the pids, then waits to be killed.
WORKER = textwrap.dedent("""
    import subprocess, sys, time
    from myapp.executor.reaper import REAPER
    tasks = [subprocess.Popen(["sleep", "60"], start_new_session=True) for _ in range(3)]
    REAPER.register(tasks[0].pid)
    REAPER.register(tasks[1].pid)
    REAPER.forget(tasks[1].pid)
    REAPER.register(tasks[2].pid)
    print(tasks[0].pid, tasks[1].pid, tasks[2].pid, REAPER.pid(), flush=True)
    time.sleep(60)
""")


def test_a_killed_worker_takes_its_registered_task_groups_with_it() -> None:
    worker = subprocess.Popen([sys.executable, "-c", WORKER], stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert worker.stdout is not None
    registered, forgotten, later, reaper = (int(p) for p in worker.stdout.readline().split())
    try:
        assert alive(registered) and alive(forgotten) and alive(later) and alive(reaper)
        os.killpg(worker.pid, signal.SIGKILL)  # the whole worker process group, as `kill -9 -PGID`
        worker.wait()
        assert wait_gone(registered), "the registered task outlived its killed worker"
        assert wait_gone(later), "a task registered in a reused slot outlived its killed worker"
        assert wait_gone(reaper), "the reaper did not exit after its worker died"
        assert alive(forgotten), "a forgotten group (an ended attempt's id) must never be signalled"
    finally:
        for pid in (registered, forgotten, later):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_reaper_that_died_is_replaced_and_the_new_one_kills_the_groups_still_running() -> None:
    from myapp.executor.reaper import Reaper

    reaper = Reaper()
    task = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        reaper.register(task.pid)
        first = reaper.pid()
        assert first is not None
        os.kill(first, signal.SIGKILL)
        assert wait_gone(first)
        reaper.register(os.getpid() + 10_000_000)  # the next registration notices the dead helper and starts another
        second = reaper.pid()
        assert second is not None and second != first and alive(second)
        assert reaper._proc is not None and reaper._proc.stdin is not None
        reaper._proc.stdin.close()  # what the kernel does when this process dies
        assert wait_gone(task.pid), "the new reaper did not kill the group registered with the old one"
    finally:
        try:
            os.killpg(task.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        task.wait()
