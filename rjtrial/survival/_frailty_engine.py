"""Numerics of the shared gamma frailty Cox model (R ``coxph(... + frailty(id))``).

The model: ``h_ij(t) = h_0(t) exp(x_ij'beta + b_i)``, with ``exp(b_i)`` gamma distributed with
mean 1 and variance ``theta``. As in R (Therneau, Grambsch & Pankratz 2003), for a given
``theta`` the coefficients and the frailties ``b`` maximise the penalised partial likelihood

    PPL(beta, b) = PL(beta, b) + nu * sum_i (b_i - exp(b_i)),      nu = 1 / theta,

``PL`` being the Cox partial likelihood of the design ``[X, Z]`` (``Z`` the group indicators),
and ``theta`` maximises the integrated (marginal) likelihood, which for the gamma frailty is
the PPL at its maximum plus R's ``frailty.gammacon`` term (``integrated``):

    c(theta) = PL + nu * sum_i b_i  +  sum_i [d_i + nu log nu - (nu + d_i) log(nu + d_i)
                                              + lgamma(nu + d_i) - lgamma(nu)],

``d_i`` the events of group ``i`` (at the maximum, ``mean exp(b) = 1`` holds exactly, so
``nu * sum(b - exp(b)) + nu * q`` is R's ``nu * sum(b)``). R finds ``theta`` by a
derivative-free search stopped at a relative change of ``c`` below ``eps``; here the
derivative is exact (the envelope theorem: ``dc/dnu = sum(b - exp(b)) + q + dgammacon/dnu``)
and its root is found by Brent's method, so ``theta`` is the maximiser to about 1e-12.

The score and information of ``PL`` with respect to ``(beta, b)`` are formed without the
``n x q`` indicator matrix: the risk of each group at each distinct event time (``K x q``)
comes from a difference array over event-time indices, ``Z' diag(w) Z`` is diagonal, and the
sums over events are gathered by event time (the tied events' own risks, Efron's correction,
as a sparse ``K x q`` matrix), so an evaluation costs ``O(n p^2 + K q^2)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, sparse

from rjtrial.survival._coxengine import RiskSets


class FrailtyRiskSets:
    """Risk sets of a Cox model with one frailty per group.

    Parameters
    ----------
    X : (n, p) covariates; groups : (n,) integer codes 0..q-1; q : number of groups;
    stop, event, start, strata : as :class:`~rjtrial.survival._coxengine.RiskSets`.
    """

    def __init__(self, X, groups, q, stop, event, *, start=None, strata=None):
        self.risk = RiskSets(X, stop, event, start=start, strata=strata)
        self.p = self.risk.p
        self.q = int(q)
        self.groups = np.asarray(groups, dtype=np.int64)
        self._g = [self.groups[st.rows] for st in self.risk.strata_]
        self.events_per_group = np.bincount(self.groups[self.risk.event], minlength=self.q).astype(float)

    def evaluate(self, beta, b, ties: str = "efron", *, derivatives: bool = True):
        """Partial log-likelihood ``PL`` at ``(beta, b)``, its score ``(p + q,)`` and information
        ``(p + q, p + q)`` (covariates first, then the groups)."""
        p, q = self.p, self.q
        beta = np.asarray(beta, dtype=float)
        b = np.asarray(b, dtype=float)
        ll = 0.0
        U = np.zeros(p + q)
        I = np.zeros((p + q, p + q))
        for st, g in zip(self.risk.strata_, self._g):
            ev = st.event_rows
            if len(ev) == 0:
                continue
            X = st.X
            eta = X @ beta + b[g]
            shift = eta.max()
            r = np.exp(eta - shift)
            S0, S1 = self.risk._sums(st, r, ties)
            ll += eta[ev].sum() - np.log(S0).sum() - shift * len(ev)
            if not derivatives:
                continue
            K = len(st.event_times)
            k = st.event_k
            frac = st.event_frac if ties == "efron" else np.zeros(len(ev))
            MX = S1 / S0[:, None]
            # risk of each group at each event time (K x q): +r from the first event time after
            # the row's start, -r from the first after its stop
            size = (K + 1) * q
            G = (np.bincount(st.start_k * q + g, weights=r, minlength=size)
                 - np.bincount(st.stop_k * q + g, weights=r, minlength=size)).reshape(K + 1, q)
            G = np.cumsum(G, axis=0)[:K]
            # the tied events' own risk, by group (Efron): M_e = (G_k - f_e D_k) / S0_e for the Z columns
            D = sparse.csr_matrix((r[ev], (k, g[ev])), shape=(K, q)) if ties == "efron" else None
            a = np.bincount(k, weights=1 / S0, minlength=K)
            c = np.bincount(k, weights=frac / S0, minlength=K)
            # sum_e S2_e / S0_e = [X Z]' diag(w) [X Z]  (see _coxengine)
            A = np.concatenate([[0.0], np.cumsum(a)])
            w = r * (A[st.stop_k] - A[st.start_k])
            w[ev] -= r[ev] * c[k]
            U[:p] += X[ev].sum(axis=0) - MX.sum(axis=0)
            U[p:] += np.bincount(g[ev], minlength=q) - G.T @ a
            I[:p, :p] += (X * w[:, None]).T @ X - MX.T @ MX
            # sum_e M_e M_e' by event time: G' diag(alpha) G - G' diag(beta) D - D' diag(beta) G + D' diag(gamma) D
            alpha = np.bincount(k, weights=1 / S0**2, minlength=K)
            ZZ = (G * alpha[:, None]).T @ G
            P = np.column_stack([np.bincount(k, weights=MX[:, j] / S0, minlength=K) for j in range(p)]) \
                if p else np.zeros((K, 0))
            XZ = P.T @ G
            if D is not None:
                U[p:] += D.T @ c
                beta_k = np.bincount(k, weights=frac / S0**2, minlength=K)
                gamma_k = np.bincount(k, weights=frac**2 / S0**2, minlength=K)
                GD = np.asarray((D.T @ (G * beta_k[:, None])).T)
                ZZ -= GD + GD.T
                ZZ += (D.T @ sparse.diags(gamma_k) @ D).toarray()
                Q = np.column_stack([np.bincount(k, weights=frac * MX[:, j] / S0, minlength=K) for j in range(p)]) \
                    if p else np.zeros((K, 0))
                XZ -= np.asarray((D.T @ Q).T)
            wx = np.column_stack([np.bincount(g, weights=w * X[:, j], minlength=q) for j in range(p)]) \
                if p else np.zeros((q, 0))
            cross = wx.T - XZ
            I[:p, p:] += cross
            I[p:, :p] += cross.T
            I[p:, p:] += np.diag(np.bincount(g, weights=w, minlength=q)) - ZZ
        if not derivatives:
            return ll
        return ll, U, I


@dataclass(frozen=True)
class PenalisedFit:
    """The maximum of the penalised partial likelihood at one ``theta``."""

    theta: float
    beta: np.ndarray
    b: np.ndarray
    loglik: float  # PL at (beta, b), R fit$loglik[2]
    score: np.ndarray  # of PL
    information: np.ndarray  # of PL (unpenalised): I
    hessian: np.ndarray  # of -PPL: H = I + penalty's second derivative
    penalty_second: np.ndarray  # nu * exp(b), (q,)
    converged: bool
    n_iterations: int


def penalised_fit(frs: FrailtyRiskSets, theta: float, ties: str, *, beta0=None, b0=None,
                  max_iter: int = 100, tol: float = 1e-11) -> PenalisedFit:
    """Maximise ``PL + nu * sum(b - exp(b))`` by Newton–Raphson with step halving.

    ``theta = 0`` fixes every frailty at 0 (the ordinary Cox model), as R does. Converged
    when the largest Newton step is below ``tol`` (the iteration is then in its quadratic
    region, so the maximum is reached to about machine precision).
    """
    p, q = frs.p, frs.q
    beta = np.zeros(p) if beta0 is None else np.array(beta0, dtype=float)
    b = np.zeros(q) if (b0 is None or theta == 0) else np.array(b0, dtype=float)
    free = theta > 0
    nu = 1.0 / theta if free else np.inf

    def objective(beta, b, derivatives=True):
        out = frs.evaluate(beta, b, ties, derivatives=derivatives)
        if not free:
            return out
        if not derivatives:
            return out + nu * np.sum(b - np.exp(b))
        ll, U, I = out
        return ll + nu * np.sum(b - np.exp(b)), ll, U, I

    def newton_system(b, U, I):
        if not free:
            return U[:p], I[:p, :p]
        grad = U.copy()
        grad[p:] += nu * (1 - np.exp(b))
        H = I.copy()
        H[p:, p:] += np.diag(nu * np.exp(b))
        return grad, H

    if free:
        b = b - np.log(np.mean(np.exp(b)))  # R's recentring (the PL does not change)
        f, ll, U, I = objective(beta, b)
    else:
        ll, U, I = objective(beta, b)
        f = ll
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        grad, H = newton_system(b, U, I)
        if grad.size == 0:
            converged = True
            break
        try:
            step = np.linalg.solve(H, grad)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)):
            break
        t = 1.0
        while t >= 1e-8:
            new_beta = beta + t * step[:p]
            new_b = b + t * step[p:] if free else b
            if free:
                new_b = new_b - np.log(np.mean(np.exp(new_b)))
                f_new, ll_new, U_new, I_new = objective(new_beta, new_b)
            else:
                ll_new, U_new, I_new = objective(new_beta, new_b)
                f_new = ll_new
            if np.isfinite(f_new) and f_new >= f - 1e-12 * abs(f):
                break
            t /= 2
        else:
            break
        change = abs(f_new - f)
        beta, b, f, ll, U, I = new_beta, new_b, f_new, ll_new, U_new, I_new
        if np.max(np.abs(t * step)) < tol or (change <= 1e-15 * abs(f) and np.max(np.abs(t * step)) < 1e-7):
            converged = True
            break
    if grad.size == 0:
        n_iter = 0
    second = nu * np.exp(b) if free else np.zeros(q)
    H = I.copy()
    if free:
        H[p:, p:] += np.diag(second)
    return PenalisedFit(theta, beta, b, float(ll), U, I, H, second, converged, n_iter)


# ---------------------------------------------------------------------- integrated likelihood
def gamma_correction(d: np.ndarray, nu: float) -> float:
    """R ``frailty.gammacon(d, nu)``: the integrated minus the penalised log-likelihood."""
    d = np.asarray(d, dtype=float)
    d = d[d > 0]
    if d.size == 0:
        return 0.0
    if nu > 1e7 * d.max():
        term1 = np.sum(d * d) / nu
    else:
        term1 = np.sum(d + nu * np.log(nu / (nu + d)))
    counts = d.astype(np.int64)
    j = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)  # 0..d_i-1
    term2 = np.sum(np.log((nu + j) / (nu + np.repeat(d, counts))))
    return float(term1 + term2)


def gamma_correction_derivative(d: np.ndarray, nu: float) -> float:
    """``d gamma_correction / d nu = sum_i [log(nu/(nu+d_i)) + psi(nu+d_i) - psi(nu)]``,
    written as ``sum_j 1/(nu+j) - log1p(d_i/nu)`` to keep its precision for large ``nu``."""
    d = np.asarray(d, dtype=float)
    d = d[d > 0]
    if d.size == 0:
        return 0.0
    counts = d.astype(np.int64)
    j = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return float(np.sum(1.0 / (nu + j)) - np.sum(np.log1p(d / nu)))


def integrated_loglik(frs: FrailtyRiskSets, fit: PenalisedFit) -> float:
    """R's ``c.loglik``: ``PL + nu * sum(b) + gammacon`` (``PL`` at ``theta = 0``)."""
    if fit.theta == 0:
        return fit.loglik
    nu = 1.0 / fit.theta
    return fit.loglik + nu * np.sum(fit.b) + gamma_correction(frs.events_per_group, nu)


def integrated_slope(frs: FrailtyRiskSets, fit: PenalisedFit) -> float:
    """``d c / d theta`` at ``fit`` (exact, by the envelope theorem)."""
    nu = 1.0 / fit.theta
    dnu = np.sum(fit.b - np.exp(fit.b)) + frs.q + gamma_correction_derivative(frs.events_per_group, nu)
    return float(-nu * nu * dnu)


@dataclass(frozen=True)
class ThetaSearch:
    theta: float
    converged: bool
    n_evaluations: int
    boundary: bool  # the maximum is at theta = 0
    message: str


def search_theta(frs: FrailtyRiskSets, ties: str, *, lower: float = 1e-8, upper: float = 1e6,
                 xtol: float = 1e-14) -> tuple[ThetaSearch, dict]:
    """The ``theta`` maximising the integrated likelihood: bracket the root of its exact
    derivative (from ``theta = 1``, by factors of 4) and find it by Brent's method.

    Returns the search and a cache of penalised fits by ``theta`` (warm starts come from
    the nearest ``theta`` already fitted).
    """
    cache: dict[float, PenalisedFit] = {}

    def fit_at(theta):
        if theta in cache:
            return cache[theta]
        near = min(cache, key=lambda t: abs(np.log(t) - np.log(theta)), default=None) if cache else None
        start = cache[near] if near is not None else None
        fit = penalised_fit(frs, theta, ties, beta0=None if start is None else start.beta,
                            b0=None if start is None else start.b * (theta / near) ** 0.5)
        cache[theta] = fit
        return fit

    def slope(theta):
        return integrated_slope(frs, fit_at(theta))

    theta = 1.0
    s = slope(theta)
    if s > 0:
        while s > 0:
            if theta >= upper:
                return ThetaSearch(theta, False, len(cache), False,
                                   f"the integrated likelihood still increases at theta = {theta:g}"), cache
            lo, theta = theta, theta * 4
            s = slope(theta)
        hi = theta
    else:
        while s < 0:
            if theta <= lower:
                return ThetaSearch(0.0, True, len(cache), True, "the integrated likelihood is largest at theta = 0"), cache
            hi, theta = theta, theta / 4
            s = slope(theta)
        lo = theta
    root, info = optimize.brentq(slope, lo, hi, xtol=xtol * max(lo, 1e-300), rtol=4 * np.finfo(float).eps,
                                 maxiter=200, full_output=True, disp=False)
    return ThetaSearch(float(root), bool(info.converged), len(cache), False, ""), cache


# ---------------------------------------------------------------------- variances (R coxpenal.df)
def variances(fit: PenalisedFit, p: int, *, sparse: bool):
    """``var`` (``H^-1``), ``var2`` (``H^-1 I H^-1``) of the coefficients and the frailties' own
    variance (diagonal of ``H^-1``), as R ``coxpenal.df``.

    ``sparse=True`` reproduces R's default for more than five groups: the information of
    the frailties is taken as diagonal (its off-diagonal elements are dropped) before
    inverting, as R's ``coxfit6``/``agfit5`` do.
    """
    H = fit.hessian
    if sparse:
        H = H.copy()
        block = H[p:, p:]
        H[p:, p:] = np.diag(np.diag(block))
    Hinv = np.linalg.inv(H)
    I = H.copy()
    I[p:, p:] -= np.diag(fit.penalty_second)
    V2 = Hinv @ I @ Hinv
    return Hinv, V2


def degrees_of_freedom(Hinv: np.ndarray, V2: np.ndarray, fit: PenalisedFit, p: int, term_columns,
                       *, sparse: bool) -> tuple[list[float], float]:
    """R's ``fit$df``: per covariate term ``trace(var[j,j]^-1 var2[j,j])``; for the frailty term
    ``trace(Hinv_ff^-1 V2_ff)`` (exact) or ``q - sum(diag(Hinv_ff) * penalty'')`` (sparse)."""
    out = []
    for cols in term_columns:
        cols = list(cols)
        out.append(float(np.trace(np.linalg.solve(Hinv[np.ix_(cols, cols)], V2[np.ix_(cols, cols)]))))
    q = Hinv.shape[0] - p
    if sparse:
        frailty_df = q - float(np.sum(np.diag(Hinv)[p:] * fit.penalty_second))
    else:
        frailty_df = float(np.trace(np.linalg.solve(Hinv[p:, p:], V2[p:, p:])))
    return out, frailty_df


def frailty_wald(b: np.ndarray, Hinv: np.ndarray, p: int, *, sparse: bool) -> float:
    """R's printed Chisq of the frailty term: ``sum(b^2 / fvar)`` (sparse) or ``b' V_ff^-1 b``."""
    if sparse:
        return float(np.sum(b * b / np.diag(Hinv)[p:]))
    return float(b @ np.linalg.solve(Hinv[p:, p:], b))
