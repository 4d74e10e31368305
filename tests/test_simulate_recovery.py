"""The truth (rjtrial/simulate/truth.py) and recovery: rjtrial's estimators find it.

Fast tests: the Monte Carlo truth is the library's own fits (Cox, rate ratio, RMST) on a
population drawn by the generator's code; the truth is cached and reproducible; in settings
with a known answer it is that answer.

The slow test (``-m slow``) runs 200 replicate trials of 500 offenders with an effect
and 200 under the null, analysed by ``analysis/recovery_study.py``'s ``analyse`` (the
follow-up builder, lifelines Cox, ``rjtrial.frequency.rate_ratio``), and checks bias,
coverage and the null rejection rate within tolerances derived from the Monte Carlo
error (3.5 standard errors). The full 500-replicate study is
``analysis/recovery_study.py``; its figures are in ``analysis/results/``.
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rjtrial.simulate import load_scenario
from rjtrial.simulate import truth as truth_module
from rjtrial.simulate.generator import generate
from rjtrial.simulate.truth import compute_truth, truth_record

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC = ROOT / "synthetic"
LONDON = SYNTHETIC / "jrc-london-burglary.toml"
sys.path.insert(0, str(ROOT / "analysis"))
import recovery_study  # noqa: E402  (analysis/recovery_study.py)

TOL = {"agreement": 1e-6, "mc_se": 3.5}


def scaled(path, n, **more):
    scenario = load_scenario(path)
    rate = scenario.referrals.rate_per_month * n / scenario.referrals.randomised
    return scenario.with_overrides({"referrals.randomised": n, "referrals.rate_per_month": rate, **more})


# ----------------------------------------------------------------------------- the truth's engine
@pytest.fixture(scope="module")
def population():
    """A small truth (8 chunks of 3,000) and the population behind it."""
    scenario = scaled(LONDON, 400)
    truth = compute_truth(scenario, population=24_000, chunk_size=3_000, rng=17)
    rows = truth_module._population(scenario, [3_000] * 8, np.random.default_rng(17))
    table = pd.DataFrame(
        {
            "time": rows["time"],
            "event": rows["event"].astype(int),
            "conference": rows["treatment"],
            "exposure": rows["exposure"],
            "count": rows["count"],
            "chunk": rows["chunk"],
        }
    )
    return scenario, truth, table


def test_the_truths_population_is_the_generators_follow_up(population):
    """Each chunk is a trial of the scenario scaled up, drawn as the generator draws it (simple
    randomisation), followed up by rjtrial.followup.build."""
    scenario, _, table = population
    seed = int(np.random.default_rng(17).integers(0, 2**63))  # the first chunk's seed
    chunk = generate(truth_module._sized(scenario, 3_000), rng=seed, allocation="simple").followup()
    first = table[table["chunk"] == 0]
    np.testing.assert_array_equal(first["time"].to_numpy(), chunk["time_at_risk"].to_numpy())
    np.testing.assert_array_equal(first["count"].to_numpy(), chunk["reoffences"].to_numpy())
    np.testing.assert_array_equal(first["conference"].to_numpy(), (chunk["arm"] == "conference").to_numpy())


def test_the_truth_is_the_library_fits_on_its_population(population):
    from rjtrial.frequency import rate_ratio
    from rjtrial.survival import cox, rmst

    _, truth, table = population
    fit = cox(table, "conference", time="time", event="event")
    assert truth["log_hazard_ratio"] == pytest.approx(fit.params_["conference"], abs=TOL["agreement"])
    at_liberty = table[table["exposure"] > 0]
    nb = rate_ratio(at_liberty, count="count", exposure="exposure", group="conference", control=0)
    assert truth["log_rate_ratio"] == pytest.approx(math.log(nb.rate_ratio), abs=TOL["agreement"])
    assert truth["negative_binomial_alpha"] == pytest.approx(nb.alpha_, rel=TOL["agreement"])
    restricted = rmst(table, tau=730, time="time", event="event", group="conference", reference=0)
    assert truth["rmst_difference_days"] == pytest.approx(restricted.difference.loc[0, "estimate"], abs=1e-9)
    per_chunk = [
        cox(table[table["chunk"] == c], "conference", time="time", event="event").params_["conference"]
        for c in range(8)
    ]
    assert truth["log_hazard_ratio_mc_se"] == pytest.approx(
        np.std(per_chunk, ddof=1) / math.sqrt(8), abs=TOL["agreement"]
    )
    assert sum(truth["events"].values()) == table["event"].sum()


# ----------------------------------------------------------------------------- the truth
def test_truth_is_reproducible_and_cached(tmp_path, monkeypatch):
    scenario = scaled(LONDON, 200)
    first = compute_truth(scenario, population=20_000, chunk_size=5_000, cache_dir=tmp_path)
    files = list(tmp_path.glob(f"truth-v{truth_module.TRUTH_VERSION}-jrc-london-burglary-*.json"))
    assert len(files) == 1
    monkeypatch.setattr(truth_module, "_CACHE", {})
    monkeypatch.setattr(truth_module, "_compute", lambda *a, **k: pytest.fail("recomputed despite the cache"))
    assert compute_truth(scenario, population=20_000, chunk_size=5_000, cache_dir=tmp_path) == first
    assert first["chunks"] == 8 and first["chunk_size"] == 2_500 and first["population"] == 20_000
    assert first["seed"] == str(truth_module.default_truth_seed(scenario))
    for key in ("hazard_ratio", "rate_ratio", "rmst_difference_days", "log_hazard_ratio_mc_se"):
        assert math.isfinite(first[key])


def test_the_truth_seed_follows_the_scenario_not_the_trial():
    a, b = scaled(LONDON, 200), scaled(LONDON, 200)
    assert truth_module.default_truth_seed(a) == truth_module.default_truth_seed(b)
    assert truth_module.default_truth_seed(a) != truth_module.default_truth_seed(a.with_null())


# Known answers: full compliance, no custody, no censoring, no conviction loss or lag.
IDEAL = {
    "treatment.conference_held": 1.0,
    "custody.probability": 0.0,
    "index_offence.custody": 0.0,
    "censoring.annual_rate": 0.0,
    "conviction.never_convicted": 0.0,
    "conviction.lag_days": {"distribution": "fixed", "value": 0.0},
    "analysis.conviction_lag_days": 0,
    "reoffending.hazard_ratio_treated": 0.7,
}


def test_without_frailty_the_itt_hazard_ratio_is_the_parameter():
    """No frailty, rates alike (age and sex change nothing) and everyone treated: the arms' hazards
    are proportional and the Cox limit is 0.7. (Rates that differ with age and sex act as a
    frailty: the marginal hazards drift apart and the Cox limit moves towards 1, by about 0.012
    in the log here.)"""
    alike = {
        "reoffending.frailty_variance": 0.0,
        "reoffending.log_rate_per_year_of_age": 0.0,
        "reoffending.log_rate_male": 0.0,
    }
    truth = compute_truth(scaled(LONDON, 1000, **IDEAL, **alike), population=400_000, chunk_size=50_000)
    for key in ("log_hazard_ratio", "log_rate_ratio"):
        assert truth[key] == pytest.approx(math.log(0.7), abs=TOL["mc_se"] * truth[f"{key}_mc_se"])
    assert truth["rate_ratio_crude"] == pytest.approx(0.7, rel=0.02)


def test_with_frailty_the_cox_limit_is_attenuated_but_the_rate_ratio_is_not():
    """With a gamma frailty the marginal hazards are not proportional: the Cox limit lies between
    the parameter and 1, while the rate ratio per street day stays the parameter."""
    truth = compute_truth(scaled(LONDON, 1000, **IDEAL), population=200_000, chunk_size=25_000)
    assert truth["hazard_ratio"] > 0.7 + 10 * truth["log_hazard_ratio_mc_se"]
    assert truth["hazard_ratio"] < 1.0
    assert truth["rate_ratio_crude"] == pytest.approx(0.7, rel=0.03)
    assert truth["log_rate_ratio"] == pytest.approx(math.log(0.7), abs=TOL["mc_se"] * truth["log_rate_ratio_mc_se"])


def test_the_null_is_exact_only_when_the_arms_differ_in_nothing_else():
    assert compute_truth(scaled(SYNTHETIC / "null-effect.toml", 300), population=30_000, chunk_size=10_000)[
        "exact_null"
    ]
    canberra = scaled(SYNTHETIC / "canberra-youth-violence.toml", 300).with_null()  # diversion differs by arm
    assert not compute_truth(canberra, population=30_000, chunk_size=10_000)["exact_null"]


def test_truth_record_lists_parameter_provenance_and_versions():
    scenario = load_scenario(LONDON)
    record = truth_record(scenario, itt=None, realised={"randomised": 167}, rng=5)
    assert record["hazard_ratio_treated"] == 0.82
    assert record["log_hazard_ratio_treated"] == pytest.approx(math.log(0.82))
    assert record["rng"] == "5" and record["realised"] == {"randomised": 167}
    assert record["parameters"]["analysis"]["window_days"] == 730
    assert set(record["provenance"]) == set(scenario.parameters()) - {"costs.currency"}
    assert set(record["versions"]) == {"rjtrial", "numpy", "pandas", "scipy"}


# ----------------------------------------------------------------------------- recovery (slow)
REPLICATES = 200
TRIAL_SIZE = 500


@pytest.fixture(scope="module")
def study():
    """Estimates of 200 replicate trials with an effect and 200 under the null, and the truths."""
    overrides = {"referrals.randomised": TRIAL_SIZE, "referrals.rate_per_month": 12.0 * TRIAL_SIZE / 167}
    scenario = load_scenario(LONDON, overrides=overrides)
    itt = compute_truth(scenario, population=500_000, chunk_size=62_500)
    truth = {name: (itt[name], itt[f"{name}_mc_se"]) for name in ("log_hazard_ratio", "log_rate_ratio")}
    truth["rmst_difference_days"] = (itt["rmst_difference_days"], itt["rmst_difference_mc_se"])
    null_truth = {name: (0.0, 0.0) for name in truth}  # exact: the arms differ only in the conferences
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        effect = recovery_study.replicate_estimates(
            LONDON, replicates=REPLICATES, seed=101, overrides=overrides, workers=2, cox_robust=False
        )
        null = recovery_study.replicate_estimates(
            LONDON,
            replicates=REPLICATES,
            seed=202,
            workers=2,
            cox_robust=False,
            overrides={**overrides, "reoffending.hazard_ratio_treated": 1.0},
        )
    return {"effect": recovery_study.summarise(effect, truth), "null": recovery_study.summarise(null, null_truth)}


def _within(value, target, se):
    return abs(value - target) <= TOL["mc_se"] * se


@pytest.mark.slow
@pytest.mark.parametrize("design", ["effect", "null"])
@pytest.mark.parametrize(
    "estimand", ["log_hazard_ratio", "log_rate_ratio", "log_rate_ratio_nb", "rmst_difference_days"]
)
def test_estimators_are_unbiased_for_the_truth(study, design, estimand):
    row = study[design][estimand]
    assert _within(row["mean"], row["truth"], row["bias_mc_se"]), row


COVERED = [("log_hazard_ratio", "model"), ("log_rate_ratio_nb", "model"), ("log_rate_ratio_nb", "robust")]


@pytest.mark.slow
@pytest.mark.parametrize("design", ["effect", "null"])
@pytest.mark.parametrize("estimand, kind", COVERED)
def test_intervals_cover_the_truth(study, design, estimand, kind):
    row = study[design][estimand][kind]
    assert _within(row["coverage"], 0.95, row["coverage_mc_se"]), row


@pytest.mark.slow
@pytest.mark.parametrize("estimand, kind", COVERED)
def test_under_the_null_the_5_percent_test_rejects_5_percent(study, estimand, kind):
    row = study["null"][estimand][kind]
    assert _within(row["rejection_rate"], 0.05, row["rejection_rate_mc_se"]), row


@pytest.mark.slow
@pytest.mark.parametrize("design", ["effect", "null"])
def test_rate_ratio_as_shipped_covers_the_truth(study, design):
    row = study[design]["log_rate_ratio"]["model"]
    assert _within(row["coverage"], 0.95, row["coverage_mc_se"]), row


# ----------------------------------------------------------------------------- recovery, batched (fast)
BATCHED_REPLICATES = 3000


@pytest.fixture(scope="module")
def batched_study():
    """3,000 replicate trials of 500 with an effect and 3,000 under the null, drawn by the replicate
    engine and analysed by the batched fits (analysis/recovery_study.py --engine batched)."""
    overrides = {"referrals.randomised": TRIAL_SIZE, "referrals.rate_per_month": 12.0 * TRIAL_SIZE / 167}
    scenario = load_scenario(LONDON, overrides=overrides)
    itt = compute_truth(scenario, population=1_000_000, chunk_size=125_000)
    truth = {name: (itt[name], itt[f"{name}_mc_se"]) for name in ("log_hazard_ratio", "log_rate_ratio")}
    truth["rmst_difference_days"] = (itt["rmst_difference_days"], itt["rmst_difference_mc_se"])
    null_truth = {name: (0.0, 0.0) for name in truth}
    effect = recovery_study.batched_estimates(scenario, replicates=BATCHED_REPLICATES, seed=303)
    null = recovery_study.batched_estimates(scenario.with_null(), replicates=BATCHED_REPLICATES, seed=404)
    return {"effect": recovery_study.summarise(effect, truth), "null": recovery_study.summarise(null, null_truth)}


BATCHED = ["log_hazard_ratio", "log_rate_ratio", "rmst_difference_days"]


@pytest.mark.parametrize("design", ["effect", "null"])
@pytest.mark.parametrize("estimand", BATCHED)
def test_batched_estimators_are_unbiased(batched_study, design, estimand):
    row = batched_study[design][estimand]
    assert _within(row["mean"], row["truth"], row["bias_mc_se"]), row


@pytest.mark.parametrize("design", ["effect", "null"])
@pytest.mark.parametrize("estimand", BATCHED)
def test_batched_intervals_cover_95_percent(batched_study, design, estimand):
    row = batched_study[design][estimand]["model"]
    assert _within(row["coverage"], 0.95, row["coverage_mc_se"]), row
    assert 0.93 <= row["coverage"] <= 0.97


@pytest.mark.parametrize("estimand", BATCHED)
def test_batched_tests_reject_5_percent_under_the_null(batched_study, estimand):
    row = batched_study["null"][estimand]["model"]
    assert _within(row["rejection_rate"], 0.05, row["rejection_rate_mc_se"]), row
    assert 0.04 <= row["rejection_rate"] <= 0.06
