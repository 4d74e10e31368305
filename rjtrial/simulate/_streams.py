"""Named random streams of a batch of simulated trials (one numpy Generator per quantity).

A batch of ``R`` replicate trials (``R = 1`` for :func:`rjtrial.simulate.simulate_trial`)
draws each quantity from its own :class:`numpy.random.Generator` (PCG64), seeded from the
batch's :class:`numpy.random.SeedSequence` and the quantity's *name*:
``SeedSequence(entropy, spawn_key=(*batch.spawn_key, NAMES.index(name), *more))``. Two
consequences, both relied on:

* adding a quantity, or drawing more or fewer values of one, never changes another;
* quantities of people are drawn *person-major*, as arrays of shape ``(n, R)`` (person
  ``i`` of every replicate, then person ``i + 1``), and the samplers numpy uses consume
  their stream in order, so the first ``n`` people of a batch are the same whatever the
  trial's size: trials of different sizes drawn from one seed share their first people
  (common random numbers, for power curves and the sample-size search).
"""

from __future__ import annotations

import numpy as np

__all__ = ["NAMES", "Streams", "seed_label", "seed_sequence"]

#: Every stream, in a fixed order (the order is part of what a seed means: append only).
NAMES = (
    "arrivals",  # gaps between eligible referrals; the first ineligible referral
    "people",  # site, index offence type, age, sex, strata drawn by shares (uniforms)
    "allocation",  # the protocol's random element (spawned per sequence for blocks)
    "treatment",  # conference held
    "frailty",
    "death",
    "index",  # the index offence: convicted, custody (uniforms)
    "index_sentence",
    "index_length",
    "prior_count",  # offences before assignment that lead to custody
    "prior_marks",
    "prior_lag",
    "prior_length",
    "post_count",  # offences after assignment, up to the end of the follow-up window
    "post_marks",
    "post_lag",
    "post_length",
    "late_count",  # offences after the window whose custody can delay a conviction of one in it
    "late_marks",
    "late_lag",
    "late_length",
    # what only the records of a whole trial need (simulate_trial)
    "referrals_ineligible",
    "answers",
    "conference_delay",
    "index_date",
    "other_count",  # offences before assignment that lead to no custody
    "other_marks",
    "other_lag",
    "victims",
    "after_count",  # the other offences after the follow-up window, up to extraction
    "after_marks",
    "after_lag",
    "after_length",
)


def seed_sequence(rng, *, name: str = "rng") -> np.random.SeedSequence:
    """The SeedSequence behind ``rng``: a SeedSequence as it is (copied: spawning changes
    it); an int seed or a Generator through one draw of ``numpy.random.default_rng(rng)``
    (so seed ``s`` and ``default_rng(s)`` give the same draws)."""
    if isinstance(rng, np.random.SeedSequence):
        return np.random.SeedSequence(rng.entropy, spawn_key=rng.spawn_key, pool_size=rng.pool_size)
    if isinstance(rng, np.random.Generator) or (
        isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and int(rng) >= 0
    ):
        return np.random.SeedSequence(int(np.random.default_rng(rng).integers(0, 2**63)))
    raise ValueError(f"{name} must be a non-negative int seed, a numpy SeedSequence or a Generator, got {rng!r}")


def seed_label(rng, seed: np.random.SeedSequence) -> str:
    """What to record as the seed: the int given, else the SeedSequence's entropy (and spawn key)."""
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return str(int(rng))
    return str(seed.entropy) + (f" (spawn key {tuple(seed.spawn_key)})" if seed.spawn_key else "")


class Streams:
    """The named generators of one batch, from its SeedSequence ``seed``."""

    def __init__(self, seed: np.random.SeedSequence):
        self.seed = seed

    def __call__(self, name: str, *more: int) -> np.random.Generator:
        """A fresh Generator for stream ``name`` (and sub-stream ``more``, e.g. a sequence index)."""
        key = (*self.seed.spawn_key, NAMES.index(name), *more)
        child = np.random.SeedSequence(self.seed.entropy, spawn_key=key, pool_size=self.seed.pool_size)
        return np.random.Generator(np.random.PCG64(child))
