"""Micro-benchmark: the cost of one task spawn as root, by way of spawning (issue 14 item 2).

    flock /work/bench.lock python3 benchmarks/bench_spawn.py [--n 300] [--ballast-mb 100]

A parent of about `--ballast-mb` of touched memory (the size of a worker) spawns `true` N times per
way, the ways alternated in rounds; per spawn: wall time, and CPU of parent + reaped children.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def _wait(proc: subprocess.Popen[bytes]) -> None:
    proc.communicate()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ballast-mb", type=int, default=100)
    ap.add_argument("--uid", type=int, default=2_000_000)
    args = ap.parse_args()
    ballast = bytearray(args.ballast_mb << 20)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    uid = args.uid
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    env = {"PATH": os.environ.get("PATH", os.defpath)}
    work = Path(tempfile.mkdtemp(prefix="bench-spawn-", dir="/var/tmp"))
    os.chown(work, uid, uid)
    ways: dict[str, Callable[[], None]] = {
        "plain Popen (worker's user)": lambda: subprocess.Popen(["true"], env=env, cwd=work).wait(),
        "Popen user=/group= (fork)": lambda: subprocess.Popen(
            ["true"], env=env, cwd=work, user=uid, group=uid, extra_groups=[], umask=0o077, start_new_session=True
        ).wait(),
        "setpriv (vfork)": lambda: subprocess.Popen(
            [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--", "true"],
            env=env,
            cwd=work,
            umask=0o077,
            start_new_session=True,
        ).wait(),
        "chroot --userspec (vfork)": lambda: subprocess.Popen(
            ["/usr/sbin/chroot", f"--userspec=+{uid}:+{uid}", "--groups=", "--skip-chdir", "--", "/", "true"],
            env=env,
            cwd=work,
            umask=0o077,
            start_new_session=True,
        ).wait(),
    }
    try:
        from myapp.executor.launcher import Launcher
        from myapp.executor.task_user import Account
    except ImportError:  # an older tree
        pass
    else:
        launcher, account = Launcher.detect(), Account("bench", uid, uid)
        ways["Launcher.popen (this tree)"] = lambda: _wait(launcher.popen(["true"], cwd=work, env=env, account=account))
        private = work / "private-tmp"
        private.mkdir()
        mounts = ((private, Path("/tmp")),)
        ways["Launcher.popen, private /tmp (mount ns)"] = lambda: _wait(
            launcher.popen(["true"], cwd=work, env=env, account=account, mounts=mounts)
        )
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in ways}
    for _ in range(args.rounds):
        for name, spawn in ways.items():
            spawn()
            r0, c0, t0 = (
                resource.getrusage(resource.RUSAGE_SELF),
                resource.getrusage(resource.RUSAGE_CHILDREN),
                time.perf_counter(),
            )
            for _ in range(args.n):
                spawn()
            t1, r1, c1 = (
                time.perf_counter(),
                resource.getrusage(resource.RUSAGE_SELF),
                resource.getrusage(resource.RUSAGE_CHILDREN),
            )
            cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) + (
                c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime
            )
            results[name].append(((t1 - t0) / args.n * 1000, cpu / args.n * 1000))
    print(f"{args.n} spawns x {args.rounds} rounds, parent ~{args.ballast_mb} MB, load {os.getloadavg()[0]:.1f}")
    for name, rs in results.items():
        walls, cpus = sorted(r[0] for r in rs), sorted(r[1] for r in rs)
        print(
            f"  {name:40s} wall {walls[len(walls) // 2]:5.2f} ms ({walls[0]:.2f}-{walls[-1]:.2f})   CPU {cpus[len(cpus) // 2]:5.2f} ms ({cpus[0]:.2f}-{cpus[-1]:.2f})"
        )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
