"""Fixed-effect pooling from the 2x2 (or rate) tables: Mantel-Haenszel and Peto.

Follows R ``metafor::rma.mh`` and ``rma.peto`` (3.8) with their defaults: the pooled
estimate uses the counts as they are (no zero-cell correction); the heterogeneity Q uses the
study estimates (``estimate``, ``variance`` of the effects frame: R's ``escalc`` with
``add=1/2, to="only0"``) and leaves out tables without events in either arm (or with only
events), as ``drop00=TRUE`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from rjtrial.meta._data import MetaData

MH_MEASURES = ("log_odds_ratio", "log_risk_ratio", "risk_difference", "log_incidence_rate_ratio")
PETO_MEASURES = ("log_odds_ratio", "peto_log_odds_ratio")


@dataclass(frozen=True, eq=False)
class TableFit:
    """Pooled estimate from the tables, the study rows used for Q, and the weights."""

    estimate: float
    std_error: float
    yi: np.ndarray  # per study, NaN where left out of Q
    vi: np.ndarray
    weights: np.ndarray  # raw MH or Peto weights, per study
    k: int


def _double_zero(counts, measure: str) -> np.ndarray:
    if measure == "log_incidence_rate_ratio":
        return (counts["events_treatment"].to_numpy() == 0) & (counts["events_control"].to_numpy() == 0)
    a = counts["events_treatment"].to_numpy()
    c = counts["events_control"].to_numpy()
    b = counts["n_treatment"].to_numpy() - a
    d = counts["n_control"].to_numpy() - c
    return ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))


def _require_counts(data: MetaData, method: str, allowed: tuple[str, ...]) -> tuple[pd.DataFrame, str]:
    """The count columns and the measure of ``data``, checked for ``method``."""
    if data.X.shape[1] > 1:
        raise ValueError(
            f"method={method!r} pools without moderators; use an inverse-variance method for meta-regression"
        )
    if data.measure is None or data.measure not in allowed:
        raise ValueError(
            f"method={method!r} needs effects with measure in {', '.join(allowed)} "
            f"(from rjtrial.effects), got {data.measure!r}"
        )
    if data.counts is None:
        raise ValueError(
            f"method={method!r} needs the count columns that rjtrial.effects adds "
            "(events_treatment, n_treatment, events_control, n_control)"
        )
    return data.counts, data.measure


def mantel_haenszel(data: MetaData) -> TableFit:
    """Mantel-Haenszel pooled log OR, log RR, RD or log IRR.

    Notes
    -----
    OR: ``R = sum a d / N``, ``S = sum b c / N``, log OR = log(R / S), SE by Robins, Breslow
    & Greenland (1986). RR: ``log(sum a n2 / N / sum c n1 / N)`` with Greenland & Robins'
    (1985) SE; RD: ``sum (a n2 - c n1) / N / sum n1 n2 / N`` with Sato's SE; IRR:
    ``log(sum x1 t2 / T / sum x2 t1 / T)``. Weights (percent in the result) are metafor's
    ``weights(rma.mh)``: b c / N, c n1 / N, n1 n2 / N, x2 t1 / T. Agrees with R ``rma.mh`` to
    1e-12 (tests/validation/).

    References
    ----------
    Robins, J., Breslow, N., & Greenland, S. (1986). Estimators of the Mantel-Haenszel
    variance consistent in both sparse data and large-strata limiting models. Biometrics,
    42(2), 311-323. doi:10.2307/2531052
    """
    counts, measure = _require_counts(data, "MH", MH_MEASURES)
    if measure == "log_incidence_rate_ratio":
        x1 = counts["events_treatment"].to_numpy()
        t1 = counts["person_time_treatment"].to_numpy()
        x2 = counts["events_control"].to_numpy()
        t2 = counts["person_time_control"].to_numpy()
        T = t1 + t2
        R, S = np.sum(x1 * t2 / T), np.sum(x2 * t1 / T)
        if R == 0 or S == 0:
            raise ValueError("Mantel-Haenszel rate ratio undefined: no events in one arm of every study")
        estimate = np.log(R / S)
        se = np.sqrt(np.sum((t1 / T) * (t2 / T) * (x1 + x2)) / (R * S))
        weights = x2 * t1 / T
    else:
        a = counts["events_treatment"].to_numpy()
        n1 = counts["n_treatment"].to_numpy()
        c = counts["events_control"].to_numpy()
        n2 = counts["n_control"].to_numpy()
        b, d = n1 - a, n2 - c
        N = n1 + n2
        if measure == "log_odds_ratio":
            Ri, Si = a * d / N, b * c / N
            Pi, Qi = (a + d) / N, (b + c) / N
            R, S = Ri.sum(), Si.sum()
            if R == 0 or S == 0:
                raise ValueError("Mantel-Haenszel odds ratio undefined (sum of a d / N or b c / N is 0)")
            estimate = np.log(R / S)
            se = np.sqrt(0.5 * (np.sum(Pi * Ri) / R**2 + np.sum(Pi * Si + Qi * Ri) / (R * S) + np.sum(Qi * Si) / S**2))
            weights = b * c / N
        elif measure == "log_risk_ratio":
            R, S = np.sum(a * n2 / N), np.sum(c * n1 / N)
            if a.sum() == 0 or c.sum() == 0:
                raise ValueError("Mantel-Haenszel risk ratio undefined: no events in one arm of every study")
            estimate = np.log(R / S)
            se = np.sqrt(np.sum((n1 / N) * (n2 / N) * (a + c) - (a / N) * c) / (R * S))
            weights = c * n1 / N
        else:  # risk difference
            total = np.sum(n1 * n2 / N)
            estimate = np.sum(a * n2 / N - c * n1 / N) / total
            se = np.sqrt(
                (
                    estimate * np.sum(c * (n1 / N) ** 2 - a * (n2 / N) ** 2 + (n1 / N) * (n2 / N) * (n2 - n1) / 2)
                    + np.sum(a * (n2 - c) / N + c * (n1 - a) / N) / 2
                )
                / total**2
            )
            weights = n1 * n2 / N
    keep = ~_double_zero(counts, measure) & np.isfinite(data.yi) & np.isfinite(data.vi)
    yi = np.where(keep, data.yi, np.nan)
    vi = np.where(keep, data.vi, np.nan)
    return TableFit(float(estimate), float(se), yi, vi, weights.astype(float), len(weights))


def peto(data: MetaData) -> TableFit:
    """Peto's one-step pooled log odds ratio: sum(O - E) / sum(V), SE 1 / sqrt(sum V).

    Notes
    -----
    Study rows for Q are (O - E) / V and 1 / V (tables with V = 0 left out);
    Q = sum (O - E)^2 / V - (sum (O - E))^2 / sum V. Weights are V. Agrees with R
    ``rma.peto`` to 1e-12 (tests/validation/test_metafor_collins1985a.py).
    """
    counts, _ = _require_counts(data, "Peto", PETO_MEASURES)
    a = counts["events_treatment"].to_numpy()
    n1 = counts["n_treatment"].to_numpy()
    c = counts["events_control"].to_numpy()
    n2 = counts["n_control"].to_numpy()
    N = n1 + n2
    events, non_events = a + c, N - a - c
    with np.errstate(divide="ignore", invalid="ignore"):
        E = events * n1 / N
        V = np.where(N > 1, events * non_events * (n1 / N) * (n2 / N) / (N - 1), 0.0)
    if V.sum() == 0:
        raise ValueError("Peto's method undefined: one of the two outcomes never occurs in any table")
    estimate = np.sum(a - E) / V.sum()
    se = 1 / np.sqrt(V.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        yi = np.where(V > 0, (a - E) / V, np.nan)
        vi = np.where(V > 0, 1 / V, np.nan)
    return TableFit(float(estimate), float(se), yi, vi, V.astype(float), len(V))


def q_about(fit: TableFit) -> tuple[float, int, float]:
    """Q of the study estimates about the pooled one, with weights 1 / v, and its df and p."""
    keep = np.isfinite(fit.yi)
    k_yi = int(keep.sum())
    if k_yi <= 1:
        return 0.0, max(k_yi - 1, 0), 1.0
    q = max(0.0, float(np.sum((fit.yi[keep] - fit.estimate) ** 2 / fit.vi[keep])))
    return q, k_yi - 1, float(stats.chi2.sf(q, k_yi - 1))
