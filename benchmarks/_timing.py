"""Timing helper shared by the benchmarks (run as scripts, so this folder is on sys.path)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_wall_time(fn: Callable[[], object], repeats: int) -> float:
    """Fastest wall time of `repeats` runs (the machine is shared; the minimum is the least disturbed)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
