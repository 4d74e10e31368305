"""Compiled (numba) allocation engines, for many cohorts at once: re-randomisation tests and
simulated replicate trials. Each reproduces :mod:`rjtrial.randomise.engines` draw for draw
given the same uniforms (tests/test_rerandomisation.py, tests/test_simulate_allocation.py).
"""

from __future__ import annotations

import numpy as np

__all__ = ["minimisation_kernel"]

_KERNEL = None


def minimisation_kernel():
    """Minimisation of one cohort per row of uniforms, compiled with numba on first use.

    ``levels`` has shape ``(1, n, n_factors)`` (one cohort, re-randomised on every row) or
    ``(rows, n, n_factors)`` (a cohort per row: simulated replicate trials).
    Row ``r`` is ``engines.minimise(levels[r], ..., uniforms=uniforms[r])`` draw for draw: the
    same floating-point operations in the same order as
    :func:`~rjtrial.randomise.engines.minimisation_probabilities` and
    :func:`~rjtrial.randomise.engines.choose` (checked against ``allocate_cohort`` in the
    tests; the spread is taken by scalar comparisons, not ``array.max()``, which on arrays of
    two or three arms cost ten times the rest). Compiled because the vectorised numpy version
    (:func:`rjtrial.randomise.vectorised.minimisation_paths`) spends ~0.3 s per 1,000
    re-randomisations of 200 referrals in per-step overhead, ~30 s for 10,000 x 2,000.
    """
    global _KERNEL
    if _KERNEL is None:
        from numba import njit

        _KERNEL = njit(cache=True, nogil=True)(_minimise_rows)
    return _KERNEL


def _minimise_rows(levels, max_levels, ratio, weights, probability, variance, uniforms):
    rows, n = uniforms.shape
    n_factors, k = levels.shape[2], ratio.size
    shared = levels.shape[0] == 1
    out = np.empty((rows, n), dtype=np.int8)
    counts = np.zeros((n_factors, max_levels, k), dtype=np.int64)
    totals, scaled, probs = np.empty(k), np.empty(k), np.empty(k)
    ratio_total = 0.0
    for a in range(k):
        ratio_total += ratio[a]
    for r in range(rows):
        row = 0 if shared else r
        counts[:] = 0
        for t in range(n):
            for j in range(k):
                totals[j] = 0.0
            for f in range(n_factors):
                level = levels[row, t, f]
                for j in range(k):  # the participant added to arm j
                    for a in range(k):
                        scaled[a] = (counts[f, level, a] + (1.0 if a == j else 0.0)) / ratio[a]
                    if variance:  # numpy's var(ddof=1): mean first, then squared deviations
                        mean = 0.0
                        for a in range(k):
                            mean += scaled[a]
                        mean = mean / k
                        spread = 0.0
                        for a in range(k):
                            spread += (scaled[a] - mean) * (scaled[a] - mean)
                        spread = spread / (k - 1)
                    else:  # max - min, by scalar comparisons (exact, as numpy's)
                        high = scaled[0]
                        low = scaled[0]
                        for a in range(1, k):
                            if scaled[a] > high:
                                high = scaled[a]
                            if scaled[a] < low:
                                low = scaled[a]
                        spread = high - low
                    totals[j] += weights[f] * spread
            smallest = totals[0]
            for j in range(1, k):
                if totals[j] < smallest:
                    smallest = totals[j]
            best_total, rest_total, n_best = 0.0, 0.0, 0
            for j in range(k):
                if abs(totals[j] - smallest) <= 1e-12:  # numpy.isclose(atol=1e-12, rtol=0)
                    n_best += 1
                    best_total += ratio[j]
                else:
                    rest_total += ratio[j]
            for j in range(k):
                if n_best == k:
                    probs[j] = ratio[j] / ratio_total
                elif abs(totals[j] - smallest) <= 1e-12:
                    probs[j] = probability * ratio[j] / best_total
                else:
                    probs[j] = (1.0 - probability) * ratio[j] / rest_total
            for j in range(1, k):  # engines.choose: normalised cumulative, inverse CDF
                probs[j] += probs[j - 1]
            arm = 0
            u = uniforms[r, t]
            for j in range(k):
                if probs[j] / probs[k - 1] <= u:
                    arm += 1
            arm = min(arm, k - 1)
            out[r, t] = arm
            for f in range(n_factors):
                counts[f, levels[row, t, f], arm] += 1
    return out
