"""Negative binomial (NB2) rate ratios of many two-arm trials at once.

The work behind :func:`rjtrial.survival.batched.negative_binomial_batch`, which validates
its input and documents the method; nothing here checks input. Rows alike in (trial, arm,
exposure, count) are merged, weighted by their number (one sort, and for whole days and
counts a compiled pass over the sorted keys); each trial's
Newton-Raphson then runs in the compiled kernel
:func:`rjtrial.survival._batched_kernels.negative_binomial_trials`.
"""

from __future__ import annotations

import numpy as np


def fit(count, exposure, treatment, trial, n_trials: int, tol: float, max_iterations: int) -> dict[str, np.ndarray]:
    """Per trial: ``estimate, std_error, p_value, dispersion, n_iterations, converged``."""
    y = np.asarray(count)
    x = np.asarray(exposure)
    g = np.asarray(treatment, dtype=np.int64)
    t = np.asarray(trial, dtype=np.int64)
    T = int(n_trials)
    # rows alike in (trial, arm, exposure, count) contribute alike: fit the distinct ones, weighted
    # (most participants have the whole window at liberty and few reoffences)
    span_x, span_y = (float(v.max()) + 1.0 if v.size else 1.0 for v in (x, y))
    if (
        all(v.dtype.kind in "iu" or np.all(v == np.floor(v)) for v in (x, y))
        and x.min(initial=0) >= 0
        and y.min(initial=0) >= 0
        and 2.0 * T * span_x * span_y < 2.0**62
    ):  # whole days and counts: one integer key sorts faster
        # the key is one-to-one, so sorting the keys themselves (not their order) and reading
        # the distinct rows back from them gives the same rows, in the same order
        from rjtrial.survival._batched_kernels import distinct_count_rows

        key = np.sort(
            ((2 * t + g) * int(span_x) + np.asarray(x, dtype=np.int64)) * int(span_y) + np.asarray(y, dtype=np.int64)
        )
        offsets, g, x, y, w = distinct_count_rows(key, int(span_x), int(span_y), T)
        whole = span_y <= 10_001.0  # counts up to 10,000: the gamma terms tabulated
    else:
        y, x = y.astype(np.float64), x.astype(np.float64)
        order = np.lexsort((y, x, g, t))
        t, g, x, y = t[order], g[order], x[order], y[order]
        first = np.ones(t.size, dtype=bool)
        first[1:] = (np.diff(t) != 0) | (np.diff(g) != 0) | (np.diff(x) != 0) | (np.diff(y) != 0)
        starts = np.flatnonzero(first)
        w = np.diff(np.append(starts, t.size)).astype(float)
        t, g, x, y = t[starts], g[starts], x[starts], y[starts]
        offsets = np.searchsorted(t, np.arange(T + 1)).astype(np.int64)
        whole = bool(np.all(y == np.floor(y))) and (y.size == 0 or y.max() <= 10_000)
    from rjtrial.survival._batched_kernels import NB_COLUMNS, negative_binomial_trials

    out = np.empty((T, len(NB_COLUMNS)))
    negative_binomial_trials(
        offsets, np.asarray(g, dtype=np.int64), x, y, w, whole, float(tol), int(max_iterations), 0, T, out
    )
    estimate, std_error, p_value, dispersion, iterations, converged = out.T
    return {
        "estimate": estimate,
        "std_error": std_error,
        "p_value": p_value,
        "dispersion": dispersion,
        "n_iterations": iterations.astype(np.int64),
        "converged": converged == 1.0,
    }
