"""Allocation engines: simple, permuted blocks, Efron's biased coin, minimisation.

Arms are integer indices into ``protocol.arms`` (0 is the control); ``ratio`` is the
allocation ratio, one positive integer per arm. Every function that draws takes a
``numpy.random.Generator`` (or a seed), or a trial's keyed generator
(:class:`~rjtrial.randomise.keyed.KeyedGenerator`), and nothing else random: no
global state.

The adaptive rules (biased coin, minimisation) are split into a deterministic part,
the allocation *probabilities* given the history, and :func:`choose`, which turns
one uniform draw into an arm. The registry seals the uniform draws, so that an
auditor can recompute every adaptive allocation from the revealed draw and the
history alone.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rjtrial.randomise.keyed import KeyedGenerator

RNGLike = int | np.random.Generator | np.random.SeedSequence | KeyedGenerator | None
#: What numpy.random.default_rng accepts (no keyed draws).
SeedLike = int | np.random.Generator | np.random.SeedSequence | None


def as_generator(rng: RNGLike) -> np.random.Generator | KeyedGenerator:
    """Resolve ``rng`` (seed, SeedSequence or Generator) with ``numpy.random.default_rng``.

    A :class:`~rjtrial.randomise.keyed.KeyedGenerator` (a trial's secret draws) is used as it is.
    """
    if isinstance(rng, (np.random.Generator, KeyedGenerator)):
        return rng
    return np.random.default_rng(rng)


def _ratio(ratio: Sequence[int]) -> np.ndarray:
    r = np.asarray(ratio, dtype=np.int64)
    if r.ndim != 1 or r.size < 2 or (r <= 0).any():
        raise ValueError(f"ratio must be two or more positive integers, got {list(ratio)!r}")
    return r


def choose(probabilities: Sequence[float] | np.ndarray, u: float) -> int:
    """Arm chosen by the uniform draw ``u`` in [0, 1) from ``probabilities`` (inverse CDF).

    Deterministic: the same probabilities and draw always give the same arm, which is
    what lets :func:`rjtrial.registry` verify adaptive allocations.
    """
    if not 0.0 <= u < 1.0:
        raise ValueError(f"u must lie in [0, 1), got {u!r}")
    cumulative = np.cumsum(np.asarray(probabilities, dtype=float))
    cumulative /= cumulative[-1]
    return min(int(np.searchsorted(cumulative, u, side="right")), len(cumulative) - 1)


# ----------------------------------------------------------------- fixed sequences
def simple(ratio: Sequence[int], n: int, *, rng: RNGLike) -> np.ndarray:
    """Simple (complete) randomisation: each allocation independent, P(arm k) = ratio_k / sum(ratio)."""
    r = _ratio(ratio)
    return as_generator(rng).choice(r.size, size=n, p=r / r.sum()).astype(np.int64)


def permuted_blocks(
    ratio: Sequence[int],
    n: int,
    *,
    block_sizes: Sequence[int],
    rng: RNGLike,
    block_weights: Sequence[float] | None = None,
) -> np.ndarray:
    """Permuted blocks: each block holds ``size / sum(ratio)`` copies of the ratio, shuffled.

    Block sizes are drawn at random from ``block_sizes`` (with probabilities
    ``block_weights``, equal by default) so that the end of a block cannot be
    foreseen. The sequence is truncated to ``n``; the last block may be incomplete.

    Returns
    -------
    numpy.ndarray of int
        ``n`` arm indices.

    Examples
    --------
    >>> seq = permuted_blocks([1, 2], 12, block_sizes=[6], rng=1)
    >>> [int(c) for c in np.bincount(seq)]  # two whole blocks of six: exactly 1:2
    [4, 8]
    """
    r = _ratio(ratio)
    sizes = np.asarray(block_sizes, dtype=np.int64)
    if sizes.size == 0 or (sizes <= 0).any() or (sizes % r.sum()).any():
        raise ValueError(f"block sizes {list(block_sizes)} must be positive multiples of sum(ratio) = {r.sum()}")
    weights = None if block_weights is None else np.asarray(block_weights, dtype=float) / np.sum(block_weights)
    gen = as_generator(rng)
    out = np.empty(n + int(sizes.max()), dtype=np.int64)
    filled = 0
    while filled < n:
        size = int(gen.choice(sizes, p=weights))
        block = np.repeat(np.arange(r.size), r * (size // r.sum()))
        out[filled : filled + size] = gen.permutation(block)
        filled += size
    return out[:n]


def biased_coin_probabilities(counts: Sequence[int], ratio: Sequence[int], probability: float) -> np.ndarray:
    """Efron's biased coin: the arm behind its share gets ``probability``.

    With counts (n0, n1) and ratio (r0, r1) the imbalance is ``n0 * r1 - n1 * r0``;
    when it is zero the arms get their ratio shares. For 1:1 this is Efron (1971),
    Biometrika 58:403-417, doi:10.1093/biomet/58.3.403.
    """
    r = _ratio(ratio)
    if r.size != 2:
        raise ValueError("the biased coin is defined for two arms")
    n0, n1 = counts
    imbalance = n0 * r[1] - n1 * r[0]
    if imbalance == 0:
        return r / r.sum()
    if imbalance > 0:  # control ahead: favour arm 1
        return np.array([1.0 - probability, probability])
    return np.array([probability, 1.0 - probability])


def biased_coin(ratio: Sequence[int], n: int, *, probability: float = 2 / 3, rng: RNGLike) -> np.ndarray:
    """A sequence of ``n`` allocations by Efron's biased coin (see :func:`biased_coin_probabilities`)."""
    uniforms = as_generator(rng).random(n)
    counts = [0, 0]
    out = np.empty(n, dtype=np.int64)
    for i, u in enumerate(uniforms):
        arm = choose(biased_coin_probabilities(counts, ratio, probability), float(u))
        counts[arm] += 1
        out[i] = arm
    return out


# ------------------------------------------------------------------- minimisation
def minimisation_probabilities(
    counts: Sequence[np.ndarray],
    levels: Sequence[int],
    ratio: Sequence[int],
    *,
    weights: Sequence[float],
    probability: float,
    imbalance: str = "range",
) -> np.ndarray:
    """Pocock–Simon minimisation: allocation probabilities for the next participant.

    Parameters
    ----------
    counts : sequence of arrays, one per factor, each of shape (n_levels, n_arms)
        How many participants already allocated have each level of the factor, by arm.
    levels : sequence of int
        The new participant's level (index) of each factor.
    ratio : sequence of int
        Allocation ratio.
    weights : sequence of float
        Factor weights.
    probability : float
        Probability given to the arm(s) that minimise the total imbalance.
    imbalance : {"range", "variance"}
        Imbalance of the ratio-scaled counts ``n_k / ratio_k`` within a level.

    Returns
    -------
    numpy.ndarray
        One probability per arm.

    Notes
    -----
    For each candidate arm ``k`` the new participant is added to arm ``k`` in every
    factor; the imbalance of the ratio-scaled counts at the participant's level is
    summed over factors with the weights: ``G_k``. When every arm gives the same
    ``G_k`` the arms get their ratio shares. Otherwise the minimising arms share
    ``probability`` and the others share ``1 - probability``, each in proportion
    to the ratio (Pocock & Simon 1975, Biometrics 31:103-115, doi:10.2307/2529712;
    unequal ratios as in Han, Enas & McEntegart 2009, Stat Med 28:3329-3346).
    """
    r = _ratio(ratio).astype(float)
    if imbalance not in ("range", "variance"):
        raise ValueError(f"imbalance must be 'range' or 'variance', got {imbalance!r}")
    # Plain floats: with two or three arms, numpy's per-call overhead was 90% of a
    # minimised simulation's time. The arithmetic is the same as on arrays.
    ratios = r.tolist()
    k = len(ratios)
    totals = [0.0] * k
    for factor_counts, level, weight in zip(counts, levels, weights):
        base = [float(c) for c in factor_counts[level]]
        for j in range(k):  # the participant added to arm j
            scaled = [(base[a] + (1.0 if a == j else 0.0)) / ratios[a] for a in range(k)]
            if imbalance == "range":
                spread = max(scaled) - min(scaled)
            else:
                mean = sum(scaled) / k
                spread = sum((x - mean) ** 2 for x in scaled) / (k - 1)
            totals[j] += weight * spread
    low = min(totals)
    best = np.array([abs(t - low) <= 1e-12 for t in totals])
    if best.all():
        return r / r.sum()
    probs = np.where(best, probability * r / r[best].sum(), (1.0 - probability) * r / r[~best].sum())
    return probs


def minimise(
    levels: np.ndarray,
    n_levels: Sequence[int],
    ratio: Sequence[int],
    *,
    weights: Sequence[float] | None = None,
    probability: float = 0.8,
    imbalance: str = "range",
    rng: RNGLike = None,
    uniforms: Sequence[float] | None = None,
) -> np.ndarray:
    """Allocate a cohort, one participant after another, by minimisation.

    Parameters
    ----------
    levels : array of int, shape (n, n_factors)
        Each participant's level index for each minimisation factor, in arrival order.
    n_levels : sequence of int
        Number of levels of each factor.
    uniforms : sequence of float, optional
        The draws to use (one per participant); drawn from ``rng`` when omitted.

    Returns
    -------
    numpy.ndarray of int
        The arm of each participant.
    """
    levels = np.asarray(levels, dtype=np.int64)
    n, n_factors = levels.shape
    k = len(ratio)
    weights = [1.0] * n_factors if weights is None else list(weights)
    draws = np.asarray(as_generator(rng).random(n) if uniforms is None else uniforms, dtype=float)
    counts = [np.zeros((m, k), dtype=np.int64) for m in n_levels]
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        probs = minimisation_probabilities(
            counts, levels[i], ratio, weights=weights, probability=probability, imbalance=imbalance
        )
        arm = choose(probs, float(draws[i]))
        for f in range(n_factors):
            counts[f][levels[i, f], arm] += 1
        out[i] = arm
    return out
