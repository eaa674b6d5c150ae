"""Process checks shared by the tests that kill workers and tasks."""

from __future__ import annotations

import time
from pathlib import Path


def alive(pid: int) -> bool:
    """Return True while `pid` exists and is not a zombie (a killed child not reaped yet counts as dead)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return fields[0] != "Z"


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    """Return True once `pid` is dead, False if it still lives after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return not alive(pid)


def running_argv(*argv: str) -> list[int]:
    """Pids (not zombies) whose command line is exactly `argv`: finds a task's child by a unique
    argument where its pid means nothing here (a pod's processes live in a PID namespace of their own)."""
    wanted = "\0".join(argv).encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes() == wanted and alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
