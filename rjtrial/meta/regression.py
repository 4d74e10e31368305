"""The fixed part of a (mixed-effects) meta-regression: weighted least squares given tau^2,
the Knapp-Hartung adjustment, the omnibus test of moderators, pseudo-R^2 and predictions.

Follows R ``metafor::rma.uni`` and ``predict.rma`` (3.8): coefficients
``b = (X' W X)^-1 X' W y`` with ``W = diag(1 / (v + tau^2))`` and covariance ``(X' W X)^-1``;
with ``test="knha"`` the covariance is multiplied by ``s^2 = sum w (y - X b)^2 / (k - p)``
(not truncated at 1), with ``test="adhoc"`` by ``max(1, s^2)`` (the ad hoc truncation of
Knapp & Hartung 2003, never narrower than the z interval's covariance), and with ``test="t"``
not at all; these three use t (coefficients) and F (omnibus) on k - p denominator degrees of
freedom (metafor's ``test = "knha" | "adhoc" | "t"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

TESTS = ("z", "knha", "t", "adhoc")
#: tests that use t and F on k - p df
T_TESTS = ("knha", "t", "adhoc")


@dataclass(frozen=True)
class TestResult:
    """A test statistic with its reference distribution.

    ``distribution`` is ``"chi2"`` (``df``), ``"F"`` (``df``, ``df_denominator``), ``"z"``
    or ``"t"`` (``df``).
    """

    statistic: float
    df: float | None
    p_value: float
    distribution: str
    method: str
    df_denominator: float | None = None


@dataclass(frozen=True, eq=False)
class FixedPart:
    """Coefficients and their (possibly Knapp-Hartung scaled) covariance."""

    beta: np.ndarray
    vcov: np.ndarray
    std_error: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    df: float | None  # t degrees of freedom (knha), None for z
    critical: float
    knha_factor: float


def fit_fixed_part(
    yi: np.ndarray,
    vi: np.ndarray,
    X: np.ndarray,
    tau2: float,
    *,
    test: str,
    alpha: float,
    weights: np.ndarray | None = None,
) -> FixedPart:
    """Weighted least squares of ``yi`` on ``X`` with weights 1 / (v + tau^2).

    With user ``weights`` a (metafor's ``rma(..., weights = a)``): ``b = (X' A X)^-1 X' A y``
    with the sandwich covariance ``(X' A X)^-1 X' A M A X (X' A X)^-1``, M = diag(v + tau^2);
    the Knapp-Hartung factor still comes from the inverse-variance fit.
    """
    if test not in TESTS:
        raise ValueError(f"test={test!r}: choose one of {', '.join(map(repr, TESTS))}")
    k, p = X.shape
    w = 1.0 / (vi + tau2)
    XtWX = X.T @ (X * w[:, None])
    vcov = np.linalg.inv(XtWX)
    vcov = (vcov + vcov.T) / 2
    beta = vcov @ (X.T @ (w * yi))
    beta_iv = beta
    if weights is not None:
        a = np.asarray(weights, dtype=float)
        bread = np.linalg.inv(X.T @ (X * a[:, None]))
        bread = (bread + bread.T) / 2
        beta = bread @ (X.T @ (a * yi))
        vcov = bread @ (X.T @ (X * (a * a * (vi + tau2))[:, None])) @ bread
        vcov = (vcov + vcov.T) / 2
    factor = 1.0
    df = None
    if test in T_TESTS:
        df = float(k - p)
    if test in ("knha", "adhoc"):
        rss = float(np.sum(w * (yi - X @ beta_iv) ** 2))
        factor = rss / (k - p) if (k > p and rss > np.finfo(float).eps) else (0.0 if k > p else np.nan)
        if test == "adhoc" and not factor >= 1.0:
            factor = 1.0 if k > p else np.nan
        vcov = vcov * factor
    se = np.sqrt(np.diag(vcov))
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = beta / se
    if df is None:
        critical = float(stats.norm.isf(alpha / 2))
        p_value = 2 * stats.norm.sf(np.abs(statistic))
    elif df > 0:
        critical = float(stats.t.isf(alpha / 2, df))
        p_value = 2 * stats.t.sf(np.abs(statistic), df)
    else:
        critical = np.nan
        p_value = np.full(p, np.nan)
    return FixedPart(
        beta, vcov, se, statistic, p_value, beta - critical * se, beta + critical * se, df, critical, factor
    )


def omnibus_test(fixed: FixedPart, columns: np.ndarray, *, k: int, p: int) -> TestResult:
    """Wald test that the coefficients in ``columns`` are all 0 (metafor's QM).

    Chi-square on m = len(columns) df for ``test="z"``; with Knapp-Hartung, F = QM / m on
    (m, k - p) df.
    """
    b = fixed.beta[columns]
    V = fixed.vcov[np.ix_(columns, columns)]
    qm = float(b @ np.linalg.solve(V, b))
    m = len(columns)
    if fixed.df is None:
        return TestResult(qm, float(m), float(stats.chi2.sf(qm, m)), "chi2", "omnibus Wald test of moderators")
    f = qm / m
    p_value = float(stats.f.sf(f, m, k - p)) if k > p else np.nan
    return TestResult(f, float(m), p_value, "F", "omnibus test of moderators (Knapp-Hartung F)", float(k - p))


def contrast_test(fixed: FixedPart, contrasts: np.ndarray, *, k: int, p: int, method: str) -> TestResult:
    """Wald test of ``C b = 0`` (chi-square, or F on (rows of C, k - p) df with Knapp-Hartung)."""
    cb = contrasts @ fixed.beta
    V = contrasts @ fixed.vcov @ contrasts.T
    q = float(cb @ np.linalg.solve(V, cb))
    m = contrasts.shape[0]
    if fixed.df is None:
        return TestResult(q, float(m), float(stats.chi2.sf(q, m)), "chi2", method)
    return TestResult(q / m, float(m), float(stats.f.sf(q / m, m, k - p)), "F", method, float(k - p))


def pseudo_r2(tau2_without: float, tau2_with: float) -> float:
    """Proportion (percent) of tau^2 accounted for by the moderators, truncated at 0.

    metafor's R^2 = (tau^2_RE - tau^2_ME) / tau^2_RE; 0 when tau^2_RE = 0 (Raudenbush 2009).
    """
    if tau2_without == 0:
        return 0.0
    return max(0.0, 100 * (tau2_without - tau2_with) / tau2_without)


def fixed_effect_r2(yi: np.ndarray, vi: np.ndarray, X: np.ndarray) -> float:
    """Adjusted R^2 (percent, truncated at 0) of the weighted regression: metafor's R^2 for
    fixed-effect meta-regression (``summary(lm(yi ~ X, weights = 1/vi))$adj.r.squared``)."""
    k, p = X.shape
    w = 1.0 / vi
    beta = np.linalg.solve(X.T @ (X * w[:, None]), X.T @ (w * yi))
    rss = np.sum(w * (yi - X @ beta) ** 2)
    mean = np.sum(w * yi) / np.sum(w)
    tss = np.sum(w * (yi - mean) ** 2)
    if tss == 0:
        return 0.0
    r2 = 1 - rss / tss
    return max(0.0, 100 * (1 - (1 - r2) * (k - 1) / (k - p)))


def prediction(fixed: FixedPart, x: np.ndarray, tau2: float) -> dict[str, np.ndarray]:
    """Predicted mean at design rows ``x`` with confidence and prediction intervals.

    As R ``predict.rma``: ``se = sqrt(x' V x)``; the prediction interval is
    ``pred -/+ crit sqrt(se^2 + tau^2)``, crit from the normal (z) or t on k - p df (knha).
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    pred = x @ fixed.beta
    se = np.sqrt(np.einsum("ij,jk,ik->i", x, fixed.vcov, x))
    half = fixed.critical * se
    pi_half = fixed.critical * np.sqrt(se**2 + tau2)
    return {
        "estimate": pred,
        "std_error": se,
        "ci_lower": pred - half,
        "ci_upper": pred + half,
        "pi_lower": pred - pi_half,
        "pi_upper": pred + pi_half,
    }
