"""Small-study effects and publication bias: Egger's regression test, Begg's rank correlation
test, trim-and-fill and fail-safe N (metafor's ``regtest``, ``ranktest``, ``trimfill``, ``fsn``).

Each verb takes a fitted :class:`~rjtrial.meta.MetaResult` (intercept-only, inverse-variance:
``method`` ``"FE"`` or a tau^2 estimator) and returns a small frozen result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from rjtrial.errors import RjtrialError
from rjtrial.meta._data import MetaData
from rjtrial.meta.result import MetaResult

TRIMFILL_ESTIMATORS = ("L0", "R0")
TRIMFILL_SIDES = ("left", "right")
FAIL_SAFE_METHODS = ("rosenthal", "orwin", "rosenberg")


@dataclass(frozen=True)
class EggerTest:
    """Egger's regression test: the slope of the effect on its standard error.

    ``statistic, p_value`` test the slope (z, or t on ``df`` with Knapp-Hartung);
    ``slope, slope_std_error`` are its estimate and SE; ``limit_estimate, limit_ci_lower,
    limit_ci_upper`` the intercept (the effect as the SE goes to 0) with its interval;
    ``tau2`` the residual heterogeneity of the regression.
    """

    statistic: float
    p_value: float
    df: float | None
    slope: float
    slope_std_error: float
    limit_estimate: float
    limit_ci_lower: float
    limit_ci_upper: float
    tau2: float
    method: str = "Egger's regression test (mixed-effects model, predictor: standard error)"
    predictor: str = "sei"
    model: str = "rma"


@dataclass(frozen=True)
class BeggTest:
    """Begg and Mazumdar's rank correlation test: Kendall's tau between the standardised
    effects and their variances, with its (exact when there are no ties) p value."""

    statistic: float
    p_value: float
    exact: bool
    method: str = "Begg's rank correlation test (Kendall's tau)"


@dataclass(frozen=True, eq=False)
class TrimFillResult:
    """Trim-and-fill: ``k0`` imputed studies on ``side`` and the model refitted with them.

    ``result`` is the :class:`MetaResult` of the filled data (its ``studies`` end with
    ``"Filled 1"``, ...), ``imputed`` the imputed rows (``estimate, variance``) and
    ``k0_std_error`` the SE of the estimator of k0. ``estimate``, ``std_error``, ``statistic``,
    ``p_value``, ``ci_lower``, ``ci_upper`` and ``tau2`` are those of ``result``.
    """

    k0: int
    k0_std_error: float
    side: str
    estimator: str
    result: MetaResult
    imputed: pd.DataFrame

    def __getattr__(self, name):
        if name in ("estimate", "std_error", "statistic", "p_value", "ci_lower", "ci_upper", "tau2", "k"):
            return getattr(self.result, name)
        raise AttributeError(name)


@dataclass(frozen=True)
class FailSafeN:
    """Fail-safe N: the number of null studies (``n``, rounded up as metafor) that would
    bring the pooled result to ``target`` (Orwin) or to non-significance at ``alpha``."""

    n: int
    method: str
    alpha: float
    p_value: float
    mean_effect: float
    target: float


def _inverse_variance_rows(result: MetaResult, verb: str) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    if not isinstance(result, MetaResult):
        raise TypeError(f"{verb} needs a MetaResult from rjtrial.meta.pool, not {type(result).__name__}")
    if result.method in ("MH", "Peto"):
        raise ValueError(
            f"{verb} needs an inverse-variance model (method 'FE' or a tau^2 estimator), not method={result.method!r}"
        )
    rows = np.isfinite(result.yi) & np.isfinite(result.vi)
    return result.yi[rows], result.vi[rows], result.studies[rows]


def _fit(yi, vi, X, names, studies, result: MetaResult, *, test: str | None = None) -> MetaResult:
    from rjtrial.meta.pooling import Options, fit

    o = result.options_
    options = Options(o.method, o.test if test is None else test, o.alpha, o.tol, o.max_iterations)
    return fit(
        MetaData(np.asarray(yi, float), np.asarray(vi, float), X, names, pd.Index(studies), result.measure), options
    )


EGGER_PREDICTORS = ("sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv")
EGGER_MODELS = ("rma", "lm")


def _sample_sizes(result: MetaResult, n, rows) -> np.ndarray:
    """Total sample size per study: ``n`` (a column or values), else ``n_treatment + n_control``
    or an ``n`` column of the effects frame (metafor's ``ni`` attribute of escalc)."""
    frame = result.data_.frame
    if n is None:
        if frame is not None and {"n_treatment", "n_control"} <= set(frame.columns):
            values = pd.to_numeric(frame["n_treatment"], errors="coerce") + pd.to_numeric(
                frame["n_control"], errors="coerce"
            )
        elif frame is not None and "n" in frame.columns:
            values = pd.to_numeric(frame["n"], errors="coerce")
        else:
            raise ValueError("a sample-size predictor needs sample sizes: give n= (a column or one value per study)")
        values = values.to_numpy(dtype=float)
    elif isinstance(n, str):
        if frame is None or n not in frame.columns:
            raise ValueError(f"n={n!r} is not a column of the effects frame")
        values = pd.to_numeric(frame[n], errors="coerce").to_numpy(dtype=float)
    else:
        values = np.asarray(n, dtype=float)
        if values.shape != (len(result.yi),):
            raise ValueError(f"n must have one value per study ({len(result.yi)}), got shape {values.shape}")
    values = values[rows]
    if not np.all(np.isfinite(values) & (values > 0)):
        raise ValueError("sample sizes must be positive and finite for every study used")
    return values


def egger(result: MetaResult, *, predictor: str = "sei", model: str = "rma", n=None) -> EggerTest:
    """Egger's regression test for funnel-plot asymmetry (metafor's ``regtest``).

    Refits the model with a measure of precision as an extra moderator and tests its slope.

    Parameters
    ----------
    result : MetaResult
    predictor : {"sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv"}, default "sei"
        The standard error (Egger's test), the variance, the total sample size, its inverse,
        its square root or the inverse square root.
    model : {"rma", "lm"}, default "rma"
        The same meta-analytic model with the predictor added (same method and test), or the
        classical weighted regression ``lm(y ~ X + predictor, weights = 1 / v)`` whose residual
        variance scales the covariance (t tests on k - p - 1 df).
    n : str or array-like, optional
        Sample sizes for the ``n`` predictors; by default ``n_treatment + n_control`` or an
        ``n`` column of the effects frame.

    Returns
    -------
    EggerTest
        ``statistic, p_value, df, slope, slope_std_error, limit_estimate, limit_ci_lower,
        limit_ci_upper`` (the intercept: the effect of an infinitely large study; for the
        predictors that vanish there -- sei, vi, ninv, sqrtninv -- and intercept-only models,
        else NaN), ``tau2``, ``predictor``, ``model``.

    Notes
    -----
    Agrees with R ``metafor::regtest(res, model, predictor)``: zval, pval, dfs, est, ci.lb,
    ci.ub to 1e-9 for every predictor and both models on dat.bcg
    (tests/validation/test_metafor_options_bcg.py, test_metafor_diagnostics_bcg.py).

    References
    ----------
    Egger, M., Davey Smith, G., Schneider, M., & Minder, C. (1997). Bias in meta-analysis
    detected by a simple, graphical test. BMJ, 315, 629-634. doi:10.1136/bmj.315.7109.629

    Sterne, J. A. C., & Egger, M. (2005). Regression methods to detect publication and other
    bias in meta-analysis. In Publication bias in meta-analysis (pp. 99-110). Wiley.
    doi:10.1002/0470870168.ch6

    Examples
    --------
    >>> from rjtrial import datasets, effects, meta
    >>> bcg = datasets.load_bcg()
    >>> es = effects.log_risk_ratio(bcg, events_treatment="tpos", n_treatment=bcg.tpos + bcg.tneg,
    ...                             events_control="cpos", n_control=bcg.cpos + bcg.cneg, study="author")
    >>> res = meta.pool(es, method="REML")
    >>> test = meta.egger(res)
    >>> print(f"z = {test.statistic:.4f}, p = {test.p_value:.4f}")
    z = -0.8033, p = 0.4218
    """
    if predictor not in EGGER_PREDICTORS:
        raise ValueError(f"predictor={predictor!r}: choose one of {', '.join(map(repr, EGGER_PREDICTORS))}")
    if model not in EGGER_MODELS:
        raise ValueError(f"model={model!r}: choose one of {', '.join(map(repr, EGGER_MODELS))}")
    yi, vi, studies = _inverse_variance_rows(result, "egger")
    if predictor in ("sei", "vi"):
        _equal_standard_errors(vi, "Egger's test")
    rows = np.isfinite(result.yi) & np.isfinite(result.vi)
    if predictor == "sei":
        extra = np.sqrt(vi)
    elif predictor == "vi":
        extra = vi
    else:
        ni = _sample_sizes(result, n, rows)
        extra = {"ni": ni, "ninv": 1 / ni, "sqrtni": np.sqrt(ni), "sqrtninv": 1 / np.sqrt(ni)}[predictor]
    X = np.column_stack([result.X[rows], extra])
    names = result.coefficient_names + (predictor,)
    p = X.shape[1]
    if len(yi) <= p:
        raise ValueError(f"Egger's test needs more than {p} studies, got {len(yi)}")
    if np.linalg.matrix_rank(X) < p:
        raise ValueError(
            f"the predictor {predictor!r} is collinear with the model's design "
            "(e.g. all variances or sample sizes equal): the test cannot be done"
        )
    limit = predictor in ("sei", "vi", "ninv", "sqrtninv") and not result.has_moderators
    j = p - 1
    if model == "rma":
        fit = _fit(yi, vi, X, names, studies, result)
        statistic, p_value = float(fit.coefficient_statistics[j]), float(fit.coefficient_p_values[j])
        slope, slope_se, df, tau2 = float(fit.coefficients[j]), float(fit.coefficient_std_errors[j]), fit.df, fit.tau2
        lim = (float(fit.coefficients[0]), float(fit.coefficient_ci_lower[0]), float(fit.coefficient_ci_upper[0]))
    else:
        w = 1.0 / vi
        bread = np.linalg.inv(X.T @ (X * w[:, None]))
        beta = bread @ (X.T @ (w * yi))
        df = float(len(yi) - p)
        sigma2 = float(np.sum(w * (yi - X @ beta) ** 2)) / df
        se = np.sqrt(np.diag(bread) * sigma2)
        t = beta / se
        statistic, p_value = float(t[j]), float(2 * stats.t.sf(abs(t[j]), df))
        slope, slope_se, tau2 = float(beta[j]), float(se[j]), np.nan
        crit = stats.t.isf(result.alpha / 2, df)
        lim = (float(beta[0]), float(beta[0] - crit * se[0]), float(beta[0] + crit * se[0]))
    if not limit:
        lim = (np.nan, np.nan, np.nan)
    return EggerTest(
        statistic=statistic,
        p_value=p_value,
        df=df,
        slope=slope,
        slope_std_error=slope_se,
        limit_estimate=lim[0],
        limit_ci_lower=lim[1],
        limit_ci_upper=lim[2],
        tau2=float(tau2),
        method=f"Egger's regression test ({'mixed-effects model' if model == 'rma' else 'weighted regression'}"
        f", predictor: {predictor})",
        predictor=predictor,
        model=model,
    )


def begg(result: MetaResult) -> BeggTest:
    """Begg and Mazumdar's rank correlation test for funnel-plot asymmetry.

    Kendall's tau between ``(y_i - theta) / sqrt(v_i - 1 / sum(1 / v))`` and ``v_i``, with
    theta the fixed-effect estimate; the p value is exact when there are no ties (as R's
    ``cor.test(..., method = "kendall", exact = TRUE)``), else the normal approximation.

    Notes
    -----
    Agrees with R ``metafor::ranktest(res)`` (tau, pval) to 1e-6.

    References
    ----------
    Begg, C. B., & Mazumdar, M. (1994). Operating characteristics of a rank correlation test
    for publication bias. Biometrics, 50, 1088-1101. doi:10.2307/2533446

    Examples
    --------
    >>> from rjtrial import datasets, effects, meta
    >>> bcg = datasets.load_bcg()
    >>> es = effects.log_risk_ratio(bcg, events_treatment="tpos", n_treatment=bcg.tpos + bcg.tneg,
    ...                             events_control="cpos", n_control=bcg.cpos + bcg.cneg, study="author")
    >>> res = meta.pool(es, method="REML")
    >>> test = meta.begg(res)
    >>> print(f"tau = {test.statistic:.4f}, p = {test.p_value:.4f}")
    tau = 0.0256, p = 0.9524
    """
    yi, vi, _ = _inverse_variance_rows(result, "begg")
    if len(yi) < 3:
        raise ValueError(f"Begg's test needs at least 3 studies, got {len(yi)}")
    wi = 1.0 / vi
    theta = np.sum(wi * yi) / wi.sum()
    vstar = vi - 1.0 / wi.sum()
    ystar = (yi - theta) / np.sqrt(vstar)
    ties = len(np.unique(ystar)) < len(ystar) or len(np.unique(vi)) < len(vi)
    method: Literal["asymptotic", "exact"] = "asymptotic" if ties else "exact"
    tau, p_value = stats.kendalltau(ystar, vi, method=method)
    return BeggTest(float(tau), float(p_value), not ties)


def _equal_standard_errors(vi, verb: str, remedy: str = "") -> None:
    if np.ptp(vi) <= 1e-12 * np.max(vi):
        raise ValueError(
            f"{verb} is not computable: all standard errors are equal (the regression on the standard "
            f"error has a constant predictor){remedy}"
        )


def _side(yi, vi, studies, result) -> str:
    _equal_standard_errors(vi, "the side of trim-and-fill", "; give side='left' or 'right'")
    X = np.column_stack([np.ones(len(yi)), np.sqrt(vi)])
    fit = _fit(yi, vi, X, ("intercept", "sei"), studies, result)
    return "right" if fit.coefficients[1] < 0 else "left"


def trim_and_fill(
    result: MetaResult, *, side: str | None = None, estimator: str = "L0", max_iterations: int = 100
) -> TrimFillResult:
    """Duval and Tweedie's trim-and-fill.

    Parameters
    ----------
    result : MetaResult
        An intercept-only inverse-variance fit.
    side : {"left", "right"}, optional
        Side of the funnel where studies are missing; by default from the sign of the slope
        in Egger's regression (missing on the left when the slope is positive).
    estimator : {"L0", "R0"}, default "L0"
        Estimator of the number of missing studies.
    max_iterations : int, default 100

    Returns
    -------
    TrimFillResult
        ``k0, k0_std_error, side, estimator``, the refitted ``result`` (with z tests, as
        metafor; the original fit when k0 = 0) and the ``imputed`` studies (``estimate, variance``), reflections of the
        k0 most extreme studies about the trimmed estimate.

    Notes
    -----
    Follows R ``metafor::trimfill`` 3.8 step for step and agrees with it (k0, side,
    estimate, SE, CI, tau^2, filled values) to 1e-6.

    References
    ----------
    Duval, S., & Tweedie, R. (2000). Trim and fill: A simple funnel-plot-based method of
    testing and adjusting for publication bias in meta-analysis. Biometrics, 56, 455-463.
    doi:10.1111/j.0006-341X.2000.00455.x

    Examples
    --------
    >>> from rjtrial import datasets, effects, meta
    >>> bcg = datasets.load_bcg()
    >>> es = effects.log_risk_ratio(bcg, events_treatment="tpos", n_treatment=bcg.tpos + bcg.tneg,
    ...                             events_control="cpos", n_control=bcg.cpos + bcg.cneg, study="author")
    >>> res = meta.pool(es, method="REML")
    >>> tf = meta.trim_and_fill(res)
    >>> print(tf.k0, tf.side, f"{tf.estimate:.4f} [{tf.ci_lower:.4f}, {tf.ci_upper:.4f}]")
    1 right -0.6571 [-1.0070, -0.3072]
    """
    if estimator not in TRIMFILL_ESTIMATORS:
        raise ValueError(f"estimator={estimator!r}: choose one of {', '.join(map(repr, TRIMFILL_ESTIMATORS))}")
    if side is not None and side not in TRIMFILL_SIDES:
        raise ValueError(f"side={side!r}: choose one of 'left', 'right' or None (estimated)")
    yi0, vi0, studies = _inverse_variance_rows(result, "trim_and_fill")
    if result.has_moderators:
        raise ValueError("trim_and_fill needs an intercept-only model (no moderators)")
    if len(yi0) < 3:
        raise ValueError(f"trim-and-fill needs at least 3 studies, got {len(yi0)}")
    if side is None:
        side = _side(yi0, vi0, studies, result)
    sign = -1.0 if side == "right" else 1.0
    order = np.argsort(sign * yi0, kind="stable")
    yi, vi = sign * yi0[order], vi0[order]
    k = len(yi)
    one = np.ones((k, 1))
    k0, k0_previous, iteration = 0, -1, 0
    se_k0 = np.nan
    beta = np.nan
    centred = yi
    while k0 != k0_previous:
        k0_previous = k0
        iteration += 1
        if iteration > max_iterations:
            raise ValueError(f"trim-and-fill did not converge in {max_iterations} iterations")
        n = k - k0
        beta = _fit(yi[:n], vi[:n], one[:n], ("intercept",), pd.RangeIndex(n), result).estimate
        centred = yi - beta
        ranks = stats.rankdata(np.abs(centred), method="ordinal")
        signed = np.sign(centred) * ranks
        if estimator == "R0":
            raw = float(k - np.max(-signed[signed < 0], initial=0)) - 1
            se = math.sqrt(2 * max(0.0, raw) + 2)
        else:
            sr = float(np.sum(signed[signed > 0]))
            raw = (4 * sr - k * (k + 1)) / (2 * k - 1)
            var_sr = (
                k * (k + 1) * (2 * k + 1)
                + 10 * raw**3
                + 27 * raw**2
                + 17 * raw
                - 18 * k * raw**2
                - 18 * k * raw
                + 6 * k**2 * raw
            ) / 24
            se = 4 * math.sqrt(var_sr) / (2 * k - 1) if var_sr > 0 else 0.0
        k0 = max(0, int(np.round(raw)))  # R's round: half to even, as numpy
        se_k0 = max(0.0, se)
    if k0 > 0:
        reflected = sign * -(centred - beta)[k - k0 :]
        imputed = pd.DataFrame(
            {"estimate": reflected, "variance": vi[k - k0 :]}, index=pd.Index([f"Filled {j + 1}" for j in range(k0)])
        )
        all_studies = pd.Index(list(studies) + list(imputed.index))
        y_all = np.concatenate([yi0, reflected])
        v_all = np.concatenate([vi0, vi[k - k0 :]])
        filled = _fit(y_all, v_all, np.ones((len(y_all), 1)), ("intercept",), all_studies, result, test="z")
    else:
        imputed = pd.DataFrame({"estimate": [], "variance": []}, dtype=float)
        filled = result  # nothing imputed: the original fit, as metafor
    return TrimFillResult(
        k0=int(k0), k0_std_error=float(se_k0), side=side, estimator=estimator, result=filled, imputed=imputed
    )


def fail_safe_n(
    result: MetaResult, *, method: str = "rosenthal", alpha: float = 0.05, target: float | None = None
) -> FailSafeN:
    """Fail-safe N: how many unpublished null studies would overturn the result.

    Parameters
    ----------
    result : MetaResult
        Any inverse-variance fit (only its ``yi`` and ``vi`` are used).
    method : {"rosenthal", "orwin", "rosenberg"}, default "rosenthal"
        ``"rosenthal"``: Stouffer's combined z brought above ``alpha`` (one-sided);
        ``"orwin"``: the unweighted mean effect brought down to ``target`` (default half
        of it); ``"rosenberg"``: the fixed-effect estimate brought to non-significance at
        ``alpha`` (two-sided).
    alpha : float, default 0.05
    target : float, optional
        Orwin's target effect.

    Returns
    -------
    FailSafeN
        ``n`` (rounded up), ``method, alpha, p_value`` (of the observed studies; NaN for
        Orwin), ``mean_effect`` and ``target`` (NaN where not used).

    Notes
    -----
    Agrees with R ``metafor::fsn(yi, vi, type = "Rosenthal" / "Orwin" / "Rosenberg")``.

    References
    ----------
    Rosenthal, R. (1979). The file drawer problem and tolerance for null results.
    Psychological Bulletin, 86, 638-641. doi:10.1037/0033-2909.86.3.638
    Orwin, R. G. (1983). A fail-safe N for effect size in meta-analysis. Journal of
    Educational Statistics, 8, 157-159. doi:10.3102/10769986008002157
    Rosenberg, M. S. (2005). The file-drawer problem revisited. Evolution, 59, 464-468.
    doi:10.1111/j.0014-3820.2005.tb01004.x

    Examples
    --------
    >>> from rjtrial import datasets, effects, meta
    >>> bcg = datasets.load_bcg()
    >>> es = effects.log_risk_ratio(bcg, events_treatment="tpos", n_treatment=bcg.tpos + bcg.tneg,
    ...                             events_control="cpos", n_control=bcg.cpos + bcg.cneg, study="author")
    >>> res = meta.pool(es, method="REML")
    >>> meta.fail_safe_n(res).n
    598
    """
    if method not in FAIL_SAFE_METHODS:
        raise ValueError(f"method={method!r}: choose one of {', '.join(map(repr, FAIL_SAFE_METHODS))}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    yi, vi, _ = _inverse_variance_rows(result, "fail_safe_n")
    k = len(yi)
    nan = float("nan")
    if method == "rosenthal":
        z_avg = abs(np.sum(yi / np.sqrt(vi)) / math.sqrt(k))
        p_value = float(stats.norm.sf(z_avg))
        raw = max(0.0, k * (z_avg / stats.norm.isf(alpha)) ** 2 - k)
        return FailSafeN(int(math.ceil(raw)), method, alpha, p_value, nan, nan)
    if method == "orwin":
        mean = float(np.mean(yi))
        target = mean / 2 if target is None else float(target)
        if target == 0:
            raise ValueError("Orwin's target must not be 0")
        if np.sign(target) != np.sign(mean):
            target = -target
        raw = max(0.0, k * (mean - target) / target)
        return FailSafeN(int(math.ceil(raw)), method, alpha, nan, mean, target)
    wi = 1.0 / vi
    mean = float(np.sum(wi * yi) / wi.sum())
    z = mean / math.sqrt(1.0 / wi.sum())
    w_p = (np.sum(wi * yi) / stats.norm.isf(alpha / 2)) ** 2 - wi.sum()
    raw = max(0.0, k * w_p / wi.sum())
    return FailSafeN(int(math.ceil(raw)), method, alpha, float(2 * stats.norm.sf(abs(z))), mean, nan)


def small_study_diagnostics(res) -> dict[str, dict]:
    """Every small-study diagnostic of a pooled result, or why it cannot be computed.

    One that fails never sinks the others or the pooled estimate: with every standard error
    equal (equal-sized trials) Egger's regression has a constant predictor, Begg's rank
    correlation nothing to rank and trim-and-fill no side to estimate.

    Parameters
    ----------
    res : MetaResult

    Returns
    -------
    dict
        ``{"egger": {...}, "begg": {...}, "trim_and_fill": {...}, "fail_safe_n": {...}}``, each
        ``{"computable": True, <its values>}`` or ``{"computable": False, "reason": text}``.
        Egger: ``statistic, df, p_value, limit_estimate`` (``df`` None for a z test, the t
        test's degrees of freedom under Knapp-Hartung); Begg: ``statistic, p_value``;
        trim-and-fill: ``k0, side, estimate, std_error, ci_lower, ci_upper, tau2``;
        fail-safe N: ``n, method, p_value``.
    """
    import numpy as np

    vi = res.vi[np.isfinite(res.yi) & np.isfinite(res.vi)]
    equal = bool(np.ptp(vi) <= 1e-12 * np.max(vi))

    def egger_values():
        e = egger(res)
        return {"statistic": e.statistic, "df": e.df, "p_value": e.p_value, "limit_estimate": e.limit_estimate}

    def begg_values():
        b = begg(res)
        return {"statistic": b.statistic, "p_value": b.p_value}

    def trim_and_fill_values():
        t = trim_and_fill(res)
        return {
            "k0": t.k0,
            "side": t.side,
            "estimate": t.estimate,
            "std_error": t.std_error,
            "ci_lower": t.ci_lower,
            "ci_upper": t.ci_upper,
            "tau2": t.tau2,
        }

    def fail_safe_n_values():
        f = fail_safe_n(res)
        return {"n": f.n, "method": f.method, "p_value": f.p_value}

    computed = {
        "egger": egger_values,
        "begg": begg_values,
        "trim_and_fill": trim_and_fill_values,
        "fail_safe_n": fail_safe_n_values,
    }
    out: dict[str, dict] = {}
    for name, compute in computed.items():
        if equal and name != "fail_safe_n":
            out[name] = {"computable": False, "reason": "all standard errors are equal"}
            continue
        try:
            values = compute()
        except (ValueError, ArithmeticError, RjtrialError, np.linalg.LinAlgError) as exc:
            out[name] = {"computable": False, "reason": str(exc)}
            continue
        if any(isinstance(v, float) and not math.isfinite(v) for k, v in values.items() if k in ("statistic", "n")):
            out[name] = {"computable": False, "reason": "its statistic is undefined for these studies"}
            continue
        out[name] = {"computable": True, **values}
    return out
