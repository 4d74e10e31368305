"""rjtrial.meta.result.MetaResult: frozen result, tidy frames, refit and predict."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rjtrial import effects
from rjtrial.meta import MetaResult, pool

BCG = pd.read_csv(Path(__file__).parent / "reference" / "metadat_bcg.csv")
VOCABULARY = ["estimate", "std_error", "statistic", "p_value", "ci_lower", "ci_upper"]


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


@pytest.fixture(scope="module")
def res(log_rr) -> MetaResult:
    return pool(log_rr, method="REML")


def test_result_is_frozen_and_its_arrays_read_only(res):
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.estimate = 0.0
    for array in (res.yi, res.vi, res.weights, res.coefficients, res.vcov):
        with pytest.raises(ValueError):
            array[0] = 1.0


def test_issue_attributes_are_present(res):
    for name in (
        "estimate",
        "std_error",
        "ci_lower",
        "ci_upper",
        "p_value",
        "tau2",
        "i2",
        "h2",
        "q",
        "q_df",
        "q_p_value",
        "pi_lower",
        "pi_upper",
        "converged",
        "n_iterations",
        "yi",
        "vi",
        "weights",
        "X",
        "method",
        "test",
    ):
        assert hasattr(res, name)
    assert res.tau == pytest.approx(np.sqrt(res.tau2))
    assert res.X.shape == (13, 1) and res.coefficient_names == ("intercept",)


def test_summary_frame_uses_the_column_vocabulary(res):
    frame = res.summary_frame()
    assert list(frame.index) == ["overall"]
    assert list(frame.columns[1:7]) == VOCABULARY
    assert frame.attrs["alpha"] == 0.05 and frame.attrs["method"] == "REML"
    assert frame.loc["overall", "estimate"] == res.estimate and frame.loc["overall", "k"] == 13


def test_summary_frame_with_subgroups_lists_them_before_overall(log_rr):
    frame = pool(log_rr, subgroup="alloc").summary_frame()
    assert list(frame.index) == ["alternate", "random", "systematic", "overall"]
    assert frame.loc["random", "k"] == 7


def test_summary_frame_with_moderators_is_the_coefficients_frame(log_rr):
    mr = pool(log_rr, moderators=["ablat", "year"], test="knha")
    frame = mr.summary_frame()
    assert list(frame.index) == ["intercept", "ablat", "year"] and list(frame.columns) == VOCABULARY
    assert frame.attrs["df"] == 10 and frame.attrs["test"] == "knha"
    assert np.isnan(mr.estimate) and np.isnan(mr.pi_lower)  # no single pooled effect in a meta-regression


def test_heterogeneity_frame(res):
    frame = res.heterogeneity_frame()
    assert frame.loc["tau2", "estimate"] == res.tau2
    assert frame.loc["i2", "ci_lower"] == res.i2_ci_lower and frame.loc["h2", "ci_upper"] == res.h2_ci_upper
    assert frame.loc["tau", "ci_upper"] == pytest.approx(np.sqrt(res.tau2_ci_upper))


def test_study_frame(res, log_rr):
    frame = res.study_frame()
    assert list(frame.index) == list(log_rr.index)
    assert frame["weight"].sum() == pytest.approx(100)
    np.testing.assert_allclose(frame["ci_upper"] - frame["estimate"], 1.959963984540054 * np.sqrt(log_rr.variance))


def test_weights_are_inverse_variance_percentages(res, log_rr):
    w = 1 / (log_rr.variance.to_numpy() + res.tau2)
    np.testing.assert_allclose(res.weights, 100 * w / w.sum(), rtol=1e-13)


def test_refit_is_pool_on_the_subset(res, log_rr):
    keep = log_rr.alloc.to_numpy() == "random"
    refitted = res.refit(keep)
    direct = pool(log_rr[keep], method="REML")
    assert refitted.estimate == pytest.approx(direct.estimate, abs=1e-14)
    assert refitted.tau2 == pytest.approx(direct.tau2, abs=1e-14)
    assert list(refitted.studies) == list(log_rr.index[keep])


def test_leave_one_out_by_refit(res):
    estimates = [res.refit(np.arange(13) != i).estimate for i in range(13)]
    assert min(estimates) < res.estimate < max(estimates)


def test_refit_keeps_moderators_and_test(log_rr):
    mr = pool(log_rr, moderators=["ablat"], test="knha", method="DL")
    one_out = mr.refit(np.arange(13) != 0)
    direct = pool(log_rr.iloc[1:], moderators=["ablat"], test="knha", method="DL")
    np.testing.assert_allclose(one_out.coefficients, direct.coefficients, rtol=1e-13)
    assert one_out.test == "knha" and one_out.method == "DL"
    with pytest.raises(ValueError, match="one entry per study"):
        mr.refit(np.ones(5, bool))


def test_predict_intercept_only_gives_the_pooled_rows(res):
    predicted = res.predict()
    assert predicted.estimate[0] == pytest.approx(res.estimate)
    assert predicted.pi_lower[0] == pytest.approx(res.pi_lower) and predicted.ci_upper[0] == pytest.approx(res.ci_upper)


def test_predict_with_moderators(log_rr):
    mr = pool(log_rr, moderators=["ablat", "year"])
    predicted = mr.predict([[30, 1970], [50, 1950]])
    assert len(predicted) == 2
    assert predicted.estimate[0] == pytest.approx(mr.coefficients @ [1, 30, 1970])
    with pytest.raises(ValueError, match="give moderator values for ablat, year"):
        mr.predict()
    with pytest.raises(ValueError, match="need 2 columns"):
        mr.predict([[30]])


def test_format_summary(res, log_rr):
    text = str(res)
    assert text == res.format_summary()
    assert "k = 13" in text and "-0.7145" in text and "92.22%" in text and "95% PI" in text
    mr = pool(log_rr, moderators=["ablat", "year"], test="knha")
    assert "F(2, 10)" in mr.format_summary() and "R^2 = 64.63%" in mr.format_summary()
    assert "Test of subgroup differences: Q(2)" in pool(log_rr, subgroup="alloc").format_summary()
    assert "PI" not in pool(log_rr, method="FE").format_summary()
