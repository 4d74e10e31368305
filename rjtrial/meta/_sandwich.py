"""Cluster-robust (sandwich) covariance with small-sample corrections: the engine behind
:func:`rjtrial.meta.robust` and :func:`rjtrial.meta.rve`.

For weights ``W = Phi^-1`` (the inverse of a working covariance ``Phi``, block diagonal over
clusters j), bread ``B = (X' W X)^-1`` and residuals ``e``::

    V_CR = B (sum_j X_j' W_j A_j e_j e_j' A_j' W_j X_j) B

with ``A_j = I`` (CR0), ``sqrt(J / (J - 1)) I`` (CR1) or the bias-reduced CR2 adjustment of
Bell & McCaffrey (2002) and Pustejovsky & Tipton (2018),
``A_j = U_j' [U_j (Phi_j - X_j B X_j') U_j']^(-1/2) U_j`` with ``Phi_j = U_j' U_j``.

Degrees of freedom (Satterthwaite) and the Hotelling-T^2 "HTZ" Wald test follow R
``clubSandwich`` (0.5.8; ``coef_test``, ``Wald_test``): for a contrast matrix ``C`` the
``J x J`` matrices ``P_st = diag_j(g_js . g_jt) - h_s h_t'`` with ``g_j = C B E_j L_j`` and
rows ``h_js`` of ``C B E_j X_j L_B`` (``L`` lower Cholesky factors, ``E_j = X_j' W_j A_j``)
are never formed: every trace and inner product of them is a sum over clusters plus a
product of p x p matrices, so a model with 1,000 clusters costs milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from rjtrial.meta._blocks import Blocks, inverse_sqrt_psd, inverse_sqrt_symmetric

ADJUSTMENTS = ("CR2", "CR1", "CR0")


@dataclass(frozen=True, eq=False)
class SandwichFit:
    """The robust covariance with what the small-sample tests need."""

    vcov: np.ndarray
    bread: np.ndarray
    g: list  # per batch (n_c, p, m): B E_j L_j
    h: np.ndarray  # (J, p, p): B E_j X_j L_B, one per cluster
    n_clusters: int

    def _pieces(self, C: np.ndarray):
        """(D, H): D[s, t, j] = g_js . g_jt and H (q, J, p) rows h_js for contrasts C."""
        q = C.shape[0]
        D = np.zeros((q, q, self.n_clusters))
        for gb, idx in self.g:
            cg = np.einsum("qp,cpm->cqm", C, gb)
            D[:, :, idx] = np.einsum("cqm,crm->qrc", cg, cg)
        H = np.einsum("qp,jpr->qjr", C, self.h)
        return D, H

    @staticmethod
    def _inner(D, H, a, b, c, d) -> float:
        """<P_ab, P_cd> = sum of the elementwise product of two J x J matrices P."""
        hab = np.einsum("jr,jr->j", H[a], H[b])
        hcd = np.einsum("jr,jr->j", H[c], H[d])
        return float(
            np.sum(D[a, b] * D[c, d])
            - np.sum(D[a, b] * hcd)
            - np.sum(D[c, d] * hab)
            + np.sum((H[a].T @ H[c]) * (H[b].T @ H[d]))
        )

    @staticmethod
    def _omega(D, H) -> np.ndarray:
        return np.sum(D, axis=2) - np.einsum("sjr,tjr->st", H, H)

    def satterthwaite(self) -> np.ndarray:
        """Satterthwaite degrees of freedom of each coefficient (``coef_test(...,
        test = "Satterthwaite")``): ``df = tr(P)^2 / ||P||_F^2``."""
        p = self.vcov.shape[0]
        out = np.empty(p)
        for i in range(p):
            C = np.zeros((1, p))
            C[0, i] = 1.0
            D, H = self._pieces(C)
            trace = self._omega(D, H)[0, 0]
            out[i] = trace**2 / self._inner(D, H, 0, 0, 0, 0)
        return out

    def htz(self, C: np.ndarray, beta: np.ndarray) -> dict:
        """Hotelling-T^2 Wald test of ``C beta = 0`` with degrees of freedom from the
        Zhang approximation (clubSandwich's ``test = "HTZ"``)."""
        C = np.atleast_2d(np.asarray(C, dtype=float))
        q = C.shape[0]
        cb = C @ beta
        Q = float(cb @ np.linalg.solve(C @ self.vcov @ C.T, cb))
        D, H = self._pieces(C)
        Omega_nsqrt = inverse_sqrt_symmetric((self._omega(D, H) + self._omega(D, H).T) / 2)
        D = np.einsum("as,stj,bt->abj", Omega_nsqrt, D, Omega_nsqrt)
        H = np.einsum("as,sjr->ajr", Omega_nsqrt, H)
        total = 0.0
        for s in range(q):
            for t in range(q):
                total += self._inner(D, H, s, t, t, s) + self._inner(D, H, s, s, t, t)
        nu = q * (q + 1) / total
        delta = max((nu - q + 1) / nu, 0.0)
        df = nu - q + 1
        F = delta * Q / q
        p_value = float(stats.f.sf(F, q, df)) if df > 0 else np.nan
        return {
            "statistic": F,
            "q_statistic": Q,
            "delta": delta,
            "df_numerator": float(q),
            "df_denominator": float(df),
            "p_value": p_value,
        }


def sandwich(
    y: np.ndarray, X: np.ndarray, beta: np.ndarray, blocks: Blocks, phi: list[np.ndarray], *, adjust: str = "CR2"
) -> SandwichFit:
    """Cluster-robust covariance of the weighted least-squares fit ``beta`` with weights
    ``Phi^-1`` (``phi``: the blocks of the working covariance over ``blocks``' clusters)."""
    if adjust not in ADJUSTMENTS:
        raise ValueError(f"adjust={adjust!r}: choose one of {', '.join(map(repr, ADJUSTMENTS))}")
    p = X.shape[1]
    J = blocks.n_clusters
    Xb = blocks.gather(X)
    yb = blocks.gather(y)
    W, L = [], []
    XtWX = np.zeros((p, p))
    for Phi, Xj in zip(phi, Xb):
        Lj = np.linalg.cholesky(Phi)
        Wj = np.linalg.inv(Phi)
        Wj = (Wj + np.swapaxes(Wj, 1, 2)) / 2
        W.append(Wj)
        L.append(Lj)
        XtWX += np.einsum("cmp,cmn,cnq->pq", Xj, Wj, Xj)
    bread = np.linalg.inv(XtWX)
    bread = (bread + bread.T) / 2
    meat = np.zeros((p, p))
    g_parts = []
    h = np.zeros((J, p, p))
    L_bread = np.linalg.cholesky(bread)
    for batch, Phi, Wj, Lj, Xj, yj in zip(blocks.batches, phi, W, L, Xb, yb):
        XW = np.einsum("cmp,cmn->cpn", Xj, Wj)  # X_j' W_j, (n_c, p, m)
        if adjust == "CR2":
            U = np.swapaxes(Lj, 1, 2)
            inner = Phi - np.einsum("cmp,pq,cnq->cmn", Xj, bread, Xj)
            G = U @ inner @ Lj
            A = Lj @ inverse_sqrt_psd((G + np.swapaxes(G, 1, 2)) / 2) @ U
            E = XW @ A
        elif adjust == "CR1":
            E = XW * np.sqrt(J / (J - 1))
        else:
            E = XW
        e = yj - Xj @ beta
        comp = np.einsum("cpm,cm->cp", E, e)
        meat += comp.T @ comp
        BE = np.einsum("pq,cqm->cpm", bread, E)
        g_parts.append((BE @ Lj, batch.clusters))
        h[batch.clusters] = BE @ Xj @ L_bread
    vcov = bread @ meat @ bread
    vcov = (vcov + vcov.T) / 2
    return SandwichFit(vcov, bread, g_parts, h, J)
