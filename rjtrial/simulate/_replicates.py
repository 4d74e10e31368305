"""Many replicate trials of one scenario, as one stacked follow-up table.

Power by simulation needs thousands of trials of the same design. Each replicate is a
whole trial drawn by :func:`rjtrial.simulate.generator.generate` (``lean=True``: the
same draws, only the tables the follow-up builder needs), allocated by the protocol's
own engine (:func:`rjtrial.randomise.allocate_cohort`), from its own
:class:`numpy.random.SeedSequence`. The replicates' tables are then stacked, with the
participant ids made unique (``replicate * n + id``), and turned into analysis rows by
**one** call of :func:`rjtrial.followup.build` with the scenario's analysis plan, which
is the same as building each replicate's table on its own (every row depends on one
participant's records only; tested) and many times faster for small trials.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import pandas as pd

from rjtrial.simulate.scenario import Scenario

__all__ = ["sized_scenario", "replicate_followup"]


def sized_scenario(scenario: Scenario, n: int) -> Scenario:
    """``scenario`` with ``n`` participants randomised.

    The referral rate is scaled like the size (as :func:`rjtrial.simulate.truth.compute_truth`
    does for its populations), so the intake period, the placing of the trial in time and
    the censoring by the extraction date are the scenario's own: only the size changes.
    """
    base = scenario.referrals.randomised
    if int(n) == base:
        return scenario
    return scenario.with_overrides({
        "referrals.randomised": int(n),
        "referrals.rate_per_month": scenario.referrals.rate_per_month * int(n) / base,
    })


def replicate_followup(scenario: Scenario, seeds: Sequence[np.random.SeedSequence]) -> tuple[pd.DataFrame, dict]:
    """The follow-up rows of one trial per seed, stacked.

    Parameters
    ----------
    scenario : Scenario
        The design, at its size (see :func:`sized_scenario`).
    seeds : sequence of numpy.random.SeedSequence
        One per replicate trial; replicate ``k`` is ``generate(scenario, rng=seeds[k], lean=True)``.

    Returns
    -------
    table : DataFrame
        :func:`rjtrial.followup.build`'s columns for every participant of every replicate,
        plus ``replicate`` (0..len(seeds)-1) and ``treatment`` (1 for the conference arm,
        0 for control), in replicate order.
    seconds : dict
        CPU seconds (``time.process_time``) of ``generation`` (drawing the trials) and
        ``followup`` (building the rows).
    """
    from rjtrial.simulate.generator import SimulatedTrial, generate

    started = time.process_time()
    n = scenario.referrals.randomised
    participants, offences, custody = [], [], []
    for k, seed in enumerate(seeds):
        trial = generate(scenario, rng=seed, lean=True)
        shift = k * n
        participants.append(trial.participants.assign(id=trial.participants["id"].to_numpy() + shift))
        offences.append(trial.offences.assign(id=trial.offences["id"].to_numpy() + shift))
        custody.append(trial.custody.assign(id=trial.custody["id"].to_numpy() + shift))
    generated = time.process_time()
    empty = pd.DataFrame()
    stacked = SimulatedTrial(
        scenario, empty, pd.concat(participants, ignore_index=True), pd.concat(offences, ignore_index=True),
        pd.concat(custody, ignore_index=True), empty, empty, empty, {},
    )
    table = stacked.followup()
    ids = table["id"].to_numpy()
    table["replicate"] = ids // n
    table["treatment"] = (table["arm"].to_numpy() == scenario.conference_arm).astype(np.int64)
    if not np.all(np.diff(ids) > 0):  # keep replicate order whatever the builder does
        table = table.sort_values("id", kind="stable").reset_index(drop=True)
    seconds = {"generation": generated - started, "followup": time.process_time() - generated}
    return table, seconds
