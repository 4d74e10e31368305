"""Harrell's concordance of a Cox fit, counted as R ``survival`` counts it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from rjtrial.survival.cox import CoxResult


@dataclass(frozen=True)
class ConcordanceResult:
    """Harrell's C and the pair counts behind it.

    Attributes
    ----------
    concordance : float
        ``(concordant + tied_risk / 2) / (concordant + discordant + tied_risk)``.
    concordant, discordant : int
        Comparable pairs in which the member with the event has the higher / lower risk
        score.
    tied_risk : int
        Comparable pairs with equal risk scores (R ``tied.x``).
    tied_time : int
        Pairs of events at the same time (and stratum) with different risk scores
        (R ``tied.y``); not comparable.
    tied_both : int
        Pairs of events at the same time with equal risk scores (R ``tied.xy``).
    variance, std_error : float
        Infinitesimal-jackknife variance of the concordance and its square root, as R
        ``concordance(fit)$var`` (clustered when the fit had ``cluster``).
    """

    concordance: float
    concordant: int
    discordant: int
    tied_risk: int
    tied_time: int
    tied_both: int
    variance: float = float("nan")
    std_error: float = float("nan")


def _count_lower_before(point_pos, point_val, query_pos, query_val):
    """For each query: points with ``pos < query_pos`` and ``val <`` / ``<= query_val``.

    ``val`` are integer ranks. Bottom-up merge counting, vectorised over blocks:
    O(N log^2 N) in numpy, about two seconds for a million rows.
    """
    n_p, n_q = len(point_pos), len(query_pos)
    lt = np.zeros(n_q, dtype=np.int64)
    le = np.zeros(n_q, dtype=np.int64)
    if n_p == 0 or n_q == 0:
        return lt, le
    key = np.concatenate([2 * np.asarray(point_pos, np.int64) + 1, 2 * np.asarray(query_pos, np.int64)])
    code = np.concatenate([2 * np.asarray(point_val, np.int64), 2 * np.asarray(query_val, np.int64)])
    seq = np.argsort(key, kind="stable")  # element at each slot of the sequence
    is_query = seq >= n_p
    code = code[seq]
    query_id = seq - n_p
    big = int(code.max()) + 3
    N = len(seq)
    arr = np.arange(N)  # slot contents, sorted by code within blocks of width w
    slots = np.arange(N)
    w = 1
    while w < N:
        pair = slots // (2 * w)
        right = (slots // w) % 2 == 1
        e = arr
        left_points = ~right & ~is_query[e]
        lkeys = pair[left_points] * big + code[e[left_points]]
        rq = right & is_query[e]
        if rq.any() and lkeys.size:
            base = pair[rq] * big
            qc = code[e[rq]]
            start = np.searchsorted(lkeys, base, side="left")
            ids = query_id[e[rq]]
            lt[ids] += np.searchsorted(lkeys, base + qc, side="left") - start
            le[ids] += np.searchsorted(lkeys, base + qc + 1, side="left") - start
        arr = e[np.argsort(pair * big + code[e], kind="stable")]
        w *= 2
    return lt, le


def concordance_counts(stop, event, risk_score, *, start=None, strata=None, cluster=None) -> ConcordanceResult:
    """Concordance of ``risk_score`` (higher = earlier event) with survival data.

    A pair is comparable when one member has an event at ``t`` while the other is at risk
    at ``t`` (``start < t <= stop``, same stratum) and has no event at ``t``; a member
    censored at ``t`` counts as still at risk, as in R ``concordancefit``.
    """
    stop = np.asarray(stop, dtype=float)
    event = np.asarray(event, dtype=bool)
    n = len(stop)
    strata = np.zeros(n, dtype=np.int64) if strata is None else np.asarray(strata, dtype=np.int64)
    _, val = np.unique(np.asarray(risk_score, dtype=float), return_inverse=True)
    times = stop if start is None else np.concatenate([stop, np.asarray(start, dtype=float)])
    _, trank = np.unique(times, return_inverse=True)
    R = int(trank.max()) + 1
    stop_rank = trank[:n]
    deaths = np.flatnonzero(event)
    qs, qt, qv = strata[deaths], stop_rank[deaths], val[deaths]

    def window_counts(time_rank):
        # rows of the same stratum with time >= t, ordered by (stratum, time descending)
        composite = strata * (R + 1) + (R - time_rank)
        order = np.argsort(composite, kind="stable")
        pos = np.empty(n, dtype=np.int64)
        pos[order] = np.arange(n)
        sorted_comp = composite[order]
        begin = np.searchsorted(sorted_comp, qs * (R + 1), side="left")
        end = np.searchsorted(sorted_comp, qs * (R + 1) + (R - qt), side="right")
        lt, le = _count_lower_before(pos, val, np.concatenate([end, begin]), np.concatenate([qv, qv]))
        m = len(deaths)
        return lt[:m] - lt[m:], le[:m] - le[m:], end - begin

    less, less_eq, total = window_counts(stop_rank)
    if start is not None:  # minus rows that have not entered yet (start >= t)
        l2, le2, t2 = window_counts(trank[n:])
        less, less_eq, total = less - l2, less_eq - le2, total - t2

    # events tied in time (same stratum): not comparable
    order = np.lexsort((qv, qt, qs))
    gs, gt, gv = qs[order], qt[order], qv[order]
    new_group = np.concatenate([[True], (gs[1:] != gs[:-1]) | (gt[1:] != gt[:-1])])
    group = np.cumsum(new_group) - 1
    group_start = np.flatnonzero(new_group)
    group_size = np.diff(np.concatenate([group_start, [len(order)]]))
    key = group * (int(qv.max(initial=0)) + 2) + gv
    tied_less = np.searchsorted(key, key, side="left") - group_start[group]
    tied_less_eq = np.searchsorted(key, key, side="right") - group_start[group]
    t_less = np.empty_like(tied_less)
    t_less_eq = np.empty_like(tied_less_eq)
    t_less[order] = tied_less
    t_less_eq[order] = tied_less_eq
    n_tied = np.empty_like(group_size[group])
    n_tied[order] = group_size[group]

    less = less - t_less
    less_eq = less_eq - t_less_eq
    total = total - n_tied
    concordant = int(less.sum())
    tied_risk = int((less_eq - less).sum())
    discordant = int((total - less_eq).sum())
    pairs_tied_time = int((group_size * (group_size - 1) // 2).sum())
    same_val = np.concatenate([[True], np.diff(key) != 0])
    run = np.diff(np.concatenate([np.flatnonzero(same_val), [len(key)]]))
    tied_both = int((run * (run - 1) // 2).sum())
    denominator = concordant + discordant + tied_risk
    c = (concordant + tied_risk / 2) / denominator if denominator else float("nan")

    # the variance: each row's share of concordant, discordant and tied pairs, as the event
    # and as the one at risk (R concordance3's "influence"), then the infinitesimal jackknife
    conc = np.zeros(n)
    disc = np.zeros(n)
    tied = np.zeros(n)
    np.add.at(conc, deaths, less)
    np.add.at(disc, deaths, total - less_eq)
    np.add.at(tied, deaths, less_eq - less)
    m_lt, m_le, m_total = _member_counts(strata, stop_rank, None if start is None else trank[n:], event, val, deaths, R)
    conc += m_total - m_le  # the event's score is above this row's
    disc += m_lt
    tied += m_le - m_lt
    variance = float("nan")
    if denominator:
        somers = (concordant - discordant) / denominator
        dfbeta = ((conc - disc) - (conc + disc + tied) * somers) / (2 * denominator)
        if cluster is not None:
            codes = pd.factorize(np.asarray(cluster), sort=True)[0]
            dfbeta = np.asarray(np.bincount(codes, weights=dfbeta), dtype=float)
        variance = float(np.sum(dfbeta**2))
    return ConcordanceResult(
        c, concordant, discordant, tied_risk, pairs_tied_time - tied_both, tied_both, variance, float(np.sqrt(variance))
    )


def _member_counts(strata, stop_rank, start_rank, event, val, deaths, R):
    """For each row as the one at risk: events comparable with it whose score is below /
    at most its own, and all of them.

    Row ``j`` is compared with the events of its stratum at times ``t`` in
    ``(start_j, stop_j]`` -- ``(start_j, stop_j)`` when ``j`` itself has an event at
    ``stop_j``, as tied events are not compared.
    """
    key = strata[deaths] * (R + 1) + stop_rank[deaths]
    order = np.argsort(key, kind="stable")
    pos = np.empty(len(deaths), dtype=np.int64)
    pos[order] = np.arange(len(deaths))
    ordered = key[order]
    base = strata * (R + 1)
    upper = np.where(
        event,
        np.searchsorted(ordered, base + stop_rank, side="left"),
        np.searchsorted(ordered, base + stop_rank, side="right"),
    )
    if start_rank is None:
        lower = np.searchsorted(ordered, base, side="left")
    else:
        lower = np.searchsorted(ordered, base + start_rank, side="right")
    n = len(strata)
    lt, le = _count_lower_before(pos, val[deaths], np.concatenate([upper, lower]), np.concatenate([val, val]))
    return lt[:n] - lt[n:], le[:n] - le[n:], upper - lower


def concordance(fit: "CoxResult") -> ConcordanceResult:
    """Harrell's C of a Cox fit's linear predictor, as R ``coxph``'s ``concordance``.

    Parameters
    ----------
    fit : CoxResult

    Returns
    -------
    ConcordanceResult
        ``concordance`` and the pair counts ``concordant, discordant, tied_risk,
        tied_time, tied_both`` (R's ``concordant, discordant, tied.x, tied.y, tied.xy``).

    Notes
    -----
    For each event at time ``t`` every other row of the same stratum at risk at ``t``
    without an event at ``t`` is compared; the pair is concordant when the event has the
    higher linear predictor. Rows censored at ``t`` are at risk; events tied at ``t`` are
    not compared. This is R ``concordancefit(y, lp, strata, reverse = TRUE, timewt = "n")``
    as called by ``coxph``, and agrees with ``fit$concordance`` exactly (integer counts) on
    the Rossi data and the generated trial, counting-process data included. Rows with equal
    covariates get exactly equal linear predictors (:func:`tie_exact_linear_predictor`), so
    ties in the risk score are R's ties, not floating-point noise.

    References
    ----------
    Harrell, F. E., Lee, K. L., & Mark, D. B. (1996). Multivariable prognostic models.
    Statistics in Medicine, 15(4), 361–387.
    doi:10.1002/(SICI)1097-0258(19960229)15:4<361::AID-SIM168>3.0.CO;2-4

    Examples
    --------
    >>> from lifelines.datasets import load_rossi
    >>> from rjtrial.survival import cox
    >>> fit = cox(load_rossi(), "fin + age + race + wexp + mar + paro + prio", time="week", event="arrest")
    >>> round(fit.concordance().concordance, 4)
    0.6403
    """
    risk = fit._risk
    lp = tie_exact_linear_predictor(risk.X, fit.estimable_params_.to_numpy())
    return concordance_counts(
        risk.stop, risk.event, lp, start=risk.start, strata=risk.strata, cluster=fit._cluster_codes
    )


def tie_exact_linear_predictor(X: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """``X @ beta`` with exactly equal values for rows with equal covariates.

    ``X @ beta`` through BLAS may give two identical rows linear predictors that differ in
    the last bit (rows fall in different SIMD lanes or blocks), so pairs that R counts as
    tied in the risk score would count as concordant or discordant. Computing the
    predictor once per distinct covariate row makes ties exact, whatever the BLAS.
    """
    if X.shape[1] == 0:
        return np.zeros(X.shape[0])
    unique_rows, inverse = np.unique(X, axis=0, return_inverse=True)
    return (unique_rows @ beta)[np.ravel(inverse)]
