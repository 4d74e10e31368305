"""The allocations of a re-randomisation test: the trial's design drawn again.

See :mod:`rjtrial.rerandomisation` (module notes, "How the allocations are
drawn") for how each randomisation method is reproduced and seeded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from rjtrial.errors import DataError
from rjtrial.protocol import Protocol
from rjtrial.randomise import engines, vectorised
from rjtrial.randomise.compiled import minimisation_kernel

#: Re-randomisations per chunk (each chunk has its own seed; see the module notes).
CHUNK_SIZE = 1000
MAX_REPS = 10_000_000
PARTICIPANTS = "participants"


# ------------------------------------------------------------------------------ design
@dataclass(frozen=True)
class _Design:
    """The trial's design and its participants in enrolment order."""

    protocol: Protocol
    sequence: np.ndarray  # index of each participant's sequence in protocol.sequence_keys()
    levels: np.ndarray  # (n, n_factors): minimisation factor levels (empty for other methods)

    @property
    def n(self) -> int:
        return int(self.sequence.size)


def _design(protocol: Protocol, strata_rows: list[Mapping[str, str]]) -> _Design:
    spec = protocol.randomisation
    keys = {key: i for i, key in enumerate(protocol.sequence_keys())}
    sequence = np.array([keys[protocol.sequence_key(row)] for row in strata_rows], dtype=np.int64)
    if spec.is_adaptive:
        index = [{level: i for i, level in enumerate(protocol.strata[f])} for f in spec.factors]
        levels = np.array(
            [[index[j][row[f]] for j, f in enumerate(spec.factors)] for row in strata_rows], dtype=np.int64
        ).reshape(len(strata_rows), len(spec.factors))
    else:
        levels = np.zeros((len(strata_rows), 0), dtype=np.int64)
    return _Design(protocol, sequence, levels)


def _chunk_seed(root: np.random.SeedSequence, chunk: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, chunk))


def _cohort_generator(child: np.random.SeedSequence, *, spawned: bool) -> np.random.Generator:
    """The generator ``allocate_cohort(..., draws="generator")`` draws with when given ``child``:
    it first draws a seed; minimisation draws from it directly, the fixed methods from the
    (single) sequence spawned from it."""
    seed = np.random.SeedSequence(int(np.random.Generator(np.random.PCG64(child)).integers(0, 2**63)))
    return np.random.Generator(np.random.PCG64(seed.spawn(1)[0] if spawned else seed))


def _allocate_chunk(design: _Design, root: np.random.SeedSequence, chunk: int, size: int) -> np.ndarray:
    """``size`` re-randomisations (rows) of the design; arms as indices into ``protocol.arms``."""
    return _chunk_arms(design, root, chunk, size, _chunk_draws(design, root, chunk, size))


def _chunk_draws(design: _Design, root: np.random.SeedSequence, chunk: int, size: int) -> np.ndarray | None:
    """The part of a chunk drawn one re-randomisation at a time in Python (it holds the GIL):
    the arms of simple randomisation (one ``Generator.choice`` each, as ``allocate_cohort``
    draws them); None for the other methods, drawn by :func:`_chunk_arms`."""
    protocol = design.protocol
    if protocol.randomisation.method != "simple":
        return None
    children = _chunk_seed(root, chunk).spawn(size)
    rows = [engines.simple(protocol.ratio, design.n, rng=_cohort_generator(child, spawned=True)) for child in children]
    return np.array(rows, dtype=np.int8).reshape(size, design.n)


def _chunk_arms(
    design: _Design, root: np.random.SeedSequence, chunk: int, size: int, draws: np.ndarray | None
) -> np.ndarray:
    """The chunk's arms (from :func:`_chunk_draws`' draws for simple randomisation): array and
    compiled work, which releases the GIL (so pool threads run it while the calling thread
    draws the next chunk)."""
    protocol = design.protocol
    spec = protocol.randomisation
    n = design.n
    if spec.method in ("blocks", "stratified_blocks"):
        # One permuted-block sequence per stratum present; referral i takes slot rank[i] of
        # its stratum's sequence (as in vectorised.stratified_block_paths, whose sequences
        # are the same for every row here, so the ranks are computed once).
        used, stratum = np.unique(design.sequence, return_inverse=True)
        rank = np.zeros(n, dtype=np.int64)
        for s in range(used.size):
            members = np.flatnonzero(stratum == s)
            rank[members] = np.arange(members.size)
        gen = np.random.Generator(np.random.PCG64(_chunk_seed(root, chunk)))
        paths = vectorised.block_paths(
            protocol.ratio, spec.block_sizes, spec.block_weights, size * used.size, int(rank.max()) + 1, gen
        ).reshape(size, used.size, -1)
        return paths[:, stratum, rank].astype(np.int8)
    if spec.method == "simple":
        assert draws is not None
        return draws
    # each row's uniforms as allocate_cohort derives them from the row's seed (compiled;
    # numba is imported on first use)
    from rjtrial.rerandomisation._seeds import chunk_uniforms

    draws = chunk_uniforms(root, chunk, size, n, spawned=not spec.is_adaptive)
    if spec.method == "biased_coin":
        return vectorised.biased_coin_paths(protocol.ratio, spec.favoured_probability, draws).astype(np.int8)
    if spec.method == "minimisation":
        return minimisation_kernel()(
            design.levels[None],  # one cohort's levels for every row
            max(len(protocol.strata[f]) for f in spec.factors),
            np.asarray(protocol.ratio, dtype=float),
            np.asarray(spec.weights, dtype=float),
            spec.favoured_probability,
            spec.imbalance == "variance",
            draws,
        )
    raise ValueError(f"unknown randomisation method {spec.method!r}")  # pragma: no cover - Protocol validates


def _chunks(reps: int) -> list[tuple[int, int]]:
    return [(c, min(CHUNK_SIZE, reps - c * CHUNK_SIZE)) for c in range(-(-reps // CHUNK_SIZE))]


def _root(rng) -> np.random.SeedSequence:
    """The root SeedSequence: from a seed, a SeedSequence, or one draw of a Generator."""
    if isinstance(rng, np.random.SeedSequence):
        return rng
    if isinstance(rng, np.random.Generator):
        return np.random.SeedSequence(int(rng.integers(0, 2**63)))
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return np.random.SeedSequence(int(rng))
    raise ValueError(
        f"rng must be a non-negative integer seed, a numpy.random.SeedSequence or a numpy.random.Generator, got {rng!r}"
    )


def _reps(reps) -> int:
    if not isinstance(reps, (int, np.integer)) or isinstance(reps, bool) or not 1 <= reps <= MAX_REPS:
        raise ValueError(f"reps must be a whole number from 1 to {MAX_REPS:,}, got {reps!r}")
    return int(reps)


def _workers(workers) -> int:
    if workers is None:
        return os.cpu_count() or 1
    if not isinstance(workers, (int, np.integer)) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a positive whole number or None, got {workers!r}")
    return int(workers)


def design_allocations(protocol: Protocol, strata: list[Mapping[str, str]], *, reps: int, rng) -> np.ndarray:
    """Re-randomised allocations of a cohort, by the protocol's design.

    Parameters
    ----------
    protocol : Protocol
    strata : list of dict
        Each participant's strata (every factor of the protocol), in enrolment order.
    reps : int
        Number of re-randomisations.
    rng : int, numpy.random.SeedSequence or numpy.random.Generator

    Returns
    -------
    numpy.ndarray of int8, shape (reps, n)
        Row ``r``: the arm (index into ``protocol.arms``) of each participant. See the
        module notes for how each method is drawn.

    Examples
    --------
    >>> p = Protocol.from_toml("synthetic/protocols/jrc-london-burglary.toml")
    >>> rows = [{"site": "london", "offence": "property"}] * 6
    >>> a = design_allocations(p, rows, reps=1000, rng=1)
    >>> a.shape, sorted(set(a.ravel().tolist()))
    ((1000, 6), [0, 1])
    >>> round(float(a[:, 0].mean()), 1)  # the first referral: either arm, 1:1
    0.5
    """
    reps = _reps(reps)
    design = _design(protocol, _check_strata_rows(protocol, strata))
    root = _root(rng)
    return np.concatenate([_allocate_chunk(design, root, c, m) for c, m in _chunks(reps)])


def _check_strata_rows(protocol: Protocol, strata) -> list[Mapping[str, str]]:
    rows = list(strata)
    for i, row in enumerate(rows):
        problems = protocol.check_strata(row)
        if problems:
            raise DataError(problems[0], table=PARTICIPANTS, row=i + 1)
    return rows
