"""Sensitivity of a meta-analysis to single studies: leave-one-out, cumulative meta-analysis
and influence measures (metafor's ``leave1out``, ``cumul``, ``influence``).

Leave-one-out has a vectorised fast path for intercept-only models fitted by FE, DL, ML or
REML: FE and DL are closed form in leave-one-out sums (O(k)); ML and REML run Fisher scoring
for all k deletions at once, warm-started at the full-data tau^2. Each scoring step needs,
per deletion r, sums over the other studies of powers of 1 / (v_j + tau2_r): below
``_SERIES_MIN_K`` (400) studies they come from row blocks of the k x k weight matrix
(O(k^2) time, O(k) memory per block); from there on from a binomial series about a common
tau2 whose moments all deletions share (O(k) per step for all of them; deletions the series
does not serve fall back to the direct sums). It agrees with the plain refit loop to 1e-9
(tests/test_meta_sensitivity.py), the series with the direct sums to 1e-12
(tests/test_meta_scaling.py); k = 10,000 takes a fraction of a second.
"""

from __future__ import annotations

from math import comb

import numpy as np
import pandas as pd
from scipy import stats

from rjtrial.meta.result import MetaResult

LOO_COLUMNS = (
    "estimate",
    "std_error",
    "statistic",
    "p_value",
    "ci_lower",
    "ci_upper",
    "q",
    "q_p_value",
    "tau2",
    "i2",
    "h2",
)
INFLUENCE_COLUMNS = (
    "rstudent",
    "dffits",
    "cooks_distance",
    "covariance_ratio",
    "tau2_deleted",
    "q_deleted",
    "hat",
    "weight",
)
FAST_METHODS = ("FE", "DL", "ML", "REML")
_BLOCK = 250_000  # elements of the weight matrix held at once (fits in cache)
_SERIES_MIN_K = 400  # from this many studies on, deletion sums by the power series (O(k) per deletion)


def _check(result: MetaResult, verb: str) -> np.ndarray:
    if not isinstance(result, MetaResult):
        raise TypeError(f"{verb} needs a MetaResult from rjtrial.meta.pool, not {type(result).__name__}")
    rows = (
        np.isfinite(result.yi) & np.isfinite(result.vi)
        if result.method not in ("MH", "Peto")
        else np.isfinite(result.weights)
    )
    if rows.sum() < 2:
        raise ValueError(f"{verb} needs at least 2 studies")
    return rows


def _row(fit: MetaResult) -> dict:
    return {
        "estimate": fit.estimate,
        "std_error": fit.std_error,
        "statistic": fit.statistic,
        "p_value": fit.p_value,
        "ci_lower": fit.ci_lower,
        "ci_upper": fit.ci_upper,
        "q": fit.q,
        "q_p_value": fit.q_p_value,
        "tau2": fit.tau2,
        "i2": fit.i2,
        "h2": fit.h2,
    }


def _frame(result: MetaResult, rows: dict | pd.DataFrame, index) -> pd.DataFrame:
    frame = pd.DataFrame(rows, index=index)
    frame.attrs.update({"alpha": result.alpha, "method": result.method, "test": result.test, "measure": result.measure})
    if result.df is not None:
        frame.attrs["df"] = result.df - 1
    return frame


def leave_one_out(result: MetaResult, *, fast: bool = True) -> pd.DataFrame:
    """The model refitted with each study left out in turn.

    Parameters
    ----------
    result : MetaResult
        Any fit from :func:`rjtrial.meta.pool` (moderators are kept; the pooled columns are
        NaN for meta-regressions, as in :class:`MetaResult`).
    fast : bool, default True
        Use the vectorised path where available (intercept-only FE, DL, ML, REML); ``False``
        refits the model k times.

    Returns
    -------
    pandas.DataFrame
        One row per study left out (indexed by study): ``estimate, std_error, statistic,
        p_value, ci_lower, ci_upper, q, q_p_value, tau2, i2, h2``. ``attrs["alpha"]``.

    Notes
    -----
    Agrees with R ``metafor::leave1out(res)`` (every column) to 1e-6
    (tests/validation/test_metafor_diagnostics_*.py).

    Examples
    --------
    >>> from rjtrial import datasets, effects, meta
    >>> bcg = datasets.load_bcg()
    >>> es = effects.log_risk_ratio(bcg, events_treatment="tpos", n_treatment=bcg.tpos + bcg.tneg,
    ...                             events_control="cpos", n_control=bcg.cpos + bcg.cneg, study="author")
    >>> res = meta.pool(es, method="REML")
    >>> loo = res.leave_one_out()
    >>> print(loo[["estimate", "tau2", "i2"]].round(4).head(2).to_string())
                      estimate    tau2       i2
    study
    Aronson            -0.7071  0.3362  93.2259
    Ferguson & Simes   -0.6540  0.2926  92.2540
    """
    rows = _check(result, "leave_one_out")
    positions = np.flatnonzero(rows)
    if fast and result.method in FAST_METHODS and not result.has_moderators:
        table = _fast_leave_one_out(result, rows)
        return _frame(result, table, result.studies[positions])
    records = []
    for i in positions:
        keep = rows.copy()
        keep[i] = False
        records.append(_row(result.refit(keep)))
    return _frame(
        result, pd.DataFrame.from_records(records, columns=LOO_COLUMNS).to_dict("list"), result.studies[positions]
    )


# ---- the vectorised leave-one-out ------------------------------------------------------------------
def _blocks(k: int):
    size = max(1, _BLOCK // max(k, 1))
    for start in range(0, k, size):
        yield start, min(k, start + size)


def _rss(yi, vi, tau2, mu):
    """sum_{j != r} (y_j - mu_r)^2 / (v_j + tau2_r) per deletion r."""
    k = len(yi)
    if k < _SERIES_MIN_K:
        return _rss_direct(yi, vi, tau2, mu)
    centre = float(np.sum(yi / vi) / np.sum(1 / vi))  # sums of centred y: no cancellation when |mean| >> sd
    yc = yi - centre
    rows = np.arange(k)
    sums, ok = _series_sums(np.vstack([np.ones(k), yc, yc * yc]), vi, tau2, rows, powers=1)
    mc = mu - centre
    out = np.empty(k)
    out[ok] = sums[2, 0, ok] - 2 * mc[ok] * sums[1, 0, ok] + mc[ok] ** 2 * sums[0, 0, ok]
    if not ok.all():
        out[~ok] = _rss_direct(yi, vi, tau2, mu, rows[~ok])
    return np.maximum(out, 0.0)


def _rss_direct(yi, vi, tau2, mu, idx=None):
    """The same sums from row blocks of the k x k weight matrix, for the deletions in ``idx`` (all)."""
    k = len(yi)
    idx = np.arange(k) if idx is None else idx
    out = np.empty(len(idx))
    size = max(1, _BLOCK // max(k, 1))
    for a in range(0, len(idx), size):
        rows = idx[a : a + size]
        W = 1.0 / (vi[None, :] + tau2[rows, None])
        W[np.arange(len(rows)), rows] = 0.0
        out[a : a + size] = (W * (yi[None, :] - mu[rows, None]) ** 2).sum(1)
    return out


def _scoring_tau2(yi, vi, start_tau2: float, *, reml: bool, tol: float, max_iterations: int):
    """Fisher scoring (metafor's algorithm: step halving at 0) for every deletion at once."""
    k = len(yi)
    tau2 = np.full(k, float(start_tau2))
    active = np.ones(k, dtype=bool)
    iterations = 0
    while active.any() and iterations < max_iterations:
        iterations += 1
        idx = np.flatnonzero(active)
        sums = _scoring_sums_subset(yi, vi, tau2, idx)
        sw, swy, sw2, sw3, sw2y, sw2y2 = sums
        mu = swy / sw
        ypp_y = sw2y2 - 2 * mu * sw2y + mu * mu * sw2  # y'PPy = sum w^2 (y - mu)^2
        if reml:
            tr_p = sw - sw2 / sw
            tr_pp = sw2 - 2 * sw3 / sw + (sw2 / sw) ** 2
            step = (ypp_y - tr_p) / tr_pp
        else:
            step = (ypp_y - sw) / sw2
        step = np.where(np.isfinite(step), step, 0.0)
        current = tau2[idx]
        step = np.where((current == 0.0) & (current + step < 0), 0.0, step)
        while np.any(current + step < 0):
            step = np.where(current + step < 0, step / 2, step)
        tau2[idx] = current + step
        done = np.abs(step) <= tol * np.maximum(1.0, tau2[idx])
        active[idx[done]] = False
    converged = not active.any()
    tau2 = np.maximum(tau2, 0.0)
    # metafor's ll0check: a boundary maximum at tau^2 = 0 that scoring stepped past. Only
    # possible where the score at tau^2 = 0 is not positive; at 0 every deletion shares the
    # weights 1 / v, so that score is a leave-one-out sum (O(k)).
    w = 1.0 / vi
    s_w, s_wy, s_w2, s_w3 = (np.sum(w**j * m) - w**j * m for j, m in ((1, 1), (1, yi), (2, 1), (3, 1)))
    mu0 = s_wy / s_w
    s_w2y, s_w2y2 = np.sum(w**2 * yi) - w**2 * yi, np.sum(w**2 * yi**2) - w**2 * yi**2
    ypp_y0 = s_w2y2 - 2 * mu0 * s_w2y + mu0**2 * s_w2
    score0 = ypp_y0 - (s_w - s_w2 / s_w) if reml else ypp_y0 - s_w
    positive = np.flatnonzero((tau2 > tol) & (score0 <= 0))
    if positive.size:
        ll_hat = _ll_subset(yi, vi, tau2, positive, reml)
        ll_zero = _ll_subset(yi, vi, np.zeros(k), positive, reml)
        tau2[positive[ll_zero - ll_hat > tol]] = 0.0
    return tau2, converged


def _scoring_sums_subset(yi, vi, tau2, idx):
    """Per deletion r in ``idx``: sums over j != r of w, w y, w^2, w^3, w^2 y, w^2 y^2 with
    w = 1 / (v_j + tau2_r): by the power series (O(k) per deletion) from ``_SERIES_MIN_K``
    studies on, else (and for deletions the series does not serve) directly."""
    k = len(yi)
    if k < _SERIES_MIN_K:
        return _scoring_sums_direct(yi, vi, tau2, idx)
    sums, ok = _series_sums(np.vstack([np.ones(k), yi, yi * yi]), vi, tau2, idx, powers=3)
    out = np.empty((6, len(idx)))
    out[0], out[1], out[2], out[3] = sums[0, 0], sums[1, 0], sums[0, 1], sums[0, 2]
    out[4], out[5] = sums[1, 1], sums[2, 1]
    if not ok.all():
        out[:, ~ok] = _scoring_sums_direct(yi, vi, tau2, idx[~ok])
    return out


def _series_sums(G: np.ndarray, vi, tau2, idx, *, powers: int):
    """sum_{j != r} g_j w_j^a, w_j = 1 / (v_j + tau2_r), for each row g of ``G``, a = 1..``powers``
    and each deletion r in ``idx``, by the binomial series about a common t0 (the median tau2):

        w^a = u^a (1 + d u)^-a = sum_n (-1)^n C(a + n - 1, n) d^n u^(a + n),  u = 1 / (v + t0),
        d = tau2_r - t0,

    so that sum_j g_j w_j^a = sum_n (-1)^n C(a + n - 1, n) d^n M_(a + n) with the moments
    M_b = sum_j g_j u_j^b shared by every deletion: O(k N) for all deletions instead of O(k^2).
    Powers are scaled by u_max (no overflow). A deletion is served (``ok``) when
    rho = |d| u_max <= 1/4, the series then being truncated where its remainder is below 1e-17
    relative, and when its own study holds at most half of sum w^3 (the subtraction of the
    own term then loses at most one bit); the caller computes the others directly.
    """
    n = len(idx)
    t0 = float(np.median(tau2[idx]))
    u = 1.0 / (vi + t0)
    u_max = float(u.max())
    z = u / u_max
    delta = (tau2[idx] - t0) * u_max
    ok = np.abs(delta) <= 0.25
    rho = float(np.max(np.abs(delta[ok]), initial=0.0))
    terms = 0
    while rho > 0 and (terms + powers) ** powers * rho**terms > 1e-17 and terms < 200:
        terms += 1  # C(a + N - 1, N) <= (N + a)^a bounds the coefficient
    top = powers + terms
    moments = np.empty((G.shape[0], top + 1))
    zb = np.ones_like(z)
    for b in range(top + 1):
        moments[:, b] = G @ zb
        zb *= z
    d_powers = np.empty((n, terms + 1))  # n x (N + 1): d^0 .. d^N
    d_powers[:, 0] = 1.0
    served_delta = np.where(ok, delta, 0.0)
    for m in range(1, terms + 1):
        np.multiply(d_powers[:, m - 1], served_delta, out=d_powers[:, m])
    out = np.empty((G.shape[0], powers, n))
    w_own = 1.0 / (vi[idx] + tau2[idx]) / u_max  # the deleted study's own (scaled) weight
    for a in range(1, powers + 1):
        coefficient = np.array([(-1) ** m * comb(a + m - 1, m) for m in range(terms + 1)], dtype=float)
        full = (d_powers * coefficient) @ moments[:, a : a + terms + 1].T  # n x len(G)
        out[:, a - 1, :] = (full - np.outer(w_own**a, np.ones(G.shape[0])) * G[:, idx].T).T * u_max**a
        if a == powers:
            ok &= w_own**a <= 0.5 * full[:, 0]
    return out, ok


def _scoring_sums_direct(yi, vi, tau2, idx):
    n = len(idx)
    k = len(yi)
    out = np.empty((6, n))
    basis1 = np.column_stack([np.ones(k), yi])
    basis2 = np.column_stack([np.ones(k), yi, yi * yi])
    size = max(1, _BLOCK // max(k, 1))
    for a in range(0, n, size):
        rows = idx[a : a + size]
        m = len(rows)
        W = np.add(vi[None, :], tau2[rows, None])
        np.reciprocal(W, out=W)
        W[np.arange(m), rows] = 0.0
        W2 = W * W
        first = W @ basis1
        second = W2 @ basis2
        W2 *= W
        out[0, a : a + m], out[1, a : a + m] = first[:, 0], first[:, 1]
        out[2, a : a + m], out[4, a : a + m], out[5, a : a + m] = second[:, 0], second[:, 1], second[:, 2]
        out[3, a : a + m] = W2 @ np.ones(k)
    return out


def _ll_subset(yi, vi, tau2, idx, reml):
    k = len(yi)
    out = np.empty(len(idx))
    size = max(1, _BLOCK // max(k, 1))
    for a in range(0, len(idx), size):
        rows = idx[a : a + size]
        V = vi[None, :] + tau2[rows, None]
        W = 1.0 / V
        W[np.arange(len(rows)), rows] = 0.0
        logv = np.log(V)
        logv[np.arange(len(rows)), rows] = 0.0
        sw = W.sum(1)
        mu = (W @ yi) / sw
        rss = (W * (yi[None, :] - mu[:, None]) ** 2).sum(1)
        ll = -0.5 * logv.sum(1) - 0.5 * rss
        if reml:
            ll -= 0.5 * np.log(sw)
        out[a : a + size] = ll
    return out


def _fast_leave_one_out(result: MetaResult, rows: np.ndarray) -> dict:
    yi, vi = result.yi[rows], result.vi[rows]
    k = len(yi)
    n = k - 1
    options = result.options_
    # fixed-effect sums with each study left out
    w0 = 1.0 / vi
    s_w = w0.sum() - w0
    s_wy = np.sum(w0 * yi) - w0 * yi
    s_w2 = np.sum(w0**2) - w0**2
    mu_fe = s_wy / s_w
    # Q about the fixed-effect mean: sum w (y - mu)^2, by the centred identity for accuracy
    centre = np.sum(w0 * yi) / w0.sum()
    d = yi - centre
    s_wd2 = np.sum(w0 * d**2) - w0 * d**2
    s_wd = np.sum(w0 * d) - w0 * d
    q = s_wd2 - s_wd**2 / s_w
    q = np.maximum(q, 0.0)
    q_df = n - 1
    q_p = stats.chi2.sf(q, q_df) if q_df > 0 else np.ones(k)
    vt = (n - 1) * s_w / (s_w**2 - s_w2) if n > 1 else np.zeros(k)
    if options.method == "FE" or n == 1:
        tau2 = np.zeros(k)
    elif options.method == "DL":
        tau2 = np.maximum(0.0, (q - q_df) / (s_w - s_w2 / s_w))
    else:
        tau2, _ = _scoring_tau2(
            yi, vi, result.tau2, reml=options.method == "REML", tol=options.tol, max_iterations=options.max_iterations
        )
    if options.method == "FE":
        sw, mu = s_w, mu_fe
    else:
        sums = _scoring_sums_subset(yi, vi, tau2, np.arange(k))
        sw = sums[0]
        mu = sums[1] / sw
    se = np.sqrt(1.0 / sw)
    if options.test in ("knha", "adhoc", "t"):
        df = n - 1
        if options.test != "t":
            rss = _rss(yi, vi, tau2, mu)
            factor = np.where(rss > np.finfo(float).eps, rss / df, 0.0)
            if options.test == "adhoc":
                factor = np.maximum(factor, 1.0)
            se = se * np.sqrt(factor)
        crit = stats.t.isf(options.alpha / 2, df)
        statistic = mu / se
        p_value = 2 * stats.t.sf(np.abs(statistic), df)
    else:
        crit = stats.norm.isf(options.alpha / 2)
        statistic = mu / se
        p_value = 2 * stats.norm.sf(np.abs(statistic))
    if options.method == "FE":
        with np.errstate(divide="ignore", invalid="ignore"):
            i2 = np.where(q > 0, np.maximum(0.0, 100 * (q - q_df) / q), 0.0)
            h2 = q / q_df if q_df > 0 else np.ones(k)
    else:
        i2 = 100 * tau2 / (vt + tau2)
        h2 = tau2 / vt + 1
    return {
        "estimate": mu,
        "std_error": se,
        "statistic": statistic,
        "p_value": p_value,
        "ci_lower": mu - crit * se,
        "ci_upper": mu + crit * se,
        "q": q,
        "q_p_value": q_p,
        "tau2": tau2,
        "i2": i2,
        "h2": h2,
    }


def cumulative(result: MetaResult, *, order=None) -> pd.DataFrame:
    """Cumulative meta-analysis: the model refitted on the first 1, 2, ..., k studies.

    Parameters
    ----------
    result : MetaResult
        An intercept-only fit.
    order : array-like, optional
        The order in which studies are added: study labels, or sort keys (one per study,
        e.g. publication year; ties keep the original order). Default: the order of the
        studies in the effects frame.

    Returns
    -------
    pandas.DataFrame
        One row per step, indexed by the study added: ``k, estimate, std_error, statistic,
        p_value, ci_lower, ci_upper, q, q_p_value, tau2, i2, h2``. ``attrs["alpha"]``.

    Notes
    -----
    Agrees with R ``metafor::cumul(res)`` to 1e-6. As metafor, the first step (one study)
    uses z tests even when the model uses Knapp-Hartung.
    """
    rows = _check(result, "cumulative")
    if result.has_moderators:
        raise ValueError("cumulative meta-analysis needs an intercept-only model (no moderators)")
    positions = np.flatnonzero(rows)
    if order is not None:
        values = order.to_numpy() if isinstance(order, pd.Series) else np.asarray(order)
        if (
            values.shape == (len(result.studies),)
            and set(values) == set(result.studies)
            and len(set(values)) == len(values)
        ):
            ranks = pd.Index(values).get_indexer(result.studies)
            sequence = positions[np.argsort(ranks[positions], kind="stable")]
        elif values.shape == (len(result.studies),):
            sequence = positions[np.argsort(values[positions], kind="stable")]
        else:
            raise ValueError(
                f"order must give one label or sort key per study ({len(result.studies)}), got shape {values.shape}"
            )
    else:
        sequence = positions
    records, ks = [], []
    keep = np.zeros(len(result.studies), dtype=bool)
    for i in sequence:
        keep[i] = True
        fit = result.refit(keep.copy())
        if fit.k == 1 and result.test != "z":  # metafor falls back to z tests for one study
            from dataclasses import replace

            from rjtrial.meta.pooling import fit as fit_model

            fit = fit_model(result.data_.subset(keep.copy()), replace(result.options_, test="z"))
        records.append(_row(fit))
        ks.append(fit.k)
    table = pd.DataFrame.from_records(records, columns=LOO_COLUMNS)
    table.insert(0, "k", ks)
    return _frame(result, table.to_dict("list"), result.studies[sequence])


def influence(result: MetaResult) -> pd.DataFrame:
    """Case-deletion diagnostics (Viechtbauer & Cheung 2010).

    Returns
    -------
    pandas.DataFrame
        One row per study: ``rstudent`` (externally studentised residual), ``dffits``,
        ``cooks_distance``, ``covariance_ratio``, ``tau2_deleted`` and ``q_deleted`` (tau^2
        and Q with the study left out), ``hat`` (leverage) and ``weight`` (percent).

    Notes
    -----
    Follows R ``metafor::influence.rma.uni`` 3.8 (Cook's distance and the covariance ratio
    over all coefficients) and agrees with it to 1e-6, with and without moderators.

    References
    ----------
    Viechtbauer, W., & Cheung, M. W.-L. (2010). Outlier and influence diagnostics for
    meta-analysis. Research Synthesis Methods, 1, 112-125. doi:10.1002/jrsm.11

    Examples
    --------
    >>> from rjtrial import datasets, effects, meta
    >>> bcg = datasets.load_bcg()
    >>> es = effects.log_risk_ratio(bcg, events_treatment="tpos", n_treatment=bcg.tpos + bcg.tneg,
    ...                             events_control="cpos", n_control=bcg.cpos + bcg.cneg, study="author")
    >>> res = meta.pool(es, method="REML")
    >>> inf = res.influence()
    >>> print(inf[["rstudent", "cooks_distance", "hat"]].round(4).head(2).to_string())
                      rstudent  cooks_distance     hat
    study
    Aronson            -0.2181          0.0017  0.0506
    Ferguson & Simes   -1.2918          0.1132  0.0636
    """
    rows = _check(result, "influence")
    if result.method in ("MH", "Peto"):
        raise ValueError(f"influence needs an inverse-variance model, not method={result.method!r}")
    positions = np.flatnonzero(rows)
    yi, vi, X = result.yi[rows], result.vi[rows], result.X[rows][:, : len(result.coefficient_names)]
    beta, vb = result.coefficients, result.vcov
    w = 1.0 / (vi + result.tau2)
    hat = np.einsum("ij,jk,ik->i", X, np.linalg.inv(X.T @ (X * w[:, None])), X) * w
    svb = np.linalg.inv(vb)
    pred_full = X @ beta
    k = len(yi)
    out = {c: np.full(k, np.nan) for c in INFLUENCE_COLUMNS}
    resid = np.full(k, np.nan)
    se_resid = np.full(k, np.nan)
    for r, i in enumerate(positions):
        keep = rows.copy()
        keep[i] = False
        try:
            fit = result.refit(keep)
        except ValueError:
            continue
        s2w = fit.knha_factor
        xi = X[r]
        delpred = float(xi @ fit.coefficients)
        vdelpred = float(xi @ fit.vcov @ xi)
        out["tau2_deleted"][r] = fit.tau2
        out["q_deleted"][r] = fit.q
        out["dffits"][r] = (pred_full[r] - delpred) / np.sqrt(s2w * hat[r] * (fit.tau2 + vi[r]))
        dfb = beta - fit.coefficients
        out["cooks_distance"][r] = float(dfb @ svb @ dfb)
        out["covariance_ratio"][r] = np.linalg.det(fit.vcov) / np.linalg.det(vb)
        resid[r] = yi[r] - delpred
        se_resid[r] = np.sqrt(vi[r] * s2w + vdelpred + fit.tau2 * s2w)
    resid[np.abs(resid) < 100 * np.finfo(float).eps] = 0.0
    out["rstudent"] = resid / se_resid
    out["hat"] = hat
    out["weight"] = result.weights[rows]
    frame = _frame(result, out, result.studies[positions])
    frame.attrs.pop("df", None)
    return frame
