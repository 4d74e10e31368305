"""Estimators of the between-study variance tau^2 (random-effects and mixed-effects models).

Each follows R ``metafor::rma.uni`` (version 3.8) formula for formula, for intercept-only
models and meta-regression alike (``X`` holds the intercept and any moderators):

======  ==============================  ==================================================
method  estimator                       computation
======  ==============================  ==================================================
DL      DerSimonian-Laird               (Q - (k - p)) / tr(P), fixed-effect weights
HE      Hedges (variance components)    (RSS_OLS - tr(P_OLS V)) / (k - p)
HS      Hunter-Schmidt                  (Q - k) / sum(w)
HSk     Hunter-Schmidt, k-corrected     (Q k / (k - p) - k) / sum(w)
GENQ    generalised Q (weights a)       (y' P_a y - tr(P_a V)) / tr(P_a), P_a from weights a
SJ      Sidik-Jonkman                   tau0^2 Q(tau0^2) / (k - p), tau0^2 = mean((y - ybar)^2)
ML      maximum likelihood              Fisher scoring from HE
REML    restricted maximum likelihood   Fisher scoring from HE
EB      empirical Bayes (Morris)        scoring of Q(tau^2) k / (k - p) = k, from HE
PM      Paule-Mandel                    root of the generalised Q(tau^2) = k - p (Brent)
PMM     median-unbiased Paule-Mandel    root of Q(tau^2) = chi^2_{k-p} median (Brent)
======  ==============================  ==================================================

P is metafor's residual-maker W - W X (X' W X)^-1 X' W; it is never formed:
:class:`ResidualMaker` gives y' P y, P y, tr(P D) and tr(P D1 P D2) in O(k p^2) time and
O(k p) memory, so k = 10,000 studies cost milliseconds.

All are truncated at 0. Iterative estimators stop when the change in tau^2 is below
``tol * max(1, tau^2)`` (default 1e-12) and report ``converged`` and ``n_iterations``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize

TAU2_METHODS = ("DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM", "PMM", "GENQ")
#: estimators that need user weights (``pool(..., weights=)``)
WEIGHTED_METHODS = ("GENQ",)


@dataclass(frozen=True)
class Tau2Estimate:
    """tau^2 with its standard error (metafor's ``se.tau2``) and the fit's convergence."""

    tau2: float
    std_error: float
    converged: bool
    n_iterations: int
    method: str


class ResidualMaker:
    """metafor's residual-maker P = W - W X (X' W X)^-1 X' W, held implicitly (never k x k).

    Every quantity the estimators and the Q-profile need is computed in O(k p^2) time and
    O(k p) memory from the thin QR decomposition W^1/2 X = Q R (no normal equations, so the
    condition number of X is not squared) and the hat values q_i = sum_j Q_ij^2:

    * ``P y = W^1/2 e`` and ``y' P y = e' e`` with ``e = (I - Q Q') W^1/2 y``;
    * ``diag(P) = w (1 - q)``, so ``tr(P D) = sum w d (1 - q)`` for diagonal ``D``;
    * ``tr(P D1 P D2) = sum w^2 d1 d2 (1 - 2 q) + tr(M1 M2)`` with ``M_i = Q' diag(w d_i) Q``
      (p x p).

    Parameters
    ----------
    w : numpy.ndarray
        Positive weights (k).
    X : numpy.ndarray
        k x p design matrix of full column rank.
    """

    def __init__(self, w: np.ndarray, X: np.ndarray):
        self.w = np.asarray(w, dtype=float)
        self.X = X
        self._root = np.sqrt(self.w)
        self.Q, self.R = np.linalg.qr(X * self._root[:, None])
        self.hat = np.einsum("ij,ij->i", self.Q, self.Q)

    def _whitened_residuals(self, y: np.ndarray) -> np.ndarray:
        ys = self._root * y
        return ys - self.Q @ (self.Q.T @ ys)

    def coefficients(self, y: np.ndarray) -> np.ndarray:
        """b = (X' W X)^-1 X' W y."""
        return linalg.solve_triangular(self.R, self.Q.T @ (self._root * y))

    def apply(self, y: np.ndarray) -> np.ndarray:
        """P y = W (y - X b)."""
        return self._root * self._whitened_residuals(y)

    def quadratic(self, y: np.ndarray) -> float:
        """y' P y = sum w (y - X b)^2: the weighted residual sum of squares."""
        e = self._whitened_residuals(y)
        return float(e @ e)

    def diagonal(self) -> np.ndarray:
        """diag(P) = w (1 - q)."""
        return self.w * (1.0 - self.hat)

    def trace(self, d: np.ndarray | None = None) -> float:
        """tr(P D) for D = diag(d) (the identity when ``d`` is None)."""
        diag = self.diagonal()
        return float(np.sum(diag if d is None else diag * d))

    def trace_product(self, d1: np.ndarray | None = None, d2: np.ndarray | None = None) -> float:
        """tr(P D1 P D2) for diagonal D1 = diag(d1), D2 = diag(d2) (identity when None).

        ``tr(P P) = sum(P * P)``, ``tr(P V P V) = sum(PV * (PV)')`` and
        ``tr(P V P) = sum(PV * P)`` are the cases the estimators use.
        """
        w = self.w
        one = np.ones_like(w)
        e1 = one if d1 is None else d1
        e2 = one if d2 is None else d2
        m1 = self.Q.T @ (self.Q * (w * e1)[:, None])
        m2 = m1 if d2 is d1 else self.Q.T @ (self.Q * (w * e2)[:, None])
        return float(np.sum(w * w * e1 * e2 * (1.0 - 2.0 * self.hat)) + np.sum(m1 * m2.T))

    def log_determinant(self) -> float:
        """``log det(X' W X) = 2 sum log |R_jj|``."""
        return float(2 * np.sum(np.log(np.abs(np.diag(self.R)))))


def residual_maker(w: np.ndarray, X: np.ndarray) -> np.ndarray:
    """The dense P = W - W X (X' W X)^-1 X' W (k x k: O(k^2) memory; a reference for tests).

    The estimators use :class:`ResidualMaker`, which never forms P.
    """
    WX = X * w[:, None]
    XtWX = X.T @ WX
    return np.diag(w) - WX @ np.linalg.solve(XtWX, WX.T)


def generalised_q(tau2: float, yi: np.ndarray, vi: np.ndarray, X: np.ndarray) -> float:
    """Q(tau^2) = y' P(tau^2) y with weights 1 / (v + tau^2): the residual weighted sum of squares."""
    w = 1.0 / (vi + tau2)
    if X.shape[1] == 1:  # intercept only: sum w (y - ybar_w)^2, no QR needed
        mean = np.sum(w * yi) / np.sum(w)
        r = yi - mean
        return float(np.sum(w * r * r))
    return ResidualMaker(w, X).quadratic(yi)


def _log_likelihood(tau2: float, yi, vi, X, *, reml: bool) -> float:
    """ML / REML log-likelihood of the model (metafor's ll.ML, ll.REML without the X'X term)."""
    k, p = X.shape
    P = ResidualMaker(1.0 / (vi + tau2), X)
    rss = P.quadratic(yi)
    if reml:
        return (
            -0.5 * (k - p) * np.log(2 * np.pi) - 0.5 * np.sum(np.log(vi + tau2)) - 0.5 * P.log_determinant() - 0.5 * rss
        )
    return -0.5 * k * np.log(2 * np.pi) - 0.5 * np.sum(np.log(vi + tau2)) - 0.5 * rss


def _hedges(yi, vi, X):
    k, p = X.shape
    P = ResidualMaker(np.ones(k), X)
    rss = P.quadratic(yi)
    tr_pv = P.trace(vi)
    return (rss - tr_pv) / (k - p), P, tr_pv


def estimate_tau2(
    yi: np.ndarray,
    vi: np.ndarray,
    X: np.ndarray,
    *,
    method: str,
    tol: float = 1e-12,
    max_iterations: int = 1000,
    weights: np.ndarray | None = None,
) -> Tau2Estimate:
    """Estimate tau^2 by ``method`` (one of :data:`TAU2_METHODS`).

    Parameters
    ----------
    yi, vi : numpy.ndarray
        Study estimates and sampling variances (k studies, all variances positive).
    X : numpy.ndarray
        k x p design matrix whose first column is the intercept (k > p).
    method : str
        One of :data:`TAU2_METHODS`.
    tol, max_iterations
        Convergence of the iterative estimators (ML, REML, EB, PM, PMM).
    weights : numpy.ndarray, optional
        The weights ``a`` of the generalised Q (``"GENQ"``, required there; DerSimonian &
        Kacker 2007).

    Returns
    -------
    Tau2Estimate
        ``tau2, std_error, converged, n_iterations, method``.

    Notes
    -----
    Agrees with R ``metafor::rma(yi, vi, mods, method=method, control=list(threshold=1e-12,
    tol=1e-12))`` to 1e-9 or better on every validation dataset (tests/validation/).
    """
    if method not in TAU2_METHODS:
        raise ValueError(f"method={method!r}: choose one of {', '.join(map(repr, TAU2_METHODS))}")
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    k, p = X.shape
    if k <= p:
        raise ValueError(f"estimating tau^2 needs more studies ({k}) than coefficients ({p})")
    if method in ("HS", "HSk"):
        w = 1.0 / vi
        P = ResidualMaker(w, X)
        q = P.quadratic(yi)
        factor = k / (k - p) if method == "HSk" else 1.0
        tau2 = max(0.0, (factor * q - k) / w.sum())
        se = factor * np.sqrt(1 / w.sum() ** 2 * (2 * (k - p) + 4 * tau2 * P.trace() + 2 * tau2**2 * P.trace_product()))
        return Tau2Estimate(tau2, float(se), True, 0, method)
    if method == "GENQ":
        if weights is None:
            raise ValueError("method='GENQ' needs weights (pool(..., weights=...))")
        P = ResidualMaker(np.asarray(weights, dtype=float), X)
        tr_p = P.trace()
        tr_pv = P.trace(vi)
        tau2 = max(0.0, (P.quadratic(yi) - tr_pv) / tr_p)
        se = np.sqrt(
            1
            / tr_p**2
            * (2 * P.trace_product(vi, vi) + 4 * tau2 * P.trace_product(vi) + 2 * tau2**2 * P.trace_product())
        )
        return Tau2Estimate(tau2, float(se), True, 0, method)
    if method == "DL":
        w = 1.0 / vi
        P = ResidualMaker(w, X)
        q = P.quadratic(yi)
        tr_p = P.trace()
        tau2 = max(0.0, (q - (k - p)) / tr_p)
        se = np.sqrt(1 / tr_p**2 * (2 * (k - p) + 4 * tau2 * tr_p + 2 * tau2**2 * P.trace_product()))
        return Tau2Estimate(tau2, float(se), True, 0, method)
    if method == "HE":
        raw, P, tr_pv = _hedges(yi, vi, X)
        tau2 = max(0.0, raw)
        se = np.sqrt(1 / (k - p) ** 2 * (2 * P.trace_product(vi, vi) + 4 * tau2 * tr_pv + 2 * tau2**2 * (k - p)))
        return Tau2Estimate(tau2, float(se), True, 0, method)
    if method == "SJ":
        tau2_0 = float(np.mean((yi - yi.mean()) ** 2))
        P = ResidualMaker(1.0 / (vi + tau2_0), X)
        tau2 = max(0.0, tau2_0 * P.quadratic(yi) / (k - p))
        se = np.sqrt(
            tau2_0**2
            / (k - p) ** 2
            * (2 * P.trace_product(vi, vi) + 4 * tau2 * P.trace_product(vi) + 2 * tau2**2 * P.trace_product())
        )
        return Tau2Estimate(tau2, float(se), True, 0, method)
    if method in ("PM", "PMM"):
        return _paule_mandel(yi, vi, X, tol=tol, max_iterations=max_iterations, median=method == "PMM")
    return _scoring(yi, vi, X, method=method, tol=tol, max_iterations=max_iterations)


def _se_morris(tau2, vi, k, p) -> float:
    w = 1.0 / (vi + tau2)
    return float(np.sqrt(2 * k**2 / (k - p) / w.sum() ** 2))


def _paule_mandel(yi, vi, X, *, tol, max_iterations, median: bool = False) -> Tau2Estimate:
    from scipy import stats

    k, p = X.shape
    target = float(stats.chi2.ppf(0.5, k - p)) if median else k - p
    name = "PMM" if median else "PM"

    def objective(t):
        return generalised_q(t, yi, vi, X) - target

    if objective(0.0) < 0:
        return Tau2Estimate(0.0, _se_morris(0.0, vi, k, p), True, 0, name)
    upper = max(100.0, 10 * float(np.var(yi)))
    for _ in range(200):  # Q(tau^2) decreases to 0: widen the bracket until it changes sign
        if objective(upper) < 0:
            break
        upper *= 10
    root, info = optimize.brentq(
        objective,
        0.0,
        upper,
        xtol=tol,
        rtol=4 * np.finfo(float).eps,
        maxiter=max_iterations,
        full_output=True,
        disp=False,
    )
    tau2 = max(0.0, float(root))
    return Tau2Estimate(tau2, _se_morris(tau2, vi, k, p), bool(info.converged), int(info.iterations), name)


def _scoring(yi, vi, X, *, method, tol, max_iterations) -> Tau2Estimate:
    """Fisher scoring for ML and REML, and the Morris scoring for EB (metafor's algorithm)."""
    k, p = X.shape
    tau2 = max(0.0, _hedges(yi, vi, X)[0])
    converged = False
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        w = 1.0 / (vi + tau2)
        P = ResidualMaker(w, X)
        Py = P.apply(yi)
        if method == "ML":
            step = (Py @ Py - w.sum()) / np.sum(w**2)
        elif method == "REML":
            step = (Py @ Py - P.trace()) / P.trace_product()
        else:  # EB
            step = (float(yi @ Py) * k / (k - p) - k) / w.sum()
        if not np.isfinite(step):
            step = 0.0
        if tau2 + step < 0:  # metafor halves the step to stay on tau^2 >= 0
            if tau2 == 0.0:
                step = 0.0
            else:
                while tau2 + step < 0:
                    step /= 2
        tau2 = tau2 + step
        if abs(step) <= tol * max(1.0, tau2):
            converged = True
            break
    if converged and method in ("ML", "REML"):
        # metafor's ll0check: a boundary maximum at tau^2 = 0 that scoring stepped past
        reml = method == "REML"
        if (
            _log_likelihood(0.0, yi, vi, X, reml=reml) - _log_likelihood(tau2, yi, vi, X, reml=reml) > tol
            and tau2 > tol
        ):
            tau2 = 0.0
    tau2 = max(0.0, tau2)
    w = 1.0 / (vi + tau2)
    if method == "ML":
        se = np.sqrt(2 / np.sum(w**2))
    elif method == "REML":
        se = np.sqrt(2 / ResidualMaker(w, X).trace_product())
    else:
        se = _se_morris(tau2, vi, k, p)
    return Tau2Estimate(float(tau2), float(se), converged, iterations, method)
