"""Heterogeneity: Cochran's Q, I^2 and H^2, and the Q-profile confidence interval of tau^2.

Conventions are R ``metafor``'s (3.8): Q (the residual Q with moderators) uses
fixed-effect weights 1 / v; for fixed-effect models I^2 = max(0, (Q - df) / Q) and
H^2 = Q / df; for random-effects models I^2 = tau^2 / (tau^2 + s^2) and H^2 = tau^2 / s^2 + 1
with the "typical" within-study variance s^2 = (k - p) / tr(P) (for p = 1,
s^2 = (k - 1) sum(w) / ((sum w)^2 - sum(w^2))); their confidence intervals are the Q-profile
interval of tau^2 pushed through the same formulas (``confint(rma(...))``).

Nothing here forms the k x k residual-maker P: Q(tau^2), tr(P) and the Q-profile search
cost O(k p^2) per evaluation (:class:`rjtrial.meta.estimators.ResidualMaker`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from rjtrial.meta.estimators import ResidualMaker, generalised_q


@dataclass(frozen=True)
class QTest:
    """Cochran's Q test of (residual) heterogeneity."""

    statistic: float
    df: int
    p_value: float


@dataclass(frozen=True)
class Tau2Interval:
    """Q-profile interval of tau^2; ``lower_bounded`` / ``upper_bounded`` flag a limit that is
    the search bound (0, or metafor's ``max(100, 10 tau^2)``) rather than a root."""

    lower: float
    upper: float
    lower_bounded: bool
    upper_bounded: bool
    converged: bool
    n_iterations: int


def cochran_q(yi: np.ndarray, vi: np.ndarray, X: np.ndarray) -> QTest:
    """Q = sum w (y - X b_FE)^2 with w = 1 / v, on k - p degrees of freedom."""
    k, p = X.shape
    if k <= p:
        return QTest(0.0, 0, 1.0)
    q = max(0.0, generalised_q(0.0, yi, vi, X))
    return QTest(q, k - p, float(stats.chi2.sf(q, k - p)))


def typical_variance(vi: np.ndarray, X: np.ndarray) -> float:
    """metafor's typical within-study variance s^2 = (k - p) / tr(P) with weights 1 / v."""
    k, p = X.shape
    if k <= p:
        return 0.0
    return (k - p) / ResidualMaker(1.0 / vi, X).trace()


def i2_h2_random(tau2: float, vt: float) -> tuple[float, float]:
    """I^2 (percent) and H^2 for a random-effects model."""
    if not np.isfinite(tau2):
        return np.nan, np.nan
    return 100 * tau2 / (vt + tau2), tau2 / vt + 1


def i2_h2_fixed(q: QTest) -> tuple[float, float]:
    """I^2 (percent) and H^2 of a fixed-effect model, from Q."""
    if q.df == 0:
        return 0.0, 1.0
    i2 = max(0.0, 100 * (q.statistic - q.df) / q.statistic) if q.statistic > 0 else 0.0
    return i2, q.statistic / q.df


def q_profile_interval(
    yi: np.ndarray,
    vi: np.ndarray,
    X: np.ndarray,
    *,
    tau2: float,
    alpha: float = 0.05,
    tol: float = 1e-12,
    max_iterations: int = 1000,
) -> Tau2Interval:
    """Q-profile (1 - alpha) confidence interval of tau^2 (Viechtbauer 2007).

    The limits solve Q(tau^2) = chi^2_{k-p}(1 - alpha/2) (lower) and chi^2_{k-p}(alpha/2)
    (upper), Q(tau^2) being the generalised Q with weights 1 / (v + tau^2). As metafor's
    ``confint.rma.uni``, the search runs over [0, max(100, 10 tau^2)]: a limit outside is
    set to the bound and flagged; if Q(0) is below the lower quantile both limits are 0.

    References
    ----------
    Viechtbauer, W. (2007). Confidence intervals for the amount of heterogeneity in
    meta-analysis. Statistics in Medicine, 26(1), 37-52. doi:10.1002/sim.2514
    """
    k, p = X.shape
    df = k - p
    if df < 1:
        return Tau2Interval(np.nan, np.nan, False, False, False, 0)
    upper_bound = max(100.0, 10 * tau2)
    crit_upper = stats.chi2.isf(alpha / 2, df)  # gives the lower limit of tau^2
    crit_lower = stats.chi2.ppf(alpha / 2, df)  # gives the upper limit
    q_min = generalised_q(0.0, yi, vi, X)
    q_max = generalised_q(upper_bound, yi, vi, X)
    iterations = 0
    converged = True

    def root(target):
        nonlocal iterations, converged
        value, info = optimize.brentq(
            lambda t: generalised_q(t, yi, vi, X) - target,
            0.0,
            upper_bound,
            xtol=tol,
            rtol=4 * np.finfo(float).eps,
            maxiter=max_iterations,
            full_output=True,
            disp=False,
        )
        iterations += info.iterations
        converged = converged and info.converged
        return float(value)

    lower_bounded = upper_bounded = False
    if q_min < crit_lower:
        lower = upper = 0.0
        lower_bounded = upper_bounded = True
    else:
        if q_max > crit_lower:
            upper, upper_bounded = upper_bound, True
        else:
            upper = root(crit_lower)
        if q_max > crit_upper:
            lower = upper = upper_bound
            lower_bounded = upper_bounded = True
        elif q_min < crit_upper:
            lower, lower_bounded = 0.0, True
        else:
            lower = root(crit_upper)
    return Tau2Interval(lower, upper, lower_bounded, upper_bounded, converged, iterations)
