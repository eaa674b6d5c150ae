"""Count the work a function does instead of timing it.

A unit test that bounds elapsed time fails on a slow or busy machine; one that bounds the number of
function calls (Python and built-in) fails only when the algorithm changes. The speed figures live in
benchmarks/ (docs/benchmarks.md says how to rerun them).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")


def calls_made(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, int]:
    """Return `fn(*args, **kwargs)` and how many calls (Python and built-in) it made, counted in this thread."""
    count = 0

    def profile(frame: FrameType, event: str, arg: object) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        result = fn(*args, **kwargs)
    finally:
        sys.setprofile(previous)
    return result, count
