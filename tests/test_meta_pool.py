"""rjtrial.meta.pool: options, input checks, result basics, agreement with statsmodels.

Agreement with R metafor, quantity by quantity, is in tests/validation/test_metafor_*.py.
"""

from __future__ import annotations

import doctest
import importlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.meta_analysis import combine_effects

from rjtrial import effects
from rjtrial.errors import DataError
from rjtrial.meta import METHODS, MetaResult, pool

BCG = pd.read_csv(Path(__file__).parent / "reference" / "metadat_bcg.csv")


@pytest.fixture(scope="module")
def log_rr() -> pd.DataFrame:
    es = effects.log_risk_ratio(
        BCG,
        events_treatment="tpos",
        n_treatment=BCG.tpos + BCG.tneg,
        events_control="cpos",
        n_control=BCG.cpos + BCG.cneg,
        study="author",
    )
    return es.assign(ablat=BCG.ablat.to_numpy(), year=BCG.year.to_numpy(), alloc=BCG.alloc.to_numpy())


# --------------------------------------------------------------------------- options
@pytest.mark.parametrize("method", METHODS)
def test_every_method_returns_a_result(log_rr, method):
    if method == "Peto":  # Peto's method estimates an odds ratio: it refuses a risk-ratio frame
        with pytest.raises(ValueError, match="got 'log_risk_ratio'"):
            pool(log_rr, method=method)
        log_rr = effects.log_odds_ratio(
            BCG,
            events_treatment="tpos",
            n_treatment=BCG.tpos + BCG.tneg,
            events_control="cpos",
            n_control=BCG.cpos + BCG.cneg,
        )
    weights = (BCG.tpos + BCG.tneg + BCG.cpos + BCG.cneg).to_numpy() if method == "GENQ" else None
    res = pool(log_rr, method=method, weights=weights)
    assert isinstance(res, MetaResult) and res.method == method and res.k == 13
    assert res.ci_lower < res.estimate < res.ci_upper
    assert res.pi_lower <= res.ci_lower and res.pi_upper >= res.ci_upper


def test_unknown_method_lists_the_options(log_rr):
    with pytest.raises(
        ValueError, match="'FE', 'MH', 'Peto', 'DL', 'HE', 'HS', 'HSk', 'SJ', 'ML', 'REML', 'EB', 'PM', 'PMM', 'GENQ'"
    ):
        pool(log_rr, method="dl")


def test_unknown_test_lists_the_options(log_rr):
    with pytest.raises(ValueError, match="'z', 'knha', 't', 'adhoc'"):
        pool(log_rr, test="hksj")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(method="MH", test="knha"), "supports only test='z'"),
        (dict(method="MH", moderators="ablat"), "pools without moderators"),
        (dict(subgroup="alloc", moderators="ablat"), "either subgroup or moderators"),
        (dict(subgroup="alloc", subgroup_tau2="pooled"), "'separate', 'common'"),
        (dict(alpha=1.5), "alpha must be in"),
        (dict(moderators="latitude"), "not columns of effects"),
    ],
)
def test_bad_options_raise_value_error(log_rr, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pool(log_rr, **kwargs)


def test_keyword_only_options(log_rr):
    with pytest.raises(TypeError):
        pool(log_rr, "REML")


def test_mantel_haenszel_needs_counts_and_a_measure():
    plain = pd.DataFrame({"estimate": [0.1, 0.3], "variance": [0.04, 0.05]})
    with pytest.raises(ValueError, match="needs effects with measure"):
        pool(plain, method="MH")
    hr = effects.log_hazard_ratio_logrank(observed_minus_expected=[1, 2], logrank_variance=[10, 20])
    with pytest.raises(ValueError, match="got 'log_hazard_ratio'"):
        pool(hr, method="Peto")


# --------------------------------------------------------------------------- input checks
def test_non_positive_variance_names_the_study():
    es = pd.DataFrame({"estimate": [0.1, 0.3, 0.2], "variance": [0.04, 0.0, 0.02]}, index=["A", "B", "C"])
    with pytest.raises(DataError, match="variance must be positive") as info:
        pool(es)
    assert info.value.row == "B" and info.value.column == "variance" and info.value.table == "effects"


def test_estimate_missing_with_a_variance_names_the_study():
    es = pd.DataFrame({"estimate": [0.1, np.nan, 0.2], "variance": [0.04, 0.03, 0.02]}, index=["A", "B", "C"])
    with pytest.raises(DataError, match="estimate is nan") as info:
        pool(es, na_action="raise")
    assert info.value.row == "B"


@pytest.mark.parametrize(
    "estimate, variance, column, message",
    [
        pytest.param(1e308, 0.03, "estimate", "too large", id="estimate-1e308"),
        pytest.param(-1e300, 0.03, "estimate", "too large", id="estimate--1e300"),
        pytest.param(0.2, 1e-308, "variance", "too small", id="variance-1e-308"),
        pytest.param(0.2, 1e308, "variance", "too large", id="variance-1e308"),
        pytest.param("n/a", "n/a", "estimate", "not a number", id="text-pair"),
        pytest.param(0.2, "0.03?", "variance", "not a number", id="text-variance"),
        pytest.param(True, 0.03, "estimate", "not a number", id="boolean"),
    ],
)
def test_extreme_or_text_values_name_the_study_instead_of_a_nan_result(estimate, variance, column, message):
    # 1e308 / 1e-308 gave an internal error or `estimate = nan`; text was coerced to NaN and the
    # study silently treated as not estimable
    es = pd.DataFrame({"estimate": [0.1, estimate, 0.2], "variance": [0.04, variance, 0.02]}, index=["A", "B", "C"])
    with pytest.raises(DataError, match=message) as info:
        pool(es)
    assert (info.value.table, info.value.row, info.value.column) == ("effects", "B", column)


def test_missing_moderator_names_the_study(log_rr):
    with pytest.raises(DataError, match="missing moderator value") as info:
        pool(
            log_rr.assign(ablat=log_rr.ablat.where(log_rr.index != "TPT Madras")), moderators="ablat", na_action="raise"
        )
    assert info.value.row == "TPT Madras" and info.value.column == "ablat"


def test_studies_without_estimate_are_left_out_with_a_warning(log_rr):
    es = log_rr.copy()
    es.loc["Aronson", ["estimate", "variance"]] = np.nan
    with pytest.warns(UserWarning, match="left out of pooling: Aronson"):
        res = pool(es)
    assert res.k == 12 and np.isnan(res.yi[0]) and np.isnan(res.weights[0])
    np.testing.assert_allclose(np.nansum(res.weights), 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expected = pool(log_rr.iloc[1:])
    assert res.estimate == pytest.approx(expected.estimate, abs=1e-14)


def test_collinear_moderators_are_refused(log_rr):
    with pytest.raises(ValueError, match="rank deficient"):
        pool(log_rr.assign(twice=2 * log_rr.ablat), moderators=["ablat", "twice"])


def test_one_study_pools_to_itself(log_rr):
    res = pool(log_rr.iloc[:1])
    assert res.k == 1 and res.tau2 == 0 and res.q_df == 0
    assert res.estimate == pytest.approx(log_rr.estimate.iloc[0])
    assert res.std_error == pytest.approx(np.sqrt(log_rr.variance.iloc[0]))


def test_moderators_as_frame_or_array_match_column_names(log_rr):
    by_name = pool(log_rr, moderators=["ablat", "year"])
    by_frame = pool(log_rr, moderators=log_rr[["ablat", "year"]])
    by_array = pool(log_rr, moderators=log_rr[["ablat", "year"]].to_numpy())
    np.testing.assert_allclose(by_frame.coefficients, by_name.coefficients, rtol=1e-13)
    np.testing.assert_allclose(by_array.coefficients, by_name.coefficients, rtol=1e-13)
    assert by_array.coefficient_names == ("intercept", "x1", "x2")


def test_alpha_sets_every_interval(log_rr):
    res95, res90 = pool(log_rr), pool(log_rr, alpha=0.10)
    assert res90.estimate == res95.estimate and res90.tau2 == res95.tau2
    assert res95.ci_lower < res90.ci_lower < res90.ci_upper < res95.ci_upper
    assert res95.tau2_ci_lower < res90.tau2_ci_lower and res90.tau2_ci_upper < res95.tau2_ci_upper
    assert res90.summary_frame().attrs["alpha"] == 0.10


def test_knapp_hartung_uses_t_on_k_minus_1_df(log_rr):
    z, knha = pool(log_rr), pool(log_rr, test="knha")
    assert knha.df == 12 and z.df is None
    assert knha.estimate == z.estimate
    assert knha.std_error == pytest.approx(z.std_error * np.sqrt(knha.knha_factor))


# --------------------------------------------------------------------------- agreement with statsmodels
@pytest.mark.parametrize("method,statsmodels_method", [("DL", "dl"), ("PM", "pm")])
def test_random_effects_agree_with_statsmodels_combine_effects(log_rr, method, statsmodels_method):
    ours = pool(log_rr, method=method)
    theirs = combine_effects(log_rr.estimate.to_numpy(), log_rr.variance.to_numpy(), method_re=statsmodels_method)
    tol = 1e-12 if method == "DL" else 1e-6  # statsmodels iterates PM to its own, looser, tolerance
    assert ours.tau2 == pytest.approx(theirs.tau2, abs=tol)
    assert ours.estimate == pytest.approx(theirs.mean_effect_re, abs=tol)
    assert ours.std_error == pytest.approx(theirs.sd_eff_w_re, abs=tol)
    assert ours.q == pytest.approx(theirs.q, rel=1e-12)
    fixed = pool(log_rr, method="FE")
    assert fixed.estimate == pytest.approx(theirs.mean_effect_fe, abs=1e-12)
    assert fixed.std_error == pytest.approx(theirs.sd_eff_w_fe, abs=1e-12)


def test_knapp_hartung_agrees_with_statsmodels_hksj(log_rr):
    ours = pool(log_rr, method="DL", test="knha")
    theirs = combine_effects(log_rr.estimate.to_numpy(), log_rr.variance.to_numpy(), method_re="dl")
    assert ours.std_error == pytest.approx(theirs.sd_eff_w_re_hksj, rel=1e-12)


# --------------------------------------------------------------------------- doctests
@pytest.mark.parametrize(
    "name", ["pooling", "estimators", "heterogeneity", "regression", "mantel_haenszel", "subgroups", "result"]
)
def test_docstring_examples_run(name):
    module = importlib.import_module(f"rjtrial.meta.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


@pytest.mark.parametrize(
    "values, row, message",
    [
        pytest.param(
            lambda y: y.astype(object).where(y.index != "TPT Madras", "1968?"),
            "TPT Madras",
            "mixes numbers and text",
            id="one-text-cell",
        ),
        pytest.param(lambda y: y.astype(str), "Aronson", "numbers written as text", id="numbers-as-text"),
    ],
)
def test_a_numeric_moderator_with_text_is_not_silently_made_categorical(log_rr, values, row, message):
    # an object column became one dummy per distinct year: a different model, without a word
    with pytest.raises(DataError, match=message) as info:
        pool(log_rr.assign(year=values(log_rr["year"])), moderators="year")
    assert (info.value.row, info.value.column) == (row, "year")


def test_a_categorical_moderator_of_codes_is_categorical_when_said(log_rr):
    codes = pd.Categorical(log_rr["year"].astype(str))
    res = pool(log_rr.assign(year=codes), moderators="year")
    assert len(res.coefficient_names) == 1 + len(set(log_rr["year"])) - 1


# --------------------------------------------------------------------------- missing values
def test_missing_values_are_omitted_and_counted_by_default(log_rr):
    holed = log_rr.copy()
    holed.loc["Aronson", "estimate"] = np.nan
    holed.loc["TPT Madras", "ablat"] = np.nan
    with pytest.warns(UserWarning, match="left out of pooling: Aronson, TPT Madras"):
        res = pool(holed, moderators="ablat")
    assert res.k == 11 and res.n_omitted == 2
    assert "2 studies omitted" in res.format_summary()
    expected = pool(log_rr.drop(index=["Aronson", "TPT Madras"]), moderators="ablat")
    np.testing.assert_allclose(res.coefficients, expected.coefficients, atol=1e-14)


def test_na_action_raise_and_bad_value(log_rr):
    holed = log_rr.assign(alloc=log_rr.alloc.where(log_rr.index != "Aronson"))
    with pytest.raises(DataError, match="missing moderator value") as info:
        pool(holed, moderators="alloc", na_action="raise")
    assert info.value.column == "alloc"
    with pytest.raises(ValueError, match="na_action='drop'"):
        pool(log_rr, na_action="drop")


def test_missing_category_is_omitted_not_a_level(log_rr):
    holed = log_rr.assign(alloc=log_rr.alloc.where(log_rr.index != "Aronson"))
    with pytest.warns(UserWarning):
        res = pool(holed, moderators="alloc")
    assert res.coefficient_names == ("intercept", "alloc[random]", "alloc[systematic]") and res.k == 12


def test_string_levels_sort_by_code_point(log_rr):
    # documented: Python's sorted, upper case first (R's locale collation may put "alternate" first)
    res = pool(log_rr.assign(alloc=log_rr.alloc.replace({"random": "Random"})), moderators="alloc")
    assert res.coefficient_names == ("intercept", "alloc[alternate]", "alloc[systematic]")


def test_weights_must_be_positive(log_rr):
    with pytest.raises(DataError, match="weight must be positive") as info:
        pool(log_rr, weights=np.r_[np.ones(12), 0.0])
    assert info.value.row == log_rr.index[12]
    with pytest.raises(ValueError, match="needs weights"):
        pool(log_rr, method="GENQ")
