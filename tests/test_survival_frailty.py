"""rjtrial.survival.frailty_cox: the shared gamma frailty Cox model (agreement with R is in
tests/validation/test_*_frailty.py and test_*_recurrent.py)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from rjtrial.errors import CollinearityWarning, DataError, RjtrialWarning
from rjtrial.survival import FrailtyCoxResult, cox, frailty_cox
from rjtrial.survival import _frailty_engine as engine


def _clustered(seed: int = 3, n: int = 60, per: int = 3, variance: float = 1.0) -> pd.DataFrame:
    """``per`` spells for each of ``n`` people whose propensity is gamma with the given variance."""
    rng = np.random.default_rng(seed)
    person = np.repeat(np.arange(1, n + 1), per)
    arm = np.repeat(np.where(np.arange(n) % 2 == 0, "rj", "control"), per)
    propensity = np.repeat(rng.gamma(1 / variance, variance, n), per) if variance > 0 else np.ones(n * per)
    age = rng.integers(18, 50, n * per)
    days = np.ceil(rng.exponential(150 / (propensity * np.where(arm == "rj", 0.7, 1.0) * np.exp(0.02 * (age - 30)))))
    return pd.DataFrame(
        {"id": person, "arm": arm, "age": age, "days": np.minimum(days, 365), "event": (days <= 365).astype(int)}
    )


@pytest.fixture(scope="module")
def data():
    return _clustered()


@pytest.fixture(scope="module")
def fit(data):
    return frailty_cox(data, "arm + age", time="days", event="event", frailty="id")


def test_cox_with_frailty_is_frailty_cox(data, fit):
    same = cox(data, "arm + age", time="days", event="event", frailty="id")
    assert isinstance(same, FrailtyCoxResult)
    pd.testing.assert_frame_equal(same.summary_frame(), fit.summary_frame())


def test_frailty_and_cluster_together_are_refused(data):
    with pytest.raises(ValueError, match="frailty= or cluster="):
        cox(data, "arm", time="days", event="event", frailty="id", cluster="id")


def test_theta_zero_is_the_cox_model(data):
    fixed = frailty_cox(data, "arm + age", time="days", event="event", frailty="id", theta=0)
    plain = cox(data, "arm + age", time="days", event="event")
    np.testing.assert_allclose(fixed.params_, plain.params_, atol=1e-12)
    np.testing.assert_allclose(fixed.variance_, plain.naive_variance_, rtol=1e-10)
    assert fixed.log_likelihood_ == pytest.approx(plain.log_likelihood_, abs=1e-10)
    assert (fixed.frailty_ == 0).all() and fixed.theta_method == "fixed"


def test_a_heterogeneous_population_has_a_frailty_variance(fit):
    assert 0.4 < fit.theta_ < 2.5  # generated with variance 1
    assert fit.converged and fit.theta_converged and not fit.notes
    assert fit.frailty_test_.p_value < 0.01


def test_theta_maximises_the_integrated_likelihood(data, fit):
    for factor in (0.99, 1.01):
        other = frailty_cox(data, "arm + age", time="days", event="event", frailty="id", theta=fit.theta_ * factor)
        assert other.integrated_log_likelihood_ < fit.integrated_log_likelihood_


def test_the_derivative_in_theta_is_exact(data):
    X = np.column_stack([(data["arm"] == "rj").to_numpy(float), data["age"].to_numpy(float)])
    codes = pd.factorize(data["id"], sort=True)[0]
    frs = engine.FrailtyRiskSets(X, codes, codes.max() + 1, data["days"].to_numpy(float), data["event"].to_numpy(bool))
    theta, h = 0.7, 1e-5
    slope = engine.integrated_slope(frs, engine.penalised_fit(frs, theta, "efron"))
    up = engine.integrated_loglik(frs, engine.penalised_fit(frs, theta + h, "efron"))
    down = engine.integrated_loglik(frs, engine.penalised_fit(frs, theta - h, "efron"))
    assert slope == pytest.approx((up - down) / (2 * h), rel=1e-5)


@pytest.mark.parametrize("d, nu", [([1, 2, 0, 5], 0.8), ([3], 40.0), ([1, 1, 4], 1e-3)])
def test_gamma_correction_is_the_lgamma_formula(d, nu):
    from scipy.special import gammaln

    d = np.array(d, dtype=float)
    expected = np.sum(d + nu * np.log(nu) - (nu + d) * np.log(nu + d) + gammaln(nu + d) - gammaln(nu))
    assert engine.gamma_correction(d, nu) == pytest.approx(expected, rel=1e-12)
    h = nu * 1e-6
    numeric = (engine.gamma_correction(d, nu + h) - engine.gamma_correction(d, nu - h)) / (2 * h)
    assert engine.gamma_correction_derivative(d, nu) == pytest.approx(numeric, rel=1e-6)


def test_sparse_information_changes_variances_not_estimates(data, fit):
    sparse = frailty_cox(data, "arm + age", time="days", event="event", frailty="id", information="sparse")
    assert sparse.theta_ == pytest.approx(fit.theta_, rel=1e-9)
    np.testing.assert_allclose(sparse.params_, fit.params_, atol=1e-9)
    assert not np.allclose(sparse.variance_, fit.variance_, rtol=1e-4)
    assert sparse.information == "sparse" and "sparse information" in sparse.format()


def test_invariant_to_row_order_and_labels(data, fit):
    shuffled = data.sample(frac=1, random_state=4).assign(id=lambda d: "person-" + d["id"].astype(str))
    again = frailty_cox(shuffled, "arm + age", time="days", event="event", frailty="id")
    assert again.theta_ == pytest.approx(fit.theta_, rel=1e-9)
    np.testing.assert_allclose(again.params_, fit.params_, atol=1e-9)
    np.testing.assert_allclose(np.sort(again.frailty_.to_numpy()), np.sort(fit.frailty_.to_numpy()), atol=1e-8)


def test_counting_process_rows_from_zero_are_the_right_censored_model(data, fit):
    same = frailty_cox(data.assign(begin=0), "arm + age", time="days", event="event", frailty="id", start="begin")
    assert same.theta_ == pytest.approx(fit.theta_, rel=1e-9)
    np.testing.assert_allclose(same.params_, fit.params_, atol=1e-9)


def test_strata_and_breslow_ties_change_the_fit(data, fit):
    site = data.assign(site=np.where(data["id"] % 3 == 0, "north", "south"))
    stratified = frailty_cox(site, "arm + age", time="days", event="event", frailty="id", strata="site")
    breslow = frailty_cox(data, "arm + age", time="days", event="event", frailty="id", ties="breslow")
    for other in (stratified, breslow):
        assert not np.allclose(other.params_, fit.params_, atol=1e-6)


def test_r_event_coding(data, fit):
    coded = frailty_cox(
        data.assign(event=data["event"] + 1), "arm + age", time="days", event="event", frailty="id", event_coding="r"
    )
    np.testing.assert_allclose(coded.params_, fit.params_, atol=1e-12)


def test_no_heterogeneity_puts_theta_on_the_boundary_and_says_so():
    flat = _clustered(seed=5, n=40, per=2, variance=0)
    with pytest.warns(RjtrialWarning, match="estimated as 0"):
        fit = frailty_cox(flat, "arm", time="days", event="event", frailty="id")
    plain = cox(flat, "arm", time="days", event="event")
    assert fit.theta_ == 0 and any("estimated as 0" in note for note in fit.notes)
    np.testing.assert_allclose(fit.params_, plain.params_, atol=1e-10)
    assert "estimated as 0" in fit.format()


def test_an_aliased_column_is_nan_and_warned(data):
    with pytest.warns(CollinearityWarning, match="age2"):
        fit = frailty_cox(
            data.assign(age2=2 * data["age"]), "arm + age + age2", time="days", event="event", frailty="id"
        )
    assert np.isnan(fit.params_["age2"]) and np.isfinite(fit.params_["age"])
    assert list(fit.degrees_of_freedom_.index) == ["arm", "age", "frailty(id)"]


def test_missing_values_are_omitted_and_counted(data, fit):
    holed = data.astype({"id": float})
    holed.loc[4, "id"] = np.nan
    counted = frailty_cox(holed, "arm + age", time="days", event="event", frailty="id")
    assert counted.n_omitted == 1 and counted.n == len(data) - 1 and "1 rows omitted" in counted.format()
    with pytest.raises(DataError, match="missing value") as info:
        frailty_cox(holed, "arm + age", time="days", event="event", frailty="id", na_action="raise")
    assert (info.value.row, info.value.column) == (4, "id")


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"information": "dense"}, ValueError, "information must be one of"),
        ({"theta": -1.0}, ValueError, "theta must be a number >= 0"),
        ({"theta": float("nan")}, ValueError, "theta must be a number >= 0"),
        ({"ties": "exact"}, ValueError, "ties must be one of"),
        ({"frailty": "person"}, DataError, "no column 'person'"),
        ({"frailty": ["id"]}, ValueError, "frailty must be the name"),
    ],
)
def test_bad_arguments(data, options, error, message):
    arguments = {"time": "days", "event": "event", "frailty": "id", **options}
    with pytest.raises(error, match=message):
        frailty_cox(data, "arm", **arguments)


def test_result_shape(fit):
    table = fit.summary_frame()
    assert list(table.columns) == [
        "term",
        "estimate",
        "std_error",
        "std_error2",
        "hazard_ratio",
        "ci_lower",
        "ci_upper",
        "statistic",
        "p_value",
    ]
    assert table.attrs["theta"] == fit.theta_ and table.attrs["alpha"] == 0.05
    assert (table["std_error2"] < table["std_error"]).all()  # var2 = H^-1 I H^-1 is the smaller
    assert list(fit.tests_frame().index) == ["likelihood_ratio", "frailty(id)"]
    frailties = fit.frailties()
    assert list(frailties.columns) == ["group", "estimate", "std_error", "frailty"] and len(frailties) == fit.n_groups
    assert np.exp(fit.frailty_).mean() == pytest.approx(1, abs=1e-9)  # mean exp(b) = 1 at the maximum
    assert fit.penalized_log_likelihood_ == pytest.approx(fit.log_likelihood_ - fit.penalty_)
    text = fit.format()
    assert "variance of the frailty (theta)" in text and "frailty(id)" in text
    out = json.loads(json.dumps(fit.to_dict()))
    assert out["model"] == "frailty_cox" and out["theta"] == pytest.approx(fit.theta_)
    assert set(out["degrees_of_freedom"]) == {"arm", "age", "frailty(id)"}
    assert "theta=" in repr(fit)


def test_recurrent_counting_process_data():
    from test_survival_recurrent import _recurrent

    rows = _recurrent(seed=8, n=80)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = frailty_cox(rows, "arm", time="end", event="reoffence", start="begin", frailty="person")
    assert fit.theta_ > 0.1 and fit.n_groups == 80  # the generator's frailty has variance 0.5


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("counting, stratified", [(False, False), (True, True)])
def test_the_engine_is_the_cox_likelihood_of_the_group_indicators(ties, counting, stratified):
    """Score and information of PL(beta, b) equal those of an ordinary Cox model with the
    groups' indicator columns in the design (an independent route through _coxengine)."""
    from rjtrial.survival._coxengine import RiskSets

    rng = np.random.default_rng(11)
    n, q = 150, 12
    groups = rng.integers(0, q, n)
    X = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n)])
    stop = rng.integers(5, 60, n).astype(float)  # whole numbers: tied times
    start = np.where(rng.random(n) < 0.4, np.floor(stop * rng.random(n)), 0.0) if counting else None
    event = rng.random(n) < 0.7
    strata = rng.integers(0, 2, n) if stratified else None
    beta, b = np.array([0.3, -0.5]), rng.normal(scale=0.4, size=q)
    frs = engine.FrailtyRiskSets(X, groups, q, stop, event, start=start, strata=strata)
    ll, U, info = frs.evaluate(beta, b, ties)
    I = info.dense()
    Z = np.eye(q)[groups]
    plain = RiskSets(np.column_stack([X, Z]), stop, event, start=start, strata=strata)
    ll0, U0, I0 = plain.loglik(np.concatenate([beta, b]), ties)
    assert ll == pytest.approx(ll0, abs=1e-10)
    np.testing.assert_allclose(U, U0, atol=1e-10)
    np.testing.assert_allclose(I, I0, atol=1e-10)
    v = rng.normal(size=2 + q)
    np.testing.assert_allclose(info.matvec(v), I @ v, atol=1e-10)  # the product conjugate gradients use
    np.testing.assert_allclose(info.zz_diagonal(), np.diag(I)[2:], atol=1e-12)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_conjugate_gradient_newton_steps_reach_the_dense_maximum(data, ties):
    X = np.column_stack([(data["arm"] == "rj").to_numpy(float), data["age"].to_numpy(float)])
    codes = pd.factorize(data["id"], sort=True)[0]
    frs = engine.FrailtyRiskSets(X, codes, codes.max() + 1, data["days"].to_numpy(float), data["event"].to_numpy(bool))
    dense = engine.penalised_fit(frs, 0.9, ties, solver="dense")
    cg = engine.penalised_fit(frs, 0.9, ties, solver="cg")
    assert dense.converged and cg.converged
    np.testing.assert_allclose(cg.beta, dense.beta, atol=1e-10)
    np.testing.assert_allclose(cg.b, dense.b, atol=1e-10)


def test_the_frailty_degrees_of_freedom_are_rs_trace(fit):
    """R's exact-information df, trace((H^-1)_ff^-1 var2_ff), equals q - sum(diag(H^-1)_ff * P)."""
    refit = engine.penalised_fit(_engine_data(), fit.theta_, "efron")
    H = refit.hessian()
    Hinv = np.linalg.inv(H)
    P = np.zeros_like(H)
    P[2:, 2:] = np.diag(refit.penalty_second)
    V2 = Hinv @ (H - P) @ Hinv
    trace = np.trace(np.linalg.solve(Hinv[2:, 2:], V2[2:, 2:]))
    v = engine.variances(refit, sparse=False)
    assert engine.degrees_of_freedom(v, refit, [])[1] == pytest.approx(trace, rel=1e-9)
    assert fit.degrees_of_freedom_["frailty(id)"] == pytest.approx(trace, rel=1e-6)


def _engine_data():
    data = _clustered()
    X = np.column_stack([(data["arm"] == "rj").to_numpy(float), data["age"].to_numpy(float)])
    codes = pd.factorize(data["id"], sort=True)[0]
    return engine.FrailtyRiskSets(X, codes, codes.max() + 1, data["days"].to_numpy(float), data["event"].to_numpy(bool))
