"""The replicate path of power by simulation (rjtrial/simulate/_replicates.py) against the generator.

Two routes to one trial must agree: from one seed, a batch of one replicate
(:func:`replicate_batch`) gives exactly the follow-up that :func:`generate` (the whole trial's
records) followed by :func:`rjtrial.followup.build` gives -- every column, every participant,
over the shipped scenarios and settings that exercise death, extraction, unconvicted
offences, diversion, a harmful effect and no frailty. Batches of many replicates are then
held to the same *law* as independent whole trials by two-sample tests on the quantities a
power study depends on (each at a stated false-alarm rate), and trials of different sizes
from one seed share their first participants (common random numbers).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rjtrial.simulate._replicates import batch_seed, replicate_batch, replicate_followup, sized_scenario
from rjtrial.simulate.generator import generate
from rjtrial.simulate.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC = ROOT / "synthetic"
COLUMNS = ["time_at_risk", "event", "reoffences", "exposure_days", "days_in_custody", "followup_days"]
#: False-alarm rate of each two-sample test below: a correct implementation fails one with this
#: probability for a random seed (the seeds are fixed, so a pass is reproducible).
FALSE_ALARM = 1e-3


def scenario(name: str, n: int | None = None, **overrides):
    base = load_scenario(SYNTHETIC / f"{name}.toml")
    sized = sized_scenario(base, n) if n else base
    return sized.with_overrides(overrides) if overrides else sized


CASES = {
    "london": ("jrc-london-burglary", None, {}),
    "multisite (minimisation)": ("jrc-multisite", 400, {}),
    "magistrates (biased coin)": ("magistrates-property", None, {}),
    "canberra (diversion)": ("canberra-youth-violence", None, {}),
    "null effect": ("null-effect", 300, {}),
    "deaths and a tight extraction": (
        "jrc-london-burglary",
        None,
        {
            "censoring.annual_rate": 0.4,
            "extraction.days_after_last_assignment": 200,
            "analysis.conviction_lag_days": 30,
        },
    ),
    "unconvicted offences on record": ("jrc-london-burglary", None, {"extraction.include_unconvicted": True}),
    "harmful effect, no frailty": (
        "jrc-london-burglary",
        None,
        {"reoffending.hazard_ratio_treated": 1.6, "reoffending.frailty_variance": 0.0},
    ),
    "fixed start, long custody": (
        "jrc-london-burglary",
        None,
        {
            "extraction.days_after_last_assignment": None,
            "referrals.start": "2000-03-01",
            "custody.length_days": {"distribution": "fixed", "value": 400.0},
        },
    ),
}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("case", list(CASES))
def test_a_batch_of_one_is_the_generated_trial_followed_up(case, seed):
    name, n, overrides = CASES[case]
    sc = scenario(name, n, **overrides)
    table = generate(sc, rng=seed).followup()
    batch = replicate_batch(sc, seed, 1)
    for column in COLUMNS:
        np.testing.assert_array_equal(batch[column][:, 0], table[column].to_numpy(), err_msg=column)
    events = table["event"].to_numpy()
    first = (table["first_reoffence_on"] - table["randomised_on"]).dt.days.to_numpy()
    np.testing.assert_array_equal(batch["first_reoffence_day"][events, 0], first[events])
    assert (batch["first_reoffence_day"][~events, 0] == -1).all()
    arm = (table["arm"] == sc.conference_arm).to_numpy()
    np.testing.assert_array_equal(batch["treatment"][:, 0], arm)
    days = (pd.to_datetime(table["randomised_on"]) - pd.Timestamp("1970-01-01")).dt.days.to_numpy()
    np.testing.assert_array_equal(batch["assigned_day"][:, 0], days)


def test_replicate_followup_stacks_batches_in_order():
    sc = scenario("jrc-london-burglary", 60)
    seeds = [np.random.SeedSequence(4), np.random.SeedSequence(5)]
    table, seconds = replicate_followup(sc, seeds, replicates=3)
    assert set(seconds) == {"generation", "followup"} and len(table) == 2 * 3 * 60
    assert table["replicate"].tolist() == sorted(table["replicate"]) and table["replicate"].max() == 5
    batch = replicate_batch(sc, seeds[1], 3)
    part = table[table["replicate"] == 4]  # batch 1, column 1
    np.testing.assert_array_equal(part["time_at_risk"].to_numpy(), batch["time_at_risk"][:, 1])
    assert part["person"].tolist() == list(range(60))


# ----------------------------------------------------------------------------- same law
def _generated(sc, trials: int) -> dict[str, np.ndarray]:
    """The quantities compared, from ``trials`` whole trials (generator + follow-up builder)."""
    out = {k: [] for k in ("reoffences", "first_time", "custody", "held", "conference_arm", "events_per_trial")}
    for seed in range(trials):
        trial = generate(sc, rng=10_000 + seed)
        table = trial.followup()
        conference = (table["arm"] == sc.conference_arm).to_numpy()
        out["reoffences"].append(table["reoffences"].to_numpy())
        out["first_time"].append(table.loc[table["event"], "time_at_risk"].to_numpy())
        out["custody"].append(table["days_in_custody"].to_numpy())
        out["held"].append(trial.participants["treatment_received"].to_numpy()[conference].astype(bool))
        out["conference_arm"].append([conference.sum()])
        out["events_per_trial"].append([table["event"].sum()])
    return {k: np.concatenate([np.asarray(v) for v in vs]) for k, vs in out.items()}


def _replicated(sc, trials: int) -> dict[str, np.ndarray]:
    b = replicate_batch(sc, 20_000, trials)
    conference = b["treatment"] == 1
    return {
        "reoffences": b["reoffences"].ravel(),
        "first_time": b["time_at_risk"][b["event"]],
        "custody": b["days_in_custody"].ravel(),
        "held": b["held"][conference],
        "conference_arm": conference.sum(axis=0),
        "events_per_trial": b["event"].sum(axis=0),
    }


@pytest.fixture(scope="module", params=["jrc-london-burglary", "jrc-multisite"])
def two_routes(request):
    """300 whole trials of 80 and a batch of 300 replicates of the same design, other seeds."""
    sc = scenario(request.param, 80)
    return request.param, _generated(sc, 300), _replicated(sc, 300)


@pytest.mark.parametrize("quantity", ["reoffences", "first_time", "custody", "conference_arm", "events_per_trial"])
def test_replicates_have_the_generators_law(two_routes, quantity):
    """Two-sample Kolmogorov-Smirnov (exact for the per-trial counts; asymptotic, conservative for
    discrete data) at ``FALSE_ALARM``: events per person, time to first reoffence, custody days,
    arm sizes and events per trial."""
    name, generated, replicated = two_routes
    a, b = generated[quantity], replicated[quantity]
    result = stats.ks_2samp(a, b, method="exact" if max(a.size, b.size) <= 1000 else "asymp")
    assert result.pvalue > FALSE_ALARM, (name, quantity, result)


def test_conferences_are_held_at_the_same_rate(two_routes):
    """Two-proportion z test at ``FALSE_ALARM`` on the conference rate in the conference arm."""
    name, generated, replicated = two_routes
    x = np.array([generated["held"].sum(), replicated["held"].sum()])
    m = np.array([generated["held"].size, replicated["held"].size])
    pooled = x.sum() / m.sum()
    z = (x[0] / m[0] - x[1] / m[1]) / math.sqrt(pooled * (1 - pooled) * (1 / m[0] + 1 / m[1]))
    assert 2 * stats.norm.sf(abs(z)) > FALSE_ALARM, (name, x, m)


# ----------------------------------------------------------------------------- common random numbers
@pytest.mark.parametrize("name", ["jrc-london-burglary", "jrc-multisite", "magistrates-property"])
def test_a_larger_trial_from_the_same_seed_shares_its_first_participants(name):
    """Person-major streams: trial k of size 150 and of size 300 from one batch seed have the
    same first 150 allocations and conferences held (arrival times scale with the size)."""
    small, large = (
        replicate_batch(scenario(name, n), batch_seed(np.random.SeedSequence(7), 0), 20) for n in (150, 300)
    )
    np.testing.assert_array_equal(small["treatment"], large["treatment"][:150])
    np.testing.assert_array_equal(small["held"], large["held"][:150])


def test_a_stronger_effect_removes_offences_of_the_treated_only():
    """Thinning: from one seed, hazard ratio 0.6 keeps a subset of the offences drawn at 0.9. Those
    without a conference keep their whole follow-up; those with one lose offences (a lost
    custody spell can let a later offence into the window, so not each person's count falls)."""
    mild, strong = (
        replicate_batch(scenario("jrc-london-burglary", 200, **{"reoffending.hazard_ratio_treated": hr}), 3, 30)
        for hr in (0.9, 0.6)
    )
    np.testing.assert_array_equal(strong["held"], mild["held"])
    untreated = ~mild["held"]
    for column in COLUMNS:
        np.testing.assert_array_equal(strong[column][untreated], mild[column][untreated], err_msg=column)
    held = mild["held"]
    assert strong["reoffences"][held].sum() < 0.8 * mild["reoffences"][held].sum()
    assert np.mean(strong["reoffences"][held] <= mild["reoffences"][held]) > 0.95
