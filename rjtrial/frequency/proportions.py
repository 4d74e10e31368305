"""Any reoffence (a 0/1 column) by arm: risk ratio, risk difference and odds ratio with Wald
intervals (:func:`risk_ratio`, :func:`risk_difference`, :func:`odds_ratio`, and
:func:`compare_proportions` from counts; :class:`TwoByTwoResult`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rjtrial._checks import (
    binary,
    check_alpha,
    check_choice,
    check_frame,
    groups,
    require_columns,
    wald,
)

__all__ = ["TwoByTwoResult", "compare_proportions", "odds_ratio", "risk_difference", "risk_ratio"]

# ----------------------------------------------------------------------------- two-by-two
MEASURES = ("risk_ratio", "risk_difference", "odds_ratio")


@dataclass(frozen=True)
class TwoByTwoResult:
    """A risk ratio, risk difference or odds ratio of a binary outcome between two arms.

    ``estimate``, ``ci_lower`` and ``ci_upper`` are on the natural scale (a ratio, or a
    difference of proportions); ``std_error`` and ``statistic`` are on the scale of the
    Wald interval: the log scale for the two ratios (``scale = "log"``), the difference
    itself otherwise. ``correction`` is what was added to every cell (0 unless a cell
    was empty); ``risk_treatment`` and ``risk_control`` are the uncorrected proportions.
    """

    measure: str
    estimate: float
    std_error: float
    ci_lower: float
    ci_upper: float
    statistic: float
    p_value: float
    scale: str
    alpha: float
    events_treatment: int
    n_treatment: int
    events_control: int
    n_control: int
    treatment: object
    control: object
    correction: float

    @property
    def risk_treatment(self) -> float:
        return self.events_treatment / self.n_treatment

    @property
    def risk_control(self) -> float:
        return self.events_control / self.n_control

    def summary_frame(self) -> pd.DataFrame:
        """One row: ``measure, estimate, std_error, ci_lower, ci_upper, statistic, p_value,
        events_treatment, n_treatment, events_control, n_control``; ``attrs``: ``alpha``, ``scale``."""
        keys = [
            "measure",
            "estimate",
            "std_error",
            "ci_lower",
            "ci_upper",
            "statistic",
            "p_value",
            "events_treatment",
            "n_treatment",
            "events_control",
            "n_control",
        ]
        out = pd.DataFrame([{key: getattr(self, key) for key in keys}])
        out.attrs.update(alpha=self.alpha, scale=self.scale)
        return out


def compare_proportions(
    *,
    measure: str,
    events_treatment: int,
    n_treatment: int,
    events_control: int,
    n_control: int,
    alpha: float = 0.05,
    correction: float = 0.5,
    treatment="treatment",
    control="control",
) -> TwoByTwoResult:
    """Risk ratio, risk difference or odds ratio from the counts of a 2×2 table.

    Parameters
    ----------
    measure : {"risk_ratio", "risk_difference", "odds_ratio"}
    events_treatment, n_treatment, events_control, n_control : int
        Participants with the outcome, and all participants, in each arm.
    alpha : float
        Significance level of the Wald interval.
    correction : float
        Added to all four cells when any cell is 0 (none added otherwise), as R
        ``metafor::escalc(add = 1/2, to = "only0")`` does; 0 turns it off (then an empty
        cell gives a ratio of 0 or infinity with an infinite standard error).

    Returns
    -------
    TwoByTwoResult

    Notes
    -----
    With cells a, b (treatment: events, non-events), c, d (control), n1 = a + b,
    n2 = c + d, p1 = a/n1, p2 = c/n2 (after any correction):

    - risk ratio: log RR = log(p1/p2), SE² = 1/a − 1/n1 + 1/c − 1/n2;
    - odds ratio: log OR = log(ad/bc), SE² = 1/a + 1/b + 1/c + 1/d;
    - risk difference: RD = p1 − p2, SE² = p1(1 − p1)/n1 + p2(1 − p2)/n2.

    The interval is ``estimate ± z SE`` on the log scale for ratios (exponentiated) and on
    the difference scale for RD; the p-value is the two-sided Wald test. Agrees to 1e-12
    with R ``metafor::escalc(measure = "RR" | "OR" | "RD")`` (``yi``, ``vi``) and with the
    same formulas written out in R.

    Examples
    --------
    >>> r = compare_proportions(measure="risk_ratio", events_treatment=20, n_treatment=100,
    ...                         events_control=30, n_control=100)
    >>> round(r.estimate, 4), round(r.ci_lower, 4), round(r.ci_upper, 4)
    (0.6667, 0.4071, 1.0917)
    """
    measure = check_choice("measure", measure, MEASURES)
    alpha = check_alpha(alpha)
    counts = {
        "events_treatment": events_treatment,
        "n_treatment": n_treatment,
        "events_control": events_control,
        "n_control": n_control,
    }
    for key, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{key} must be a non-negative whole number, got {value!r}")
    if events_treatment > n_treatment or events_control > n_control or 0 in (n_treatment, n_control):
        raise ValueError(f"events must not exceed a positive n in each arm; got {counts}")
    if not (isinstance(correction, (int, float)) and correction >= 0):
        raise ValueError(f"correction must be a number >= 0, got {correction!r}")
    a, c = float(events_treatment), float(events_control)
    b, d = n_treatment - a, n_control - c
    added = float(correction) if min(a, b, c, d) == 0 else 0.0
    a, b, c, d = a + added, b + added, c + added, d + added
    n1, n2 = a + b, c + d
    p1, p2 = a / n1, c / n2
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "risk_ratio":
            est, var = np.log(p1) - np.log(p2), np.float64(1) / a - 1 / n1 + np.float64(1) / c - 1 / n2
        elif measure == "odds_ratio":
            est = np.log(a) + np.log(d) - np.log(b) - np.log(c)
            var = np.float64(1) / a + np.float64(1) / b + np.float64(1) / c + np.float64(1) / d
        else:
            est, var = np.float64(p1 - p2), np.float64(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
        se = np.sqrt(var)
        ratio = measure != "risk_difference"
        statistic, p_value, lower, upper = wald(est, se, alpha, exponentiate=ratio)
    return TwoByTwoResult(
        measure=measure,
        estimate=float(np.exp(est) if ratio else est),
        std_error=float(se),
        ci_lower=float(lower),
        ci_upper=float(upper),
        statistic=float(statistic),
        p_value=float(p_value),
        scale="log" if ratio else "difference",
        alpha=alpha,
        events_treatment=int(events_treatment),
        n_treatment=int(n_treatment),
        events_control=int(events_control),
        n_control=int(n_control),
        treatment=treatment,
        control=control,
        correction=added,
    )


def _from_frame(df, measure, outcome, group, control, alpha, correction) -> TwoByTwoResult:
    df = check_frame(df)
    require_columns(df, outcome=outcome, group=group)
    y = binary(df, outcome, role="outcome")
    levels, codes = groups(df, group, control=control, exactly_two=True)
    return compare_proportions(
        measure=measure,
        events_treatment=int(y[codes == 1].sum()),
        n_treatment=int((codes == 1).sum()),
        events_control=int(y[codes == 0].sum()),
        n_control=int((codes == 0).sum()),
        alpha=alpha,
        correction=correction,
        treatment=levels[1],
        control=levels[0],
    )


_TWO_BY_TWO_DOC = """{title} of a binary outcome (e.g. any reoffence) between two arms.

    Parameters
    ----------
    df : pandas.DataFrame
    outcome : str
        A 0/1 or boolean column (for any reoffence from a count, add ``df.reoffences > 0``).
    group : str
        Column of the two arms.
    control : optional
        The reference arm; by default the first level of ``group``.
    alpha : float
        Significance level of the Wald interval.
    correction : float
        Added to every cell of the 2×2 table when one is empty (metafor's ``to="only0"``).

    Returns
    -------
    TwoByTwoResult
        ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper``, ``statistic``, ``p_value``
        and the counts per arm; formulas in :func:`compare_proportions`.

    Notes
    -----
    Agrees with R ``metafor::escalc(measure = "{r}")`` and hand formulas to 1e-12.
    """


def risk_ratio(df, *, outcome: str, group: str, control=None, alpha: float = 0.05, correction: float = 0.5):
    return _from_frame(df, "risk_ratio", outcome, group, control, alpha, correction)


def risk_difference(df, *, outcome: str, group: str, control=None, alpha: float = 0.05, correction: float = 0.5):
    return _from_frame(df, "risk_difference", outcome, group, control, alpha, correction)


def odds_ratio(df, *, outcome: str, group: str, control=None, alpha: float = 0.05, correction: float = 0.5):
    return _from_frame(df, "odds_ratio", outcome, group, control, alpha, correction)


risk_ratio.__doc__ = _TWO_BY_TWO_DOC.format(title="Risk ratio", r="RR")
risk_difference.__doc__ = _TWO_BY_TWO_DOC.format(title="Risk difference", r="RD")
odds_ratio.__doc__ = _TWO_BY_TWO_DOC.format(title="Odds ratio", r="OR")
