"""Observed reoffending against a predicted-risk column (an OGRS-like score) by arm, with exact
Poisson intervals (:func:`observed_expected`, :class:`ObservedExpectedResult`)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from rjtrial._checks import (
    TABLE,
    check_alpha,
    check_frame,
    groups,
    numeric,
    require_columns,
)
from rjtrial.errors import DataError

__all__ = ["ObservedExpectedResult", "observed_expected"]


# ----------------------------------------------------------------------------- observed vs expected
def _poisson_exact(x: int, expected: float, alpha: float) -> tuple[float, float, float]:
    """Exact CI of x/expected and two-sided p of ratio 1 (R ``poisson.test(x, expected)``)."""
    lower = 0.0 if x == 0 else stats.gamma.ppf(alpha / 2, x) / expected
    upper = stats.gamma.isf(alpha / 2, x + 1) / expected
    m = expected
    if x == m:
        return lower, upper, 1.0
    d = stats.poisson.pmf(x, m) * (1 + 1e-7)
    if x < m:
        n_max = math.ceil(2 * m - x)
        while stats.poisson.pmf(n_max, m) > d:
            n_max *= 2
        y = int(np.sum(stats.poisson.pmf(np.arange(math.ceil(m), n_max + 1), m) <= d))
        p = stats.poisson.cdf(x, m) + stats.poisson.sf(n_max - y, m)
    else:
        y = int(np.sum(stats.poisson.pmf(np.arange(0, math.floor(m) + 1), m) <= d))
        p = stats.poisson.cdf(y - 1, m) + stats.poisson.sf(x - 1, m)
    return float(lower), float(upper), float(min(1.0, p))


class ObservedExpectedResult:
    """Observed against expected reoffending per arm (from :func:`observed_expected`)."""

    def __init__(self, arms: pd.DataFrame, comparisons: pd.DataFrame, alpha: float):
        self._arms, self._comparisons, self.alpha = arms, comparisons, alpha

    def summary_frame(self) -> pd.DataFrame:
        """Per arm: ``group, n, observed, expected, observed_mean, expected_mean, estimate``
        (observed/expected), ``ci_lower, ci_upper`` (exact Poisson), ``p_value`` (exact test of
        a ratio of 1). ``attrs``: ``alpha``."""
        return self._arms.copy()

    def comparison_frame(self) -> pd.DataFrame:
        """Each arm against control: ``group, estimate`` (ratio of the O/E ratios), ``ci_lower,
        ci_upper, p_value`` (exact, conditional on the total observed). ``attrs``: ``alpha``."""
        return self._comparisons.copy()

    def __repr__(self) -> str:
        return f"<ObservedExpectedResult groups={self._arms['group'].tolist()!r}>"

    def __str__(self) -> str:
        fmt = lambda v: f"{v:.4g}"  # noqa: E731
        return "\n".join(
            [
                self._arms.set_index("group").to_string(float_format=fmt),
                self._comparisons.set_index("group").to_string(float_format=fmt),
            ]
        )


def observed_expected(
    df: pd.DataFrame, *, observed: str, expected: str, group: str, control=None, alpha: float = 0.05
) -> ObservedExpectedResult:
    """Observed reoffending against a predicted-risk column, by arm (observed/expected ratio).

    Parameters
    ----------
    df : pandas.DataFrame
    observed : str
        Observed outcome: 0/1 (reconvicted) or a count (non-negative whole numbers).
    expected : str
        The expected value of ``observed`` for each participant from a baseline risk score
        (e.g. the OGRS probability of reconviction within two years), non-negative.
    group : str
        Column of the arms.
    control : optional
        The reference arm of :meth:`ObservedExpectedResult.comparison_frame`.
    alpha : float
        Significance level of the intervals.

    Returns
    -------
    ObservedExpectedResult
        ``summary_frame()`` per arm and ``comparison_frame()`` between arms (columns listed there).

    Notes
    -----
    For an arm, O = Σ observed and E = Σ expected; the ratio O/E is an indirectly
    standardised ratio (as the Sheffield evaluation compared actual with OGRS-predicted
    reconviction). O is treated as Poisson with mean (O/E)·E and E as fixed: the interval is
    the exact (Garwood) one and the p-value the exact test of O/E = 1, as R
    ``poisson.test(O, E)``. For 0/1 outcomes the Poisson is an approximation to a sum of
    Bernoulli trials, conservative when predicted risks are high. Arms are compared by the
    ratio of their O/E ratios with the exact conditional (binomial) interval and test, as R
    ``poisson.test(c(O_T, O_C), c(E_T, E_C))``. The uncertainty of the risk score itself is
    ignored.
    """
    df = check_frame(df)
    alpha = check_alpha(alpha)
    require_columns(df, observed=observed, expected=expected, group=group)
    o = numeric(df, observed, role="observed", nonnegative=True, integer=True)
    e = numeric(df, expected, role="expected", nonnegative=True)
    levels, codes = groups(df, group, control=control)
    rows = []
    for k, level in enumerate(levels):
        ok, ek, nk = int(o[codes == k].sum()), float(e[codes == k].sum()), int((codes == k).sum())
        if ek <= 0:
            raise DataError(f"expected sums to 0 in arm {level!r}", table=TABLE, column=expected)
        lower, upper, p = _poisson_exact(ok, ek, alpha)
        rows.append(
            {
                "group": level,
                "n": nk,
                "observed": ok,
                "expected": ek,
                "observed_mean": ok / nk,
                "expected_mean": ek / nk,
                "estimate": ok / ek,
                "ci_lower": lower,
                "ci_upper": upper,
                "p_value": p,
            }
        )
    arms = pd.DataFrame(rows)
    comparisons = []
    oc, ec = arms.loc[0, "observed"], arms.loc[0, "expected"]
    for k in range(1, len(levels)):
        ot, et = arms.loc[k, "observed"], arms.loc[k, "expected"]
        if ot + oc == 0:
            est = lower = upper = p = np.nan
        else:
            test = stats.binomtest(int(ot), int(ot + oc), et / (et + ec))
            ci = test.proportion_ci(confidence_level=1 - alpha, method="exact")
            with np.errstate(divide="ignore"):
                lower = ci.low / (1 - ci.low) * ec / et
                upper = ci.high / (1 - ci.high) * ec / et if ci.high < 1 else np.inf
                est = (ot / et) / (oc / ec) if oc > 0 else np.inf
            p = test.pvalue
        comparisons.append({"group": levels[k], "estimate": est, "ci_lower": lower, "ci_upper": upper, "p_value": p})
    comparisons = pd.DataFrame(comparisons)
    for table in (arms, comparisons):
        table.attrs.update(alpha=alpha, control=levels[0])
    return ObservedExpectedResult(arms, comparisons, alpha)
