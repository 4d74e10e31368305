"""Allocation of simulated trials by the protocol's own law, many trials at once.

Simulation needs the *law* of the protocol's randomisation, not its sealed draws: the
registry draws its secret sequence in its own way (and may change how), while a replicate
trial draws from the batch's seeded numpy streams (:mod:`rjtrial.simulate._streams`), at
compiled speed. Each method follows :mod:`rjtrial.randomise.engines`:

* ``simple``: each arm with probability ``ratio_k / sum(ratio)``, independently (the
  inverse CDF of one uniform, as ``numpy.random.Generator.choice``);
* ``blocks`` / ``stratified_blocks``: one sequence per sequence key (per stratum for
  ``stratified_blocks``, in the order of ``protocol.sequence_keys()``); block sizes drawn
  independently from ``block_sizes`` with ``block_weights``; each block a uniformly random
  arrangement of ``size / sum(ratio)`` copies of the ratio, drawn as from an urn (one
  uniform a slot); a referral takes the next slot of its sequence -- the law of
  :func:`rjtrial.randomise.engines.permuted_blocks` (tested by a two-sample test);
* ``biased_coin``: Efron's coin, draw for draw :func:`rjtrial.randomise.engines.biased_coin`
  given the same uniforms (tested);
* ``minimisation``: the compiled Pocock-Simon kernel of the re-randomisation test
  (:mod:`rjtrial.randomise.compiled`), draw for draw
  :func:`rjtrial.randomise.engines.minimise` given the same uniforms (tested).

Every array is ``(n, R)``: ``n`` referrals in arrival order, ``R`` replicate trials. The
uniforms are drawn person-major, so the first referrals' allocations do not depend on the
trial's size (see :mod:`rjtrial.simulate._streams`).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from numba import njit

from rjtrial.protocol import Protocol
from rjtrial.simulate._streams import Streams

__all__ = ["METHODS", "allocate", "sequence_index"]

METHODS = ("simple", "blocks", "stratified_blocks", "biased_coin", "minimisation")
# sub-streams of "allocation": uniforms of simple/coin/minimisation, block sizes and slots of
# sequence s, the seed of a registry's schedule
_UNIFORMS, _BLOCK_SIZES, _SLOTS, REGISTRY_SEED = 0, 1, 2, 3


def allocate(
    protocol: Protocol,
    strata: Mapping[str, np.ndarray],
    streams: Streams,
    *,
    n: int,
    replicates: int,
    method: str | None = None,
) -> np.ndarray:
    """Arm indices (into ``protocol.arms``), shape ``(n, replicates)``.

    ``strata`` maps each protocol stratum to its level codes (indices into
    ``protocol.strata[name]``), shape ``(n, replicates)``. ``method`` overrides the
    protocol's (``"simple"`` with the protocol's ratio, for the truth's populations).
    """
    spec = protocol.randomisation
    method = spec.method if method is None else method
    ratio = np.asarray(protocol.ratio, dtype=np.int64)
    shape = (n, replicates)
    if method == "simple":
        u = streams("allocation", _UNIFORMS).random(shape)
        cdf = np.cumsum(ratio / ratio.sum())
        return np.minimum(np.searchsorted(cdf / cdf[-1], u, side="right"), ratio.size - 1).astype(np.int64)
    if method == "biased_coin":
        u = streams("allocation", _UNIFORMS).random(shape)
        return _biased_coin(
            np.ascontiguousarray(u.T), int(ratio[0]), int(ratio[1]), spec.favoured_probability
        ).T.astype(np.int64)
    if method == "minimisation":
        from rjtrial.randomise.compiled import minimisation_kernel

        u = streams("allocation", _UNIFORMS).random(shape)
        levels = np.stack([strata[f] for f in spec.factors], axis=-1).transpose(1, 0, 2)  # (R, n, factors)
        arms = minimisation_kernel()(
            np.ascontiguousarray(levels, dtype=np.int64),
            max(len(protocol.strata[f]) for f in spec.factors),
            ratio.astype(float),
            np.asarray(spec.weights, dtype=float),
            spec.favoured_probability,
            spec.imbalance == "variance",
            np.ascontiguousarray(u.T),
        )
        return arms.T.astype(np.int64)
    if method in ("blocks", "stratified_blocks"):
        return _blocks(protocol, sequence_index(protocol, strata, shape), streams)
    raise ValueError(f"unknown randomisation method {method!r}")  # pragma: no cover - Protocol validates


def sequence_index(protocol: Protocol, strata: Mapping[str, np.ndarray], shape) -> np.ndarray:
    """Index of each referral's sequence in ``protocol.sequence_keys()`` (row-major over
    ``stratify_by``, as the keys are listed)."""
    index = np.zeros(shape, dtype=np.int64)
    if protocol.randomisation.method == "stratified_blocks":
        for name in protocol.randomisation.stratify_by:
            index = index * len(protocol.strata[name]) + strata[name]
    return index


def _blocks(protocol: Protocol, sequence: np.ndarray, streams: Streams) -> np.ndarray:
    spec = protocol.randomisation
    sizes = np.asarray(spec.block_sizes, dtype=np.int64)
    weights = np.asarray(spec.block_weights if len(spec.block_weights) else np.ones(sizes.size), dtype=float)
    cdf = np.cumsum(weights / weights.sum())
    cdf /= cdf[-1]
    ratio = np.asarray(protocol.ratio, dtype=np.int64)
    n, replicates = sequence.shape
    arms = np.zeros(sequence.shape, dtype=np.int64)
    column = np.broadcast_to(np.arange(replicates), sequence.shape)
    present = np.bincount(sequence.ravel(), minlength=len(protocol.sequence_keys()))
    for s in np.flatnonzero(present).tolist():  # the sequences some referral takes
        member = sequence == s
        rank = np.cumsum(member, axis=0) - 1  # the slot each member takes in its sequence
        length = int(rank[member].max()) + 1
        size_u = streams("allocation", _BLOCK_SIZES, s).random((length // int(sizes.min()) + 1, replicates))
        slot_u = streams("allocation", _SLOTS, s).random((length, replicates))
        slots = _block_slots(size_u, slot_u, sizes, cdf, ratio)
        arms[member] = slots[rank[member], column[member]]
    return arms


@njit(cache=True, nogil=True)
def _block_slots(size_u, slot_u, sizes, cdf, ratio):  # pragma: no cover - compiled
    """Slots ``(length, R)`` of permuted-block sequences: block ``b`` has size
    ``sizes[j]`` with ``j`` the inverse CDF of ``size_u[b]``; each slot draws its arm from
    what is left of its block with the uniform ``slot_u[t]`` (an urn: a random arrangement)."""
    length, replicates = slot_u.shape
    k = ratio.size
    ratio_total = 0
    for a in range(k):
        ratio_total += ratio[a]
    out = np.empty((length, replicates), dtype=np.int8)
    remaining = np.zeros(k, dtype=np.int64)
    for r in range(replicates):
        block = 0
        left = 0
        for t in range(length):
            if left == 0:
                u = size_u[block, r]
                j = 0
                while j < cdf.size - 1 and cdf[j] <= u:
                    j += 1
                block += 1
                copies = sizes[j] // ratio_total
                for a in range(k):
                    remaining[a] = ratio[a] * copies
                left = sizes[j]
            pick = slot_u[t, r] * left
            arm = k - 1
            acc = 0.0
            for a in range(k):
                acc += remaining[a]
                if pick < acc:
                    arm = a
                    break
            out[t, r] = arm
            remaining[arm] -= 1
            left -= 1
    return out


@njit(cache=True, nogil=True)
def _biased_coin(uniforms, r0, r1, probability):  # pragma: no cover - compiled
    """Efron's coin on each row of ``uniforms`` (R, n), as :func:`rjtrial.randomise.engines.biased_coin`:
    the same probabilities, normalised as :func:`~rjtrial.randomise.engines.choose` does."""
    rows, n = uniforms.shape
    out = np.empty((rows, n), dtype=np.int8)
    for r in range(rows):
        c0 = 0
        c1 = 0
        for t in range(n):
            d = c0 * r1 - c1 * r0
            if d == 0:
                p0 = r0 / (r0 + r1)
                p1 = r1 / (r0 + r1)
            elif d > 0:
                p0 = 1.0 - probability
                p1 = probability
            else:
                p0 = probability
                p1 = 1.0 - probability
            arm = 1 if p0 / (p0 + p1) <= uniforms[r, t] else 0
            out[r, t] = arm
            if arm == 1:
                c1 += 1
            else:
                c0 += 1
    return out
