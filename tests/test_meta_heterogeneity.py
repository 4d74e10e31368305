"""rjtrial.meta.heterogeneity: Q, I^2, H^2 and the Q-profile interval (R agreement: tests/validation/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rjtrial import effects
from rjtrial.meta import pool
from rjtrial.meta.estimators import generalised_q
from rjtrial.meta.heterogeneity import cochran_q, i2_h2_fixed, q_profile_interval, typical_variance

BCG = pd.read_csv(Path(__file__).parent / "reference" / "metadat_bcg.csv")
ES = effects.log_risk_ratio(
    BCG, events_treatment="tpos", n_treatment=BCG.tpos + BCG.tneg, events_control="cpos", n_control=BCG.cpos + BCG.cneg
)
YI, VI = ES.estimate.to_numpy(), ES.variance.to_numpy()
ONES = np.ones((len(YI), 1))


def test_typical_variance_is_higgins_thompson_for_intercept_only():
    w = 1 / VI
    k = len(w)
    assert typical_variance(VI, ONES) == pytest.approx((k - 1) * w.sum() / (w.sum() ** 2 - np.sum(w**2)), rel=1e-13)


def test_random_effects_i2_and_h2_use_tau2_and_the_typical_variance():
    res = pool(ES, method="REML")
    s2 = typical_variance(VI, ONES)
    assert res.i2 == pytest.approx(100 * res.tau2 / (res.tau2 + s2), rel=1e-13)
    assert res.h2 == pytest.approx(res.tau2 / s2 + 1, rel=1e-13)
    assert res.typical_variance == pytest.approx(s2, rel=1e-13)


def test_fixed_effect_i2_and_h2_come_from_q():
    res = pool(ES, method="FE")
    assert res.i2 == pytest.approx(100 * (res.q - 12) / res.q, rel=1e-13)
    assert res.h2 == pytest.approx(res.q / 12, rel=1e-13)
    q = cochran_q(YI, VI, ONES)
    assert (q.statistic, q.df) == (res.q, 12)
    assert i2_h2_fixed(type(q)(5.0, 12, 0.9)) == (0.0, 5.0 / 12)  # Q below df: I^2 truncated at 0


def test_q_profile_limits_solve_the_chi_square_equations():
    res = pool(ES, method="REML")
    df = len(YI) - 1
    assert generalised_q(res.tau2_ci_lower, YI, VI, ONES) == pytest.approx(stats.chi2.isf(0.025, df), rel=1e-9)
    assert generalised_q(res.tau2_ci_upper, YI, VI, ONES) == pytest.approx(stats.chi2.ppf(0.025, df), rel=1e-9)
    assert res.tau2_ci_lower < res.tau2 < res.tau2_ci_upper
    assert res.i2_ci_lower < res.i2 < res.i2_ci_upper and res.h2_ci_lower < res.h2 < res.h2_ci_upper


def test_homogeneous_studies_give_the_null_interval():
    yi = np.array([0.10, 0.11, 0.10, 0.11])
    vi = np.array([0.04, 0.05, 0.03, 0.06])
    interval = q_profile_interval(yi, vi, np.ones((4, 1)), tau2=0.0)
    assert (interval.lower, interval.upper) == (0.0, 0.0)
    assert interval.lower_bounded and interval.upper_bounded


def test_lower_limit_at_zero_when_q_is_moderate():
    yi = np.array([0.0, 0.3, -0.2, 0.5, 0.1])
    vi = np.full(5, 0.04)
    q = cochran_q(yi, vi, np.ones((5, 1))).statistic
    assert stats.chi2.ppf(0.025, 4) < q < stats.chi2.isf(0.025, 4)
    interval = q_profile_interval(yi, vi, np.ones((5, 1)), tau2=0.01)
    assert interval.lower == 0.0 and interval.lower_bounded and not interval.upper_bounded
    assert interval.upper > 0


def test_upper_limit_beyond_the_search_range_is_the_bound_and_flagged():
    # metafor searches [0, max(100, 10 tau^2)]; with three wildly different studies the root lies beyond
    yi = np.array([-40.0, 0.0, 45.0])
    vi = np.array([1.0, 1.0, 1.0])
    tau2 = pool(pd.DataFrame({"estimate": yi, "variance": vi}), method="REML").tau2
    interval = q_profile_interval(yi, vi, np.ones((3, 1)), tau2=tau2)
    assert interval.upper_bounded and interval.upper == max(100.0, 10 * tau2)
    assert not interval.lower_bounded and 0 < interval.lower < tau2


def test_fixed_effect_models_have_no_tau2_interval():
    res = pool(ES, method="FE")
    assert res.tau2 == 0 and np.isnan(res.tau2_ci_lower) and np.isnan(res.i2_ci_upper)
    frame = res.heterogeneity_frame()
    assert list(frame.index) == ["tau2", "tau", "i2", "h2"]
