"""Many replicate trials of one scenario at once, as arrays: the fast path of power by simulation.

A *batch* of ``R`` replicate trials of ``n`` randomised people is drawn at once, every
quantity as an ``(n, R)`` array from the batch's named streams
(:mod:`rjtrial.simulate._streams`), by the generator's own code:
:func:`rjtrial.simulate._people.draw_people` (the randomised referrals),
:func:`rjtrial.simulate._allocation.allocate` (the protocol's law), the conference held,
and :func:`rjtrial.simulate._offending.offending` with ``scope="followup"``, which draws
only what the follow-up table depends on and computes it in a compiled kernel. No data
frame is made per replicate. A batch of one (``R = 1``) is exactly the trial
:func:`rjtrial.simulate.generator.generate` draws from the same seed, followed by
:func:`rjtrial.followup.build` with the scenario's analysis plan (tested, column by column),
and its columns are independent trials of that law.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import pandas as pd

from rjtrial.simulate._streams import Streams, seed_sequence
from rjtrial.simulate.scenario import Scenario

__all__ = ["sized_scenario", "replicate_batch", "replicate_followup", "batch_seed"]


def sized_scenario(scenario: Scenario, n: int) -> Scenario:
    """``scenario`` with ``n`` participants randomised.

    The referral rate is scaled like the size (as :func:`rjtrial.simulate.truth.compute_truth`
    does for its populations), so the intake period, the placing of the trial in time and
    the censoring by the extraction date are the scenario's own: only the size changes.
    """
    base = scenario.referrals.randomised
    if int(n) == base:
        return scenario
    return scenario.with_overrides(
        {
            "referrals.randomised": int(n),
            "referrals.rate_per_month": scenario.referrals.rate_per_month * int(n) / base,
        }
    )


def batch_seed(root: np.random.SeedSequence, batch: int) -> np.random.SeedSequence:
    """The seed of batch number ``batch`` of a run seeded by ``root`` (the same for every size and effect)."""
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, int(batch)), pool_size=root.pool_size)


def replicate_batch(
    scenario: Scenario, rng, replicates: int, *, allocation: str | None = None, seconds: dict | None = None
) -> dict[str, np.ndarray]:
    """``replicates`` trials of ``scenario`` (at its size ``n``), as ``(n, R)`` arrays.

    Parameters
    ----------
    scenario : Scenario
        The design, at its size (see :func:`sized_scenario`).
    rng : int, SeedSequence or Generator
        The batch's seed.
    replicates : int
        ``R``.
    allocation : {None, "simple"}
        None allocates by the protocol's method; "simple" by simple randomisation with its
        ratio (the truth's populations).
    seconds : dict, optional
        CPU seconds of this thread (``time.thread_time``) are added to its ``generation`` (people,
        allocation, treatment) and ``followup`` (the reoffending process and the follow-up).

    Returns
    -------
    dict of (n, R) arrays
        ``treatment`` (1 conference arm, 0 control), ``held`` (conference held) and the
        follow-up columns of :data:`rjtrial.simulate._offending.FOLLOWUP_COLUMNS`, with
        :func:`rjtrial.followup.build`'s meaning: ``time_at_risk, event, reoffences,
        exposure_days, days_in_custody, followup_days`` and ``first_reoffence_day``
        (days after assignment; -1 without an event); ``assigned_day`` (the day of random
        assignment, days since 1970-01-01: calendar time, for interim looks).
    """
    from rjtrial.simulate._allocation import allocate
    from rjtrial.simulate._offending import offending
    from rjtrial.simulate._people import draw_people

    started = time.thread_time()
    streams = Streams(seed_sequence(rng))
    n, shape = scenario.referrals.randomised, (scenario.referrals.randomised, int(replicates))
    people = draw_people(scenario, n, shape[1], streams)
    arm = allocate(scenario.protocol, people.strata, streams, n=n, replicates=shape[1], method=allocation)
    held = (arm == 1) & (streams("treatment").random(shape) < scenario.treatment.conference_held)
    flat = {
        "assigned_day": people.assigned_day.ravel(),
        "age": people.age.ravel(),
        "male": people.male.ravel(),
        "index_type": people.offence.ravel(),
        "site": people.site.ravel(),
        "arm": arm.ravel(),
        "held": held.ravel(),
        "shape": shape,
    }
    generated = time.thread_time()
    out = offending(scenario, flat, streams, scope="followup")
    out["treatment"] = arm
    out["held"] = held
    out["assigned_day"] = people.assigned_day
    if seconds is not None:
        seconds["generation"] = seconds.get("generation", 0.0) + generated - started
        seconds["followup"] = seconds.get("followup", 0.0) + time.thread_time() - generated
    return out


def replicate_followup(
    scenario: Scenario, seeds: Sequence, *, replicates: int | None = None
) -> tuple[pd.DataFrame, dict]:
    """The follow-up rows of replicate trials as one table (for inspection and tests).

    ``seeds``: one seed per batch; each batch holds ``replicates`` trials (default 1, so
    that trial ``k`` is the trial :func:`rjtrial.simulate.generator.generate` draws from
    ``seeds[k]``). Returns the table -- ``replicate`` (0, 1, ... over the batches),
    ``person`` (0..n-1), ``treatment``, ``held`` and the follow-up columns -- and the CPU
    seconds of ``generation`` and ``followup``.
    """
    per = 1 if replicates is None else int(replicates)
    seconds: dict = {"generation": 0.0, "followup": 0.0}
    frames = []
    for b, seed in enumerate(seeds):
        batch = replicate_batch(scenario, seed, per, seconds=seconds)
        n = batch["treatment"].shape[0]
        frame = pd.DataFrame({k: v.T.ravel() for k, v in batch.items()})
        frame.insert(0, "person", np.tile(np.arange(n), per))
        frame.insert(0, "replicate", np.repeat(np.arange(b * per, (b + 1) * per), n))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True), seconds
