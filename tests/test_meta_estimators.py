"""rjtrial.meta.estimators: tau^2 estimators (agreement with R is in tests/validation/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from rjtrial import effects
from rjtrial.meta import TAU2_METHODS, pool
from rjtrial.meta.estimators import _log_likelihood, estimate_tau2, generalised_q

BCG = pd.read_csv(Path(__file__).parent / "reference" / "metadat_bcg.csv")
ES = effects.log_risk_ratio(
    BCG, events_treatment="tpos", n_treatment=BCG.tpos + BCG.tneg, events_control="cpos", n_control=BCG.cpos + BCG.cneg
)
YI, VI = ES.estimate.to_numpy(), ES.variance.to_numpy()
ONES = np.ones((len(YI), 1))
MODS = np.column_stack([ONES, BCG.ablat.to_numpy(), BCG.year.to_numpy()])


def test_dersimonian_laird_is_the_textbook_formula():
    w = 1 / VI
    mean = np.sum(w * YI) / w.sum()
    q = np.sum(w * (YI - mean) ** 2)
    expected = (q - (len(YI) - 1)) / (w.sum() - np.sum(w**2) / w.sum())
    assert estimate_tau2(YI, VI, ONES, method="DL").tau2 == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("X", [ONES, MODS], ids=["intercept", "moderators"])
def test_paule_mandel_solves_the_generalised_q_equation(X):
    fit = estimate_tau2(YI, VI, X, method="PM")
    assert generalised_q(fit.tau2, YI, VI, X) == pytest.approx(X.shape[0] - X.shape[1], abs=1e-9)
    assert fit.converged and fit.n_iterations > 0


@pytest.mark.parametrize("X", [ONES, MODS], ids=["intercept", "moderators"])
def test_empirical_bayes_and_paule_mandel_share_one_estimating_equation(X):
    # Morris's EB scoring and PM's root finding both solve Q(tau^2) = k - p
    eb = estimate_tau2(YI, VI, X, method="EB")
    pm = estimate_tau2(YI, VI, X, method="PM")
    assert eb.tau2 == pytest.approx(pm.tau2, abs=1e-10)


@pytest.mark.parametrize("method,reml", [("ML", False), ("REML", True)])
@pytest.mark.parametrize("X", [ONES, MODS], ids=["intercept", "moderators"])
def test_likelihood_estimators_maximise_their_likelihood(method, reml, X):
    fit = estimate_tau2(YI, VI, X, method=method)
    best = optimize.minimize_scalar(
        lambda t: -_log_likelihood(t, YI, VI, X, reml=reml), bounds=(0, 5), method="bounded", options={"xatol": 1e-10}
    )
    assert fit.tau2 == pytest.approx(best.x, abs=1e-6)
    assert _log_likelihood(fit.tau2, YI, VI, X, reml=reml) >= -best.fun - 1e-12


@pytest.mark.parametrize("method", TAU2_METHODS)
def test_homogeneous_studies_give_zero_tau2(method):
    yi = np.array([0.10, 0.12, 0.09, 0.11, 0.10])
    vi = np.array([0.04, 0.05, 0.03, 0.06, 0.05])
    fit = estimate_tau2(yi, vi, np.ones((5, 1)), method=method, weights=1 / np.sqrt(vi) if method == "GENQ" else None)
    if method == "SJ":  # Sidik-Jonkman is positive by construction: tau0^2 Q / (k - 1), tau0^2 > 0
        assert 0 < fit.tau2 < 1e-6
    else:
        assert fit.tau2 == 0.0 and fit.converged


@pytest.mark.parametrize("method", TAU2_METHODS)
@settings(max_examples=15, deadline=None)
@given(scale=st.floats(0.05, 20))
def test_tau2_scales_with_the_square_of_the_effect_scale(method, scale):
    weights = 1 / np.sqrt(VI) if method == "GENQ" else None  # GENQ is invariant to the weights' scale
    base = estimate_tau2(YI, VI, ONES, method=method, weights=weights).tau2
    scaled = estimate_tau2(YI * scale, VI * scale**2, ONES, method=method, weights=weights).tau2
    assert scaled == pytest.approx(base * scale**2, rel=1e-7)


def test_iteration_limit_is_reported_not_hidden():
    fit = estimate_tau2(YI, VI, ONES, method="REML", max_iterations=1)
    assert not fit.converged and fit.n_iterations == 1
    res = pool(ES, method="REML", max_iterations=1)
    assert not res.converged
    assert "did not converge" in res.format_summary()


def test_non_iterative_estimators_report_zero_iterations():
    for method in ("DL", "HE", "HS", "SJ"):
        fit = estimate_tau2(YI, VI, ONES, method=method)
        assert fit.converged and fit.n_iterations == 0


def test_unknown_method_and_too_few_studies():
    with pytest.raises(ValueError, match="'DL', 'HE', 'HS', 'HSk', 'SJ', 'ML', 'REML', 'EB', 'PM', 'PMM', 'GENQ'"):
        estimate_tau2(YI, VI, ONES, method="FE")
    with pytest.raises(ValueError, match="more studies"):
        estimate_tau2(YI[:3], VI[:3], MODS[:3], method="REML")
