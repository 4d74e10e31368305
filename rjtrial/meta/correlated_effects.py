"""``rve``: robust variance estimation with the correlated-effects working model of Hedges,
Tipton & Johnson (2010), as R ``robumeta::robu(..., modelweights = "CORR")``.

Each study j with k_j effects gets the weight ``1 / (k_j (mean(v_j) + tau^2))`` on every one of
its effects, tau^2 from the method-of-moments estimator of the correlated-effects model at an
assumed within-study correlation ``rho``; inference is cluster-robust (CR2 with Satterthwaite
df when ``small=True``, Tipton 2015), so it is valid whatever the true correlation.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rjtrial._result import Result, jsonable
from rjtrial.errors import DataError, RjtrialWarning
from rjtrial.meta._blocks import Blocks, codes_of
from rjtrial.meta._data import prepare
from rjtrial.meta._sandwich import sandwich
from rjtrial.meta.cluster_robust import RobustResult, WaldTest, _result


@dataclass(frozen=True, eq=False)
class RVEResult(Result):
    """A correlated-effects RVE meta-analysis (:func:`rve`).

    Attributes
    ----------
    robust : RobustResult
        Coefficients with cluster-robust SEs, df, tests (``robust.summary_frame()``).
    tau2 : float
        Between-study variance (method of moments at ``rho``; robumeta's ``tau.sq``).
    i2 : float
        I^2 (percent) of the correlated-effects model (robumeta's ``I.2``).
    rho : float
        Assumed within-study correlation of the effects (only tau^2 and the weights depend on it).
    weights : numpy.ndarray
        Weight of each effect, ``1 / (k_j (mean v_j + tau^2))``.
    small : bool
        CR2 with Satterthwaite df (True) or the large-sample CR0 with ``J / (J - p)`` and
        ``J - p`` df (False).
    k, n_clusters, n_omitted, cluster, alpha, measure, notes
    """

    robust: RobustResult
    tau2: float
    i2: float
    rho: float
    weights: np.ndarray = field(repr=False)
    small: bool
    k: int
    n_clusters: int
    n_omitted: int
    cluster: str
    alpha: float
    measure: str | None
    notes: tuple[str, ...] = ()

    @property
    def estimate(self) -> float:
        """The intercept (the pooled effect in an intercept-only model)."""
        return float(self.robust.coefficients[0])

    def summary_frame(self) -> pd.DataFrame:
        """``term, estimate, std_error, statistic, df, p_value, ci_lower, ci_upper``
        (see :meth:`RobustResult.summary_frame`); ``attrs`` add ``tau2``, ``rho``, ``small``."""
        frame = self.robust.summary_frame()
        frame.attrs.update(tau2=self.tau2, i2=self.i2, rho=self.rho, small=self.small, notes=self.notes)
        return frame

    def wald_test(self, terms=None, *, constraints=None) -> WaldTest:
        """HTZ test of several coefficients; see :meth:`RobustResult.wald_test`."""
        return self.robust.wald_test(terms, constraints=constraints)

    def format(self, digits: int = 4) -> str:
        f = f"{{:.{digits}f}}"
        lines = [
            f"RVE: correlated effects model{' with small-sample corrections' if self.small else ''} "
            f"(rho = {self.rho:g})",
            f"{self.k} effects in {self.n_clusters} clusters ({self.cluster})"
            + (f"; {self.n_omitted} row(s) omitted" if self.n_omitted else ""),
            f"tau^2 = {f.format(self.tau2)}   I^2 = {self.i2:.2f}%",
            self.summary_frame().to_string(index=False, float_format=f.format),
        ]
        if self.robust.moderator_test is not None:
            t = self.robust.moderator_test
            lines.append(
                f"Moderators (HTZ): F({t.df_numerator:g}, {t.df_denominator:.2f}) = {t.statistic:.4f}, "
                f"p = {t.p_value:.4f}"
            )
        if np.any(self.robust.df < 4):
            lines.append("note: df below 4 -- do not trust these p values (Tipton 2015)")
        for note in self.notes:
            lines.append(f"note: {note}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return jsonable(
            {
                "tau2": self.tau2,
                "i2": self.i2,
                "rho": self.rho,
                "small": self.small,
                "k": self.k,
                "n_clusters": self.n_clusters,
                "n_omitted": self.n_omitted,
                "cluster": self.cluster,
                "alpha": self.alpha,
                "measure": self.measure,
                "notes": list(self.notes),
                "summary": self.summary_frame(),
                "moderator_test": self.robust.moderator_test,
            }
        )


def rve(
    effects: pd.DataFrame,
    *,
    cluster: str = "study",
    rho: float = 0.8,
    small: bool = True,
    moderators=None,
    alpha: float = 0.05,
    na_action: str = "omit",
) -> RVEResult:
    """Robust variance estimation meta-analysis (correlated-effects weights).

    Parameters
    ----------
    effects : pandas.DataFrame
        One row per effect size: ``estimate``, ``variance`` and the ``cluster`` column.
    cluster : str, default "study"
        Column naming the independent clusters (studies).
    rho : float, default 0.8
        Assumed correlation of effects within a study, in [0, 1] (robumeta's default 0.8);
        a sensitivity analysis over rho is customary, and the estimates rarely move.
    small : bool, default True
        Small-sample corrections: CR2 residuals and Satterthwaite df (robumeta ``small =
        TRUE``). Otherwise CR0 scaled by ``J / (J - p)`` with ``J - p`` df.
    moderators : optional
        Meta-regression, as in :func:`rjtrial.meta.pool`.
    alpha : float, default 0.05
    na_action : {"omit", "raise"}, default "omit"
        Rows with a missing estimate, variance or moderator: left out with a warning and
        counted in ``n_omitted``, or a DataError naming the row.

    Returns
    -------
    RVEResult
        ``summary_frame()``: ``term, estimate, std_error, statistic, df, p_value, ci_lower,
        ci_upper``; ``tau2``, ``i2``, ``weights``; ``wald_test()`` (HTZ).

    Notes
    -----
    tau^2 = max(0, (Q_E - J + tr(B^-1 sum X_j' W_j X_j / k_j)) / (sum w - tr(B^-1 sum X_j' W_j
    J_j W_j X_j)) + rho tr(B^-1 sum w_j/k_j (X_j' J_j X_j - X_j' X_j)) / (same denominator)),
    with the first-step weights ``w_j = 1 / (k_j mean v_j)`` and ``B = X' W X`` (Hedges, Tipton &
    Johnson 2010, eq. 15). Agrees with R ``robumeta::robu(y ~ x, studynum = study,
    var.eff.size = v, modelweights = "CORR", rho = rho, small = small)`` (b.r, SE, t, dfs,
    prob, CI, tau.sq, I.2) to 1e-9 on dat.tannersmith2016, dat.assink2016 and a generated set
    (tests/validation/). robumeta's intervals are always 95%; here they follow ``alpha``.

    References
    ----------
    Hedges, L. V., Tipton, E., & Johnson, M. C. (2010). Robust variance estimation in
    meta-regression with dependent effect size estimates. Research Synthesis Methods, 1(1),
    39-65. doi:10.1002/jrsm.5

    Tipton, E. (2015). Small sample adjustments for robust variance estimation with
    meta-regression. Psychological Methods, 20(3), 375-393. doi:10.1037/met0000011

    Examples
    --------
    >>> from rjtrial import datasets, meta
    >>> schools = datasets.load_konstantopoulos2011()
    >>> res = meta.rve(schools, cluster="district")
    >>> row = res.summary_frame().iloc[0]
    >>> print(f"{row.estimate:.4f} {row.std_error:.4f} {row.df:.2f}")
    0.1975 0.0876 9.63
    """
    if not 0 <= float(rho) <= 1:
        raise ValueError(f"rho must be in [0, 1], got {rho!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if not isinstance(cluster, str) or cluster not in getattr(effects, "columns", ()):
        raise ValueError(f"cluster={cluster!r} is not a column of effects")
    data = prepare(effects, moderators, na_action=na_action)
    labels_all = effects[cluster]
    if labels_all.isna().any():
        row = labels_all.index[np.flatnonzero(labels_all.isna().to_numpy())[0]]
        raise DataError("missing cluster label", table="effects", row=row, column=cluster)
    rows = data.estimable
    n_omitted = int((~rows).sum())
    notes = []
    if n_omitted:
        note = f"{n_omitted} row(s) with a missing estimate, variance or moderator omitted"
        warnings.warn(note, RjtrialWarning, stacklevel=2)
        notes.append(note)
    y, v, X = data.yi[rows], data.vi[rows], data.X[rows]
    codes = codes_of(labels_all.to_numpy()[rows])
    blocks = Blocks(codes)
    M, p = X.shape
    J = blocks.n_clusters
    if J < 2:
        raise ValueError("robust variance estimation needs at least 2 clusters")
    if np.linalg.matrix_rank(X) < p:
        raise ValueError(f"the design ({', '.join(data.names)}) is rank deficient")
    if J <= p:
        raise ValueError(f"{J} clusters cannot support {p} coefficients")
    k_j = np.bincount(codes).astype(float)
    vbar_j = np.bincount(codes, weights=v) / k_j
    kk, vbar = k_j[codes], vbar_j[codes]
    w = 1.0 / (kk * vbar)
    # first step: the moment estimator of tau^2 (robumeta's CORR branch)
    B_inv = np.linalg.inv(X.T @ (X * w[:, None]))
    b = B_inv @ (X.T @ (w * y))
    e = y - X @ b
    Qe = float(np.sum(w * e * e))
    w_j = 1.0 / (k_j * vbar_j)
    sx = np.zeros((J, p))  # X_j' 1
    np.add.at(sx, codes, X)
    sum_xwjwx = np.einsum("j,jp,jq->pq", w_j**2, sx, sx)
    sum_wkxx = X.T @ (X * (w / kk)[:, None])
    xjx = np.einsum("j,jp,jq->pq", w_j / k_j, sx, sx)
    sum_wk_xjx_xx = xjx - sum_wkxx
    denom = float(np.sum(w)) - float(np.sum(B_inv * sum_xwjwx))
    term_a = float(np.sum(B_inv * sum_wkxx))
    term_b = float(np.sum(B_inv * sum_wk_xjx_xx))
    tau2 = max(0.0, (Qe - J + term_a) / denom + rho * term_b / denom)
    df_i2 = J - term_a - rho * term_b
    i2 = max(0.0, (Qe - df_i2) / Qe * 100) if Qe > 0 else 0.0
    # second step: the RVE fit with weights 1 / (k_j (vbar_j + tau^2))
    wr = 1.0 / (kk * (vbar + tau2))
    beta = np.linalg.solve(X.T @ (X * wr[:, None]), X.T @ (wr * y))
    phi = []
    for batch in blocks.batches:
        m = batch.size
        block = np.zeros((len(batch.clusters), m, m))
        block[:, np.arange(m), np.arange(m)] = 1.0 / wr[batch.rows]
        phi.append(block)
    if small:
        fit = sandwich(y, X, beta, blocks, phi, adjust="CR2")
        robust_result = _result(
            fit,
            beta,
            data.names,
            adjust="CR2",
            cluster=cluster,
            k=M,
            alpha=alpha,
            model=f"RVE correlated effects (rho = {rho:g})",
        )
    else:
        fit = sandwich(y, X, beta, blocks, phi, adjust="CR0")
        robust_result = RobustResult(
            coefficient_names=tuple(data.names),
            coefficients=beta,
            vcov=fit.vcov * J / (J - p),
            df=np.full(p, float(J - p)),
            moderator_test=None,
            adjust="CR0 x J/(J-p)",
            cluster=cluster,
            n_clusters=J,
            k=M,
            alpha=float(alpha),
            model=f"RVE correlated effects (rho = {rho:g})",
            sandwich_=None,
        )
    weights = np.full(len(rows), np.nan)
    weights[rows] = wr
    weights.flags.writeable = False
    return RVEResult(
        robust=robust_result,
        tau2=float(tau2),
        i2=float(i2),
        rho=float(rho),
        weights=weights,
        small=bool(small),
        k=int(M),
        n_clusters=int(J),
        n_omitted=n_omitted,
        cluster=cluster,
        alpha=float(alpha),
        measure=data.measure,
        notes=tuple(notes),
    )
