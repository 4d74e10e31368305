"""Power by simulation (rjtrial.simulate.power) and its replicate generator (rjtrial.simulate._replicates)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rjtrial.simulate import power as P
from rjtrial.simulate._replicates import replicate_followup, sized_scenario
from rjtrial.simulate.generator import generate
from rjtrial.simulate.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
LONDON = ROOT / "synthetic" / "jrc-london-burglary.toml"
NULL = ROOT / "synthetic" / "null-effect.toml"
TOL = {"coef": 1e-6, "p_value": 1e-6}


@pytest.fixture(scope="module")
def london():
    return load_scenario(LONDON)


def _seed(seed, size_index, n_sizes, reps, replicate):
    """The documented seed of one replicate trial."""
    return np.random.SeedSequence(seed).spawn(n_sizes)[size_index].spawn(reps)[replicate]


# ----------------------------------------------------------------------------- Schoenfeld
# Stat Med 2017;36(26):4121-4140, doi:10.1002/sim.7421, Table 3, "# Events N for PH
# assumption (80% power, alpha = 0.05 one-sided, r = 1)", N rounded up to an even number.
# One-sided 0.05 is two-sided alpha 0.10 in our two-sided parameterisation.
STAT_MED_2017_TABLE_3 = [(0.85, 938), (0.8, 498), (0.75, 300), (0.7, 196), (0.65, 134), (0.6, 96), (0.55, 70),
                         (0.5, 52), (0.45, 40), (0.4, 30)]


@pytest.mark.parametrize("hazard_ratio, events", STAT_MED_2017_TABLE_3)
def test_schoenfeld_events_statmed2017_table3(hazard_ratio, events):
    needed = P.schoenfeld_events(hazard_ratio, 0.8, alpha=0.10)
    assert 2 * math.ceil(needed / 2) == events


def test_schoenfeld1983_hr07_needs_247_events():
    # Schoenfeld (1983), Biometrics 39:499-503: D = (z_{0.975} + z_{0.8})^2 / (0.25 log(0.7)^2)
    # = 246.8 -> 247 events for HR 0.7, 80% power, two-sided 5%, 1:1 (the textbook example).
    assert math.ceil(P.schoenfeld_events(0.7, 0.8, alpha=0.05)) == 247
    assert P.schoenfeld_power(0.7, 247, alpha=0.05) == pytest.approx(0.8, abs=0.001)


@pytest.mark.parametrize("allocation", [0.5, 2 / 3, 0.25])
@pytest.mark.parametrize("hazard_ratio", [0.6, 0.9, 1.3])
def test_schoenfeld_power_inverts_events(hazard_ratio, allocation):
    events = P.schoenfeld_events(hazard_ratio, 0.9, allocation=allocation, alpha=0.01)
    assert P.schoenfeld_power(hazard_ratio, events, allocation=allocation, alpha=0.01) == pytest.approx(0.9, abs=1e-12)


def test_schoenfeld_power_at_the_null_is_half_alpha():
    assert P.schoenfeld_power(1.0, 500, alpha=0.05) == pytest.approx(0.025)


@pytest.mark.parametrize("call, name", [
    (lambda: P.schoenfeld_power(0.0, 10), "hazard_ratio"),
    (lambda: P.schoenfeld_power(0.8, -1), "events"),
    (lambda: P.schoenfeld_power(0.8, 10, alpha=1.0), "alpha"),
    (lambda: P.schoenfeld_power(0.8, 10, allocation=1.0), "allocation"),
    (lambda: P.schoenfeld_events(1.0, 0.8), "hazard_ratio"),
    (lambda: P.schoenfeld_events(0.8, 1.2), "power"),
])
def test_schoenfeld_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# ----------------------------------------------------------------------------- replicates
def test_stacked_followup_is_each_trials_own(london):
    sized = sized_scenario(london, 90)
    seeds = np.random.SeedSequence(11).spawn(6)
    table, seconds = replicate_followup(sized, seeds)
    assert set(seconds) == {"generation", "followup"}
    assert table["replicate"].tolist() == sorted(table["replicate"]) and len(table) == 6 * 90
    for k in (0, 4):
        own = generate(sized, rng=seeds[k], lean=True).followup().reset_index(drop=True)
        part = table[table["replicate"] == k].drop(columns=["replicate", "treatment"]).reset_index(drop=True)
        part["id"] -= k * 90
        pd.testing.assert_frame_equal(part, own, check_dtype=False)
        assert (table.loc[table["replicate"] == k, "treatment"].to_numpy()
                == (own["arm"] == london.conference_arm).to_numpy()).all()


def test_sized_scenario_keeps_the_intake_period(london):
    sized = sized_scenario(london, 400)
    assert sized.referrals.randomised == 400
    assert sized.referrals.rate_per_month / 400 == pytest.approx(london.referrals.rate_per_month / london.referrals.randomised)
    assert sized_scenario(london, london.referrals.randomised) is london


# ----------------------------------------------------------------------------- NB2 batch
@pytest.fixture(scope="module")
def count_table(london):
    table, _ = replicate_followup(sized_scenario(london, 150), np.random.SeedSequence(3).spawn(8))
    return table[table["exposure_days"] > 0].reset_index(drop=True)


def test_negative_binomial_batch_agrees_with_frequency_rate_ratio(count_table):
    from rjtrial.frequency import rate_ratio

    fit = P.negative_binomial_batch(count_table["reoffences"], count_table["exposure_days"], count_table["treatment"],
                                    count_table["replicate"])
    assert fit["converged"].all()
    for k in range(8):
        ref = rate_ratio(count_table[count_table["replicate"] == k], count="reoffences", exposure="exposure_days",
                         group="treatment", control=0)
        row = ref.summary_frame().iloc[-1]
        assert fit["estimate"][k] == pytest.approx(row["estimate"], abs=TOL["coef"])
        assert fit["std_error"][k] == pytest.approx(row["std_error"], abs=TOL["coef"])
        assert fit["p_value"][k] == pytest.approx(row["p_value"], abs=TOL["p_value"])
        assert fit["alpha"][k] == pytest.approx(ref.alpha_, rel=1e-6)


def test_negative_binomial_batch_fits_each_trial_on_its_own(count_table):
    full = P.negative_binomial_batch(count_table["reoffences"], count_table["exposure_days"], count_table["treatment"],
                                     count_table["replicate"])
    rows = count_table[count_table["replicate"] == 5]
    alone = P.negative_binomial_batch(rows["reoffences"], rows["exposure_days"], rows["treatment"],
                                      np.zeros(len(rows), dtype=int))
    assert alone["estimate"][0] == full["estimate"][5] and alone["p_value"][0] == full["p_value"][5]


def test_negative_binomial_batch_without_events_in_an_arm_is_not_converged():
    y = np.array([0, 0, 0, 1, 2, 3, 1, 0, 2, 1, 0, 4])
    fit = P.negative_binomial_batch(y, np.full(12, 100.0), np.tile([0, 0, 0, 1, 1, 1], 2), np.repeat([0, 1], 6))
    assert not fit["converged"][0] and math.isnan(fit["p_value"][0])
    assert fit["converged"][1]


# ----------------------------------------------------------------------------- the pipeline
@pytest.mark.parametrize("analysis", ["cox", "logrank"])
def test_replicate_results_agree_with_lifelines(london, analysis):
    from lifelines import CoxPHFitter
    from lifelines.statistics import logrank_test

    res = P.power(london, n=[70, 120], reps=6, analysis=analysis, rng=21, workers=1, schoenfeld=False, chunk_size=4)
    reps = res.replicates
    for i, size in enumerate((70, 120)):
        for k in (0, 5):
            table = generate(sized_scenario(london, size), rng=_seed(21, i, 2, 6, k), lean=True).followup()
            table = table.assign(treatment=(table["arm"] == london.conference_arm).astype(int))
            got = reps[(reps["n"] == size) & (reps["replicate"] == k)].iloc[0]
            assert got["events"] == table["event"].sum()
            if analysis == "cox":
                cph = CoxPHFitter().fit(table[["time_at_risk", "event", "treatment"]], "time_at_risk", "event",
                                        fit_options={"precision": 1e-12})
                assert got["log_estimate"] == pytest.approx(cph.params_["treatment"], abs=TOL["coef"])
                assert got["p_value"] == pytest.approx(cph.summary.loc["treatment", "p"], abs=TOL["p_value"])
            else:
                arm = table["treatment"] == 1
                ref = logrank_test(table.loc[arm, "time_at_risk"], table.loc[~arm, "time_at_risk"],
                                   table.loc[arm, "event"], table.loc[~arm, "event"])
                assert got["p_value"] == pytest.approx(ref.p_value, abs=TOL["p_value"])


def test_rate_ratio_power_agrees_with_frequency_rate_ratio(london):
    from rjtrial.frequency import rate_ratio

    res = P.power(london, n=[100], reps=4, analysis="rate_ratio", rng=8, workers=1, schoenfeld=False)
    for k in range(4):
        table = generate(sized_scenario(london, 100), rng=_seed(8, 0, 1, 4, k), lean=True).followup()
        table = table[table["exposure_days"] > 0]
        ref = rate_ratio(table, count="reoffences", exposure="exposure_days", group="arm", control="control")
        got = res.replicates.iloc[k]
        assert got["estimate"] == pytest.approx(ref.rate_ratio, rel=1e-6)
        assert got["p_value"] == pytest.approx(ref.p_value, abs=TOL["p_value"])


# ----------------------------------------------------------------------------- operating characteristics
def _within(power, level, reps, k=3.5):
    return abs(power - level) <= k * math.sqrt(level * (1 - level) / reps)


def test_null_scenario_rejects_at_alpha():
    """synthetic/null-effect.toml (minimisation, 1:2): the Cox test's size is alpha within MC error."""
    res = P.power(NULL, n=[60], reps=300, analysis="cox", rng=2026, workers=1, schoenfeld=False)
    row = res.frame().iloc[0]
    assert row["reps"] == 300 and row["failed"] == 0
    assert _within(row["power"], 0.05, 300), row["power"]
    assert row["mean_estimate"] == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("analysis", ["logrank", "rate_ratio"])
def test_null_rejects_at_alpha_for_the_other_tests(london, analysis):
    res = P.power(london.with_null(), n=[80], reps=300, analysis=analysis, alpha=0.1, rng=5, workers=1,
                  schoenfeld=False)
    assert _within(res.frame().iloc[0]["power"], 0.1, 300)


def test_power_grows_with_n(london):
    strong = london.with_overrides({"reoffending.hazard_ratio_treated": 0.45})
    frame = P.power(strong, n=[40, 240], reps=150, rng=4, workers=1, schoenfeld=False).frame()
    small, large = frame["power"]
    assert large > small + 3 * math.hypot(*frame["mc_std_error"])
    assert (frame["ci_lower"] <= frame["power"]).all() and (frame["power"] <= frame["ci_upper"]).all()


def test_frame_columns_and_schoenfeld_with_the_itt_and_naive_ratio(london, tmp_path):
    from rjtrial.simulate.truth import compute_truth

    res = P.power(london, n=[60, 150], reps=30, rng=9, workers=1, truth_population=40_000, truth_cache_dir=tmp_path)
    frame = res.frame()
    assert list(frame.columns) == ["n", "reps", "power", "mc_std_error", "ci_lower", "ci_upper", "mean_events",
                                   "mean_estimate", "failed", "expected_events", "schoenfeld_power",
                                   "schoenfeld_power_naive"]
    truth = compute_truth(london, population=40_000, cache_dir=tmp_path)
    per_person = sum(truth["events"].values()) / truth["population"]
    for row in frame.itertuples():
        assert row.mc_std_error == pytest.approx(math.sqrt(row.power * (1 - row.power) / 30))
        assert row.expected_events == pytest.approx(per_person * row.n)
        assert row.schoenfeld_power == pytest.approx(P.schoenfeld_power(truth["hazard_ratio"], row.expected_events))
        assert row.schoenfeld_power_naive == pytest.approx(P.schoenfeld_power(0.82, row.expected_events))
        assert row.schoenfeld_power < row.schoenfeld_power_naive  # non-compliance dilutes the effect
    assert frame.attrs["analysis"] == "cox" and frame.attrs["alpha"] == 0.05 and frame.attrs["seed"] == "9"
    data = res.to_dict()
    assert data["settings"]["itt_hazard_ratio"] == truth["hazard_ratio"]
    assert [r["n"] for r in data["rows"]] == [60, 150]
    assert "Schoenfeld ITT" in res.format()


# ----------------------------------------------------------------------------- reproducibility
def test_same_seed_same_result_whatever_the_chunks_and_workers(london):
    kwargs = dict(n=[50, 80], reps=30, rng=np.random.SeedSequence(77), schoenfeld=False)
    one = P.power(london, workers=1, **kwargs)
    pool = P.power(london, workers=2, chunk_size=7, **kwargs)
    assert one.settings["backend"] == "in-process" and pool.settings["backend"] == "process pool"
    pd.testing.assert_frame_equal(one.replicates, pool.replicates)
    other = P.power(london, workers=1, **{**kwargs, "rng": 78})
    assert not np.array_equal(one.replicates["p_value"], other.replicates["p_value"])


def test_dask_local_cluster_gives_the_pool_numbers(london):
    import distributed  # a dependency: the test fails, never skips, without it
    kwargs = dict(n=[50, 80], reps=20, rng=5, analysis="rate_ratio", schoenfeld=False, chunk_size=10)
    with distributed.LocalCluster(n_workers=1, processes=False, threads_per_worker=1, dashboard_address=None) as cluster:
        on_dask = P.power(london, scheduler=cluster.scheduler_address, **kwargs)
        with distributed.Client(cluster) as client:
            with_client = P.power(london, scheduler=client, **kwargs)
    pool = P.power(london, workers=2, **kwargs)
    assert on_dask.settings["backend"] == "dask"
    pd.testing.assert_frame_equal(on_dask.replicates, pool.replicates)
    pd.testing.assert_frame_equal(with_client.replicates, pool.replicates)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("options, name", [
    ({"n": [0]}, "n"), ({"n": [200, -5]}, "n"), ({"n": []}, "n"), ({"n": [2.5]}, "n"), ({"n": [50, 50]}, "n"),
    ({"reps": 0}, "reps"), ({"reps": 1.5}, "reps"),
    ({"analysis": "weibull"}, "analysis"),
    ({"alpha": 0.0}, "alpha"), ({"alpha": 1.0}, "alpha"), ({"alpha": -0.1}, "alpha"),
    ({"workers": 0}, "workers"), ({"rng": -1}, "rng"), ({"rng": "seed"}, "rng"), ({"chunk_size": 0}, "chunk_size"),
    ({"schoenfeld": True, "truth_population": 0}, "truth_population"),
])
def test_bad_input_names_the_option(london, options, name):
    kwargs = {"n": [50], "reps": 2, "rng": 1, "workers": 1, "schoenfeld": False, **options}
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        P.power(london, **kwargs)


def test_unknown_scenario_file_is_an_error_naming_it(tmp_path):
    from rjtrial.errors import RjtrialError

    with pytest.raises(RjtrialError, match="missing.toml"):
        P.power(tmp_path / "missing.toml", n=[50], reps=2, rng=1, workers=1)
