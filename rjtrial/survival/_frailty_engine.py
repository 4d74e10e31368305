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

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

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
        """Partial log-likelihood ``PL`` at ``(beta, b)``, its score ``(p + q,)`` and its
        information as an :class:`Information` (covariates first, then the groups)."""
        from scipy.sparse import csr_matrix  # on first use: slow to import, and only frailty models need it

        p, q = self.p, self.q
        beta = np.asarray(beta, dtype=float)
        b = np.asarray(b, dtype=float)
        ll = 0.0
        U = np.zeros(p + q)
        XX = np.zeros((p, p))
        XZ = np.zeros((p, q))
        zz_w = np.zeros(q)
        parts = []
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
            G = (
                np.bincount(st.start_k * q + g, weights=r, minlength=size)
                - np.bincount(st.stop_k * q + g, weights=r, minlength=size)
            ).reshape(K + 1, q)
            G = np.cumsum(G, axis=0)[:K]
            # the tied events' own risk, by group (Efron): M_e = (G_k - f_e D_k) / S0_e for the Z columns
            D = csr_matrix((r[ev], (k, g[ev])), shape=(K, q)) if ties == "efron" else None
            a = np.bincount(k, weights=1 / S0, minlength=K)
            c = np.bincount(k, weights=frac / S0, minlength=K)
            # sum_e S2_e / S0_e = [X Z]' diag(w) [X Z]  (see _coxengine)
            A = np.concatenate([[0.0], np.cumsum(a)])
            w = r * (A[st.stop_k] - A[st.start_k])
            w[ev] -= r[ev] * c[k]
            U[:p] += X[ev].sum(axis=0) - MX.sum(axis=0)
            U[p:] += np.bincount(g[ev], minlength=q) - G.T @ a
            XX += (X * w[:, None]).T @ X - MX.T @ MX
            # sum_e M_e M_e' by event time: G' diag(alpha) G - G' diag(beta) D - D' diag(beta) G + D' diag(gamma) D
            alpha = np.bincount(k, weights=1 / S0**2, minlength=K)
            P = (
                np.column_stack([np.bincount(k, weights=MX[:, j] / S0, minlength=K) for j in range(p)])
                if p
                else np.zeros((K, 0))
            )
            XZ -= P.T @ G
            part = {"G": G, "alpha": alpha, "D": D}
            if D is not None:
                U[p:] += D.T @ c
                part["beta"] = np.bincount(k, weights=frac / S0**2, minlength=K)
                part["gamma"] = np.bincount(k, weights=frac**2 / S0**2, minlength=K)
                Q = (
                    np.column_stack([np.bincount(k, weights=frac * MX[:, j] / S0, minlength=K) for j in range(p)])
                    if p
                    else np.zeros((K, 0))
                )
                XZ += np.asarray((D.T @ Q).T)
            if p:
                XZ += np.column_stack([np.bincount(g, weights=w * X[:, j], minlength=q) for j in range(p)]).T
            zz_w += np.bincount(g, weights=w, minlength=q)
            parts.append(part)
        if not derivatives:
            return ll
        return ll, U, Information(p, q, XX, XZ, zz_w, parts)


class Information:
    """The information matrix of ``PL`` at one ``(beta, b)``, without forming its ``q x q``
    block: ``XX`` (p x p) and ``XZ`` (p x q) explicitly, the groups' block
    ``diag(zz_w) - sum_k alpha_k G_k G_k' (+ Efron's terms)`` as a product with a vector
    (``O(K q)``), its diagonal, and :meth:`dense` when the whole matrix is wanted."""

    def __init__(self, p, q, XX, XZ, zz_w, parts):
        self.p, self.q = p, q
        self.XX, self.XZ, self.zz_w, self.parts = XX, XZ, zz_w, parts

    def zz_matvec(self, v: np.ndarray) -> np.ndarray:
        out = self.zz_w * v
        for part in self.parts:
            G, D = part["G"], part["D"]
            Gv = G @ v
            out -= G.T @ (part["alpha"] * Gv)
            if D is not None:
                Dv = D @ v
                out += G.T @ (part["beta"] * Dv) + D.T @ (part["beta"] * Gv) - D.T @ (part["gamma"] * Dv)
        return out

    def zz_diagonal(self) -> np.ndarray:
        out = self.zz_w.copy()
        for part in self.parts:
            G, D = part["G"], part["D"]
            out -= (G * G).T @ part["alpha"]
            if D is not None:
                out += 2 * np.asarray(D.multiply(G).T @ part["beta"]).ravel()
                out -= np.asarray(D.multiply(D).T @ part["gamma"]).ravel()
        return out

    def matvec(self, v: np.ndarray) -> np.ndarray:
        p = self.p
        x, z = v[:p], v[p:]
        return np.concatenate([self.XX @ x + self.XZ @ z, self.XZ.T @ x + self.zz_matvec(z)])

    def dense(self) -> np.ndarray:
        from scipy.sparse import diags  # on first use: slow to import, and only frailty models need it

        p, q = self.p, self.q
        ZZ = np.diag(self.zz_w)
        for part in self.parts:
            G, D = part["G"], part["D"]
            ZZ -= (G * part["alpha"][:, None]).T @ G
            if D is not None:
                GD = np.asarray((D.T @ (G * part["beta"][:, None])).T)
                ZZ += GD + GD.T
                ZZ -= (D.T @ diags(part["gamma"]) @ D).toarray()
        out = np.empty((p + q, p + q))
        out[:p, :p] = self.XX
        out[:p, p:] = self.XZ
        out[p:, :p] = self.XZ.T
        out[p:, p:] = ZZ
        return out


@dataclass(frozen=True)
class PenalisedFit:
    """The maximum of the penalised partial likelihood at one ``theta``."""

    theta: float
    beta: np.ndarray
    b: np.ndarray
    loglik: float  # PL at (beta, b), R fit$loglik[2]
    score: np.ndarray  # of PL
    information: Information  # of PL (unpenalised): I
    penalty_second: np.ndarray  # nu * exp(b), (q,): H = I + diag(0, penalty_second)
    converged: bool
    n_iterations: int

    def hessian(self) -> np.ndarray:
        """``H``, the information of the penalised likelihood, as a dense matrix."""
        H = self.information.dense()
        p = self.information.p
        H[p:, p:] += np.diag(self.penalty_second)
        return H


#: Up to this many coefficients (covariates and groups) a Newton step is a dense solve;
#: beyond, conjugate gradients on products with the information.
DENSE_UP_TO = 200


def _schur_preconditioner(info: Information, pen: np.ndarray):
    """``H~^-1`` for R's sparse approximation ``H~`` of the penalised information (the
    groups' block taken as diagonal), by block elimination: ``O(q p^2)`` to set up."""
    p = info.p
    d = info.zz_diagonal() + pen
    if not np.all(d > 0):
        return None
    B = info.XZ / d  # p x q
    S = info.XX - B @ info.XZ.T
    try:
        chol = np.linalg.cholesky(S) if p else np.zeros((0, 0))
    except np.linalg.LinAlgError:
        return None

    def solve(r):
        r1, r2 = r[:p], r[p:]
        x = np.linalg.solve(chol.T, np.linalg.solve(chol, r1 - B @ r2)) if p else np.zeros(0)
        return np.concatenate([x, (r2 - info.XZ.T @ x) / d])

    return solve


def _conjugate_gradients(matvec, precondition, rhs, *, tol=1e-13, max_iter=None):
    """Preconditioned conjugate gradients for ``H x = rhs``; ``x``, or None if it stalls."""
    n = rhs.size
    max_iter = max_iter or max(50, 2 * n)
    x = np.zeros(n)
    r = rhs.copy()
    z = precondition(r)
    direction = z.copy()
    rz = r @ z
    target = tol * np.linalg.norm(rhs)
    for _ in range(max_iter):
        if np.linalg.norm(r) <= target:
            return x
        Hd = matvec(direction)
        curvature = direction @ Hd
        if not curvature > 0:
            return None
        step = rz / curvature
        x += step * direction
        r -= step * Hd
        z = precondition(r)
        rz_new = r @ z
        direction = z + (rz_new / rz) * direction
        rz = rz_new
    return x if np.linalg.norm(r) <= 1e3 * target else None


def _newton_step(info: Information, grad: np.ndarray, pen: np.ndarray, free: bool, solver: str) -> np.ndarray:
    p = info.p
    if not free:  # frailties fixed at 0: the covariates' step only
        return np.concatenate([np.linalg.solve(info.XX, grad[:p]), np.zeros(info.q)])
    if solver == "cg" or (solver == "auto" and p + info.q > DENSE_UP_TO):
        precondition = _schur_preconditioner(info, pen)
        if precondition is not None:
            step = _conjugate_gradients(
                lambda v: info.matvec(v) + np.concatenate([np.zeros(p), pen * v[p:]]), precondition, grad
            )
            if step is not None:
                return step
    H = info.dense()
    H[p:, p:] += np.diag(pen)
    return np.linalg.solve(H, grad)


def penalised_fit(
    frs: FrailtyRiskSets,
    theta: float,
    ties: str,
    *,
    beta0=None,
    b0=None,
    max_iter: int = 100,
    tol: float = 1e-11,
    solver: str = "auto",
) -> PenalisedFit:
    """Maximise ``PL + nu * sum(b - exp(b))`` by Newton–Raphson with step halving.

    ``theta = 0`` fixes every frailty at 0 (the ordinary Cox model), as R does. Each Newton
    step solves ``H step = gradient`` exactly: densely for up to ``DENSE_UP_TO``
    coefficients, else by conjugate gradients preconditioned with R's sparse approximation
    of ``H`` (``solver="dense"`` or ``"cg"`` forces one). Converged when the largest step is
    below ``tol`` (the iteration is then in its quadratic region, so the maximum is reached
    to about machine precision).
    """
    p, q = frs.p, frs.q
    beta = np.zeros(p) if beta0 is None else np.array(beta0, dtype=float)
    free = theta > 0
    b = np.array(b0, dtype=float) if (b0 is not None and free) else np.zeros(q)
    nu = 1.0 / theta if free else np.inf

    def penalised(ll, b):
        return ll + nu * np.sum(b - np.exp(b)) if free else ll

    if free:
        b = b - np.log(np.mean(np.exp(b)))  # R's recentring (the PL does not change)
    ll, U, info = frs.evaluate(beta, b, ties)
    f = penalised(ll, b)
    converged = False
    n_iter = 0
    if p == 0 and not free:
        return PenalisedFit(theta, beta, b, float(ll), U, info, np.zeros(q), True, 0)
    for n_iter in range(1, max_iter + 1):
        grad = U.copy()
        pen = nu * np.exp(b) if free else np.zeros(q)
        if free:
            grad[p:] += nu * (1 - np.exp(b))
        else:
            grad[p:] = 0
        try:
            step = _newton_step(info, grad, pen, free, solver)
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
            f_new = penalised(frs.evaluate(new_beta, new_b, ties, derivatives=False), new_b)
            if np.isfinite(f_new) and f_new >= f - 1e-12 * abs(f):
                break
            t /= 2
        else:
            break
        change = abs(f_new - f)
        beta, b, f = new_beta, new_b, f_new
        ll, U, info = frs.evaluate(beta, b, ties)
        if np.max(np.abs(t * step)) < tol or (change <= 1e-15 * abs(f) and np.max(np.abs(t * step)) < 1e-7):
            converged = True
            break
    second = nu * np.exp(b) if free else np.zeros(q)
    return PenalisedFit(theta, beta, b, float(ll), U, info, second, converged, n_iter)


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


def search_theta(
    frs: FrailtyRiskSets, ties: str, *, lower: float = 1e-8, upper: float = 1e6, xtol: float = 1e-14
) -> tuple[ThetaSearch, dict]:
    """The ``theta`` maximising the integrated likelihood: bracket the root of its exact
    derivative (from ``theta = 1``, by factors of 4) and find it by Brent's method.

    Returns the search and a cache of penalised fits by ``theta`` (warm starts come from
    the nearest ``theta`` already fitted).
    """
    from scipy.optimize import brentq  # on first use: slow to import, and only frailty models need it

    cache: dict[float, PenalisedFit] = {}

    def fit_at(theta):
        if theta in cache:
            return cache[theta]
        near = min(cache, key=lambda t: abs(np.log(t) - np.log(theta)), default=None) if cache else None
        start = cache[near] if near is not None else None
        fit = penalised_fit(
            frs,
            theta,
            ties,
            beta0=None if start is None else start.beta,
            b0=None if start is None else start.b * (theta / near) ** 0.5,
        )
        cache[theta] = fit
        return fit

    def slope(theta):
        return integrated_slope(frs, fit_at(theta))

    theta = 1.0
    s = slope(theta)
    if s > 0:
        while s > 0:
            if theta >= upper:
                return ThetaSearch(
                    theta, False, len(cache), False, f"the integrated likelihood still increases at theta = {theta:g}"
                ), cache
            lo, theta = theta, theta * 4
            s = slope(theta)
        hi = theta
    else:
        while s < 0:
            if theta <= lower:
                return ThetaSearch(
                    0.0, True, len(cache), True, "the integrated likelihood is largest at theta = 0"
                ), cache
            hi, theta = theta, theta / 4
            s = slope(theta)
        lo = theta
    root, info = brentq(
        slope,
        lo,
        hi,
        xtol=xtol * max(lo, 1e-300),
        rtol=4 * np.finfo(float).eps,
        maxiter=200,
        full_output=True,
        disp=False,
    )
    return ThetaSearch(float(root), bool(info.converged), len(cache), False, ""), cache


# ---------------------------------------------------------------------- variances (R coxpenal.df)
@dataclass(frozen=True)
class Variances:
    """What R's ``coxpenal.df`` reports, from ``H^-1`` (``H`` exact, or R's sparse ``H~``):
    ``var`` and ``var2 = H^-1 I H^-1`` of the covariates, the frailties' variances (the
    diagonal of ``H^-1``), and ``(H^-1)_ff^-1`` as a function of a vector."""

    var: np.ndarray
    var2: np.ndarray
    frailty_variance: np.ndarray
    frailty_precision: Callable[[np.ndarray], np.ndarray]  # v -> (H^-1)_ff^-1 v


def variances(fit: PenalisedFit, *, sparse: bool) -> Variances:
    """R's ``var``, ``var2`` and ``fvar``.

    ``sparse=True`` reproduces R's default for more than five groups: the information of
    the frailties is taken as diagonal (its off-diagonal elements dropped) before inverting,
    as R's ``coxfit6``/``agfit5`` do; ``H~^-1`` then has closed-form blocks (``O(q p^2)``).
    The exact ``H^-1`` is a dense inverse (``O((p + q)^3)``, once). ``var2`` is
    ``H^-1 I H^-1 = H^-1 - H^-1 P H^-1``, ``P`` the penalty's second derivative.
    """
    info = fit.information
    p = info.p
    pen = fit.penalty_second
    if sparse:
        d = info.zz_diagonal() + pen
        B = info.XZ / d  # p x q
        var = np.linalg.inv(info.XX - B @ info.XZ.T) if p else np.zeros((0, 0))
        cross = -var @ B  # the (covariate, frailty) block of H~^-1
        fvar = 1 / d + np.einsum("ij,ij->j", B, var @ B) if p else 1 / d

        def precision(v):  # (H~^-1)_ff^-1 = D - I_fb I_bb^-1 I_bf
            return d * v - (info.XZ.T @ np.linalg.solve(info.XX, info.XZ @ v) if p else 0)
    else:
        H = fit.hessian()
        Hinv = np.linalg.inv(H)
        var, cross, fvar = Hinv[:p, :p], Hinv[:p, p:], np.diag(Hinv)[p:].copy()

        def precision(v):  # (H^-1)_ff^-1 = H_ff - H_fb H_bb^-1 H_bf
            return H[p:, p:] @ v - (H[p:, :p] @ np.linalg.solve(H[:p, :p], H[:p, p:] @ v) if p else 0)

    var2 = var - (cross * pen) @ cross.T
    return Variances(var, var2, fvar, precision)


def degrees_of_freedom(v: Variances, fit: PenalisedFit, term_columns) -> tuple[list[float], float]:
    """R's ``fit$df``: per covariate term ``trace(var_jj^-1 var2_jj)``; for the frailty term
    ``q - sum(diag(H^-1)_ff * P)``, which equals R's ``trace((H^-1)_ff^-1 var2_ff)`` because
    ``var2 = H^-1 - H^-1 P H^-1`` (exact) and is R's own formula (sparse)."""
    out = []
    for cols in term_columns:
        cols = list(cols)
        out.append(float(np.trace(np.linalg.solve(v.var[np.ix_(cols, cols)], v.var2[np.ix_(cols, cols)]))))
    frailty_df = len(v.frailty_variance) - float(np.sum(v.frailty_variance * fit.penalty_second))
    return out, frailty_df


def frailty_wald(b: np.ndarray, v: Variances, *, sparse: bool) -> float:
    """R's printed Chisq of the frailty term: ``sum(b^2 / fvar)`` (sparse) or ``b' (H^-1)_ff^-1 b``."""
    if sparse:
        return float(np.sum(b * b / v.frailty_variance))
    return float(b @ v.frailty_precision(b))
