"""cProfile, on a CPU clock, inside a benchmark's Celery worker: its main process and each pool process.

Loaded through the benchmark's sitecustomize (benchmarks/statement_counter.py) when
MYAPP_BENCH_PROFILE names a directory; nothing in the product. A pool process starts its profiler
when it is forked (`worker_process_init`) and writes `pool-PID.prof` every 100 tasks; the main
process starts at `worker_ready` and writes `main-PID.prof` at most every 5 s, when a message
arrives. `bench_shapes.py --profile DIR` sets it and prints both summaries after the shapes.
The profiler roughly triples the CPU per task: read shares, not milliseconds.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import time
from pathlib import Path
from typing import Any


def install(directory: str) -> None:
    """Connect the profiler to the Celery worker signals of this process."""
    from celery import signals

    state: dict[str, Any] = {"tasks": 0, "main_at": 0.0}

    def start_pool(**_: Any) -> None:
        state["pool"] = profiler = cProfile.Profile(time.process_time)
        profiler.enable()

    def after_task(**_: Any) -> None:
        profiler = state.get("pool")
        state["tasks"] += 1
        if profiler is not None and state["tasks"] % 100 == 0:
            profiler.disable()
            profiler.dump_stats(f"{directory}/pool-{os.getpid()}.prof")
            profiler.enable()

    def start_main(**_: Any) -> None:
        state["main"] = profiler = cProfile.Profile(time.process_time)
        state["main_at"] = time.monotonic()
        profiler.enable()

    def on_received(**_: Any) -> None:
        profiler = state.get("main")
        if profiler is not None and time.monotonic() - state["main_at"] > 5:
            profiler.disable()
            profiler.dump_stats(f"{directory}/main-{os.getpid()}.prof")
            state["main_at"] = time.monotonic()
            profiler.enable()

    signals.worker_process_init.connect(start_pool, weak=False)
    signals.task_postrun.connect(after_task, weak=False)
    signals.worker_ready.connect(start_main, weak=False)
    signals.task_received.connect(on_received, weak=False)


def summary(directory: Path, kind: str, top: int = 25) -> str:
    """Return the `top` functions by cumulative CPU of every `kind` (main or pool) profile in `directory`."""
    files = [str(p) for p in sorted(directory.glob(f"{kind}-*.prof"))]
    if not files:
        return f"(no {kind} profile written)"
    out = io.StringIO()
    pstats.Stats(*files, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()
