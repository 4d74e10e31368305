"""The truth (rjtrial/simulate/truth.py) and recovery: rjtrial's estimators find it.

Fast tests: the sufficient-statistic fits used for the Monte Carlo truth agree with
lifelines and :func:`rjtrial.frequency.rate_ratio` on individual rows; the truth is
cached and reproducible; in settings with a known answer it is that answer.

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
from rjtrial.simulate.truth import (
    compute_truth, cox_efron_binary, km_rmst, negative_binomial_table, survival_tables, truth_record,
)

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


def _followup(seed):
    table = generate(scaled(LONDON, 3000), rng=seed).followup()
    table["conference"] = (table["arm"] == "conference").astype(int)
    return table


@pytest.fixture(scope="module")
def followup_table():
    return _followup(4)


# ----------------------------------------------------------------------------- table fits vs libraries
def test_cox_from_tables_agrees_with_lifelines(followup_table):
    from lifelines import CoxPHFitter

    t = followup_table
    events, counts = survival_tables(t["conference"], t["time_at_risk"], t["event"], 730)
    at_risk = counts[:, ::-1].cumsum(axis=1)[:, ::-1]
    beta, se, converged, _ = cox_efron_binary(events, at_risk)
    data = pd.DataFrame({"T": t["time_at_risk"], "E": t["event"].astype(int), "g": t["conference"]})
    fit = CoxPHFitter().fit(data, "T", "E", fit_options={"precision": 1e-12, "max_steps": 100})
    assert converged
    assert beta == pytest.approx(fit.params_["g"], abs=TOL["agreement"])
    assert se == pytest.approx(fit.standard_errors_["g"], abs=TOL["agreement"])


def test_rmst_from_tables_agrees_with_lifelines(followup_table):
    from lifelines import KaplanMeierFitter
    from lifelines.utils import restricted_mean_survival_time

    t = followup_table
    events, counts = survival_tables(t["conference"], t["time_at_risk"], t["event"], 730)
    at_risk = counts[:, ::-1].cumsum(axis=1)[:, ::-1]
    for g in (0, 1):
        mine = t["conference"] == g
        km = KaplanMeierFitter().fit(t.loc[mine, "time_at_risk"], t.loc[mine, "event"])
        for tau in (365, 730):
            assert km_rmst(events[g], at_risk[g], tau) == pytest.approx(
                restricted_mean_survival_time(km, t=tau), abs=TOL["agreement"])


def test_negative_binomial_from_a_frequency_table_agrees_with_rate_ratio(followup_table):
    from rjtrial.frequency import rate_ratio

    t = followup_table[followup_table["exposure_days"] > 0]
    freq = t[["conference", "exposure_days", "reoffences"]].value_counts()
    levels = [freq.index.get_level_values(k).to_numpy() for k in range(3)]
    log_rr, alpha, converged = negative_binomial_table(*levels, freq.to_numpy())
    fit = rate_ratio(t, count="reoffences", exposure="exposure_days", group="arm", control="control")
    assert converged
    assert log_rr == pytest.approx(math.log(fit.rate_ratio), abs=TOL["agreement"])
    assert alpha == pytest.approx(fit.alpha_, rel=TOL["agreement"])


def test_rate_ratio_finds_the_negative_binomial_fit_where_newton_fails():
    from rjtrial.frequency import rate_ratio

    t = _followup(3)  # a trial on which the Newton step fails
    t = t[t["exposure_days"] > 0]
    freq = t[["conference", "exposure_days", "reoffences"]].value_counts()
    levels = [freq.index.get_level_values(k).to_numpy() for k in range(3)]
    log_rr, alpha, _ = negative_binomial_table(*levels, freq.to_numpy())
    assert alpha > 1.0  # frailty variance 1.5: strongly over-dispersed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fit = rate_ratio(t, count="reoffences", exposure="exposure_days", group="arm", control="control")
    assert fit.alpha_ == pytest.approx(alpha, rel=TOL["agreement"])


def test_cox_from_tables_handles_no_events_in_one_arm():
    events = np.zeros((2, 5))
    events[0, 2] = 3
    at_risk = np.full((2, 5), 10.0)
    beta, se, converged, _ = cox_efron_binary(events, at_risk)
    assert math.isnan(beta) and not converged


def test_survival_tables_refuse_times_outside_the_window():
    with pytest.raises(ValueError, match="0..730"):
        survival_tables(np.array([0]), np.array([731]), np.array([True]), 730)


# ----------------------------------------------------------------------------- the truth
def test_truth_is_reproducible_and_cached(tmp_path, monkeypatch):
    scenario = scaled(LONDON, 200)
    first = compute_truth(scenario, population=20_000, chunk_size=5_000, cache_dir=tmp_path)
    files = list(tmp_path.glob("truth-jrc-london-burglary-*.json"))
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
    "treatment.conference_held": 1.0, "custody.probability": 0.0, "index_offence.custody": 0.0,
    "censoring.annual_rate": 0.0, "conviction.never_convicted": 0.0,
    "conviction.lag_days": {"distribution": "fixed", "value": 0.0}, "analysis.conviction_lag_days": 0,
    "reoffending.hazard_ratio_treated": 0.7,
}


def test_without_frailty_the_itt_hazard_ratio_is_the_parameter():
    """No frailty and everyone treated: hazards are proportional and the Cox limit is 0.7."""
    truth = compute_truth(scaled(LONDON, 1000, **IDEAL, **{"reoffending.frailty_variance": 0.0}),
                          population=200_000, chunk_size=25_000)
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
    assert compute_truth(scaled(SYNTHETIC / "null-effect.toml", 300), population=30_000, chunk_size=10_000)["exact_null"]
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
        effect = recovery_study.replicate_estimates(LONDON, replicates=REPLICATES, seed=101, overrides=overrides,
                                                    workers=2, cox_robust=False)
        null = recovery_study.replicate_estimates(LONDON, replicates=REPLICATES, seed=202, workers=2, cox_robust=False,
                                                  overrides={**overrides, "reoffending.hazard_ratio_treated": 1.0})
    return {"effect": recovery_study.summarise(effect, truth), "null": recovery_study.summarise(null, null_truth)}


def _within(value, target, se):
    return abs(value - target) <= TOL["mc_se"] * se


@pytest.mark.slow
@pytest.mark.parametrize("design", ["effect", "null"])
@pytest.mark.parametrize("estimand", ["log_hazard_ratio", "log_rate_ratio", "log_rate_ratio_nb", "rmst_difference_days"])
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
