"""Standalone start and stop times (issue 17 item 3): `./scripts/standalone` as the README runs it.

    python3 benchmarks/bench_standalone.py            # twice: the first run installs what its stamps lack
    python3 benchmarks/bench_standalone.py --rounds 3

Each round starts `./scripts/standalone --port P` on a fresh MYAPP_HOME, measures the seconds until
`/health` answers (the install, bundle and database set-up included), then sends SIGTERM and
measures the seconds until every process of it is gone, and counts the console lines. The first
round is warm too when `.setup-stamps/` already matches (no pip, npm or build work). Run from the
virtualenv you want it to use (VIRTUAL_ENV is passed on), never against a shared system Python.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def one_round(home: Path) -> tuple[float, float, int]:
    """Return (seconds to ready, seconds to stop, console lines)."""
    port, log = _port(), home / "console.log"
    env = {
        **os.environ,
        "MYAPP_HOME": str(home / "home"),
        "MYAPP_WORKFLOW_SPACE": str(home / "ws"),
        "MYAPP_ADMIN_PASSWORD": "bench-pass",
    }
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix
    began = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(REPO / "scripts" / "standalone"), "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    while time.monotonic() - began < 600:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                break
        except OSError:
            time.sleep(0.2)
    ready = time.monotonic() - began
    stopping = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    while _group_alive(proc.pid) and time.monotonic() - stopping < 60:
        time.sleep(0.05)
    stopped = time.monotonic() - stopping
    return ready, stopped, len(log.read_text(errors="replace").splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"{'round':>5}  {'ready (s)':>9}  {'stop (s)':>8}  {'console lines':>13}")
    for n in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory(prefix="myapp-bench-standalone-") as tmp:
            ready, stopped, lines = one_round(Path(tmp))
        print(f"{n:>5}  {ready:>9.1f}  {stopped:>8.1f}  {lines:>13}")


if __name__ == "__main__":
    main()
