"""Generate the synthetic trial used to validate ``rjtrial.survival.split_followup`` against R ``tmerge``.

Run from the repository root::

    .venv/bin/python tests/reference/make_recurrent_split_trial.py

It writes, next to this file,

``recurrent_split_followup.csv``
    one row per participant (300): ``id, arm, site, age, prior, followup_days,
    programme_day``. ``followup_days`` is 730, or earlier for participants lost to
    follow-up; ``programme_day`` is the day a participant of the restorative-justice arm
    started a victim-awareness programme (empty when they never did).
``recurrent_split_offences.csv``
    every recorded offence, ``id, day, seriousness``: days from random assignment; it
    holds what real records hold and the generated test data of a survival package
    usually do not: offences before random assignment (negative days), on the day of
    assignment (day 0), after the end of follow-up, two offences on one day, offences
    on the day custody starts or ends, an offence of an id not in the trial, and a
    missing seriousness.
``recurrent_split_custody.csv``
    custody as a time-dependent covariate in long form, ``id, day, in_custody``: 1 on the
    day a spell starts and 0 on the day it ends (spells may start before assignment).
``recurrent_split_conferences.csv``
    conferences held, ``id, day`` (some participants had a second one).

The numbers are synthetic; nothing in them describes a real trial. The seed is fixed, so
the files are reproducible byte for byte; ``survival_recurrent.R`` reads them, builds the
counting-process table with ``tmerge`` and writes it to ``datasets/trial_tmerge.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20250611
N = 300
FOLLOW_UP_DAYS = 730
HERE = Path(__file__).resolve().parent


def make_trial(seed: int = SEED) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = np.arange(1, N + 1)
    arm = np.where(rng.random(N) < 0.5, "rj", "control")
    site = rng.choice(["north", "south", "west"], size=N, p=[0.4, 0.35, 0.25])
    age = 16 + np.floor(rng.gamma(2.0, 6.0, size=N)).astype(int)
    prior = rng.poisson(2.0, size=N)
    lost = rng.random(N) < 0.15
    followup = np.where(lost, np.ceil(rng.uniform(30, FOLLOW_UP_DAYS, size=N)), FOLLOW_UP_DAYS).astype(int)
    starts = (arm == "rj") & (rng.random(N) < 0.6)
    programme = np.where(starts, np.ceil(rng.uniform(1, 200, size=N)), np.nan)
    programme = [None if np.isnan(v) else int(v) for v in programme]
    people = pd.DataFrame(
        {
            "id": ids,
            "arm": arm,
            "site": site,
            "age": age,
            "prior": prior,
            "followup_days": followup,
            "programme_day": pd.array(programme, dtype="Int64"),
        }
    )

    frailty = rng.gamma(1.5, 1 / 1.5, size=N)
    rate = 0.004 * np.exp(np.log(0.8) * (arm == "rj") + 0.15 * prior) * frailty
    offences = []
    custody = []
    for k in range(N):
        # offences from a year before assignment to 60 days after the end of follow-up
        n = rng.poisson(rate[k] * (365 + followup[k] + 60))
        days = np.sort(np.ceil(rng.uniform(-365, followup[k] + 60, size=n))).astype(int)
        if n and rng.random() < 0.1:  # a second offence on the same day
            days = np.sort(np.append(days, days[rng.integers(n)]))
        for day in days:
            offences.append((ids[k], int(day), int(rng.integers(1, 4))))
        # custody spells: some started before assignment, some run past the end of follow-up
        day = int(rng.integers(-200, 100))
        while rng.random() < 0.35 and day < followup[k]:
            length = int(rng.integers(14, 180))
            custody.append((ids[k], day, 1))
            custody.append((ids[k], day + length, 0))
            day += length + int(rng.integers(30, 400))
    offences = pd.DataFrame(offences, columns=["id", "day", "seriousness"])
    custody = pd.DataFrame(custody, columns=["id", "day", "in_custody"])
    # the cases real records hold (each with its own row, so tests can find them)
    extra = pd.DataFrame(
        [
            (ids[0], 0, 1),  # on the day of random assignment
            (ids[1], int(followup[1]), 2),  # on the last day of follow-up
            (N + 7, 100, 1),
        ],  # an id that is not in the trial
        columns=["id", "day", "seriousness"],
    )
    offences = pd.concat([offences, extra], ignore_index=True)
    if len(custody):  # an offence on the day a custody spell starts
        first = custody.iloc[0]
        offences.loc[len(offences)] = (int(first["id"]), int(first["day"]) + 0, 3)
    offences["seriousness"] = offences["seriousness"].astype(float)
    offences.loc[5, "seriousness"] = np.nan  # a missing value
    offences = offences.sort_values(["id", "day"], kind="stable").reset_index(drop=True)

    held = np.flatnonzero(arm == "rj")
    conferences = pd.DataFrame({"id": ids[held], "day": np.ceil(rng.uniform(1, 60, size=len(held))).astype(int)})
    second = rng.choice(held, size=len(held) // 8, replace=False)
    conferences = pd.concat([conferences, pd.DataFrame({"id": ids[second], "day": rng.integers(90, 400, len(second))})])
    conferences = conferences.sort_values(["id", "day"], kind="stable").reset_index(drop=True)
    return {"followup": people, "offences": offences, "custody": custody, "conferences": conferences}


def main() -> None:
    tables = make_trial()
    for name, table in tables.items():
        table.to_csv(HERE / f"recurrent_split_{name}.csv", index=False)
    print(", ".join(f"{name}: {len(table)} rows" for name, table in tables.items()))


if __name__ == "__main__":
    main()
