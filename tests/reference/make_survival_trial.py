"""Generate the synthetic restorative-justice trial used to validate ``rjtrial.survival`` against R.

Run from the repository root::

    .venv/bin/python tests/reference/make_survival_trial.py

It writes, next to this file,

``survival_trial.csv``
    one row per participant (400): ``id, case_id, site, arm, age, prior, time, event``.
    ``time`` is whole days from random assignment to the first reoffence (``event`` = 1)
    or to the end of follow-up (``event`` = 0): 730 days, or earlier for participants lost
    to follow-up. Whole days give tied times. ``case_id`` groups co-offenders dealt with in
    one case (randomised together, so they share the arm); their reoffending shares a
    case-level frailty, which is what a cluster-robust variance has to account for.
``survival_trial_recurrent.csv``
    every reoffence, in counting-process form: one row per interval
    ``id, start, stop, event, arm, site, age, prior`` with ``(start, stop]`` in days;
    ``event`` = 1 when the interval ends with a reoffence. People reoffend repeatedly at a
    person-level rate with a gamma frailty (Andersen–Gill data).

The numbers are synthetic; nothing in them describes a real trial. The seed is fixed so the
files are reproducible byte for byte; ``survival_reference.R`` reads them and writes the R
reference numbers to ``survival_reference.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20240917
N_PARTICIPANTS = 400
FOLLOW_UP_DAYS = 730
SITES = ("north", "south", "west")
SITE_PROBABILITIES = (0.40, 0.35, 0.25)
BASE_DAILY_HAZARD = {"north": 1 / 900, "south": 1 / 650, "west": 1 / 1200}
LOG_HAZARD_RATIO_RJ = np.log(0.75)
HERE = Path(__file__).resolve().parent


def make_trial(seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (participants, recurrent) data frames for the given seed."""
    rng = np.random.default_rng(seed)

    # Cases of one to three co-offenders, each case at one site and randomised as a unit
    # (permuted blocks of four cases within site).
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
    case_frailty = rng.gamma(shape=2.0, scale=0.5, size=n_cases)  # mean 1, variance 0.5

    case_index = np.repeat(np.arange(n_cases), sizes)
    site = case_site[case_index]
    arm = case_arm[case_index]
    age = 16 + np.floor(rng.gamma(shape=2.0, scale=6.0, size=N_PARTICIPANTS)).astype(int)
    prior = rng.poisson(2.0, size=N_PARTICIPANTS)
    linear = LOG_HAZARD_RATIO_RJ * (arm == "rj") + 0.15 * prior - 0.02 * (age - 30) + np.log(case_frailty[case_index])
    hazard = np.array([BASE_DAILY_HAZARD[s] for s in site]) * np.exp(linear)

    # First reoffence; loss to follow-up for 15% at a uniform day.
    latent = rng.exponential(1.0 / hazard)
    lost = rng.random(N_PARTICIPANTS) < 0.15
    censor = np.where(lost, rng.uniform(30, FOLLOW_UP_DAYS, size=N_PARTICIPANTS), FOLLOW_UP_DAYS)
    event = (latent <= censor).astype(int)
    time = np.ceil(np.minimum(latent, censor)).astype(int)
    participants = pd.DataFrame(
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

    # Recurrent reoffending: Poisson process with a person-level gamma frailty, whole days,
    # at most one recorded reoffence per day.
    person_frailty = rng.gamma(shape=1.5, scale=1 / 1.5, size=N_PARTICIPANTS)
    rate = (
        2.5
        * np.array([BASE_DAILY_HAZARD[s] for s in site])
        * np.exp(np.log(0.8) * (arm == "rj") + 0.2 * prior - 0.02 * (age - 30))
        * person_frailty
    )
    end = np.ceil(censor).astype(int)
    rows = []
    for k in range(N_PARTICIPANTS):
        n_events = rng.poisson(rate[k] * end[k])
        days = np.unique(np.ceil(rng.uniform(0, end[k], size=n_events)).astype(int))
        days = days[days >= 1]
        start = 0
        for day in days:
            rows.append((k + 1, start, int(day), 1))
            start = int(day)
        if start < end[k]:
            rows.append((k + 1, start, int(end[k]), 0))
    recurrent = pd.DataFrame(rows, columns=["id", "start", "stop", "event"])
    covariates = participants.set_index("id")[["arm", "site", "age", "prior"]]
    recurrent = recurrent.join(covariates, on="id")
    return participants, recurrent


def main() -> None:
    participants, recurrent = make_trial()
    participants.to_csv(HERE / "survival_trial.csv", index=False)
    recurrent.to_csv(HERE / "survival_trial_recurrent.csv", index=False)
    print(
        f"{len(participants)} participants, {participants['event'].sum()} first reoffences; "
        f"{len(recurrent)} intervals, {recurrent['event'].sum()} reoffences"
    )


if __name__ == "__main__":
    main()
