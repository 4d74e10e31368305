"""rjtrial.survival.batched: cox_batch, logrank_batch, rmst_batch and negative_binomial_batch.

Three routes must give one answer for every replicate trial: the batched engine, one
``rjtrial.survival.cox`` / ``logrank`` fit per trial (R-matched, run to machine
precision) and lifelines ``CoxPHFitter`` / ``logrank_test``, computed here. R's numbers
come from tests/reference/batched_cox.R via tests/reference/batched_cox.json. The RMST and
the rate ratio are held to :func:`rjtrial.survival.rmst` and :func:`rjtrial.frequency.rate_ratio`
here, and to R in tests/validation/test_veteran_lung_batched_rmst.py and
tests/validation/test_quine_insurance_rate_ratio.py.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.statistics import logrank_test

from rjtrial.errors import DataError
from rjtrial.survival import cox, logrank
from rjtrial.survival.batched import (
    BatchedCox,
    BatchedLogrank,
    BatchedRateRatio,
    BatchedRMST,
    cox_batch,
    logrank_batch,
    negative_binomial_batch,
    rmst_batch,
)

REFERENCE = Path(__file__).parent / "reference" / "batched_cox.json"
TOL = {"coef": 1e-6, "std_error": 1e-6, "loglik": 1e-6, "statistic": 1e-6, "logrank": 1e-8}
LIFELINES_TIGHT = {"precision": 1e-12, "r_precision": 1e-15, "step_size": 0.95, "max_steps": 500}


# ----------------------------------------------------------------------------- data
def _trial(rng, n, *, share_treated=0.5, hazard_ratio=0.7, follow_up=2.0, unit=0.0):
    treatment = (rng.random(n) < share_treated).astype(int)
    latent = rng.exponential(np.where(treatment == 1, 1 / hazard_ratio, 1.0))
    time = np.minimum(latent, follow_up)
    if unit:
        time = np.ceil(time / unit) * unit
    return pd.DataFrame({"time": time, "event": (latent <= follow_up).astype(int), "treatment": treatment})


def _replicates() -> list[pd.DataFrame]:
    """Twenty trials of different sizes and shapes; ``KINDS`` says which is which."""
    rng = np.random.default_rng(20261122)
    trials = []
    for n in (40, 90, 150, 200):  # continuous times
        trials.append(_trial(rng, n))
    for n in (60, 120, 240, 300):  # whole "days" over a short range: heavy ties
        trials.append(_trial(rng, n, follow_up=1.5, unit=0.1))
    for n in (50, 100):  # a handful of distinct times: very heavy ties
        trials.append(_trial(rng, n, follow_up=1.0, unit=0.25, hazard_ratio=0.5))
    for share in (0.15, 0.3, 0.8, 0.9):  # unequal arms
        trials.append(_trial(rng, 120, share_treated=share, unit=0.05))
    for n in (70, 130):  # no effect
        trials.append(_trial(rng, n, hazard_ratio=1.0, unit=0.1))
    monotone = _trial(rng, 80, unit=0.1)
    monotone.loc[monotone["treatment"] == 0, "event"] = 0  # every event in the treated arm
    trials.append(monotone)
    trials.append(_trial(rng, 60, unit=0.1).assign(event=0))  # no events
    trials.append(_trial(rng, 50, unit=0.1).assign(treatment=1))  # control arm empty
    trials.append(_trial(rng, 30, unit=0.5))  # small
    return trials


TRIALS = _replicates()
MONOTONE, NO_EVENTS, ONE_ARM = 16, 17, 18
FITTABLE = [j for j in range(len(TRIALS)) if j not in (MONOTONE, NO_EVENTS, ONE_ARM)]


def _stacked(trials, *, shuffle_seed=None):
    frame = pd.concat([t.assign(trial=j) for j, t in enumerate(trials)], ignore_index=True)
    if shuffle_seed is not None:
        frame = frame.sample(frac=1.0, random_state=np.random.default_rng(shuffle_seed)).reset_index(drop=True)
    return frame


def _batch(frame, **options):
    return cox_batch(
        frame["time"].to_numpy(),
        frame["event"].to_numpy(),
        frame["treatment"].to_numpy(),
        trial=frame["trial"].to_numpy(),
        **options,
    )


@pytest.fixture(scope="module")
def efron():
    return _batch(_stacked(TRIALS, shuffle_seed=1))


@pytest.fixture(scope="module")
def breslow():
    return _batch(_stacked(TRIALS, shuffle_seed=2), ties="breslow")


@pytest.fixture(scope="module")
def ranks():
    frame = _stacked(TRIALS, shuffle_seed=3)
    return logrank_batch(frame["time"], frame["event"], frame["treatment"], trial=frame["trial"])


def _lifelines(df):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CoxPHFitter().fit(df, "time", "event", fit_options=LIFELINES_TIGHT)


# ------------------------------------------------------------- against our cox()
@pytest.mark.parametrize("j", FITTABLE)
@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_batch_equals_rjtrial_cox(j, ties, efron, breslow):
    res = efron if ties == "efron" else breslow
    fit = cox(TRIALS[j], "treatment", time="time", event="event", ties=ties)
    assert res.converged[j]
    assert res.estimate[j] == pytest.approx(fit.params_.iloc[0], abs=TOL["coef"])
    assert res.std_error[j] == pytest.approx(np.sqrt(fit.variance_.iloc[0, 0]), abs=TOL["std_error"])
    assert res.loglik[j] == pytest.approx(fit.log_likelihood_, abs=TOL["loglik"])
    assert res.loglik_null[j] == pytest.approx(fit.log_likelihood_null_, abs=TOL["loglik"])
    assert res.statistic[j] == pytest.approx(fit.summary_frame()["statistic"].iloc[0], abs=TOL["statistic"])
    assert res.p_value[j] == pytest.approx(fit.summary_frame()["p_value"].iloc[0], abs=TOL["statistic"])
    assert res.lr_statistic[j] == pytest.approx(fit.likelihood_ratio_test_.statistic, abs=TOL["statistic"])
    assert res.score_statistic[j] == pytest.approx(fit.score_test_.statistic, abs=TOL["statistic"])
    assert res.n[j] == len(TRIALS[j]) and res.events[j] == TRIALS[j]["event"].sum()


# ------------------------------------------------------------ against lifelines
@pytest.mark.parametrize("j", FITTABLE)
def test_cox_batch_equals_lifelines_efron(j, efron):
    theirs = _lifelines(TRIALS[j])
    assert efron.estimate[j] == pytest.approx(theirs.params_["treatment"], abs=TOL["coef"])
    assert efron.std_error[j] == pytest.approx(theirs.standard_errors_["treatment"], abs=TOL["std_error"])
    assert efron.loglik[j] == pytest.approx(theirs.log_likelihood_, abs=TOL["loglik"])
    assert efron.statistic[j] == pytest.approx(theirs.summary.loc["treatment", "z"], abs=TOL["statistic"])
    assert efron.p_value[j] == pytest.approx(theirs.summary.loc["treatment", "p"], abs=TOL["statistic"])


def test_monotone_likelihood_stops_like_r(efron):
    """Every event in the treated arm: the estimate is infinite; we stop where the loglik stops changing."""
    df = TRIALS[MONOTONE]
    fit = cox(df, "treatment", time="time", event="event")
    assert efron.converged[MONOTONE]
    assert efron.estimate[MONOTONE] > 5 and efron.std_error[MONOTONE] > 10
    assert efron.p_value[MONOTONE] > 0.5  # Hauck–Donner: the Wald test says nothing here
    assert efron.loglik[MONOTONE] == pytest.approx(fit.log_likelihood_, abs=TOL["loglik"])
    assert efron.lr_statistic[MONOTONE] == pytest.approx(fit.likelihood_ratio_test_.statistic, abs=TOL["statistic"])
    assert efron.score_statistic[MONOTONE] == pytest.approx(fit.score_test_.statistic, abs=TOL["statistic"])
    assert efron.loglik[MONOTONE] == pytest.approx(_lifelines(df).log_likelihood_, abs=TOL["loglik"])


@pytest.mark.parametrize("j", [NO_EVENTS, ONE_ARM])
def test_unfittable_trials_are_nan_not_errors(j, efron, ranks):
    assert not efron.converged[j]
    for name in ("estimate", "std_error", "statistic", "p_value", "loglik", "lr_statistic", "score_statistic"):
        assert np.isnan(getattr(efron, name)[j]), name
    assert np.isnan(ranks.statistic[j]) and np.isnan(ranks.p_value[j])
    others = [k for k in FITTABLE if k != j]
    assert efron.converged[others].all()


# ------------------------------------------------------------------ log-rank
@pytest.mark.parametrize("j", FITTABLE + [MONOTONE])
def test_logrank_batch_equals_rjtrial_logrank_and_lifelines(j, ranks):
    df = TRIALS[j]
    ours = logrank(df, time="time", event="event", group="treatment")
    treated = ours.table.set_index("group").loc[1]
    assert ranks.statistic[j] == pytest.approx(ours.statistic, rel=TOL["logrank"])
    assert ranks.p_value[j] == pytest.approx(ours.p_value, rel=TOL["logrank"])
    assert ranks.observed[j] == treated["observed"]
    assert ranks.expected[j] == pytest.approx(treated["expected"], rel=TOL["logrank"])
    a, b = df[df["treatment"] == 0], df[df["treatment"] == 1]
    theirs = logrank_test(a["time"], b["time"], a["event"], b["event"])
    assert ranks.statistic[j] == pytest.approx(theirs.test_statistic, rel=TOL["logrank"])
    assert ranks.p_value[j] == pytest.approx(theirs.p_value, rel=TOL["logrank"])
    assert np.sign(ranks.z[j]) == np.sign(ranks.observed[j] - ranks.expected[j])
    assert ranks.z[j] ** 2 == pytest.approx(ranks.statistic[j], rel=1e-12)


# ----------------------------------------------------------------------- R
def _r_reference():
    return json.loads(REFERENCE.read_text())


R_TRIALS = _r_reference()["trials"]


@pytest.fixture(scope="module")
def r_batches():
    frame = pd.concat(
        [pd.DataFrame({k: t[k] for k in ("time", "event", "treatment")}).assign(trial=t["trial"]) for t in R_TRIALS],
        ignore_index=True,
    ).iloc[::-1]  # unsorted labels
    fits = {ties: _batch(frame, ties=ties) for ties in ("efron", "breslow")}
    fits["survdiff"] = logrank_batch(frame["time"], frame["event"], frame["treatment"], trial=frame["trial"])
    return fits


@pytest.mark.parametrize("j", range(len(R_TRIALS)), ids=[t["label"] for t in R_TRIALS])
@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_batch_equals_r_coxph(j, ties, r_batches):
    # R: coxph(Surv(time, event) ~ treatment, ties = ties, control = coxph.control(eps = 1e-12, ...))
    ref, res = R_TRIALS[j][ties], r_batches[ties]
    assert res.estimate[j] == pytest.approx(ref["coef"], abs=TOL["coef"])
    assert res.std_error[j] == pytest.approx(ref["std_error"], abs=TOL["std_error"])
    assert res.loglik[j] == pytest.approx(ref["loglik"], abs=TOL["loglik"])
    assert res.loglik_null[j] == pytest.approx(ref["loglik_null"], abs=TOL["loglik"])
    assert res.lr_statistic[j] == pytest.approx(ref["lr_statistic"], abs=TOL["statistic"])
    assert res.score_statistic[j] == pytest.approx(ref["score_statistic"], abs=TOL["statistic"])
    assert res.statistic[j] ** 2 == pytest.approx(ref["wald_statistic"], abs=TOL["statistic"])
    alone = cox_batch(*(np.array([R_TRIALS[j][k]]) for k in ("time", "event", "treatment")), ties=ties)  # 2-D route
    assert alone.estimate[0] == pytest.approx(ref["coef"], abs=TOL["coef"])
    assert alone.std_error[0] == pytest.approx(ref["std_error"], abs=TOL["std_error"])
    assert alone.loglik[0] == pytest.approx(ref["loglik"], abs=TOL["loglik"])


@pytest.mark.parametrize("j", range(len(R_TRIALS)), ids=[t["label"] for t in R_TRIALS])
def test_logrank_batch_equals_r_survdiff(j, r_batches):
    # R: survdiff(Surv(time, event) ~ treatment); the treated group's obs, exp, var[2, 2], chisq
    ref, res = R_TRIALS[j]["survdiff"], r_batches["survdiff"]
    assert res.observed[j] == ref["observed"]
    assert res.expected[j] == pytest.approx(ref["expected"], rel=TOL["logrank"])
    assert res.variance[j] == pytest.approx(ref["variance"], rel=TOL["logrank"])
    assert res.statistic[j] == pytest.approx(ref["statistic"], rel=TOL["logrank"])


# -------------------------------------------------------- layouts and threads
def _equal_sized(seed, n_trials=40, n=100):
    rng = np.random.default_rng(seed)
    treatment = rng.integers(0, 2, (n_trials, n))
    latent = rng.exponential(np.where(treatment == 1, 1.4, 1.0))
    return np.ceil(np.minimum(latent, 2.0) * 20), (latent <= 2.0).astype(int), treatment


def _same(a, b):
    for name in a.to_frame().columns:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12, atol=0, err_msg=name)


@pytest.mark.parametrize("verb", [cox_batch, logrank_batch])
def test_unsorted_labels_equal_two_dimensional(verb):
    time, event, treatment = _equal_sized(5)
    n_trials, n = time.shape
    permutation = np.random.default_rng(6).permutation(time.size)
    labels = np.repeat(np.arange(n_trials), n)[permutation]
    flat = verb(time.ravel()[permutation], event.ravel()[permutation], treatment.ravel()[permutation], trial=labels)
    _same(verb(time, event, treatment), flat)


@pytest.mark.parametrize("verb", [cox_batch, logrank_batch])
@pytest.mark.parametrize(
    "transform", [lambda t: t + 0.5, lambda t: t * 2.0**51], ids=["fractional times", "times beyond 2**50"]
)
def test_packed_whole_days_equal_general_times(verb, transform):
    """Whole-number times take a faster route (packed sort keys); order-preserving changes of time must not matter."""
    time, event, treatment = _equal_sized(12)
    _same(verb(time, event, treatment), verb(transform(time), event, treatment))
    labels = np.repeat(np.arange(time.shape[0]), time.shape[1])
    flat = verb(transform(time).ravel(), event.ravel(), treatment.ravel(), trial=labels)
    _same(verb(time, event, treatment), flat)


def test_unequal_trials_equal_one_at_a_time(efron):
    for j in (0, 5, 12):
        df = TRIALS[j]
        alone = cox_batch(
            df["time"].to_numpy()[None, :], df["event"].to_numpy()[None, :], df["treatment"].to_numpy()[None, :]
        )
        assert alone.estimate[0] == pytest.approx(efron.estimate[j], rel=1e-12)
        assert alone.loglik[0] == pytest.approx(efron.loglik[j], rel=1e-12)


@pytest.mark.parametrize("threads", [None, 3])
def test_thread_count_does_not_change_results(threads):
    time, event, treatment = _equal_sized(7, n_trials=300)  # enough trials to be split between threads
    _same(cox_batch(time, event, treatment, threads=1), cox_batch(time, event, treatment, threads=threads))
    _same(logrank_batch(time, event, treatment, threads=1), logrank_batch(time, event, treatment, threads=threads))
    fractional = time + 0.25  # the argsort route
    _same(cox_batch(fractional, event, treatment, threads=1), cox_batch(fractional, event, treatment, threads=threads))


def test_boolean_codes_equal_integer_codes():
    time, event, treatment = _equal_sized(8, n_trials=5)
    _same(cox_batch(time, event.astype(bool), treatment.astype(bool)), cox_batch(time, event, treatment.astype(float)))


def test_missing_trial_label_is_an_unfit_trial():
    time, event, treatment = _equal_sized(9, n_trials=3)
    labels = np.repeat([0, 2, 3], time.shape[1])
    res = cox_batch(time.ravel(), event.ravel(), treatment.ravel(), trial=labels)
    assert len(res) == 4 and res.n.tolist() == [100, 0, 100, 100]
    assert res.converged.tolist() == [True, False, True, True]


def test_to_frame_has_one_row_per_trial(efron, ranks):
    frame = efron.to_frame()
    assert isinstance(efron, BatchedCox) and isinstance(ranks, BatchedLogrank)
    assert frame.index.name == "trial" and len(frame) == len(TRIALS)
    assert list(frame.columns[:10]) == [
        "estimate",
        "std_error",
        "statistic",
        "p_value",
        "loglik",
        "loglik_null",
        "lr_statistic",
        "score_statistic",
        "n_iterations",
        "converged",
    ]
    assert list(ranks.to_frame().columns[:6]) == ["observed", "expected", "variance", "statistic", "z", "p_value"]
    np.testing.assert_array_equal(frame["estimate"].to_numpy(), efron.estimate)


def test_tolerance_and_iteration_limit_are_honoured():
    time, event, treatment = _equal_sized(10, n_trials=5)
    loose = cox_batch(time, event, treatment, tol=1e-3)
    tight = cox_batch(time, event, treatment, tol=1e-12)
    assert (loose.n_iterations <= tight.n_iterations).all() and (loose.n_iterations < tight.n_iterations).any()
    capped = cox_batch(time, event, treatment, max_iterations=1)
    assert not capped.converged.any() and np.isnan(capped.estimate).all()


# ------------------------------------------------------------------ bad input
def _good(n_trials=3, n=20):
    time, event, treatment = _equal_sized(11, n_trials=n_trials, n=n)
    return {"time": time.astype(float), "event": event, "treatment": treatment}


@pytest.mark.parametrize(
    "column, change",
    [
        ("time", lambda a: a.__setitem__((1, 4), -1.0)),
        ("time", lambda a: a.__setitem__((2, 0), np.nan)),
        ("time", lambda a: a.__setitem__((0, 7), np.inf)),
        ("event", lambda a: a.__setitem__((1, 3), 2)),
        ("treatment", lambda a: a.__setitem__((0, 0), 3)),
    ],
    ids=["negative time", "missing time", "infinite time", "event not 0/1", "treatment not 0/1"],
)
@pytest.mark.parametrize("verb", [cox_batch, logrank_batch])
def test_bad_values_name_the_column_and_row(column, change, verb):
    data = _good()
    change(data[column])
    with pytest.raises(DataError) as info:
        verb(data["time"], data["event"], data["treatment"])
    assert info.value.column == column
    assert isinstance(info.value.row, tuple) and column in str(info.value)


@pytest.mark.parametrize("verb", [cox_batch, logrank_batch])
def test_mismatched_shapes_name_the_column(verb):
    data = _good()
    with pytest.raises(DataError, match="event") as info:
        verb(data["time"], data["event"][:, :-1], data["treatment"])
    assert info.value.column == "event"
    with pytest.raises(DataError) as info:
        verb(data["time"].ravel(), data["event"].ravel(), data["treatment"].ravel(), trial=np.zeros(5, dtype=int))
    assert info.value.column == "trial"


@pytest.mark.parametrize(
    "trial, message",
    [(None, "2-D"), (np.full(60, 0.5), "integer"), (np.full(60, -1), "0 .. n_trials")],
    ids=["1-D without labels", "float labels", "negative label"],
)
def test_bad_layout_is_a_data_error(trial, message):
    data = _good()
    with pytest.raises(DataError, match=message):
        cox_batch(data["time"].ravel(), data["event"].ravel(), data["treatment"].ravel(), trial=trial)


def test_non_numeric_time_names_the_column():
    with pytest.raises(DataError) as info:
        cox_batch(np.array([["a", "b"]]), np.array([[1, 0]]), np.array([[0, 1]]))
    assert info.value.column == "time"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"ties": "exact"}, "ties"),
        ({"threads": 0}, "threads"),
        ({"tol": 0}, "tol"),
        ({"max_iterations": 0}, "max_iterations"),
    ],
)
def test_bad_options_raise_value_error(options, message):
    data = _good()
    with pytest.raises(ValueError, match=message):
        cox_batch(data["time"], data["event"], data["treatment"], **options)


# ------------------------------------------------------------------ RMST
@pytest.fixture(scope="module")
def restricted():
    frame = _stacked(TRIALS, shuffle_seed=4)
    return {
        tau: rmst_batch(frame["time"], frame["event"], frame["treatment"], tau=tau, trial=frame["trial"])
        for tau in (0.5, 0.9)
    }


@pytest.mark.parametrize("tau", [0.5, 0.9])
@pytest.mark.parametrize("j", FITTABLE + [MONOTONE, NO_EVENTS])
def test_rmst_batch_equals_rjtrial_rmst(j, tau, restricted):
    from rjtrial.survival import rmst

    df = TRIALS[j]
    res = restricted[tau]
    ref = rmst(df, tau=tau, time="time", event="event", group="treatment", reference=0)
    table = ref.table.set_index("group")
    assert res.rmst_control[j] == pytest.approx(table.loc[0, "estimate"], abs=1e-10)
    assert res.rmst_treated[j] == pytest.approx(table.loc[1, "estimate"], abs=1e-10)
    assert res.std_error_control[j] == pytest.approx(table.loc[0, "std_error"], abs=1e-10)
    assert res.std_error_treated[j] == pytest.approx(table.loc[1, "std_error"], abs=1e-10)
    difference = ref.difference.iloc[0]
    assert res.estimate[j] == pytest.approx(difference["estimate"], abs=1e-10)
    assert res.std_error[j] == pytest.approx(difference["std_error"], abs=1e-10)
    assert res.p_value[j] == pytest.approx(difference["p_value"], abs=1e-10, nan_ok=True)  # nan: no events
    assert res.events[j] == df["event"].sum() and res.n[j] == len(df)


def test_rmst_beyond_an_arms_follow_up_or_of_an_empty_arm_is_nan(restricted):
    res = restricted[0.5]
    assert isinstance(res, BatchedRMST)
    assert np.isnan(res.rmst_control[ONE_ARM]) and np.isfinite(res.rmst_treated[ONE_ARM])
    time = np.array([[1.0, 2.0, 3.0, 1.0, 5.0, 6.0]])
    beyond = rmst_batch(time, np.ones((1, 6)), np.array([[0, 0, 0, 1, 1, 1]]), tau=4.0)
    assert np.isnan(beyond.rmst_control[0]) and beyond.rmst_treated[0] == pytest.approx(1 + 3 * 2 / 3)
    assert np.isnan(beyond.estimate[0])


def test_rmst_layouts_agree():
    time, event, treatment = _equal_sized(13)
    labels = np.repeat(np.arange(time.shape[0]), time.shape[1])
    a = rmst_batch(time, event, treatment, tau=30.0)
    b = rmst_batch(time.ravel() + 0.0, event.ravel(), treatment.ravel(), trial=labels, tau=30.0)
    c = rmst_batch(time * 1.0 + 0.25, event, treatment, tau=30.25)  # the argsort route: shifted times, shifted tau
    _same(a, b)
    np.testing.assert_allclose(a.rmst_control + 0.25, c.rmst_control, rtol=0, atol=1e-9)


@pytest.mark.parametrize("tau", [0, -1.0, np.nan, np.inf, "1"])
def test_rmst_tau_must_be_a_positive_number(tau):
    data = _good()
    with pytest.raises(ValueError, match="tau"):
        rmst_batch(data["time"], data["event"], data["treatment"], tau=tau)


# ------------------------------------------------------------------ NB2 rate ratio
@pytest.fixture(scope="module")
def count_table():
    """Eight replicate trials of 150 from the simulation engine (frailty: over-dispersed counts)."""
    from rjtrial.simulate._replicates import replicate_followup, sized_scenario
    from rjtrial.simulate.scenario import load_scenario

    scenario = sized_scenario(
        load_scenario(Path(__file__).resolve().parents[1] / "synthetic" / "jrc-london-burglary.toml"), 150
    )
    table, _ = replicate_followup(scenario, [np.random.SeedSequence(3)], replicates=8)
    return table[table["exposure_days"] > 0].reset_index(drop=True)


def test_negative_binomial_batch_agrees_with_frequency_rate_ratio(count_table):
    from rjtrial.frequency import rate_ratio

    fit = negative_binomial_batch(
        count_table["reoffences"],
        count_table["exposure_days"],
        count_table["treatment"],
        trial=count_table["replicate"].to_numpy(),
    )
    assert isinstance(fit, BatchedRateRatio) and fit.converged.all()
    for k in range(8):
        ref = rate_ratio(
            count_table[count_table["replicate"] == k],
            count="reoffences",
            exposure="exposure_days",
            group="treatment",
            control=0,
        )
        row = ref.summary_frame().iloc[-1]
        assert fit.estimate[k] == pytest.approx(row["estimate"], abs=TOL["coef"])
        assert fit.std_error[k] == pytest.approx(row["std_error"], abs=TOL["coef"])
        assert fit.p_value[k] == pytest.approx(row["p_value"], abs=TOL["coef"])
        assert fit.dispersion[k] == pytest.approx(ref.alpha_, rel=1e-6)
        assert fit.rate_ratio[k] == pytest.approx(np.exp(row["estimate"]), rel=1e-12)


def test_negative_binomial_batch_fits_each_trial_on_its_own(count_table):
    full = negative_binomial_batch(
        count_table["reoffences"],
        count_table["exposure_days"],
        count_table["treatment"],
        trial=count_table["replicate"].to_numpy(),
    )
    rows = count_table[count_table["replicate"] == 5]
    alone = negative_binomial_batch(
        rows["reoffences"], rows["exposure_days"], rows["treatment"], trial=np.zeros(len(rows), dtype=int)
    )
    assert alone.estimate[0] == full.estimate[5] and alone.p_value[0] == full.p_value[5]


def test_negative_binomial_batch_trials_without_rows_are_left_unfitted(count_table):
    """Labels 1, 3 and 4 of five have no rows (before, between and after the others): they
    come back unfitted, and trials 0 and 2 as fitted alone."""
    rows = [count_table[count_table["replicate"] == k] for k in (2, 6)]
    stacked = pd.concat(rows)
    labels = np.repeat([0, 2], [len(r) for r in rows])
    fit = negative_binomial_batch(
        stacked["reoffences"].to_numpy(),
        stacked["exposure_days"].to_numpy(),
        stacked["treatment"],
        trial=labels,
        n_trials=5,
    )
    for k, alone_rows in zip((0, 2), rows):
        alone = negative_binomial_batch(
            alone_rows["reoffences"].to_numpy(),
            alone_rows["exposure_days"].to_numpy(),
            alone_rows["treatment"],
            trial=np.zeros(len(alone_rows), dtype=int),
        )
        assert fit.estimate[k] == alone.estimate[0] and fit.p_value[k] == alone.p_value[0] and fit.converged[k]
    for k in (1, 3, 4):
        assert not fit.converged[k] and np.isnan(fit.estimate[k]) and fit.n[k] == 0


def test_negative_binomial_batch_two_dimensional_equals_labels(count_table):
    rows = count_table[count_table["replicate"] < 2]
    first = rows[rows["replicate"] == 0].iloc[:100]
    second = rows[rows["replicate"] == 1].iloc[:100]
    stacked = pd.concat([first, second])
    labelled = negative_binomial_batch(
        stacked["reoffences"], stacked["exposure_days"], stacked["treatment"], trial=np.repeat([0, 1], 100)
    )
    grid = negative_binomial_batch(
        np.vstack([first["reoffences"], second["reoffences"]]),
        np.vstack([first["exposure_days"], second["exposure_days"]]),
        np.vstack([first["treatment"], second["treatment"]]),
    )
    _same(labelled, grid)


def test_negative_binomial_batch_without_events_in_an_arm_is_not_converged():
    y = np.array([0, 0, 0, 1, 2, 3, 1, 0, 2, 1, 0, 4])
    fit = negative_binomial_batch(y, np.full(12, 100.0), np.tile([0, 0, 0, 1, 1, 1], 2), trial=np.repeat([0, 1], 6))
    assert not fit.converged[0] and np.isnan(fit.p_value[0])
    assert fit.converged[1]


@pytest.mark.parametrize(
    "column, position, value, message",
    [
        ("count", 3, -1.0, "non-negative"),
        ("count", 4, np.nan, "non-negative"),
        ("exposure", 2, 0.0, "positive"),
        ("exposure", 5, np.inf, "positive"),
        ("treatment", 1, 2, "0 \\(control\\) or 1"),
    ],
)
def test_negative_binomial_bad_values_name_the_column_and_row(column, position, value, message):
    data = {"count": np.arange(12.0), "exposure": np.full(12, 10.0), "treatment": np.tile([0, 1], 6)}
    data[column] = data[column].astype(float) if column != "treatment" else data[column]
    data[column][position] = value
    with pytest.raises(DataError, match=message) as info:
        negative_binomial_batch(data["count"], data["exposure"], data["treatment"], trial=np.zeros(12, dtype=int))
    assert info.value.column == column and info.value.row == position


@pytest.mark.parametrize(
    "options, message", [({"tol": 0}, "tol"), ({"max_iterations": 0}, "max_iterations"), ({"n_trials": 1}, "n_trials")]
)
def test_negative_binomial_bad_options(options, message):
    with pytest.raises((ValueError, DataError), match=message):
        negative_binomial_batch(
            np.arange(6.0), np.ones(6), np.tile([0, 1], 3), trial=np.array([0, 0, 0, 1, 1, 1]), **options
        )


def test_negative_binomial_batch_fits_non_whole_counts_by_maximum_likelihood():
    """Counts that are not whole numbers take the lgamma/digamma route: the batch's estimates
    maximise the NB2 likelihood (checked against scipy's optimiser on the same likelihood)."""
    from scipy import optimize, special

    rng = np.random.default_rng(5)
    arm = np.repeat([0, 1], 150)
    y = rng.negative_binomial(1.2, 1.0 / (1.0 + np.where(arm == 1, 1.6, 2.4))) + 0.5
    x = rng.uniform(200, 730, arm.size)
    fit = negative_binomial_batch(y, x, arm, trial=np.zeros(arm.size, dtype=int), tol=1e-12)

    def minus_loglik(params):
        a0, a1, log_theta = params
        theta = np.exp(log_theta)
        eta = np.log(x) + np.where(arm == 1, a1, a0)
        mu = np.exp(eta)
        ll = (
            special.gammaln(y + theta)
            - special.gammaln(theta)
            + theta * log_theta
            - (theta + y) * np.log(theta + mu)
            + y * eta
        )
        return -ll.sum()

    best = optimize.minimize(
        minus_loglik,
        [np.log(2.0 / 365), np.log(1.6 / 365), 0.0],
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20_000, "maxfev": 40_000},
    )
    assert fit.converged[0]
    assert fit.estimate[0] == pytest.approx(best.x[1] - best.x[0], abs=1e-5)
    assert fit.dispersion[0] == pytest.approx(np.exp(-best.x[2]), rel=1e-4)


@pytest.mark.parametrize("x", [1e-3, 0.3, 1.0, 2.5, 5.999, 6.0, 17.0, 250.0, 1e6])
def test_the_kernels_digamma_and_trigamma_are_scipys(x):
    from scipy import special

    from rjtrial.survival import _batched_kernels

    assert _batched_kernels._digamma(x) == pytest.approx(special.digamma(x), rel=1e-12, abs=1e-12)
    assert _batched_kernels._trigamma(x) == pytest.approx(special.polygamma(1, x), rel=1e-12, abs=1e-12)
