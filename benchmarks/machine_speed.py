"""How fast this machine's CPU runs Python right now: a reference figure printed beside benchmark results.

The development machine's CPU speed moves from hour to hour (the same code measured 4.9 ms of CPU
per task one morning and 8.8 ms the next, at the same load), so a throughput figure means little
without it. The loop's CPU time (process time, not wall) does not count the time other processes
take the cores, so it reads the host's speed, not the load; compare it before comparing tasks/s.
"""

from __future__ import annotations

import time

LOOP = 1_000_000


def reference_loop_ms(rounds: int = 5) -> float:
    """CPU milliseconds of a pure-Python loop of LOOP additions (best of `rounds`)."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        total = 0
        for i in range(LOOP):
            total += i
        best = min(best, time.process_time() - start)
    return best * 1000


def describe() -> str:
    """One line for a benchmark's header."""
    return f"reference loop ({LOOP:,} Python additions, best of 5): {reference_loop_ms():.0f} ms of CPU"


if __name__ == "__main__":
    print(describe())
