"""Vectorised simulation of whole trials, for the design metrics.

Each function draws many simulated trials at once (axis 0) with the protocol's own
allocation rules. The adaptive samplers reproduce :mod:`rjtrial.randomise.engines`
draw for draw given the same uniforms (``biased_coin_paths``, ``minimisation_paths``);
``block_paths`` has the law of :func:`~rjtrial.randomise.engines.permuted_blocks`.
The tests in ``tests/test_randomise_metrics.py`` check both. Used by the design metrics
(:mod:`rjtrial.randomise.metrics`) and the re-randomisation test
(:mod:`rjtrial.rerandomisation`).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from rjtrial.protocol import Protocol
from rjtrial.randomise.compiled import arrange_blocks


def simulate_trials(
    protocol: Protocol, n: int, n_simulations: int, gen: np.random.Generator, probabilities: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strata and arms of ``n`` referrals in each of ``n_simulations`` trials.

    ``probabilities`` gives each factor's level probabilities; factors are drawn
    independently per referral. Returns ``arms`` and ``sequence`` (the index of the
    referral's sequence in ``protocol.sequence_keys()``), both ``(n_simulations, n)``,
    and ``levels``, ``(n_simulations, n, n_factors)``, in the order of ``protocol.strata``.
    """
    spec = protocol.randomisation
    shape = (n_simulations, n)
    names = list(protocol.strata)
    levels = np.zeros((*shape, len(names)), dtype=np.int64)
    for f, name in enumerate(names):
        levels[:, :, f] = gen.choice(len(probabilities[name]), size=shape, p=probabilities[name])

    sequence = np.zeros(shape, dtype=np.int64)
    if spec.method == "stratified_blocks":
        for name in spec.stratify_by:  # row-major over stratify_by, as in sequence_keys()
            sequence = sequence * len(protocol.strata[name]) + levels[:, :, names.index(name)]

    if spec.method == "simple":
        r = np.asarray(protocol.ratio, dtype=float)
        cdf = np.cumsum(r / r.sum())
        arms = np.minimum(np.searchsorted(cdf / cdf[-1], gen.random(shape), side="right"), r.size - 1)
    elif spec.method in ("blocks", "stratified_blocks"):
        arms = stratified_block_paths(protocol, sequence, gen)
    elif spec.method == "biased_coin":
        arms = biased_coin_paths(protocol.ratio, spec.favoured_probability, gen.random(shape))
    elif spec.method == "minimisation":
        which = [names.index(f) for f in spec.factors]
        arms = minimisation_paths(
            levels[:, :, which],
            [len(protocol.strata[f]) for f in spec.factors],
            protocol.ratio,
            weights=spec.weights,
            probability=spec.favoured_probability,
            imbalance=spec.imbalance,
            uniforms=gen.random(shape),
        )
    else:  # pragma: no cover - Protocol validates the method
        raise ValueError(f"unknown method {spec.method!r}")
    return arms.astype(np.int64), sequence, levels


def block_paths(ratio, sizes, weights, rows, length, gen) -> np.ndarray:
    """``rows`` independent permuted-block sequences of ``length``, vectorised.

    Same law as :func:`~rjtrial.randomise.engines.permuted_blocks`: block sizes drawn
    with ``weights``; each block a uniformly random arrangement of its arms (its positions
    sorted on uniform keys, by the compiled :func:`rjtrial.randomise.compiled.arrange_blocks`).
    """
    r = np.asarray(ratio, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.int64)
    total = length + int(sizes.max())  # covers the whole block holding position length - 1
    n_blocks = -(-total // int(sizes.min()))
    chosen = sizes[gen.choice(sizes.size, size=(rows, n_blocks), p=np.asarray(weights) / np.sum(weights))]
    keys = gen.random((rows, total))  # shuffle within each block: positions sorted on block + key
    return arrange_blocks()(chosen, keys, np.cumsum(r), int(length))


def stratified_block_paths(protocol, sequence, gen) -> np.ndarray:
    """Arms when referral ``i`` takes the next slot of its sequence ``sequence[:, i]``."""
    n_simulations, n = sequence.shape
    n_sequences = len(protocol.sequence_keys())
    order = np.argsort(sequence, axis=1, kind="stable")
    ordered = np.take_along_axis(sequence, order, axis=1)
    position = np.broadcast_to(np.arange(n), sequence.shape)
    first = np.ones(sequence.shape, dtype=bool)
    first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    rank_ordered = position - np.maximum.accumulate(np.where(first, position, 0), axis=1)
    rank = np.empty_like(sequence)
    np.put_along_axis(rank, order, rank_ordered, axis=1)
    spec = protocol.randomisation
    paths = block_paths(
        protocol.ratio, spec.block_sizes, spec.block_weights, n_simulations * n_sequences, int(rank.max()) + 1, gen
    ).reshape(n_simulations, n_sequences, -1)
    return paths[np.arange(n_simulations)[:, None], sequence, rank]


def biased_coin_paths(ratio, probability, uniforms) -> np.ndarray:
    """Efron's coin for each row of ``uniforms``; row ``i`` equals
    ``engines.biased_coin(ratio, n, probability=probability, rng=g)`` when ``g.random(n)``
    gives that row."""
    r0, r1 = ratio
    share0, share1 = np.asarray(ratio, dtype=float) / float(r0 + r1)
    rows, n = uniforms.shape
    counts = np.zeros((rows, 2), dtype=np.int64)
    arms = np.empty((rows, n), dtype=np.int64)
    index = np.arange(rows)
    for t in range(n):
        d = counts[:, 0] * r1 - counts[:, 1] * r0
        p0 = np.where(d == 0, share0, np.where(d > 0, 1.0 - probability, probability))
        p1 = np.where(d == 0, share1, np.where(d > 0, probability, 1.0 - probability))
        arms[:, t] = (p0 / (p0 + p1) <= uniforms[:, t]).astype(np.int64)  # engines.choose, two arms
        counts[index, arms[:, t]] += 1
    return arms


def minimisation_paths(levels, n_levels, ratio, *, weights, probability, imbalance, uniforms) -> np.ndarray:
    """Minimisation for each simulated trial (axis 0), vectorised over trials.

    Row ``i`` equals ``engines.minimise(levels[i], n_levels, ratio, ..., uniforms=uniforms[i])``.
    """
    rows, n, n_factors = levels.shape
    r = np.asarray(ratio, dtype=float)
    k = r.size
    index = np.arange(rows)
    counts = [np.zeros((rows, m, k), dtype=np.int64) for m in n_levels]
    arms = np.empty((rows, n), dtype=np.int64)
    eye = np.eye(k)
    for t in range(n):
        totals = np.zeros((rows, k))
        for f, weight in enumerate(weights):
            base = counts[f][index, levels[:, t, f]].astype(float)
            scaled = (base[:, None, :] + eye) / r  # [i, j, :]: the referral added to arm j
            if imbalance == "range":
                spread = scaled.max(axis=2) - scaled.min(axis=2)
            else:
                spread = scaled.var(axis=2, ddof=1)
            totals += weight * spread
        best = np.isclose(totals, totals.min(axis=1, keepdims=True), rtol=0.0, atol=1e-12)
        with np.errstate(divide="ignore", invalid="ignore"):
            probs = np.where(
                best,
                probability * r / (r * best).sum(axis=1, keepdims=True),
                (1.0 - probability) * r / (r * ~best).sum(axis=1, keepdims=True),
            )
        probs[best.all(axis=1)] = r / r.sum()
        cumulative = np.cumsum(probs, axis=1)
        cumulative /= cumulative[:, -1:]
        arm = np.minimum((cumulative <= uniforms[:, t, None]).sum(axis=1), k - 1)
        arms[:, t] = arm
        for f in range(n_factors):
            counts[f][index, levels[:, t, f], arm] += 1
    return arms
