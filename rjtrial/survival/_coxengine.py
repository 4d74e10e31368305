"""Exact Cox partial-likelihood numerics (Efron and Breslow ties, strata, (start, stop] data).

This is rjtrial's own numerical core for the Cox model. lifelines fits the model
(:mod:`rjtrial.survival.cox` starts from its estimate); this module polishes the estimate
with Newton steps, and gives what lifelines does not give, or gives differently from R:

* the log-likelihood, score vector and information matrix at any ``beta`` (for the score
  test at zero, the final information matrix and the Newton polish);
* score residuals with Efron's tie correction distributed as in R's ``coxscore2`` /
  ``agscore3`` (lifelines ignores ties here, which is why its cluster-robust variance
  differs from R's by about 1e-3 relative on tied data);
* information matrices weighted by a function of time, for R's ``cox.zph``.

Notation, per stratum. Event times ``t_k`` with ``d_k`` tied events ``D_k``; the risk set
is ``{i: start_i < t_k <= stop_i}``; ``r_i = exp(x_i'beta)``. Efron replaces the risk-set
sums at ``t_k`` by, for ``l = 0..d_k-1``, ``S_l = S - (l/d_k) S_D`` (Breslow: ``l/d_k := 0``).
Each event row ``e`` of the data is given one ``l``; then

    loglik = sum_events x'beta - sum_e log S0_e
    U      = sum_events x      - sum_e S1_e / S0_e
    I      = sum_e S2_e / S0_e - M'M,    M_e = S1_e / S0_e.

``sum_e S2_e / S0_e`` is formed without n x p x p arrays as ``X' diag(w) X`` with
``w_i = r_i (sum over event times at which i is at risk of sum_l 1/S0_l)
- r_i [i is an event] sum_l (l/d)/S0_l``. Covariates are centred first (as R does), which
changes neither ``beta`` nor the residuals and keeps the sums well conditioned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class _Stratum:
    """One stratum, its rows sorted by stop time; local positions refer to that order."""

    rows: np.ndarray  # positions in the full data of the sorted rows
    X: np.ndarray  # centred covariates of the sorted rows
    stop: np.ndarray  # sorted stop times
    start_order: np.ndarray | None  # local positions sorted by start (counting-process data)
    start_sorted: np.ndarray | None
    event_times: np.ndarray  # unique event times t_k, ascending
    at_stop: np.ndarray  # first local position with stop >= t_k
    at_start: np.ndarray | None  # first position (in start order) with start >= t_k
    event_rows: np.ndarray  # local positions of event rows (ascending, so grouped by k)
    event_k: np.ndarray  # k of each event row
    event_frac: np.ndarray  # l/d of each event row (Efron)
    group_first: np.ndarray  # index into event_rows of the first event at each t_k
    n_tied: np.ndarray  # d_k
    stop_k: np.ndarray  # per local row: number of event times <= stop
    start_k: np.ndarray  # per local row: number of event times <= start (0 for right-censored)


def _rev_cumsum_at(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``values[at[k]:].sum(axis=0)`` for each ``k``; ``at`` ascending, ``0 <= at[k] <= len(values)``.

    Equal positions in ``at`` (no row starts between two event times, which real
    counting-process data have all the time) and ``at[k] == len(values)`` (nobody left)
    both give the right suffix sum. ``np.add.reduceat`` must not be used here: for two
    equal indices it returns ``values[at[k]]`` instead of an empty sum.
    """
    suffix = np.zeros((len(values) + 1,) + values.shape[1:], dtype=float)
    suffix[:-1] = np.cumsum(values[::-1], axis=0)[::-1]
    return suffix[at]


class RiskSets:
    """Sorted risk-set structure of a (possibly stratified, counting-process) survival data set.

    Parameters
    ----------
    X : (n, p) array of covariates
    stop : (n,) times (end of interval, or the event/censoring time)
    event : (n,) bool
    start : (n,) start of interval, or None for right-censored data
    strata : (n,) integer stratum codes, or None
    """

    def __init__(self, X, stop, event, *, start=None, strata=None):
        X = np.asarray(X, dtype=float)
        if X.ndim != 2:
            raise ValueError("X must be two-dimensional")
        self.n, self.p = X.shape
        self.center = X.mean(axis=0) if self.n else np.zeros(self.p)
        self.X = X - self.center
        self.stop = np.asarray(stop, dtype=float)
        self.event = np.asarray(event, dtype=bool)
        self.start = None if start is None else np.asarray(start, dtype=float)
        self.strata = np.zeros(self.n, dtype=np.int64) if strata is None else np.asarray(strata, dtype=np.int64)
        if len(np.unique(self.strata)) == 1:
            groups = [np.arange(self.n)]
        else:
            order = np.argsort(self.strata, kind="stable")
            cuts = np.flatnonzero(np.diff(self.strata[order])) + 1
            groups = np.split(order, cuts)
        self.strata_ = [self._build(rows) for rows in groups]
        self.n_events = int(self.event.sum())

    def _build(self, rows: np.ndarray) -> _Stratum:
        order = np.argsort(self.stop[rows], kind="stable")
        rows = rows[order]
        stop = self.stop[rows]
        event = self.event[rows]
        event_rows = np.flatnonzero(event)
        event_times, event_k, n_tied = np.unique(stop[event_rows], return_inverse=True, return_counts=True)
        group_first = np.concatenate([[0], np.cumsum(n_tied)[:-1]]).astype(np.int64)
        event_frac = (np.arange(len(event_rows)) - group_first[event_k]) / n_tied[event_k]
        at_stop = np.searchsorted(stop, event_times, side="left")
        stop_k = np.searchsorted(event_times, stop, side="right")
        start_order: np.ndarray | None
        start_sorted: np.ndarray | None
        at_start: np.ndarray | None
        if self.start is not None:
            start = self.start[rows]
            start_order = np.argsort(start, kind="stable")
            start_sorted = start[start_order]
            at_start = np.searchsorted(start_sorted, event_times, side="left")
            start_k = np.searchsorted(event_times, start, side="right")
        else:
            start_order = start_sorted = at_start = None
            start_k = np.zeros(len(rows), dtype=np.int64)
        return _Stratum(
            rows,
            self.X[rows],
            stop,
            start_order,
            start_sorted,
            event_times,
            at_stop,
            at_start,
            event_rows,
            event_k,
            event_frac,
            group_first,
            n_tied,
            stop_k,
            start_k,
        )

    # ------------------------------------------------------------------ risk-set sums
    def _sums(self, st: _Stratum, r: np.ndarray, ties: str):
        """Per event row e: S0_e, S1_e (Efron-adjusted risk-set sums at its time)."""
        X = st.X
        rx = X * r[:, None]
        both = np.empty((len(r), self.p + 1))
        both[:, 0] = r
        both[:, 1:] = rx
        S = _rev_cumsum_at(both, st.at_stop)
        if st.start_order is not None and st.at_start is not None:  # minus rows not yet entered (start >= t_k)
            S -= _rev_cumsum_at(both[st.start_order], st.at_start)
        S_e = S[st.event_k]
        if ties == "efron":
            S_D = np.add.reduceat(both[st.event_rows], st.group_first, axis=0)
            S_e = S_e - st.event_frac[:, None] * S_D[st.event_k]
        return S_e[:, 0], S_e[:, 1:]

    def _frac(self, st: _Stratum, ties: str) -> np.ndarray:
        return st.event_frac if ties == "efron" else np.zeros(len(st.event_rows))

    # ------------------------------------------------------------------ likelihood
    def loglik(self, beta, ties: str = "efron", *, derivatives: bool = True, time_weight=None):
        """Log partial likelihood, score vector and information matrix at ``beta``.

        ``time_weight``: optional array-valued function of event times, ``g(t)``; when
        given, also returns (as a dict) the information matrices weighted by ``g`` and
        ``g**2`` and the score ``sum_e g(t_e) (x_e - M_e)``, which R's ``cox.zph`` needs.
        """
        beta = np.asarray(beta, dtype=float)
        ll = 0.0
        U = np.zeros(self.p)
        I = np.zeros((self.p, self.p))
        extra = None
        if time_weight is not None:
            extra = {"I_g": np.zeros((self.p, self.p)), "I_gg": np.zeros((self.p, self.p)), "U_g": np.zeros(self.p)}
        for st in self.strata_:
            if len(st.event_rows) == 0:
                continue
            X = st.X
            eta = X @ beta
            shift = eta.max()
            r = np.exp(eta - shift)
            S0_e, S1_e = self._sums(st, r, ties)
            ev = st.event_rows
            ll += eta[ev].sum() - np.log(S0_e).sum() - shift * len(ev)
            if not derivatives:
                continue
            M = S1_e / S0_e[:, None]
            Xev = X[ev]
            U += Xev.sum(axis=0) - M.sum(axis=0)
            frac = self._frac(st, ties)
            K = len(st.event_times)

            def weighted_info(wk):
                we = wk[st.event_k]
                a = np.bincount(st.event_k, weights=we / S0_e, minlength=K)
                b = np.bincount(st.event_k, weights=we * frac / S0_e, minlength=K)
                A = np.concatenate([[0.0], np.cumsum(a)])
                w = r * (A[st.stop_k] - A[st.start_k])
                w[ev] -= r[ev] * b[st.event_k]
                return (X * w[:, None]).T @ X - (M * we[:, None]).T @ M

            I += weighted_info(np.ones(K))
            if extra is not None:
                g = np.asarray(time_weight(st.event_times), dtype=float)
                extra["I_g"] += weighted_info(g)
                extra["I_gg"] += weighted_info(g * g)
                extra["U_g"] += ((Xev - M) * g[st.event_k][:, None]).sum(axis=0)
        if not derivatives:
            return ll
        if extra is not None:
            return ll, U, I, extra
        return ll, U, I

    # ------------------------------------------------------------------ residuals
    def score_residuals(self, beta, ties: str = "efron") -> np.ndarray:
        """Score residuals (n, p) in the input row order, as R ``residuals(fit, type = "score")``.

        Row i: ``delta_i (x_i - mean_l xbar_l) - r_i sum_{k at risk} sum_l c_il (x_i - xbar_kl)/S0_kl``
        with ``c_il = 1`` for rows not failing at ``t_k`` and ``1 - l/d_k`` for the tied
        events themselves (Efron; Breslow: ``c = 1``). The columns sum to the score vector.
        """
        beta = np.asarray(beta, dtype=float)
        out = np.zeros((self.n, self.p))
        for st in self.strata_:
            if len(st.event_rows) == 0:
                continue
            X = st.X
            eta = X @ beta
            r = np.exp(eta - eta.max())
            S0_e, S1_e = self._sums(st, r, ties)
            M = S1_e / S0_e[:, None]
            frac = self._frac(st, ties)
            ev = st.event_rows
            k = st.event_k
            first = st.group_first
            h = np.add.reduceat(1 / S0_e, first)
            g = np.add.reduceat(M / S0_e[:, None], first, axis=0)
            h2 = np.add.reduceat(frac / S0_e, first)
            g2 = np.add.reduceat(M * (frac / S0_e)[:, None], first, axis=0)
            mbar = np.add.reduceat(M, first, axis=0) / st.n_tied[:, None]
            H = np.concatenate([[0.0], np.cumsum(h)])
            G = np.vstack([np.zeros((1, self.p)), np.cumsum(g, axis=0)])
            Hi = H[st.stop_k] - H[st.start_k]
            Gi = G[st.stop_k] - G[st.start_k]
            res = -r[:, None] * (X * Hi[:, None] - Gi)
            res[ev] += (X[ev] - mbar[k]) + r[ev][:, None] * (X[ev] * h2[k][:, None] - g2[k])
            out[st.rows] = res
        return out

    def linear_predictor(self, beta) -> np.ndarray:
        """Centred linear predictor ``(x - mean x)'beta`` in input row order (R ``fit$linear.predictors``)."""
        return self.X @ np.asarray(beta, dtype=float)


class PartialLikelihood(Protocol):
    """What :func:`newton` maximises: :class:`RiskSets`, or the Fine-Gray engine's
    subdistribution risk sets."""

    p: int

    def loglik(self, beta: Any, ties: str = ..., *, derivatives: bool = ...) -> Any: ...


def newton(risk: PartialLikelihood, beta0, ties: str, *, max_iter: int = 50, tol: float = 1e-10):
    """Maximise the partial likelihood by Newton-Raphson with step halving (as R ``coxph``).

    Converged when the largest absolute Newton step taken is below ``tol`` or the
    log-likelihood changes by less than 1e-13 relative; each step is then a full Newton
    step from within the quadratic-convergence region, so ``beta`` is at the optimum to
    about machine precision (R's default ``eps = 1e-9`` stops about 2e-9 short on Rossi).
    Returns ``(beta, loglik, U, I, converged, n_iterations)``.
    """
    beta = np.array(beta0, dtype=float)
    ll, U, I = risk.loglik(beta, ties)
    if risk.p == 0:
        return beta, ll, U, I, True, 0
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        try:
            step = np.linalg.solve(I, U)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)):
            break
        t = 1.0
        while t >= 1e-8:
            new = beta + t * step
            ll_new, U_new, I_new = risk.loglik(new, ties)
            if np.isfinite(ll_new) and ll_new >= ll - 1e-12 * abs(ll):
                break
            t /= 2
        else:
            break
        change = abs(ll_new - ll)
        beta, ll, U, I = new, ll_new, U_new, I_new
        if np.max(np.abs(t * step)) < tol or change <= 1e-13 * abs(ll):
            converged = True
            break
    return beta, ll, U, I, converged, n_iter
