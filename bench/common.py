"""Shared pieces of the benchmarks: repeated timing, medians, the machine's description."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from importlib import metadata


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    """Median wall-clock seconds of `repeats` calls of `run` (after one untimed warm-up)."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine() -> str:
    """One markdown paragraph: processor, cores, Python and the versions that matter here."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("numpy", "torch", "scikit-learn", "nbgrader", "jupyterlab")
    )
    return f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}; {versions}."
