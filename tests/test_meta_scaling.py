"""The O(k p^2) paths of rjtrial.meta.estimators / heterogeneity against the dense k x k formulas.

The estimators never form metafor's residual-maker P = W - W X (X'WX)^-1 X'W; here every
quantity they use, every tau^2 estimator (with its standard error) and the Q-profile interval
are recomputed with the dense P, literally as metafor writes them, on random studies with
moderators at k where that is feasible, and must agree to 1e-10.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats

from rjtrial.meta.estimators import TAU2_METHODS, ResidualMaker, _log_likelihood, estimate_tau2, residual_maker
from rjtrial.meta.heterogeneity import q_profile_interval, typical_variance

TOL = 1e-10


def studies(k: int, p: int, seed: int):
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.01, 0.5, k)
    X = np.column_stack([np.ones(k), rng.normal(size=(k, p - 1))]) if p > 1 else np.ones((k, 1))
    if p > 2:
        X[:, 2] = rng.integers(0, 2, k)  # a dummy, as a categorical moderator gives
    beta = rng.normal(0, 0.3, p)
    yi = X @ beta + rng.normal(0, np.sqrt(vi + rng.choice([0.0, 0.05, 0.3])))
    return yi, vi, X


CASES = [(k, p, seed) for k, p in [(8, 1), (40, 1), (300, 1), (12, 3), (60, 3), (400, 4)] for seed in (1, 2)]
IDS = [f"k{k}-p{p}-seed{seed}" for k, p, seed in CASES]


def close(ours, dense, tol=TOL):
    assert ours == pytest.approx(dense, rel=tol, abs=tol * 1e-2)


@pytest.mark.parametrize("k,p,seed", CASES, ids=IDS)
def test_residual_maker_quantities_equal_the_dense_matrix(k, p, seed):
    yi, vi, X = studies(k, p, seed)
    w = 1.0 / (vi + 0.1)
    d1, d2 = vi, np.random.default_rng(seed).uniform(0.5, 2.0, k)
    P = residual_maker(w, X)
    implicit = ResidualMaker(w, X)
    close(implicit.quadratic(yi), float(yi @ P @ yi))
    np.testing.assert_allclose(implicit.apply(yi), P @ yi, rtol=0, atol=TOL * np.abs(P @ yi).max())
    np.testing.assert_allclose(implicit.diagonal(), np.diag(P), rtol=TOL)
    close(implicit.trace(), float(np.trace(P)))
    close(implicit.trace(d1), float(np.trace(P * d1[None, :])))
    close(implicit.trace_product(), float(np.sum(P * P)))
    PV = P * d1[None, :]
    close(implicit.trace_product(d1, d1), float(np.sum(PV * PV.T)))
    close(implicit.trace_product(d1), float(np.sum(PV * P)))
    close(implicit.trace_product(d1, d2), float(np.trace(P @ np.diag(d1) @ P @ np.diag(d2))))
    close(implicit.log_determinant(), float(np.linalg.slogdet(X.T @ (X * w[:, None]))[1]))
    np.testing.assert_allclose(
        implicit.coefficients(yi), np.linalg.solve(X.T @ (X * w[:, None]), X.T @ (w * yi)), rtol=1e-9, atol=1e-12
    )


# ---- tau^2 by the dense formulas (metafor's rma.uni, as rjtrial computed them before) ------------------
def genq_weights(yi, vi):
    """Weights for GENQ in the property tests: sample-size-like, not 1 / v (which would make it DL)."""
    return 1.0 / np.sqrt(vi)


def dense_tau2(yi, vi, X, method, tol=1e-12):
    k, p = X.shape
    if method == "HSk":
        w = 1.0 / vi
        P = residual_maker(w, X)
        q = float(yi @ P @ yi)
        tau2 = max(0.0, (k / (k - p) * q - k) / w.sum())
        se = (
            k
            / (k - p)
            * np.sqrt(1 / w.sum() ** 2 * (2 * (k - p) + 4 * tau2 * np.trace(P) + 2 * tau2**2 * np.sum(P * P)))
        )
        return tau2, se
    if method == "GENQ":  # metafor: (RSS - tr(PV)) / tr(P) with P from the weights
        P = residual_maker(genq_weights(yi, vi), X)
        PV = P * vi[None, :]
        tr_p = float(np.trace(P))
        tau2 = max(0.0, (float(yi @ P @ yi) - np.trace(PV)) / tr_p)
        return tau2, np.sqrt(
            1 / tr_p**2 * (2 * np.sum(PV * PV.T) + 4 * tau2 * np.sum(PV * P) + 2 * tau2**2 * np.sum(P * P))
        )
    if method == "PMM":
        from scipy import stats

        target = stats.chi2.ppf(0.5, k - p)

        def q_minus_median(t):
            return float(yi @ residual_maker(1.0 / (vi + t), X) @ yi) - target

        tau2 = (
            0.0
            if q_minus_median(0.0) < 0
            else optimize.brentq(q_minus_median, 0.0, 1e3, xtol=tol, rtol=4 * np.finfo(float).eps)
        )
        w = 1.0 / (vi + tau2)
        return tau2, np.sqrt(2 * k**2 / (k - p) / w.sum() ** 2)
    if method in ("HS", "DL"):
        w = 1.0 / vi
        P = residual_maker(w, X)
        q = float(yi @ P @ yi)
        if method == "HS":
            tau2 = max(0.0, (q - k) / w.sum())
            se = np.sqrt(1 / w.sum() ** 2 * (2 * (k - p) + 4 * tau2 * np.trace(P) + 2 * tau2**2 * np.sum(P * P)))
        else:
            tr_p = float(np.trace(P))
            tau2 = max(0.0, (q - (k - p)) / tr_p)
            se = np.sqrt(1 / tr_p**2 * (2 * (k - p) + 4 * tau2 * tr_p + 2 * tau2**2 * np.sum(P * P)))
        return tau2, se
    P = residual_maker(np.ones(k), X)
    PV = P * vi[None, :]
    he = (float(yi @ P @ yi) - np.trace(PV)) / (k - p)
    if method == "HE":
        tau2 = max(0.0, he)
        return tau2, np.sqrt(
            1 / (k - p) ** 2 * (2 * np.sum(PV * PV.T) + 4 * tau2 * np.trace(PV) + 2 * tau2**2 * (k - p))
        )
    if method == "SJ":
        t0 = float(np.mean((yi - yi.mean()) ** 2))
        P = residual_maker(1.0 / (vi + t0), X)
        PV = P * vi[None, :]
        tau2 = max(0.0, t0 * float(yi @ P @ yi) / (k - p))
        return tau2, np.sqrt(
            t0**2 / (k - p) ** 2 * (2 * np.sum(PV * PV.T) + 4 * tau2 * np.sum(PV * P) + 2 * tau2**2 * np.sum(P * P))
        )
    if method == "PM":

        def q_minus(t):
            return float(yi @ residual_maker(1.0 / (vi + t), X) @ yi) - (k - p)

        tau2 = 0.0 if q_minus(0.0) < 0 else optimize.brentq(q_minus, 0.0, 1e3, xtol=tol, rtol=4 * np.finfo(float).eps)
        w = 1.0 / (vi + tau2)
        return tau2, np.sqrt(2 * k**2 / (k - p) / w.sum() ** 2)
    tau2 = max(0.0, he)
    for _ in range(1000):
        w = 1.0 / (vi + tau2)
        P = residual_maker(w, X)
        Py = P @ yi
        if method == "ML":
            step = (Py @ Py - w.sum()) / np.sum(w**2)
        elif method == "REML":
            step = (Py @ Py - np.trace(P)) / np.sum(P * P)
        else:
            step = (float(yi @ Py) * k / (k - p) - k) / w.sum()
        if tau2 + step < 0:
            step = 0.0 if tau2 == 0 else step
            while tau2 + step < 0:
                step /= 2
        tau2 += step
        if abs(step) <= tol * max(1.0, tau2):
            break
    reml = method == "REML"
    if (
        method in ("ML", "REML")
        and tau2 > tol
        and _log_likelihood(0.0, yi, vi, X, reml=reml) - _log_likelihood(tau2, yi, vi, X, reml=reml) > tol
    ):
        tau2 = 0.0
    w = 1.0 / (vi + tau2)
    if method == "ML":
        return tau2, np.sqrt(2 / np.sum(w**2))
    if method == "REML":
        P = residual_maker(w, X)
        return tau2, np.sqrt(2 / np.sum(P * P))
    return tau2, np.sqrt(2 * k**2 / (k - p) / w.sum() ** 2)


@pytest.mark.parametrize("method", TAU2_METHODS)
@pytest.mark.parametrize("k,p,seed", CASES, ids=IDS)
def test_every_estimator_equals_its_dense_formula(k, p, seed, method):
    yi, vi, X = studies(k, p, seed)
    fit = estimate_tau2(yi, vi, X, method=method, weights=genq_weights(yi, vi) if method == "GENQ" else None)
    tau2, se = dense_tau2(yi, vi, X, method)
    # iterative estimators stop at |step| <= 1e-12 max(1, tau^2): both routes are that close to the root
    tol = TOL if method in ("DL", "HE", "HS", "HSk", "SJ", "GENQ") else 1e-9
    assert fit.tau2 == pytest.approx(tau2, rel=tol, abs=tol)
    assert fit.std_error == pytest.approx(se, rel=tol, abs=tol)


@pytest.mark.parametrize("k,p,seed", CASES, ids=IDS)
def test_q_profile_interval_and_typical_variance_equal_the_dense_route(k, p, seed):
    yi, vi, X = studies(k, p, seed)
    tau2 = estimate_tau2(yi, vi, X, method="REML").tau2
    interval = q_profile_interval(yi, vi, X, tau2=tau2)
    df = k - p

    def q(t):
        return float(yi @ residual_maker(1.0 / (vi + t), X) @ yi)

    bound = max(100.0, 10 * tau2)
    for limit, crit, bounded in (
        (interval.lower, stats.chi2.isf(0.025, df), interval.lower_bounded),
        (interval.upper, stats.chi2.ppf(0.025, df), interval.upper_bounded),
    ):
        if bounded:
            assert limit in (0.0, bound)
        else:  # the dense Q crosses the critical value at our limit
            expected = optimize.brentq(lambda t: q(t) - crit, 0.0, bound, xtol=1e-12, rtol=4 * np.finfo(float).eps)
            assert limit == pytest.approx(expected, rel=1e-9, abs=1e-11)
    dense_vt = df / float(np.trace(residual_maker(1.0 / vi, X)))
    assert typical_variance(vi, X) == pytest.approx(dense_vt, rel=TOL)


def test_large_k_stays_linear():
    # k = 50,000 studies with two moderators: a dense P would need 20 GB
    yi, vi, X = studies(50_000, 3, 7)
    fit = estimate_tau2(yi, vi, X, method="REML")
    assert fit.converged and fit.tau2 > 0
    interval = q_profile_interval(yi, vi, X, tau2=fit.tau2)
    assert interval.lower < fit.tau2 < interval.upper


# ---- leave-one-out: the power-series deletion sums against the direct k x k blocks ------------------
def _loo_both(es, method, test, monkeypatch):
    from rjtrial.meta import leave_one_out, pool, sensitivity

    res = pool(es, method=method, test=test)
    monkeypatch.setattr(sensitivity, "_SERIES_MIN_K", 10**9)
    direct = leave_one_out(res)
    monkeypatch.setattr(sensitivity, "_SERIES_MIN_K", 0)
    series = leave_one_out(res)
    return direct, series, res


def _frame(yi, vi):
    import pandas as pd

    return pd.DataFrame({"estimate": yi, "variance": vi}, index=[f"s{i}" for i in range(len(yi))])


@pytest.mark.parametrize("test", ["z", "knha"])
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("k,seed", [(60, 1), (400, 2)])
def test_leave_one_out_series_equals_direct_sums(k, seed, method, test, monkeypatch):
    yi, vi, _ = studies(k, 1, seed)
    yi = yi + 5.0  # a mean far from 0: the knha residual sums must not cancel
    direct, series, _ = _loo_both(_frame(yi, vi), method, test, monkeypatch)
    np.testing.assert_allclose(series.to_numpy(), direct.to_numpy(), rtol=1e-11, atol=1e-12)


def test_leave_one_out_series_falls_back_where_it_cannot_serve(monkeypatch):
    # one study holding most of the weight (its own term dominates the sums) and deletions whose
    # tau^2 drops to 0 far from the others (outside the series' radius): the direct sums serve them
    rng = np.random.default_rng(3)
    k = 40
    vi = rng.uniform(0.05, 0.2, k)
    vi[0] = 1e-4
    yi = rng.normal(0, 0.05, k)
    yi[[1, 2]] = [1.5, -1.4]  # two outliers carry the heterogeneity
    direct, series, res = _loo_both(_frame(yi, vi), "REML", "z", monkeypatch)
    np.testing.assert_allclose(series.to_numpy(), direct.to_numpy(), rtol=1e-11, atol=1e-12)
    from rjtrial.meta.sensitivity import _series_sums

    tau2 = direct["tau2"].to_numpy()
    _, served = _series_sums(np.vstack([np.ones(k), yi, yi * yi]), vi, tau2, np.arange(k), powers=3)
    assert not served[0]  # the dominant study
    assert not served[1] and tau2[1] < 1e-9 < res.tau2  # its deletion's tau^2 is 0, far from the rest
    assert served[3:].all()
