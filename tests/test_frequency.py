"""rjtrial.frequency: rate ratios, 2x2 measures, before-after SMD, observed/expected.

Agreement with R is in tests/validation/test_frequency_compliance_r.py; these tests check
behaviour, invariants, agreement between routes and bad input.
"""

from __future__ import annotations

import doctest
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rjtrial.errors import DataError, FallbackWarning
from rjtrial.frequency import (
    before_after_smd,
    compare_proportions,
    observed_expected,
    odds_ratio,
    rate_ratio,
    risk_difference,
    risk_ratio,
)

TRIAL = pd.read_csv(Path(__file__).resolve().parent / "reference" / "frequency_trial.csv")
RATE = dict(count="reoffences", exposure="exposure_days", group="arm")


def test_docstring_examples_run():
    import importlib

    attempted = 0
    for module in ("rates", "proportions", "change", "expected"):
        found = importlib.import_module(f"rjtrial.frequency.{module}")
        result = doctest.testmod(found, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module
        attempted += result.attempted
    assert attempted > 0


# ----------------------------------------------------------------------------- rate ratio
def test_poisson_rate_ratio_without_covariates_is_the_ratio_of_crude_rates():
    # Two routes, one answer: the Poisson MLE with one binary covariate reproduces the crude rates.
    fit = rate_ratio(TRIAL, model="poisson", **RATE)
    rates = fit.rates_frame().set_index("group")["rate"]
    assert fit.rate_ratio == pytest.approx(rates["rj"] / rates["control"], rel=1e-12)
    assert fit.converged and fit.n_iterations >= 1
    assert fit.dispersion_ is None and fit.theta_ is None


def test_negative_binomial_agrees_with_statsmodels_discrete_model():
    import statsmodels.api as sm

    fit = rate_ratio(TRIAL, **RATE)
    X = np.column_stack([np.ones(len(TRIAL)), (TRIAL["arm"] == "rj").to_numpy(float)])
    ref = sm.NegativeBinomial(TRIAL["reoffences"], X, offset=np.log(TRIAL["exposure_days"])).fit(
        method="bfgs", maxiter=2000, gtol=1e-10, disp=0
    )
    params = np.asarray(ref.params)
    np.testing.assert_allclose(fit.params_.to_numpy(), params[:2], atol=1e-6)
    assert fit.dispersion_ == pytest.approx(params[-1], rel=1e-5)
    assert fit.theta_ == pytest.approx(1 / fit.dispersion_)
    assert fit.converged and fit.n_iterations > 0


def test_summary_frame_vocabulary_and_attrs():
    fit = rate_ratio(TRIAL, covariates=["prior_offences", "site"], alpha=0.1, **RATE)
    table = fit.summary_frame()
    assert list(table.columns) == [
        "term",
        "estimate",
        "std_error",
        "rate_ratio",
        "ci_lower",
        "ci_upper",
        "statistic",
        "p_value",
    ]
    assert table["term"].tolist() == ["Intercept", "arm[T.rj]", "prior_offences", "site[T.b]", "site[T.c]"]
    assert table.attrs["alpha"] == 0.1 and table.attrs["ci_scale"] == "rate_ratio"
    row = table.iloc[1]
    assert row["ci_lower"] < row["rate_ratio"] < row["ci_upper"]
    assert fit.rate_ratio == row["rate_ratio"] and fit.ci_lower == row["ci_lower"]
    assert "negative binomial" in str(fit)


def test_control_keyword_inverts_the_rate_ratio():
    as_is = rate_ratio(TRIAL, model="poisson", **RATE)
    flipped = rate_ratio(TRIAL, model="poisson", control="rj", **RATE)
    assert flipped.params_.index[1] == "arm[T.control]"
    assert flipped.rate_ratio == pytest.approx(1 / as_is.rate_ratio, rel=1e-10)
    assert flipped.ci_lower == pytest.approx(1 / as_is.ci_upper, rel=1e-10)


def test_categorical_order_sets_the_control_arm():
    df = TRIAL.assign(arm=pd.Categorical(TRIAL["arm"], categories=["rj", "control"]))
    fit = rate_ratio(df, model="poisson", **RATE)
    assert fit.levels == ["rj", "control"]


def test_exposure_units_change_only_the_intercept():
    days = rate_ratio(TRIAL, **RATE)
    years = rate_ratio(TRIAL.assign(exposure_days=TRIAL["exposure_days"] / 365.25), **RATE)
    np.testing.assert_allclose(days.params_.iloc[1:], years.params_.iloc[1:], atol=1e-9)
    assert years.params_.iloc[0] == pytest.approx(days.params_.iloc[0] + math.log(365.25), abs=1e-9)


def test_three_arms_have_one_term_each_and_no_scalar_shortcut():
    df = TRIAL.assign(arm=np.where(TRIAL["id"] % 3 == 0, "indirect", TRIAL["arm"]))
    fit = rate_ratio(df, model="poisson", **RATE)
    assert fit.params_.index.tolist() == ["Intercept", "arm[T.indirect]", "arm[T.rj]"]
    with pytest.raises(ValueError, match="summary_frame"):
        fit.rate_ratio


def test_no_overdispersion_warns_and_reports_the_poisson_fit():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"arm": rng.choice(["c", "t"], 300), "t": rng.integers(100, 731, 300)})
    df["y"] = rng.poisson(df["t"] / 365 * np.where(df["arm"] == "t", 0.8, 1.2))
    with pytest.warns(FallbackWarning, match="no overdispersion"):
        fit = rate_ratio(df, count="y", exposure="t", group="arm")
    poisson = rate_ratio(df, count="y", exposure="t", group="arm", model="poisson")
    assert not fit.converged and fit.dispersion_ == 0 and fit.theta_ == math.inf
    assert fit.rate_ratio == pytest.approx(poisson.rate_ratio, rel=1e-10)
    # the fallback is named wherever the result is shown, never "negative binomial" alone
    assert fit.model == "negative_binomial" and fit.model_fitted == "poisson"
    assert fit.format().startswith("Poisson (fallback from negative binomial")
    assert fit.to_dict()["model"] == "poisson" and "no overdispersion" in fit.to_dict()["notes"][0]
    assert fit.summary_frame().attrs["model"] == "poisson"
    with pytest.warns(DeprecationWarning, match="dispersion_"):
        assert fit.alpha_ == 0


def test_underdispersed_counts_report_the_poisson_fit():
    # variance below the mean: the NB2 likelihood is largest at alpha = 0 (its slope there,
    # sum((y - mu)^2 - y) / 2, is negative); this sample once kept Newton and BFGS crawling for a minute
    df = pd.DataFrame({"y": [2, 1] * 20, "t": 1.0, "arm": ["c", "t"] * 10 + ["t", "c"] * 10})
    with pytest.warns(FallbackWarning, match="no overdispersion"):
        fit = rate_ratio(df, count="y", exposure="t", group="arm")
    poisson = rate_ratio(df, count="y", exposure="t", group="arm", model="poisson")
    assert fit.dispersion_ == 0 and fit.rate_ratio == pytest.approx(poisson.rate_ratio, rel=1e-12)
    assert fit.summary_frame()["std_error"].to_numpy() == pytest.approx(
        poisson.summary_frame()["std_error"].to_numpy(), rel=1e-12
    )


def test_zero_exposure_is_an_error_naming_the_rows():
    df = TRIAL.copy()
    df.loc[[3, 7], "exposure_days"] = 0
    with pytest.raises(DataError, match=r"2 row\(s\) \(3, 7\)") as info:
        rate_ratio(df, **RATE)
    assert info.value.column == "exposure_days" and info.value.row == 3


@pytest.mark.parametrize(
    "change, column, message",
    [
        (lambda d: d.drop(columns="exposure_days"), "exposure_days", "no column 'exposure_days'"),
        (lambda d: d.assign(reoffences=d["reoffences"].astype(str)), "reoffences", "must be numeric"),
        (lambda d: d.assign(reoffences=d["reoffences"] + 0.5), "reoffences", "whole number"),
        (lambda d: d.assign(exposure_days=d["exposure_days"] - 1000), "exposure_days", "negative"),
        (lambda d: d.assign(arm="rj"), "arm", "two groups"),
        (lambda d: d.assign(site="a"), "site", "at least two values"),
    ],
)
def test_bad_input_names_the_column(change, column, message):
    with pytest.raises(DataError, match=message) as info:
        rate_ratio(change(TRIAL), covariates=["site"], **RATE)
    assert info.value.column == column
    assert column in str(info.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(model="quasipoisson"), "'negative_binomial', 'poisson'"),
        (dict(alpha=1.5), "alpha"),
        (dict(control="restorative"), "not a level"),
        (dict(per=0), "per"),
    ],
)
def test_bad_options_raise_valueerror_naming_the_choices(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rate_ratio(TRIAL, **RATE, **kwargs)


def test_collinear_covariate_is_an_error():
    with pytest.raises(DataError, match="rank deficient"):
        rate_ratio(TRIAL.assign(twice=2 * TRIAL["age"]), covariates=["age", "twice"], **RATE)


# ----------------------------------------------------------------------------- two-by-two
def test_risk_measures_by_hand():
    df = pd.DataFrame({"arm": ["c"] * 10 + ["t"] * 10, "event": [1] * 6 + [0] * 4 + [1] * 3 + [0] * 7})
    rr = risk_ratio(df, outcome="event", group="arm")
    assert (rr.events_treatment, rr.n_treatment, rr.events_control, rr.n_control) == (3, 10, 6, 10)
    assert rr.estimate == pytest.approx(0.5)
    assert rr.std_error == pytest.approx(math.sqrt(1 / 3 - 1 / 10 + 1 / 6 - 1 / 10))
    assert rr.ci_lower == pytest.approx(0.5 * math.exp(-1.959963984540054 * rr.std_error))
    orr = odds_ratio(df, outcome="event", group="arm")
    assert orr.estimate == pytest.approx((3 * 4) / (7 * 6))
    rd = risk_difference(df, outcome="event", group="arm")
    assert rd.estimate == pytest.approx(-0.3)
    assert rd.std_error == pytest.approx(math.sqrt(0.3 * 0.7 / 10 + 0.6 * 0.4 / 10))
    assert rd.scale == "difference" and rr.scale == "log" and rr.correction == 0
    frame = rr.summary_frame()
    assert frame.attrs["alpha"] == 0.05 and frame.loc[0, "measure"] == "risk_ratio"


def test_zero_cell_correction_only_when_a_cell_is_empty():
    r = compare_proportions(measure="risk_ratio", events_treatment=0, n_treatment=20, events_control=5, n_control=22)
    assert r.correction == 0.5
    assert r.estimate == pytest.approx((0.5 / 21) / (5.5 / 23))
    assert r.risk_treatment == 0  # the uncorrected proportion is kept
    off = compare_proportions(
        measure="risk_ratio", events_treatment=0, n_treatment=20, events_control=5, n_control=22, correction=0
    )
    assert off.estimate == 0 and off.std_error == math.inf and off.correction == 0


def test_boolean_outcome_and_bool_any_reoffence():
    by_bool = risk_ratio(TRIAL.assign(any=TRIAL["reoffences"] > 0), outcome="any", group="arm")
    by_int = risk_ratio(TRIAL, outcome="event", group="arm")
    assert by_bool == by_int


def test_count_outcome_is_rejected_with_a_hint():
    with pytest.raises(DataError, match=r"0 or 1.*> 0") as info:
        risk_ratio(TRIAL, outcome="reoffences", group="arm")
    assert info.value.column == "reoffences"


def test_two_by_two_needs_exactly_two_arms():
    df = TRIAL.assign(arm=np.where(TRIAL["id"] % 3 == 0, "indirect", TRIAL["arm"]))
    with pytest.raises(DataError, match="two arms"):
        risk_difference(df, outcome="event", group="arm")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(measure="RR"), "'risk_ratio', 'risk_difference', 'odds_ratio'"),
        (dict(events_treatment=11), "exceed"),
        (dict(events_control=-1), "non-negative"),
        (dict(correction=-0.5), "correction"),
    ],
)
def test_compare_proportions_validates(kwargs, message):
    args = dict(measure="odds_ratio", events_treatment=3, n_treatment=10, events_control=4, n_control=10)
    with pytest.raises(ValueError, match=message):
        compare_proportions(**{**args, **kwargs})


# ----------------------------------------------------------------------------- before-after SMD
def test_before_after_smd_by_hand_and_symmetry():
    df = pd.DataFrame(
        {"arm": ["c"] * 4 + ["t"] * 4, "before": [2, 3, 1, 4, 3, 2, 4, 1], "after": [3, 3, 2, 4, 1, 1, 2, 0]}
    )
    d = before_after_smd(df, before="before", after="after", group="arm")
    change_c, change_t = np.array([1, 0, 1, 0]), np.array([-2, -1, -2, -1])
    sp = math.sqrt((3 * change_c.var(ddof=1) + 3 * change_t.var(ddof=1)) / 6)
    assert d.estimate == pytest.approx((change_t.mean() - change_c.mean()) / sp)
    assert d.std_error == pytest.approx(math.sqrt(1 / 4 + 1 / 4 + d.estimate**2 / 16))
    g = before_after_smd(df, before="before", after="after", group="arm", hedges=True)
    assert abs(g.estimate) < abs(d.estimate) and g.hedges and g.summary_frame().attrs["measure"] == "hedges_g"
    swapped = before_after_smd(df, before="before", after="after", group="arm", control="t")
    assert swapped.estimate == pytest.approx(-d.estimate)


def test_before_after_smd_needs_spread():
    df = pd.DataFrame({"arm": ["c", "c", "t", "t"], "before": [1, 2, 3, 4], "after": [1, 2, 3, 4]})
    with pytest.raises(DataError, match="no spread"):
        before_after_smd(df, before="before", after="after", group="arm")


# ----------------------------------------------------------------------------- observed/expected
def test_observed_expected_sums_and_ratio():
    result = observed_expected(TRIAL, observed="event", expected="risk_score", group="arm")
    arms = result.summary_frame().set_index("group")
    rj = TRIAL[TRIAL["arm"] == "rj"]
    assert arms.loc["rj", "observed"] == rj["event"].sum()
    assert arms.loc["rj", "estimate"] == pytest.approx(rj["event"].sum() / rj["risk_score"].sum())
    assert arms.loc["rj", "ci_lower"] < arms.loc["rj", "estimate"] < arms.loc["rj", "ci_upper"]
    assert result.summary_frame().attrs["alpha"] == 0.05
    comparison = result.comparison_frame().iloc[0]
    assert comparison["estimate"] == pytest.approx(arms.loc["rj", "estimate"] / arms.loc["control", "estimate"])


def test_observed_expected_counts_and_zero_observed():
    df = pd.DataFrame({"arm": ["c", "c", "t", "t"], "o": [0, 0, 2, 1], "e": [0.5, 0.7, 1.0, 1.2]})
    arms = observed_expected(df, observed="o", expected="e", group="arm").summary_frame()
    assert arms.loc[0, "estimate"] == 0 and arms.loc[0, "ci_lower"] == 0


@pytest.mark.parametrize(
    "change, column, message",
    [
        (lambda d: d.assign(event=d["event"] * 0.5), "event", "whole number"),
        (lambda d: d.assign(risk_score=-d["risk_score"]), "risk_score", "negative"),
        (lambda d: d.drop(columns="risk_score"), "risk_score", "no column"),
    ],
)
def test_observed_expected_bad_input(change, column, message):
    with pytest.raises(DataError, match=message) as info:
        observed_expected(change(TRIAL), observed="event", expected="risk_score", group="arm")
    assert info.value.column == column


def test_not_a_dataframe_is_a_typeerror():
    with pytest.raises(TypeError, match="DataFrame"):
        rate_ratio(TRIAL.to_dict(), **RATE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match="no rows"):
            rate_ratio(TRIAL.iloc[:0], **RATE)


def test_row_labels_and_order_do_not_matter():
    shuffled = TRIAL.sample(frac=1.0, random_state=3).set_index(TRIAL["id"].to_numpy() * 10)
    a = rate_ratio(TRIAL, covariates=["age", "site"], **RATE).summary_frame()
    b = rate_ratio(shuffled, covariates=["age", "site"], **RATE).summary_frame()
    pd.testing.assert_frame_equal(a, b, rtol=1e-8)
    bad = shuffled.copy()
    bad.iloc[4, bad.columns.get_loc("exposure_days")] = -1
    with pytest.raises(DataError) as info:
        rate_ratio(bad, **RATE)
    assert info.value.row == bad.index[4]  # the row is named by its label


def test_rate_ratio_omits_rows_with_missing_values_and_says_so():
    # R: glm.nb(reoffences ~ arm + offset(log(days)), data) drops NA rows (na.omit)
    df = TRIAL.copy().astype({RATE["count"]: float})
    df.loc[df.index[[2, 5]], RATE["count"]] = np.nan
    fit = rate_ratio(df, model="poisson", **RATE)
    complete = rate_ratio(df.dropna(subset=[RATE["count"]]), model="poisson", **RATE)
    assert fit.n_omitted == 2 and fit.params_.equals(complete.params_)
    assert "2 rows omitted" in fit.format()
    with pytest.raises(DataError, match="missing value") as info:
        rate_ratio(df, model="poisson", na_action="raise", **RATE)
    assert info.value.column == RATE["count"]
