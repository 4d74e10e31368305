"""Compiled (numba) allocation engines, for many cohorts at once: re-randomisation tests and
simulated replicate trials. Each reproduces :mod:`rjtrial.randomise.engines` draw for draw
given the same uniforms (tests/test_rerandomisation.py, tests/test_simulate_allocation.py).
"""

from __future__ import annotations

import numpy as np

__all__ = ["arrange_blocks", "minimisation_kernel"]

_KERNEL = None
_BLOCKS = None


def minimisation_kernel():
    """Minimisation of one cohort per row of uniforms, compiled with numba on first use.

    ``levels`` has shape ``(1, n, n_factors)`` (one cohort, re-randomised on every row) or
    ``(rows, n, n_factors)`` (a cohort per row: simulated replicate trials).
    Row ``r`` is ``engines.minimise(levels[r], ..., uniforms=uniforms[r])`` draw for draw: the
    same floating-point operations in the same order as
    :func:`~rjtrial.randomise.engines.minimisation_probabilities` and
    :func:`~rjtrial.randomise.engines.choose` (checked against ``allocate_cohort`` in the
    tests; the spread is taken by scalar comparisons, not ``array.max()``, which on arrays of
    two or three arms cost ten times the rest). Every division the rule makes is made once,
    before the first participant: the scaled counts ``c / ratio[a]`` for every count ``c``
    the cohort can reach, and the normalised cumulative probabilities for every set of
    arms that can tie for the least imbalance (the same divisions of the same numbers as
    the engine's, looked up instead of repeated). Compiled because the vectorised numpy version
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
    # every scaled count the rule can meet: c / ratio[a] for c = 0 .. n + 1
    scaled = np.empty((k, n + 2))
    for a in range(k):
        for c in range(n + 2):
            scaled[a, c] = (c + 0.0) / ratio[a]
    # the normalised cumulative probabilities for each set of best arms (bit j: arm j best)
    ratio_total = 0.0
    for a in range(k):
        ratio_total += ratio[a]
    masks = 1 << k
    thresholds = np.zeros((masks, k))
    probs = np.empty(k)
    for mask in range(1, masks):
        n_best = 0
        best_total, rest_total = 0.0, 0.0
        for j in range(k):
            if (mask >> j) & 1:
                n_best += 1
                best_total += ratio[j]
            else:
                rest_total += ratio[j]
        for j in range(k):
            if n_best == k:
                probs[j] = ratio[j] / ratio_total
            elif (mask >> j) & 1:
                probs[j] = probability * ratio[j] / best_total
            else:
                probs[j] = (1.0 - probability) * ratio[j] / rest_total
        for j in range(1, k):  # engines.choose: normalised cumulative, inverse CDF
            probs[j] += probs[j - 1]
        for j in range(k):
            thresholds[mask, j] = probs[j] / probs[k - 1]
    totals = np.empty(k)
    for r in range(rows):
        row = 0 if shared else r
        counts[:] = 0
        for t in range(n):
            for j in range(k):
                totals[j] = 0.0
            for f in range(n_factors):
                level = levels[row, t, f]
                wf = weights[f]
                for j in range(k):  # the participant added to arm j
                    if variance:  # numpy's var(ddof=1): mean first, then squared deviations
                        mean = 0.0
                        for a in range(k):
                            mean += scaled[a, counts[f, level, a] + (1 if a == j else 0)]
                        mean = mean / k
                        spread = 0.0
                        for a in range(k):
                            d = scaled[a, counts[f, level, a] + (1 if a == j else 0)] - mean
                            spread += d * d
                        spread = spread / (k - 1)
                    else:  # max - min, by scalar comparisons (exact, as numpy's)
                        high = scaled[0, counts[f, level, 0] + (1 if j == 0 else 0)]
                        low = high
                        for a in range(1, k):
                            v = scaled[a, counts[f, level, a] + (1 if a == j else 0)]
                            high = v if v > high else high
                            low = v if v < low else low
                        spread = high - low
                    totals[j] += wf * spread
            smallest = totals[0]
            for j in range(1, k):
                smallest = totals[j] if totals[j] < smallest else smallest
            mask = 0  # the arms within numpy.isclose(atol=1e-12, rtol=0) of the least imbalance
            for j in range(k):
                if abs(totals[j] - smallest) <= 1e-12:
                    mask |= 1 << j
            arm = 0
            u = uniforms[r, t]
            for j in range(k):
                arm += 1 if thresholds[mask, j] <= u else 0
            arm = min(arm, k - 1)
            out[r, t] = arm
            for f in range(n_factors):
                counts[f, levels[row, t, f], arm] += 1
    return out


def arrange_blocks():
    """:func:`rjtrial.randomise.vectorised.block_paths`'s arrangement step, compiled with numba
    on first use: ``_arrange_blocks(chosen, keys, cumulative, length)``.

    Row ``r`` is a sequence of blocks of sizes ``chosen[r]``, each holding ``size // sum(ratio)``
    copies of the arms in order (``cumulative`` is ``cumsum(ratio)``), arranged by sorting
    the block's positions on their keys ``b + keys[r, p]`` (``b`` the block's number) -- the
    order ``argsort(block + keys)`` gives, found block by block (a few positions each)
    instead of by sorting whole rows. Returns the first ``length`` positions of each row.
    """
    global _BLOCKS
    if _BLOCKS is None:
        from numba import njit

        _BLOCKS = njit(cache=True, nogil=True)(_arrange_blocks)
    return _BLOCKS


def _arrange_blocks(chosen, keys, cumulative, length):
    rows = keys.shape[0]
    per_round = cumulative[cumulative.size - 1]
    out = np.empty((rows, length), dtype=np.int64)
    largest = 0
    for r in range(rows):
        for b in range(chosen.shape[1]):
            if chosen[r, b] > largest:
                largest = chosen[r, b]
    order = np.empty(largest, dtype=np.int64)
    key = np.empty(largest)
    for r in range(rows):
        start = 0
        b = 0
        while start < length:
            size = chosen[r, b]
            copies = size // per_round
            for q in range(size):  # insertion sort of the block's positions on their keys (stable)
                value = b + keys[r, start + q]
                i = q - 1
                while i >= 0 and key[i] > value:
                    key[i + 1] = key[i]
                    order[i + 1] = order[i]
                    i -= 1
                key[i + 1] = value
                order[i + 1] = q
            for j in range(min(size, length - start)):
                slot = order[j] // copies  # the arm whose copies hold this position of the block
                arm = 0
                while arm < cumulative.size and cumulative[arm] <= slot:
                    arm += 1
                out[r, start + j] = arm
            start += size
            b += 1
    return out
