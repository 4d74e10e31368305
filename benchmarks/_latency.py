"""Shared by the enrolment benchmarks: latency summaries and the machine's description."""

from __future__ import annotations

import os
import platform
import statistics
from pathlib import Path

import numpy as np

KEYS = ("per_second", "p50_ms", "p90_ms", "p99_ms", "max_ms")


def stats(wall: float, latencies: list[float]) -> dict:
    """Throughput over ``wall`` seconds and latency percentiles (milliseconds)."""
    lat = np.asarray(latencies)
    return {
        "n": int(lat.size),
        "per_second": lat.size / wall,
        "p50_ms": float(np.percentile(lat, 50)),
        "p90_ms": float(np.percentile(lat, 90)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
    }


def median_of(repeats: list[dict]) -> dict:
    """The median of each figure over repeats, with the repeats kept."""
    out = {k: statistics.median(r[k] for r in repeats) for k in KEYS}
    out["n"] = repeats[0]["n"]
    out["repeats"] = [{k: round(r[k], 3) for k in KEYS} for r in repeats]
    return out


def machine(**versions: str) -> dict:
    """CPU, Python and platform, plus the given package versions."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        **versions,
    }
