"""`python3 -m myapp.builtins.seqpod_runner`: run a SeqPod's steps in sequence in the current directory.

The plan comes in the environment variable MYAPP_SEQPOD_PLAN (JSON `{"steps": [{"name", "argv"}]}`,
argv lists only; it is removed from the steps' environment), so rendered values never land in a
file. Each line a step prints is written to the same stream prefixed with `[NAME] `. The first step
that fails stops the sequence: the runner writes `{"step", "exit_code"}` to `.myapp/seqpod.json`
(read by the local executor for the attempt's error), says so on stderr and exits with the step's
code (1 when the step could not start, 128+N when a signal N ended it). Standard library only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

PLAN_ENV = "MYAPP_SEQPOD_PLAN"
RESULT = Path(".myapp") / "seqpod.json"


def _pump(source: IO[bytes], sink: IO[bytes], prefix: bytes) -> None:
    for line in iter(source.readline, b""):
        sink.write(prefix + line if line.endswith(b"\n") else prefix + line + b"\n")
        sink.flush()


def run_step(name: str, argv: Sequence[str], env: dict[str, str]) -> int:
    """Run one step with its output labelled; return its exit code (never raises for the step)."""
    prefix = f"[{name}] ".encode()
    try:
        proc = subprocess.Popen(
            list(argv), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as exc:
        why = "command not found" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc))
        sys.stderr.buffer.write(prefix + f"cannot start {argv[0]!r}: {why}\n".encode())
        sys.stderr.buffer.flush()
        return 1
    assert proc.stdout is not None and proc.stderr is not None
    pumps = [
        threading.Thread(target=_pump, args=(stream, sink, prefix), daemon=True)
        for stream, sink in ((proc.stdout, sys.stdout.buffer), (proc.stderr, sys.stderr.buffer))
    ]
    for pump in pumps:
        pump.start()
    code = proc.wait()
    for pump in pumps:
        pump.join()
    return 128 - code if code < 0 else code


def main(environ: dict[str, str] | None = None) -> int:
    """Run the plan of `environ` (default os.environ); return 0 or the failed step's exit code."""
    env = dict(os.environ if environ is None else environ)
    plan = json.loads(env.pop(PLAN_ENV, "") or '{"steps": []}')
    for step in plan["steps"]:
        code = run_step(step["name"], step["argv"], env)
        if code != 0:
            RESULT.parent.mkdir(exist_ok=True)
            RESULT.write_text(json.dumps({"step": step["name"], "exit_code": code}))
            sys.stderr.write(f"step {step['name']!r} failed with exit code {code}\n")
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
