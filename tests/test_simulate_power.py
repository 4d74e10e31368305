"""Power by simulation (rjtrial/simulate/power.py, with its runner rjtrial/simulate/_runner.py).

Schoenfeld's formula against published tables; each simulated trial's result against
lifelines / :func:`rjtrial.frequency.rate_ratio` on the trial the generator draws from the
same seed; the operating characteristics (size under the null, power growing with n and
the effect); today's power within Monte Carlo error of the previous engine's; common random
numbers; one result whatever the workers or backend; the result convention; bad input.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rjtrial.simulate import power as P
from rjtrial.simulate._replicates import batch_seed, sized_scenario
from rjtrial.simulate.generator import generate
from rjtrial.simulate.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
LONDON = ROOT / "synthetic" / "jrc-london-burglary.toml"
NULL = ROOT / "synthetic" / "null-effect.toml"
TOL = {"coef": 1e-6, "p_value": 1e-6}


@pytest.fixture(scope="module")
def london():
    return load_scenario(LONDON)


def _trial(scenario, seed, replicate, *, chunk_size=P.CHUNK_SIZE, reps=None):
    """The documented trial ``replicate`` of a run seeded ``seed``: column ``k % chunk`` of batch ``k // chunk``."""
    from rjtrial.simulate._replicates import replicate_batch
    from rjtrial.simulate._streams import seed_sequence

    b, column = divmod(replicate, chunk_size)
    size = chunk_size if reps is None else min(chunk_size, reps - b * chunk_size)
    return {k: v[:, column] for k, v in replicate_batch(scenario, batch_seed(seed_sequence(seed), b), size).items()}


# ----------------------------------------------------------------------------- Schoenfeld
# Stat Med 2017;36(26):4121-4140, doi:10.1002/sim.7421, Table 3, "# Events N for PH
# assumption (80% power, alpha = 0.05 one-sided, r = 1)", N rounded up to an even number.
# One-sided 0.05 is two-sided alpha 0.10 in our two-sided parameterisation.
STAT_MED_2017_TABLE_3 = [
    (0.85, 938),
    (0.8, 498),
    (0.75, 300),
    (0.7, 196),
    (0.65, 134),
    (0.6, 96),
    (0.55, 70),
    (0.5, 52),
    (0.45, 40),
    (0.4, 30),
]


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


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: P.schoenfeld_power(0.0, 10), "hazard_ratio"),
        (lambda: P.schoenfeld_power(0.8, -1), "events"),
        (lambda: P.schoenfeld_power(0.8, 10, alpha=1.0), "alpha"),
        (lambda: P.schoenfeld_power(0.8, 10, allocation=1.0), "allocation"),
        (lambda: P.schoenfeld_events(1.0, 0.8), "hazard_ratio"),
        (lambda: P.schoenfeld_events(0.8, 1.2), "power"),
    ],
)
def test_schoenfeld_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# ----------------------------------------------------------------------------- each trial's result
@pytest.mark.parametrize("analysis", ["cox", "logrank"])
def test_replicate_results_agree_with_lifelines(london, analysis):
    """Trial k of the run is the trial the replicate engine draws for it -- exactly the generator's
    trial followed up (tests/test_simulate_replicates.py) -- and its fit is lifelines'."""
    from lifelines import CoxPHFitter
    from lifelines.statistics import logrank_test

    res = P.power(london, n=[70, 120], reps=6, analysis=analysis, rng=21, workers=1, schoenfeld=False, chunk_size=4)
    reps = res.replicates
    for size in (70, 120):
        for k in (0, 5):
            trial = _trial(sized_scenario(london, size), 21, k, chunk_size=4, reps=6)
            table = pd.DataFrame(
                {
                    "time_at_risk": trial["time_at_risk"],
                    "event": trial["event"].astype(int),
                    "treatment": trial["treatment"],
                }
            )
            got = reps[(reps["n"] == size) & (reps["replicate"] == k)].iloc[0]
            assert got["events"] == table["event"].sum()
            if analysis == "cox":
                cph = CoxPHFitter().fit(
                    table,
                    "time_at_risk",
                    "event",
                    fit_options={"precision": 1e-12, "r_precision": 1e-15, "step_size": 0.95, "max_steps": 500},
                )
                assert got["log_estimate"] == pytest.approx(cph.params_["treatment"], abs=TOL["coef"])
                assert got["p_value"] == pytest.approx(cph.summary.loc["treatment", "p"], abs=TOL["p_value"])
            else:
                arm = table["treatment"] == 1
                ref = logrank_test(
                    table.loc[arm, "time_at_risk"],
                    table.loc[~arm, "time_at_risk"],
                    table.loc[arm, "event"],
                    table.loc[~arm, "event"],
                )
                assert got["p_value"] == pytest.approx(ref.p_value, abs=TOL["p_value"])


def test_rate_ratio_power_agrees_with_frequency_rate_ratio(london):
    from rjtrial.frequency import rate_ratio

    res = P.power(london, n=[100], reps=4, analysis="rate_ratio", rng=8, workers=1, schoenfeld=False)
    for k in range(4):
        trial = _trial(sized_scenario(london, 100), 8, k, reps=4)
        table = pd.DataFrame(
            {
                "reoffences": trial["reoffences"],
                "exposure_days": trial["exposure_days"],
                "arm": np.where(trial["treatment"] == 1, "conference", "control"),
            }
        )
        ref = rate_ratio(
            table[table["exposure_days"] > 0],
            count="reoffences",
            exposure="exposure_days",
            group="arm",
            control="control",
        )
        got = res.replicates.iloc[k]
        assert got["estimate"] == pytest.approx(ref.rate_ratio, rel=1e-6)
        assert got["p_value"] == pytest.approx(ref.p_value, abs=TOL["p_value"])


def test_the_first_trial_is_the_generators_trial_from_the_batch_seed(london):
    """A run's trial 0 (a batch of one) is the generator's whole trial drawn from the batch's seed."""
    sized = sized_scenario(london, 90)
    res = P.power(london, n=[90], reps=1, rng=31, workers=1, schoenfeld=False)
    from rjtrial.simulate._streams import seed_sequence

    table = generate(sized, rng=batch_seed(seed_sequence(31), 0)).followup()
    assert res.replicates.iloc[0]["events"] == table["event"].sum()


# ----------------------------------------------------------------------------- operating characteristics
def _within(power, level, reps, k=3.5):
    return abs(power - level) <= k * math.sqrt(level * (1 - level) / reps)


def test_null_scenario_rejects_at_alpha():
    """synthetic/null-effect.toml (minimisation, 1:2): the Cox test's size is alpha within MC error."""
    res = P.power(NULL, n=[60], reps=1000, analysis="cox", rng=2026, workers=1, schoenfeld=False)
    row = res.summary_frame().iloc[0]
    assert row["reps"] == 1000 and row["failed"] == 0
    assert _within(row["power"], 0.05, 1000), row["power"]
    assert row["mean_estimate"] == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("analysis", ["logrank", "rate_ratio"])
def test_null_rejects_at_alpha_for_the_other_tests(london, analysis):
    res = P.power(
        london.with_null(), n=[80], reps=1000, analysis=analysis, alpha=0.1, rng=5, workers=1, schoenfeld=False
    )
    assert _within(res.summary_frame().iloc[0]["power"], 0.1, 1000)


def test_power_grows_with_n_and_with_the_effect(london):
    frame = P.power(
        london, n=[40, 240], hazard_ratio=[0.45, 0.8], reps=300, rng=4, workers=1, schoenfeld=False
    ).summary_frame()
    assert frame[["hazard_ratio", "n"]].values.tolist() == [[0.45, 40], [0.45, 240], [0.8, 40], [0.8, 240]]
    power = frame.set_index(["hazard_ratio", "n"])["power"]
    se = frame.set_index(["hazard_ratio", "n"])["mc_std_error"]
    assert power[(0.45, 240)] > power[(0.45, 40)] + 3 * math.hypot(se[(0.45, 240)], se[(0.45, 40)])
    assert power[(0.45, 240)] > power[(0.8, 240)] + 3 * math.hypot(se[(0.45, 240)], se[(0.8, 240)])
    assert (frame["ci_lower"] <= frame["power"]).all() and (frame["power"] <= frame["ci_upper"]).all()


#: Power of the previous engine (a generator run per replicate, followup.build, batched Cox):
#: benchmarks/results/power.json as of commit 3ffaf90, "whole_run" (2026-11-22: 2,000 trials per
#: size, seed 20261122, jrc-london-burglary, Cox). The new engine must agree within Monte Carlo error.
PREVIOUS = {200: 0.079, 400: 0.107, 800: 0.1775}


def test_power_stays_within_monte_carlo_error_of_the_previous_engine(london):
    frame = P.power(london, n=list(PREVIOUS), reps=2000, rng=20261122, schoenfeld=False, workers=2).summary_frame()
    for row in frame.itertuples():
        se = math.sqrt(2 * PREVIOUS[row.n] * (1 - PREVIOUS[row.n]) / 2000)  # difference of two independent estimates
        assert abs(row.power - PREVIOUS[row.n]) <= 3.5 * se, (row.n, row.power, PREVIOUS[row.n])


def test_summary_columns_and_schoenfeld_with_the_itt_and_naive_ratio(london, tmp_path):
    from rjtrial.simulate.truth import compute_truth

    res = P.power(london, n=[60, 150], reps=30, rng=9, workers=1, truth_population=40_000, truth_cache_dir=tmp_path)
    frame = res.summary_frame()
    assert list(frame.columns) == [
        "hazard_ratio",
        "n",
        "reps",
        "power",
        "mc_std_error",
        "ci_lower",
        "ci_upper",
        "mean_events",
        "mean_estimate",
        "failed",
        "itt_hazard_ratio",
        "expected_events",
        "schoenfeld_power",
        "schoenfeld_power_naive",
    ]
    pd.testing.assert_frame_equal(res.frame(), frame)
    truth = compute_truth(london, population=40_000, cache_dir=tmp_path)
    per_person = sum(truth["events"].values()) / truth["population"]
    for row in frame.itertuples():
        assert row.mc_std_error == pytest.approx(math.sqrt(row.power * (1 - row.power) / 30))
        assert row.itt_hazard_ratio == truth["hazard_ratio"]
        assert row.expected_events == pytest.approx(per_person * row.n)
        assert row.schoenfeld_power == pytest.approx(P.schoenfeld_power(truth["hazard_ratio"], row.expected_events))
        assert row.schoenfeld_power_naive == pytest.approx(P.schoenfeld_power(0.82, row.expected_events))
        assert row.schoenfeld_power < row.schoenfeld_power_naive  # non-compliance dilutes the effect
    assert frame.attrs["analysis"] == "cox" and frame.attrs["alpha"] == 0.05 and frame.attrs["seed"] == "9"
    data = json.loads(json.dumps(res.to_dict()))  # JSON-ready
    assert data["settings"]["truths"]["0.82"]["itt_hazard_ratio"] == truth["hazard_ratio"]
    assert [r["n"] for r in data["rows"]] == [60, 150]
    text = res.format()
    assert "Schoenfeld ITT" in text and "CPU seconds: generation" in text and "fitting" in text


def test_the_figure_draws_each_effect_with_its_band_and_schoenfeld(london, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    res = P.power(
        london,
        n=[60, 150],
        hazard_ratio=[0.6, 0.8],
        reps=20,
        rng=9,
        workers=1,
        truth_population=20_000,
        truth_cache_dir=tmp_path,
    )
    ax = res.plot()
    solid = [line for line in ax.get_lines() if line.get_linestyle() == "-" and len(line.get_xdata()) == 2]
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--" and len(line.get_xdata()) > 2]
    assert len(solid) == 2 and len(dashed) == 2 and len(ax.collections) == 2  # curves, Schoenfeld, bands
    np.testing.assert_allclose(solid[0].get_ydata(), res.summary_frame()["power"].to_numpy()[:2])
    ax.figure.savefig(tmp_path / "power.png")
    assert (tmp_path / "power.png").stat().st_size > 1000


# ----------------------------------------------------------------------------- common random numbers, reproducibility
def test_every_cell_draws_its_trials_from_the_same_batches(london):
    """Common random numbers: trial k of every size and effect starts from the same batch seed, so
    trials differing only in the effect differ only among those who had a conference."""
    res = P.power(
        london, n=[80], hazard_ratio=[0.82, 1.0], reps=40, rng=12, workers=1, schoenfeld=False, analysis="rate_ratio"
    )
    events = res.replicates.pivot(index="replicate", columns="hazard_ratio", values="events")
    assert (events[0.82] <= events[1.0]).mean() > 0.8 and (events[0.82] < events[1.0]).any()


def test_same_seed_same_result_whatever_the_workers(london):
    kwargs = dict(n=[50, 80], reps=30, rng=np.random.SeedSequence(77), schoenfeld=False, chunk_size=7)
    one = P.power(london, workers=1, **kwargs)
    pool = P.power(london, workers=2, **kwargs)
    assert one.settings["backend"] == "in-process" and pool.settings["backend"] == "thread pool"
    pd.testing.assert_frame_equal(one.replicates, pool.replicates)
    other = P.power(london, workers=1, **{**kwargs, "rng": 78})
    assert not np.array_equal(one.replicates["p_value"], other.replicates["p_value"])
    assert one.settings["seed"] == "77"


def test_dask_local_cluster_gives_the_pool_numbers(london):
    import distributed  # a dependency: the test fails, never skips, without it

    kwargs = dict(n=[50, 80], reps=20, rng=5, analysis="rate_ratio", schoenfeld=False, chunk_size=10)
    with distributed.LocalCluster(
        n_workers=1, processes=False, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        on_dask = P.power(london, scheduler=cluster.scheduler_address, **kwargs)
        with distributed.Client(cluster) as client:
            with_client = P.power(london, scheduler=client, **kwargs)
    pool = P.power(london, workers=2, **kwargs)
    assert on_dask.settings["backend"] == "dask"
    pd.testing.assert_frame_equal(on_dask.replicates, pool.replicates)
    pd.testing.assert_frame_equal(with_client.replicates, pool.replicates)


def test_the_deprecated_batch_name_still_answers(london):
    table = pd.DataFrame({"y": [0, 1, 2, 0, 3, 1, 0, 2], "x": [10.0] * 8, "g": [0, 0, 0, 0, 1, 1, 1, 1]})
    with pytest.warns(DeprecationWarning, match="survival.batched.negative_binomial_batch"):
        old = P.negative_binomial_batch(table["y"], table["x"], table["g"], np.zeros(8, dtype=int))
    assert set(old) == {"estimate", "std_error", "p_value", "alpha", "n_iterations", "converged"}


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "options, name",
    [
        ({"n": [0]}, "n"),
        ({"n": [200, -5]}, "n"),
        ({"n": []}, "n"),
        ({"n": [2.5]}, "n"),
        ({"n": [50, 50]}, "n"),
        ({"reps": 0}, "reps"),
        ({"reps": 1.5}, "reps"),
        ({"analysis": "weibull"}, "analysis"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"alpha": -0.1}, "alpha"),
        ({"workers": 0}, "workers"),
        ({"rng": -1}, "rng"),
        ({"rng": "seed"}, "rng"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"schoenfeld": True, "truth_population": 0}, "truth_population"),
        ({"hazard_ratio": 0.0}, "hazard_ratio"),
        ({"hazard_ratio": [0.7, 0.7]}, "hazard_ratio"),
        ({"hazard_ratio": []}, "hazard_ratio"),
        ({"hazard_ratio": ["x"]}, "hazard_ratio"),
    ],
)
def test_bad_input_names_the_option(london, options, name):
    kwargs = {"n": [50], "reps": 2, "rng": 1, "workers": 1, "schoenfeld": False, **options}
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        P.power(london, **kwargs)


def test_unknown_scenario_file_is_an_error_naming_it(tmp_path):
    from rjtrial.errors import RjtrialError

    with pytest.raises(RjtrialError, match="missing.toml"):
        P.power(tmp_path / "missing.toml", n=[50], reps=2, rng=1, workers=1)


def test_a_trial_the_negative_binomial_batch_cannot_fit_is_fitted_alone_by_rate_ratio():
    """rjtrial/simulate/_runner.py ``fit``: rows as they lie (person, trial); those without
    street time left out; a trial without over-dispersion (no negative binomial fit) is fitted
    by :func:`rjtrial.frequency.rate_ratio` on its own rows (its Poisson fallback)."""
    from rjtrial.frequency import rate_ratio
    from rjtrial.simulate._runner import fit
    from rjtrial.survival.batched import negative_binomial_batch

    rng = np.random.default_rng(5)
    n, trials = 200, 3
    treatment = np.tile(np.repeat([0, 1], n // 2)[:, None], (1, trials))
    exposure = rng.integers(1, 731, (n, trials))
    exposure[:7, [0, 2]] = 0  # no street time: not in any fit
    count = rng.negative_binomial(1.0, 1.0 / (1.0 + exposure / 365.0))
    exposure[:, 1] = 365
    count[:, 1] = 1 + np.arange(n) % 2  # under-dispersed: theta runs away
    out = fit({"exposure_days": exposure, "reoffences": count, "treatment": treatment}, "rate_ratio", 1)
    for k in range(trials):
        rows = exposure[:, k] > 0
        alone = pd.DataFrame({"y": count[rows, k], "e": exposure[rows, k], "arm": treatment[rows, k]})
        assert out["events"][k] == alone["y"].sum()
        batch = negative_binomial_batch(
            alone["y"].to_numpy()[None], alone["e"].to_numpy()[None], alone["arm"].to_numpy()[None]
        )
        if k == 1:
            assert not batch.converged[0]  # so the runner fell back
            ref = rate_ratio(alone, count="y", exposure="e", group="arm", control=0).summary_frame().iloc[-1]
            assert out["estimate"][k] == pytest.approx(ref["estimate"], rel=1e-12)
            assert out["p_value"][k] == pytest.approx(ref["p_value"], rel=1e-12)
        else:
            assert batch.converged[0] and out["estimate"][k] == batch.estimate[0]
