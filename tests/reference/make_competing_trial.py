"""Generate the synthetic restorative-justice trial with competing risks used to validate
``rjtrial.survival``'s competing-risks verbs against R.

Run from the repository root::

    .venv/bin/python tests/reference/make_competing_trial.py

It writes ``competing_trial.csv`` next to this file: one row per participant (800),
columns ``id, case_id, site, arm, age, prior, time, event``.

``time`` is whole days from random assignment to the first of

* a reoffence (``event`` = 1);
* death or deportation (``event`` = 2), after which no reoffence can be observed in
  England and Wales;
* the start of a long custodial sentence (a year or more) for an offence committed before
  assignment (``event`` = 3): the person is off the street for the rest of follow-up;
* the end of follow-up (``event`` = 0): 730 days, or earlier for the 12% lost to
  follow-up at a uniform day.

Whole days give tied times, and ties between causes and with censoring on one day. A few
participants reoffend on the assignment day itself (``time`` = 0) and one is lost on that
day (``time`` = 0, ``event`` = 0), as ``rjtrial.followup`` allows. ``case_id`` groups
co-offenders dealt with in one case (randomised together, so they share the arm); their
reoffending shares a case-level frailty. The RJ arm lowers the reoffending hazard
(hazard ratio 0.75) and leaves the competing causes alone; the younger and those with more
prior offences reoffend sooner, and the older die sooner.

The numbers are synthetic; nothing in them describes a real trial. The seed is fixed so the
file is reproducible byte for byte; ``competing_risks.R`` reads it and writes the R reference
numbers to ``competing_risks.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20241111
N_PARTICIPANTS = 800
FOLLOW_UP_DAYS = 730
SITES = ("north", "south", "west")
SITE_PROBABILITIES = (0.40, 0.35, 0.25)
REOFFENCE_DAILY_HAZARD = {"north": 1 / 900, "south": 1 / 650, "west": 1 / 1200}
DEATH_DAILY_HAZARD = 1 / 9000  # death or deportation
CUSTODY_DAILY_HAZARD = 1 / 5000  # long custody for an earlier offence
LOG_HAZARD_RATIO_RJ = np.log(0.75)
HERE = Path(__file__).resolve().parent


def make_trial(seed: int = SEED) -> pd.DataFrame:
    """Return the participants table for the given seed."""
    rng = np.random.default_rng(seed)

    sizes: list[int] = []
    while sum(sizes) < N_PARTICIPANTS:
        sizes.append(int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1])))
    sizes[-1] -= sum(sizes) - N_PARTICIPANTS
    n_cases = len(sizes)
    case_site = rng.choice(SITES, size=n_cases, p=SITE_PROBABILITIES)
    case_arm = np.empty(n_cases, dtype=object)
    for site in SITES:
        where = np.flatnonzero(case_site == site)
        n_blocks = -(-len(where) // 4)
        arms = np.concatenate([rng.permutation(["control", "control", "rj", "rj"]) for _ in range(n_blocks)])
        case_arm[where] = arms[: len(where)]
    case_frailty = rng.gamma(shape=2.0, scale=0.5, size=n_cases)

    case_index = np.repeat(np.arange(n_cases), sizes)
    site = case_site[case_index]
    arm = case_arm[case_index]
    age = 16 + np.floor(rng.gamma(shape=2.0, scale=7.0, size=N_PARTICIPANTS)).astype(int)
    prior = rng.poisson(2.0, size=N_PARTICIPANTS)

    reoffence_hazard = np.array([REOFFENCE_DAILY_HAZARD[s] for s in site]) * np.exp(
        LOG_HAZARD_RATIO_RJ * (arm == "rj") + 0.15 * prior - 0.02 * (age - 30) + np.log(case_frailty[case_index])
    )
    death_hazard = DEATH_DAILY_HAZARD * np.exp(0.05 * (age - 30))
    custody_hazard = CUSTODY_DAILY_HAZARD * np.exp(0.2 * prior)
    latent = np.column_stack(
        [
            rng.exponential(1.0 / reoffence_hazard),
            rng.exponential(1.0 / death_hazard),
            rng.exponential(1.0 / custody_hazard),
        ]
    )
    first = latent.min(axis=1)
    cause = latent.argmin(axis=1) + 1
    lost = rng.random(N_PARTICIPANTS) < 0.12
    censor = np.where(lost, rng.uniform(0, FOLLOW_UP_DAYS, size=N_PARTICIPANTS), FOLLOW_UP_DAYS)
    # whole days: an event on day k happened during day k; floor keeps day 0 (the assignment day)
    event = np.where(first <= censor, cause, 0)
    time = np.floor(np.minimum(first, censor)).astype(int)
    time = np.minimum(time, FOLLOW_UP_DAYS)
    return pd.DataFrame(
        {
            "id": np.arange(1, N_PARTICIPANTS + 1),
            "case_id": case_index + 1,
            "site": site,
            "arm": arm,
            "age": age,
            "prior": prior,
            "time": time,
            "event": event,
        }
    )


def main() -> None:
    trial = make_trial()
    trial.to_csv(HERE / "competing_trial.csv", index=False)
    counts = trial["event"].value_counts().sort_index().to_dict()
    print(f"{len(trial)} participants; events by code {counts}; {int((trial['time'] == 0).sum())} at day 0")


if __name__ == "__main__":
    main()
