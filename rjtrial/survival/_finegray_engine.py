"""Numerics of the Fine–Gray model: a Cox likelihood whose risk sets keep, with a weight, those
who failed from a competing cause.

Per stratum, rows sorted by time ``t_i`` with status 1 (the cause of interest), 2 (another
cause) or 0 (censored). At a time ``t_k`` with ``d_k`` events of the cause, the risk set is

* everyone with ``t_i >= t_k``, weight 1;
* everyone who failed from another cause before ``t_k``, weight ``G(t_k-) / G(t_i-)``,

``G`` being the Kaplan–Meier estimate of the censoring distribution. Its sums are
``S_k = R_k + G(t_k-) C_k``: ``R_k`` a suffix sum over rows with ``t_i >= t_k`` and ``C_k`` a
prefix sum of ``r_i / G(t_i-)`` over the competing failures before ``t_k`` -- so the
likelihood, score, information and residuals cost O(n p^2), as for the ordinary Cox model
(:mod:`rjtrial.survival._coxengine`, whose Newton–Raphson fits this model too).

Two conventions for ``G`` at tied times, one for each R route:

* ``"crr"`` (R ``cmprsk::crr``): the ordinary Kaplan–Meier of the censoring times, in which a
  failure at time ``t`` is still at risk of censoring at ``t``; evaluated at ``t (1 - 100 eps)``,
  i.e. ``G(t-)``, and ``G(0)`` at ``t = 0``, as crr's ``approx`` call does;
* ``"finegray"`` (R ``survival::finegray``): failures at ``t`` leave the censoring risk set
  just before the censorings at ``t`` (Geskus 2011, as finegray documents); ``G(t-)``.

They differ only when failures and censorings share a time. ``score_residuals`` gives the
per-row scores ``eta_i`` (R ``residuals.coxph(type = "score")`` on finegray's expanded rows,
weighted and summed by subject); ``censoring_residuals`` gives crr's ``psi_i``, the part
of a subject's influence that comes through the estimated ``G`` (Fine & Gray 1999, eq. 6;
crr's Fortran ``crrvv``, there an O(n^2) loop, here running sums).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_EPS = np.finfo(float).eps


def _suffix(values: np.ndarray) -> np.ndarray:
    """``out[m] = values[m:].sum(axis=0)``, with ``out[len] = 0``."""
    out = np.zeros((len(values) + 1,) + values.shape[1:])
    out[:-1] = np.cumsum(values[::-1], axis=0)[::-1]
    return out


def _prefix(values: np.ndarray) -> np.ndarray:
    """``out[m] = values[:m].sum(axis=0)``, with ``out[0] = 0``."""
    out = np.zeros((len(values) + 1,) + values.shape[1:])
    out[1:] = np.cumsum(values, axis=0)
    return out


def censoring_survival(time: np.ndarray, status: np.ndarray, convention: str) -> np.ndarray:
    """``G(t_i-)`` for every row (any order) under ``convention`` ("crr" or "finegray")."""
    u, inverse = np.unique(time, return_inverse=True)
    count = np.bincount(inverse, minlength=len(u)).astype(float)
    censored = np.bincount(inverse[status == 0], minlength=len(u)).astype(float)
    at_risk = np.cumsum(count[::-1])[::-1]
    if convention == "finegray":
        failed = np.bincount(inverse[status > 0], minlength=len(u)).astype(float)
        at_risk = at_risk - failed
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(at_risk > 0, 1.0 - censored / at_risk, 1.0)
    G = np.concatenate([[1.0], np.cumprod(factor)])  # G[m] = after the first m distinct times
    if convention == "crr":
        where = np.searchsorted(u, time * (1 - 100 * _EPS), side="right")
    else:
        where = np.searchsorted(u, time, side="left")
    return G[where]


@dataclass(frozen=True)
class _Stratum:
    rows: np.ndarray  # positions in the input of the sorted rows
    X: np.ndarray  # centred covariates, sorted
    time: np.ndarray
    status: np.ndarray
    G_row: np.ndarray  # G(t_i-) per sorted row
    comp_w: np.ndarray  # 1/G(t_i-) for competing failures, else 0
    event_times: np.ndarray
    G_event: np.ndarray  # G(t_k-)
    at: np.ndarray  # first sorted row with time >= t_k
    n_tied: np.ndarray
    event_rows: np.ndarray
    event_k: np.ndarray
    event_frac: np.ndarray  # l / d_k (Efron)
    group_first: np.ndarray
    stop_k: np.ndarray  # per row: number of event times <= t_i


class SubdistributionRiskSets:
    """Sorted, weighted risk sets of competing-risks data for the cause coded 1.

    Parameters
    ----------
    X : (n, p) covariates
    time : (n,) times
    status : (n,) 0 censored, 1 the cause of interest, 2 another cause
    strata : (n,) integer codes, or None (separate ``G`` and baseline per stratum)
    convention : "crr" or "finegray" (how ``G`` treats ties, see the module docstring)
    """

    def __init__(self, X, time, status, *, strata=None, convention: str = "crr"):
        X = np.asarray(X, dtype=float)
        self.n, self.p = X.shape
        self.center = X.mean(axis=0) if self.n else np.zeros(self.p)
        self.X = X - self.center
        self.time = np.asarray(time, dtype=float)
        self.status = np.asarray(status, dtype=np.int64)
        self.convention = convention
        codes = np.zeros(self.n, dtype=np.int64) if strata is None else np.asarray(strata, dtype=np.int64)
        self.strata_ = [self._build(np.flatnonzero(codes == s)) for s in np.unique(codes)]
        self.n_events = int((self.status == 1).sum())

    def _build(self, rows: np.ndarray) -> _Stratum:
        rows = rows[np.argsort(self.time[rows], kind="stable")]
        t = self.time[rows]
        st = self.status[rows]
        G_row = censoring_survival(t, st, self.convention)
        comp_w = np.where(st == 2, 1.0 / G_row, 0.0)
        event_rows = np.flatnonzero(st == 1)
        event_times, event_k, n_tied = np.unique(t[event_rows], return_inverse=True, return_counts=True)
        at = np.searchsorted(t, event_times, side="left")
        G_event = G_row[at] if len(at) else np.zeros(0)
        group_first = np.concatenate([[0], np.cumsum(n_tied)[:-1]]).astype(np.int64)
        event_frac = (
            (np.arange(len(event_rows)) - group_first[event_k]) / n_tied[event_k] if len(event_rows) else np.zeros(0)
        )
        stop_k = np.searchsorted(event_times, t, side="right")
        return _Stratum(
            rows,
            self.X[rows],
            t,
            st,
            G_row,
            comp_w,
            event_times,
            G_event,
            at,
            n_tied,
            event_rows,
            event_k,
            event_frac,
            group_first,
            stop_k,
        )

    # ------------------------------------------------------------------ sums
    def _sums(self, st: _Stratum, r: np.ndarray, ties: str):
        """S0, S1 per event time (``S_k``) and per event row (Efron-adjusted)."""
        both = np.empty((len(r), self.p + 1))
        both[:, 0] = r
        both[:, 1:] = st.X * r[:, None]
        S_k = _suffix(both)[st.at] + st.G_event[:, None] * _prefix(both * st.comp_w[:, None])[st.at]
        S_e = S_k[st.event_k]
        if ties == "efron":
            D = np.add.reduceat(both[st.event_rows], st.group_first, axis=0)
            S_e = S_e - st.event_frac[:, None] * D[st.event_k]
        return S_k, S_e

    def _frac(self, st: _Stratum, ties: str) -> np.ndarray:
        return st.event_frac if ties == "efron" else np.zeros(len(st.event_rows))

    def loglik(self, beta, ties: str = "breslow", *, derivatives: bool = True):
        """Log pseudo-partial likelihood, score and information at ``beta``."""
        beta = np.asarray(beta, dtype=float)
        ll = 0.0
        U = np.zeros(self.p)
        I = np.zeros((self.p, self.p))
        for st in self.strata_:
            if len(st.event_rows) == 0:
                continue
            eta = st.X @ beta
            shift = eta.max()
            r = np.exp(eta - shift)
            _, S_e = self._sums(st, r, ties)
            S0 = S_e[:, 0]
            ev = st.event_rows
            ll += eta[ev].sum() - np.log(S0).sum() - shift * len(ev)
            if not derivatives:
                continue
            M = S_e[:, 1:] / S0[:, None]
            U += st.X[ev].sum(axis=0) - M.sum(axis=0)
            K = len(st.event_times)
            a = np.bincount(st.event_k, weights=1.0 / S0, minlength=K)
            b = np.bincount(st.event_k, weights=self._frac(st, ties) / S0, minlength=K)
            A = np.concatenate([[0.0], np.cumsum(a)])
            GA = np.concatenate([[0.0], np.cumsum(st.G_event * a)])
            w = r * (A[st.stop_k] + st.comp_w * (GA[-1] - GA[st.stop_k]))
            w[ev] -= r[ev] * b[st.event_k]
            I += (st.X * w[:, None]).T @ st.X - M.T @ M
        if not derivatives:
            return ll
        return ll, U, I

    # ------------------------------------------------------------------ residuals
    def score_residuals(self, beta, ties: str = "breslow") -> np.ndarray:
        """(n, p) score residuals ``eta_i`` in the input order; the columns sum to the score."""
        beta = np.asarray(beta, dtype=float)
        out = np.zeros((self.n, self.p))
        for st in self.strata_:
            if len(st.event_rows) == 0:
                continue
            X = st.X
            eta = X @ beta
            r = np.exp(eta - eta.max())
            _, S_e = self._sums(st, r, ties)
            S0 = S_e[:, 0]
            M = S_e[:, 1:] / S0[:, None]
            frac = self._frac(st, ties)
            ev, k, first = st.event_rows, st.event_k, st.group_first
            h = np.add.reduceat(1.0 / S0, first)
            g = np.add.reduceat(M / S0[:, None], first, axis=0)
            h2 = np.add.reduceat(frac / S0, first)
            g2 = np.add.reduceat(M * (frac / S0)[:, None], first, axis=0)
            mbar = np.add.reduceat(M, first, axis=0) / st.n_tied[:, None]
            H = np.concatenate([[0.0], np.cumsum(h)])
            Gs = np.vstack([np.zeros((1, self.p)), np.cumsum(g, axis=0)])
            GH = np.concatenate([[0.0], np.cumsum(st.G_event * h)])
            GG = np.vstack([np.zeros((1, self.p)), np.cumsum(st.G_event[:, None] * g, axis=0)])
            Hi = H[st.stop_k] + st.comp_w * (GH[-1] - GH[st.stop_k])
            Gi = Gs[st.stop_k] + st.comp_w[:, None] * (GG[-1] - GG[st.stop_k])
            res = -r[:, None] * (X * Hi[:, None] - Gi)
            res[ev] += (X[ev] - mbar[k]) + r[ev][:, None] * (X[ev] * h2[k][:, None] - g2[k])
            out[st.rows] = res
        return out

    def censoring_residuals(self, beta, *, square=np.square) -> np.ndarray:
        """(n, p) crr's ``psi_i`` (Breslow ties): the influence through the estimated ``G``.

        ``psi_i = integral q(u) / Y(u) dM^c_i(u)``, ``M^c_i`` the censoring martingale of row
        ``i``, ``Y(u)`` the number with time >= u and
        ``q(u) = sum_{t_k >= u} d_k G(t_k-)/S0_k sum_{competing j, t_j < u} r_j (x_j - M_k)/G(t_j-)``.

        ``square`` forms ``Y(u)^2``. Only to reproduce R: crr's Fortran squares the integer
        ``icrsk`` in 32-bit arithmetic, which overflows once more than 46,340 are at risk at a
        censoring time (benchmarks/bench_fine_gray.py passes a wrapping square to show that
        this, and nothing else, is why crr's standard errors differ from ours at 100,000 rows).
        """
        beta = np.asarray(beta, dtype=float)
        out = np.zeros((self.n, self.p))
        for st in self.strata_:
            if len(st.event_rows) == 0:
                continue
            X = st.X
            eta = X @ beta
            r = np.exp(eta - eta.max())
            S_k, _ = self._sums(st, r, "breslow")
            S0 = S_k[:, 0]
            M = S_k[:, 1:] / S0[:, None]
            weight = st.n_tied * st.G_event / S0
            Q0 = _suffix(weight)
            Q1 = _suffix(weight[:, None] * M)
            comp = np.column_stack([r * st.comp_w, (r * st.comp_w)[:, None] * X])
            A = _prefix(comp)
            u, inverse = np.unique(st.time, return_inverse=True)
            censored = np.bincount(inverse[st.status == 0], minlength=len(u)).astype(float)
            Y = np.cumsum(np.bincount(inverse, minlength=len(u))[::-1])[::-1].astype(float)
            before = np.searchsorted(st.time, u, side="left")  # rows with t < u
            from_k = np.searchsorted(st.event_times, u, side="left")  # event times >= u
            q = A[before][:, 1:] * Q0[from_k][:, None] - A[before][:, :1] * Q1[from_k]
            term = np.concatenate(
                [np.zeros((1, self.p)), np.cumsum(censored[:, None] * q / square(Y)[:, None], axis=0)]
            )
            res = -term[inverse + 1]
            cens = st.status == 0
            res[cens] += q[inverse[cens]] / Y[inverse[cens], None]
            out[st.rows] = res
        return out

    def baseline_jumps(self, beta):
        """Per stratum: ``(event times, d_k / sum over the risk set of w exp(x'beta))`` with
        uncentred ``x`` (crr's ``bfitj``: the jumps of the baseline cumulative subdistribution
        hazard, for ``x = 0``)."""
        beta = np.asarray(beta, dtype=float)
        out = []
        for st in self.strata_:
            if len(st.event_rows) == 0:
                out.append((st.event_times, np.zeros(0)))
                continue
            eta = st.X @ beta
            shift = eta.max()
            S_k, _ = self._sums(st, np.exp(eta - shift), "breslow")
            log_scale = shift + float(self.center @ beta)
            out.append((st.event_times, st.n_tied / S_k[:, 0] * np.exp(-log_scale)))
        return out
