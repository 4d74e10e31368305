"""The likelihood engine of :func:`rjtrial.meta.pool_multilevel` (nested random effects).

Model (metafor's ``rma.mv(yi, V, mods, random = ~ 1 | l1/l2/...)``)::

    y = X beta + sum_l Z_l u_l + e,   u_l ~ N(0, sigma_l^2 I),   e ~ N(0, V)
    M = V + sum_l sigma_l^2 G_l,      G_l = Z_l Z_l'  (1 where two rows share a level-l group)

Every matrix is block diagonal over the outermost level (:mod:`rjtrial.meta._blocks`). The
variance components maximise the ML or REML log-likelihood by Fisher scoring (exact
gradient and expected information, a line search on the log-likelihood, components held at 0
when the score there points below it); the profile likelihood of one component maximises
over the others with that one fixed. With ``A = M^-1``, ``B = A X``, ``C = (X' A X)^-1`` and
``P = A - B C B'`` (never formed)::

    score_l (REML) = -tr(P G_l) / 2 + (P y)' G_l (P y) / 2
    info_lm (REML) = tr(P G_l P G_m) / 2
    tr(P G_l)        = tr(A G_l) - tr(C B' G_l B)
    tr(P G_l P G_m)  = tr(A G_l A G_m) - 2 tr(C B' G_l A G_m B) + tr(C B' G_l B C B' G_m B)

and for ML the same with ``A`` in place of ``P``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rjtrial.meta._blocks import Blocks

LOG_2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True, eq=False)
class Evaluation:
    """The model at one value of the variance components."""

    log_likelihood: float
    beta: np.ndarray
    vcov: np.ndarray  # (X' M^-1 X)^-1
    rss: float  # (y - X beta)' M^-1 (y - X beta)
    trace_p: float  # tr(P)
    score: np.ndarray | None
    information: np.ndarray | None


class MultilevelModel:
    """y, X, V blocks and level indicators, ready for repeated evaluation.

    Parameters
    ----------
    blocks : Blocks
        Rows grouped by the outermost level.
    y, X : numpy.ndarray
        Effects (n) and design (n x p).
    V : list of numpy.ndarray
        Blocks of the sampling covariance (one (n_c, m, m) array per batch).
    G : list of list of numpy.ndarray
        ``G[l]``: the blocks of G_l for each level l.
    reml : bool
        REML (True) or ML log-likelihood.
    """

    def __init__(self, blocks: Blocks, y: np.ndarray, X: np.ndarray, V, G, *, reml: bool):
        self.blocks = blocks
        self.y = y
        self.X = X
        self.k, self.p = X.shape
        self.V = V
        self.G = G
        self.reml = reml
        self.yb = blocks.gather(y)
        self.Xb = blocks.gather(X)
        sign, self.logdet_xtx = np.linalg.slogdet(X.T @ X)

    def marginal(self, sigma2: np.ndarray) -> list[np.ndarray]:
        """Blocks of M = V + sum sigma_l^2 G_l."""
        out = []
        for b in range(len(self.V)):
            M = self.V[b].copy()
            for level, s in enumerate(sigma2):
                if s != 0.0:
                    M += s * self.G[level][b]
            out.append(M)
        return out

    def evaluate(self, sigma2: np.ndarray, *, derivatives: bool = False) -> Evaluation:
        """Log-likelihood (ML or REML, as metafor's ``logLik``), GLS fit and, optionally, score
        and expected information of all components. A non-positive-definite M gives -inf."""
        sigma2 = np.asarray(sigma2, dtype=float)
        p = self.p
        logdet = 0.0
        XtAX = np.zeros((p, p))
        XtAy = np.zeros(p)
        inverses, AX = [], []
        for M, Xb, yb in zip(self.marginal(sigma2), self.Xb, self.yb):
            try:
                L = np.linalg.cholesky(M)
            except np.linalg.LinAlgError:
                return Evaluation(-np.inf, np.full(p, np.nan), np.full((p, p), np.nan), np.nan, np.nan, None, None)
            logdet += 2.0 * float(np.sum(np.log(np.diagonal(L, axis1=1, axis2=2))))
            A = np.linalg.inv(M)
            A = (A + np.swapaxes(A, 1, 2)) / 2
            AXb = A @ Xb
            inverses.append(A)
            AX.append(AXb)
            XtAX += np.einsum("cmp,cmq->pq", Xb, AXb)
            XtAy += np.einsum("cmp,cm->p", AXb, yb)
        try:
            C = np.linalg.inv(XtAX)
        except np.linalg.LinAlgError:
            return Evaluation(-np.inf, np.full(p, np.nan), np.full((p, p), np.nan), np.nan, np.nan, None, None)
        C = (C + C.T) / 2
        beta = C @ XtAy
        Pe = []
        rss = 0.0
        trace_a = sum(float(np.einsum("cii->", A)) for A in inverses)
        BtB = sum(np.einsum("cmp,cmq->pq", B, B) for B in AX)
        trace_p = trace_a - float(np.sum(C * BtB))
        for A, Xb, yb in zip(inverses, self.Xb, self.yb):
            e = yb - Xb @ beta
            pe = np.einsum("cij,cj->ci", A, e)
            Pe.append(pe)
            rss += float(np.sum(e * pe))
        if self.reml:
            _, logdet_xtax = np.linalg.slogdet(XtAX)
            ll = -0.5 * ((self.k - p) * LOG_2PI + logdet + logdet_xtax + rss) + 0.5 * self.logdet_xtx
        else:
            ll = -0.5 * (self.k * LOG_2PI + logdet + rss)
        if not derivatives:
            return Evaluation(float(ll), beta, C, rss, trace_p, None, None)
        n_levels = len(self.G)
        tr_AG = np.zeros(n_levels)
        quad = np.zeros(n_levels)
        tr_AGAG = np.zeros((n_levels, n_levels))
        F = np.zeros((n_levels, p, p))
        K = np.zeros((n_levels, n_levels, p, p))
        for b, (A, AXb, pe) in enumerate(zip(inverses, AX, Pe)):
            AG = [A @ self.G[level][b] for level in range(n_levels)]
            for l in range(n_levels):
                tr_AG[l] += float(np.einsum("cii->", AG[l]))
                quad[l] += float(np.einsum("ci,cij,cj->", pe, self.G[l][b], pe))
                if self.reml:
                    GB = self.G[l][b] @ AXb
                    F[l] += np.einsum("cmp,cmq->pq", AXb, GB)
                for m in range(l, n_levels):
                    value = float(np.einsum("cij,cji->", AG[l], AG[m]))
                    tr_AGAG[l, m] += value
                    if self.reml:
                        K_lm = np.einsum("cmp,cmq->pq", self.G[l][b] @ AXb, AG[m] @ AXb)
                        K[l, m] += K_lm
        if self.reml:
            trPG = tr_AG - np.array([np.sum(C * F[l]) for l in range(n_levels)])
            score = -0.5 * trPG + 0.5 * quad
            info = np.zeros((n_levels, n_levels))
            CF = [C @ F[l] for l in range(n_levels)]
            for l in range(n_levels):
                for m in range(l, n_levels):
                    value = tr_AGAG[l, m] - 2.0 * np.sum(C * K[l, m]) + np.sum(CF[l] * CF[m].T)
                    info[l, m] = info[m, l] = 0.5 * value
        else:
            score = -0.5 * tr_AG + 0.5 * quad
            info = 0.5 * (np.triu(tr_AGAG) + np.triu(tr_AGAG, 1).T)
        return Evaluation(float(ll), beta, C, rss, trace_p, score, info)


@dataclass(frozen=True)
class ComponentFit:
    sigma2: np.ndarray
    log_likelihood: float
    converged: bool
    n_iterations: int


def starting_values(model: MultilevelModel, vi: np.ndarray) -> np.ndarray:
    """A start for scoring: the OLS residual variance in excess of the mean sampling
    variance (at least 0.01 of the residual variance), split evenly over the levels."""
    beta, *_ = np.linalg.lstsq(model.X, model.y, rcond=None)
    r = model.y - model.X @ beta
    dof = max(model.k - model.p, 1)
    total = float(r @ r) / dof
    excess = max(total - float(np.mean(vi)), 0.01 * total, 1e-8)
    return np.full(len(model.G), excess / len(model.G))


def _derivatives(evaluation: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    """Score and information of an evaluation made with ``derivatives=True``; a model whose
    marginal covariance is not positive definite there has none."""
    if evaluation.score is None or evaluation.information is None:
        raise ValueError(
            "the marginal covariance of the effects is not positive definite at the starting values "
            "of the variance components: no likelihood to maximise"
        )
    return evaluation.score, evaluation.information


def fit_components(
    model: MultilevelModel,
    start: np.ndarray,
    *,
    fixed: dict[int, float] | None = None,
    tol: float = 1e-12,
    max_iterations: int = 1000,
) -> ComponentFit:
    """Maximise the log-likelihood over the components not in ``fixed`` (position -> value).

    Fisher scoring with a backtracking line search on the log-likelihood, on sigma^2 >= 0: a
    step that would take a component below 0 is cut at 0, and a component at 0 whose score is
    not positive stays there (metafor's optimiser works on log sigma^2 and reports such a
    component as ~1e-10). Converged when the largest change is below ``tol * max(1, sigma^2)``.
    """
    fixed = fixed or {}
    s = np.maximum(np.asarray(start, dtype=float).copy(), 0.0)
    for position, value in fixed.items():
        s[position] = value
    free = np.array([i for i in range(len(s)) if i not in fixed], dtype=int)
    current = model.evaluate(s, derivatives=True)
    if not np.isfinite(current.log_likelihood):
        s[free] = np.maximum(s[free], 1.0)
        current = model.evaluate(s, derivatives=True)
    if free.size == 0:
        return ComponentFit(s, current.log_likelihood, True, 0)
    converged = False
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        score_all, information = _derivatives(current)
        score = score_all[free]
        info = information[np.ix_(free, free)]
        # components at the boundary whose score points below 0 stay at 0
        active = np.array([not (s[i] == 0.0 and score[j] <= 0.0) for j, i in enumerate(free)])
        step = np.zeros(free.size)
        if active.any():
            sub = info[np.ix_(active, active)]
            try:
                step[active] = np.linalg.solve(sub, score[active])
            except np.linalg.LinAlgError:
                step[active] = np.linalg.lstsq(sub, score[active], rcond=None)[0]
        if not np.all(np.isfinite(step)):
            break
        size = 1.0
        proposal = None
        for _ in range(60):
            candidate = s.copy()
            candidate[free] = np.maximum(s[free] + size * step, 0.0)
            trial = model.evaluate(candidate, derivatives=True)
            if trial.log_likelihood >= current.log_likelihood - 1e-12 * max(1.0, abs(current.log_likelihood)):
                proposal = (candidate, trial)
                break
            size /= 2
        if proposal is None:
            converged = bool(np.max(np.abs(step)) <= 1e-6 * max(1.0, float(np.max(s))))
            break
        change = np.max(np.abs(proposal[0] - s))
        s, current = proposal
        if change <= tol * max(1.0, float(np.max(s[free]))):
            # a component sitting at 0 with a positive score must be released and refitted
            released = [i for j, i in enumerate(free) if s[i] == 0.0 and _derivatives(current)[0][i] > 0.0]
            if not released:
                converged = True
                break
    return ComponentFit(s, current.log_likelihood, converged, iterations)


def profile_limits(
    model: MultilevelModel, fit: ComponentFit, level: int, *, critical: float, tol: float, max_iterations: int
) -> tuple[float, float, bool, bool, bool]:
    """Profile-likelihood limits of component ``level``: the values where
    ``2 (ll_max - ll_profile(sigma^2))`` equals ``critical`` (chi^2_1 quantile).

    As ``confint.rma.mv``: the search runs over [0, max(10, 100 sigma^2)] (10 when sigma^2
    is ~0); a limit beyond that range is the bound, flagged. Returns ``(lower, upper,
    lower_bounded, upper_bounded, converged)``.
    """
    from scipy import optimize

    estimate = float(fit.sigma2[level])
    upper_bound = 10.0 if estimate <= np.sqrt(np.finfo(float).eps) else max(10.0, 100.0 * estimate)
    ok = True
    warm = {"start": fit.sigma2.copy()}

    def excess(value: float) -> float:
        nonlocal ok
        start = warm["start"].copy()
        start[level] = value
        refit = fit_components(model, start, fixed={level: value}, tol=tol, max_iterations=max_iterations)
        ok = ok and refit.converged
        warm["start"] = refit.sigma2
        return 2.0 * (fit.log_likelihood - refit.log_likelihood) - critical

    def root(a: float, b: float) -> float:
        nonlocal ok
        value, info = optimize.brentq(
            excess, a, b, xtol=tol, rtol=4 * np.finfo(float).eps, maxiter=max_iterations, full_output=True, disp=False
        )
        ok = ok and info.converged
        return float(value)

    lower_bounded = upper_bounded = False
    if estimate <= 0.0 or excess(0.0) < 0:
        lower, lower_bounded = 0.0, True
    else:
        warm["start"] = fit.sigma2.copy()
        lower = root(0.0, estimate)
    warm["start"] = fit.sigma2.copy()
    if excess(upper_bound) < 0:
        upper, upper_bounded = upper_bound, True
    else:
        warm["start"] = fit.sigma2.copy()
        upper = root(estimate, upper_bound)
    return lower, upper, lower_bounded, upper_bounded, ok
