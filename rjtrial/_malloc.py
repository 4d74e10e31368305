"""Keeping freed memory in the process for reuse (glibc's malloc), for power by simulation.

Replicate simulation allocates and frees arrays of megabytes in every batch of trials.
glibc's malloc serves blocks that large by ``mmap`` and hands them back to the kernel when
they are freed, so every batch faults its pages in again, each zero-filled by the kernel:
in ``rjtrial power SCENARIO --n 600 --reps 10000`` that was 0.6-0.8 s of system time in a
3.3 s run (2 cores). :func:`reuse_freed_memory` raises the size served by ``mmap`` to
32 MB (the largest every glibc accepts) and pads each growth of an arena by 64 MB, so the
batches reuse the arenas' memory: system time 0.2-0.25 s, the run 5-8% faster, its peak
memory ~2% higher (benchmarks/README.md, ``bench_power.py``). Nothing a command computes
depends on it.

Only the commands that simulate replicate trials batch after batch (``power`` and
``sample-size``) call it, once, at their start: they are short-lived processes that own
their memory. (``rjtrial simulate``, one large trial, gained nothing from it -- 3.8-3.9 s
at a million people either way -- and its truth step then peaked 440 MiB higher, so it does
not.) A library call never changes the process's allocator. It does nothing off Linux or
outside glibc, and nothing when the user has tuned malloc through its environment
variables (``MALLOC_*_`` or ``GLIBC_TUNABLES``).
"""

from __future__ import annotations

import os
import sys

__all__ = ["reuse_freed_memory"]

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

SETTINGS = ((M_MMAP_THRESHOLD, 32 << 20), (M_TOP_PAD, 64 << 20), (M_TRIM_THRESHOLD, 1 << 30))
_USER_TUNING = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def reuse_freed_memory() -> bool:
    """Set glibc's malloc to keep freed blocks for reuse (see the module notes).

    Returns True when the settings were applied, False where they do not apply (not Linux,
    no glibc ``mallopt``, or malloc already tuned through the environment).
    """
    if not sys.platform.startswith("linux") or any(name in os.environ for name in _USER_TUNING):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return all(mallopt(parameter, value) == 1 for parameter, value in SETTINGS)
