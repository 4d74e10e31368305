"""Generate the synthetic trial used to validate frequency, victims, compliance and costs against R.

Run from the repository root::

    .venv/bin/python tests/reference/make_frequency_trial.py

It writes ``frequency_trial.csv`` next to this file: one row per participant (500), as
:func:`rjtrial.followup.build` would give it plus victim-survey and risk-score columns.

``id``
    participant number, 1..500.
``site``
    ``"a"``, ``"b"`` or ``"c"`` (a stratum).
``arm``
    random assignment, ``"control"`` or ``"rj"``: 250 each, in a random order.
``treatment_received``
    1 when a conference took place. One-sided non-compliance: no control participant
    has one; about 70% of those assigned to RJ do, more often when they have fewer
    prior offences (so compliers differ from non-compliers).
``age``
    whole years at assignment.
``prior_offences``
    offences in the two years before assignment (negative binomial).
``days_in_custody``, ``exposure_days``
    of the 730 days of follow-up; ``exposure_days = 730 - days_in_custody`` (street days,
    always at least 130).
``reoffences``
    offences during follow-up: Poisson given a gamma frailty (shape 1.5), so negative
    binomial with theta = 1.5; the rate rises with prior offences, differs by site, and
    falls by a quarter for participants who had a conference.
``reoffences_violence``, ``reoffences_property``, ``reoffences_other``
    ``reoffences`` split by offence type (multinomial 0.3 / 0.5 / 0.2).
``event``
    1 when ``reoffences > 0``.
``risk_score``
    an OGRS-like predicted probability of reoffending within two years, from prior offences
    and age, rounded to 4 decimals.
``victim_satisfied``, ``victim_recommend``, ``victim_fearful``
    0/1 answers of the participant's victim at the follow-up interview.
``ies_baseline``, ``ies_followup``
    the victim's IES-R total (whole numbers 0..88) before assignment and at follow-up.

The numbers are synthetic and describe no real trial. The seed is fixed so the file is
reproducible byte for byte; ``frequency_reference.R`` reads it and writes the R reference
numbers to ``frequency_reference.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20250311
N_PARTICIPANTS = 500
FOLLOW_UP_DAYS = 730
SITES = ("a", "b", "c")
SITE_LOG_RATE = {"a": 0.0, "b": 0.25, "c": -0.2}
BASE_DAILY_RATE = 1.1 / 365.25  # offences per street day for a typical control participant
FRAILTY_SHAPE = 1.5
RATE_RATIO_CONFERENCE = 0.75
OFFENCE_TYPES = ("violence", "property", "other")
OFFENCE_TYPE_PROBABILITIES = (0.3, 0.5, 0.2)
HERE = Path(__file__).resolve().parent


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def make_trial(seed: int = SEED) -> pd.DataFrame:
    """Return the trial table for the given seed."""
    rng = np.random.default_rng(seed)
    n = N_PARTICIPANTS

    site = rng.choice(SITES, size=n, p=(0.45, 0.35, 0.20))
    arm = np.array(["control"] * (n // 2) + ["rj"] * (n - n // 2))[rng.permutation(n)]
    rj = arm == "rj"
    age = 16 + np.floor(rng.gamma(shape=3.0, scale=5.0, size=n)).astype(int)
    prior = rng.negative_binomial(1.2, 1.2 / (1.2 + 3.0), size=n)

    # One-sided non-compliance: only those assigned to RJ can have a conference.
    p_conference = _expit(1.3 - 0.15 * prior)
    treated = (rj & (rng.random(n) < p_conference)).astype(int)

    in_custody = rng.random(n) < 0.2
    custody = np.where(in_custody, rng.integers(1, 601, size=n), 0)
    exposure = FOLLOW_UP_DAYS - custody

    log_rate = (
        np.log(BASE_DAILY_RATE)
        + 0.35 * np.log1p(prior)
        - 0.01 * (age - 30)
        + np.vectorize(SITE_LOG_RATE.get)(site)
        + np.log(RATE_RATIO_CONFERENCE) * treated
    )
    frailty = rng.gamma(shape=FRAILTY_SHAPE, scale=1 / FRAILTY_SHAPE, size=n)
    reoffences = rng.poisson(np.exp(log_rate) * exposure * frailty)
    by_type = np.array([rng.multinomial(k, OFFENCE_TYPE_PROBABILITIES) for k in reoffences])

    risk_score = np.round(_expit(0.3 + 0.45 * np.sqrt(prior) - 0.03 * (age - 30)), 4)

    satisfied = (rng.random(n) < np.where(rj, 0.80, 0.60)).astype(int)
    recommend = (rng.random(n) < np.where(rj, 0.75, 0.55)).astype(int)
    fearful = (rng.random(n) < np.where(rj, 0.20, 0.30)).astype(int)
    ies_baseline = np.clip(np.round(rng.normal(30, 14, size=n)), 0, 88).astype(int)
    ies_followup = np.clip(np.round(6 + 0.65 * ies_baseline - 5 * rj + rng.normal(0, 9, size=n)), 0, 88).astype(int)

    table = pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "site": site,
            "arm": arm,
            "treatment_received": treated,
            "age": age,
            "prior_offences": prior,
            "days_in_custody": custody,
            "exposure_days": exposure,
            "reoffences": reoffences,
            **{f"reoffences_{t}": by_type[:, k] for k, t in enumerate(OFFENCE_TYPES)},
            "event": (reoffences > 0).astype(int),
            "risk_score": risk_score,
            "victim_satisfied": satisfied,
            "victim_recommend": recommend,
            "victim_fearful": fearful,
            "ies_baseline": ies_baseline,
            "ies_followup": ies_followup,
        }
    )
    return table


def main() -> None:
    make_trial().to_csv(HERE / "frequency_trial.csv", index=False)


if __name__ == "__main__":
    main()
