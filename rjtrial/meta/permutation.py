"""``permutation_test``: permutation p values for a meta-analysis (metafor's ``permutest``).

With few studies the z (or t) reference distribution of the pooled estimate and of
meta-regression coefficients can be far off; a permutation test needs only exchangeability.
For an intercept-only model the signs of the effects are flipped (under the null every
effect is as likely to be positive as negative); with moderators the rows of the design are
permuted over the effects. The model is refitted to each permuted data set (same method,
test and weights) and the p value is the share of permuted statistics at least as extreme
as the observed one. Exact (every sign vector, every distinct permutation) when that is no
more than ``reps`` refits or when asked, else ``reps`` random ones (the first the observed data).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rjtrial._result import Result, jsonable
from rjtrial.meta.estimators import estimate_tau2
from rjtrial.meta.regression import fit_fixed_part
from rjtrial.meta.result import MetaResult

#: metafor's comptol: statistics within sqrt(eps) of the observed one count as at least as extreme
COMPARISON_TOLERANCE = float(np.sqrt(np.finfo(float).eps))


@dataclass(frozen=True, eq=False)
class PermutationTest(Result):
    """Permutation p values for the coefficients (and the omnibus test of moderators).

    Attributes
    ----------
    coefficient_names : tuple of str
    coefficients, statistics : numpy.ndarray
        Observed estimates and z (or t) statistics.
    p_values : numpy.ndarray
        Permutation p values (two-sided: ``|z*| >= |z| - sqrt(eps)``).
    model_p_values : numpy.ndarray
        The model's own p values, for comparison.
    moderator_p_value : float or None
        Permutation p value of the omnibus test (``QM* >= QM``), models with moderators.
    n_permutations : int
        Refits made (including the observed data); ``exact`` whether they were all of them.
    n_failed : int
        Refits that failed (left out of the p values, as metafor does).
    method, test, alpha
    """

    coefficient_names: tuple[str, ...]
    coefficients: np.ndarray = field(repr=False)
    statistics: np.ndarray = field(repr=False)
    p_values: np.ndarray = field(repr=False)
    model_p_values: np.ndarray = field(repr=False)
    moderator_p_value: float | None
    n_permutations: int
    exact: bool
    n_failed: int
    method: str
    test: str
    alpha: float
    permuted_statistics_: np.ndarray = field(kw_only=True, repr=False)
    permuted_moderator_statistics_: np.ndarray | None = field(default=None, repr=False)

    def summary_frame(self) -> pd.DataFrame:
        """``term, estimate, statistic, p_value`` (permutation), ``model_p_value``;
        ``attrs``: ``n_permutations``, ``exact``, ``moderator_p_value``."""
        frame = pd.DataFrame(
            {
                "term": list(self.coefficient_names),
                "estimate": self.coefficients,
                "statistic": self.statistics,
                "p_value": self.p_values,
                "model_p_value": self.model_p_values,
            }
        )
        frame.attrs.update(
            n_permutations=self.n_permutations,
            exact=self.exact,
            method=self.method,
            test=self.test,
            moderator_p_value=self.moderator_p_value,
            alpha=self.alpha,
        )
        return frame

    def format(self, digits: int = 4) -> str:
        kind = "exact" if self.exact else "approximate"
        lines = [
            f"Permutation test ({kind}, {self.n_permutations} "
            f"{'sign flips' if len(self.coefficient_names) == 1 else 'permutations'}; "
            f"{self.method}, test {self.test})",
            self.summary_frame().to_string(index=False, float_format=lambda v: f"{v:.{digits}f}"),
        ]
        if self.moderator_p_value is not None:
            lines.append(f"Omnibus test of moderators: permutation p = {self.moderator_p_value:.{digits}f}")
        if self.n_failed:
            lines.append(f"note: {self.n_failed} refit(s) failed and were left out")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return jsonable(
            {
                "n_permutations": self.n_permutations,
                "exact": self.exact,
                "n_failed": self.n_failed,
                "method": self.method,
                "test": self.test,
                "moderator_p_value": self.moderator_p_value,
                "summary": self.summary_frame(),
            }
        )


def _statistics(y, v, X, options, a) -> tuple[np.ndarray, np.ndarray, float]:
    """Refit: coefficients, their z/t statistics and QM (chi^2 form)."""
    k, p = X.shape
    if options.method == "FE" or k == 1:
        tau2 = 0.0
    else:
        tau2 = estimate_tau2(
            y, v, X, method=options.method, tol=options.tol, max_iterations=options.max_iterations, weights=a
        ).tau2
    fixed = fit_fixed_part(y, v, X, tau2, test=options.test, alpha=options.alpha, weights=a)
    qm = np.nan
    if p > 1:
        b = fixed.beta[1:]
        qm = float(b @ np.linalg.solve(fixed.vcov[1:, 1:], b))
    return fixed.beta, fixed.statistic, qm


def _sign_flip_statistics(Y: np.ndarray, v: np.ndarray, options) -> np.ndarray:
    """z (or t) of the pooled estimate for many sign-flipped data sets at once (intercept-only
    FE, DL, ML, REML; the same algorithm as :func:`rjtrial.meta.estimators.estimate_tau2`)."""
    n, k = Y.shape
    method = options.method
    if method == "FE":
        tau2 = np.zeros(n)
    elif method == "DL":
        w = 1.0 / v
        mu = Y @ w / w.sum()
        q = ((Y - mu[:, None]) ** 2) @ w
        tau2 = np.maximum(0.0, (q - (k - 1)) / (w.sum() - np.sum(w**2) / w.sum()))
    else:
        reml = method == "REML"
        ybar = Y.mean(axis=1)
        tau2 = np.maximum(0.0, (np.sum((Y - ybar[:, None]) ** 2, axis=1) - v.sum() * (k - 1) / k) / (k - 1))
        active = np.ones(n, dtype=bool)
        for _ in range(options.max_iterations):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            t = tau2[idx]
            w = 1.0 / (v[None, :] + t[:, None])
            sw = w.sum(1)
            mu = np.sum(w * Y[idx], axis=1) / sw
            r = Y[idx] - mu[:, None]
            ypp_y = np.sum(w * w * r * r, axis=1)
            sw2 = np.sum(w * w, axis=1)
            if reml:
                sw3 = np.sum(w**3, axis=1)
                step = (ypp_y - (sw - sw2 / sw)) / (sw2 - 2 * sw3 / sw + (sw2 / sw) ** 2)
            else:
                step = (ypp_y - sw) / sw2
            step = np.where(np.isfinite(step), step, 0.0)
            step = np.where((t == 0.0) & (t + step < 0), 0.0, step)
            while np.any(t + step < 0):
                step = np.where(t + step < 0, step / 2, step)
            tau2[idx] = t + step
            done = np.abs(step) <= options.tol * np.maximum(1.0, tau2[idx])
            active[idx[done]] = False
        tau2 = np.maximum(tau2, 0.0)
        # metafor's ll0check: a boundary maximum at 0 that scoring stepped past

        def loglik(t):
            w = 1.0 / (v[None, :] + t[:, None])
            sw = w.sum(1)
            mu = np.sum(w * Y, axis=1) / sw
            ll = -0.5 * np.sum(np.log(v[None, :] + t[:, None]), axis=1) - 0.5 * np.sum(w * (Y - mu[:, None]) ** 2, 1)
            return ll - 0.5 * np.log(sw) if reml else ll

        check = tau2 > options.tol
        if check.any():
            drop = check & (loglik(np.zeros(n)) - loglik(tau2) > options.tol)
            tau2[drop] = 0.0
    w = 1.0 / (v[None, :] + tau2[:, None])
    sw = w.sum(1)
    mu = np.sum(w * Y, axis=1) / sw
    se = 1.0 / np.sqrt(sw)
    if options.test in ("knha", "adhoc"):
        rss = np.sum(w * (Y - mu[:, None]) ** 2, axis=1)
        factor = np.where(rss > np.finfo(float).eps, rss / (k - 1), 0.0)
        if options.test == "adhoc":
            factor = np.maximum(factor, 1.0)
        se = se * np.sqrt(factor)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (mu / se)[:, None]


def _distinct_permutations(labels: np.ndarray):
    """Every distinct permutation of ``labels`` (integers), in lexicographic order."""
    a = np.sort(labels).tolist()
    n = len(a)
    while True:
        yield list(a)
        i = n - 2
        while i >= 0 and a[i] >= a[i + 1]:
            i -= 1
        if i < 0:
            return
        j = n - 1
        while a[j] <= a[i]:
            j -= 1
        a[i], a[j] = a[j], a[i]
        a[i + 1 :] = reversed(a[i + 1 :])


def permutation_test(result: MetaResult, *, reps: int = 1000, rng=None, exact: bool | None = None) -> PermutationTest:
    """Permutation test of the pooled estimate or of meta-regression coefficients.

    Parameters
    ----------
    result : MetaResult
        An inverse-variance fit from :func:`rjtrial.meta.pool`.
    reps : int, default 1000
        Number of random permutations (sign flips) when the test is not exact.
    rng : int or numpy.random.Generator, optional
        Seed or generator for the random permutations (exact tests use none).
    exact : bool, optional
        Force the exact test (every sign vector / every distinct permutation of the design
        rows); default: exact when that takes no more than ``reps`` refits (metafor's rule).

    Returns
    -------
    PermutationTest
        ``summary_frame()``: ``term, estimate, statistic, p_value`` (permutation),
        ``model_p_value``; ``moderator_p_value`` for the omnibus test.

    Notes
    -----
    Exact tests agree with R ``metafor::permutest(res, exact = TRUE)`` (``pval``, ``QMp``)
    exactly on dat.bcg (2^13 sign flips, with z and Knapp-Hartung tests) and on a meta-regression
    on its first 7 trials (7! permutations) (tests/validation/test_metafor_options_bcg.py).
    Random permutations cannot reproduce R's random numbers; they are seeded here.

    References
    ----------
    Follmann, D. A., & Proschan, M. A. (1999). Valid inference in random effects
    meta-analysis. Biometrics, 55(3), 732-737. doi:10.1111/j.0006-341X.1999.00732.x

    Viechtbauer, W., Lopez-Lopez, J. A., Sanchez-Meca, J., & Marin-Martinez, F. (2015). A
    comparison of procedures to test for moderators in mixed-effects meta-regression models.
    Psychological Methods, 20(3), 360-374. doi:10.1037/met0000023

    Examples
    --------
    >>> from rjtrial import datasets, effects, meta
    >>> bcg = datasets.load_bcg()
    >>> es = effects.log_risk_ratio(bcg, events_treatment="tpos", n_treatment=bcg.tpos + bcg.tneg,
    ...                             events_control="cpos", n_control=bcg.cpos + bcg.cneg)
    >>> perm = meta.permutation_test(meta.pool(es), exact=True)
    >>> print(perm.exact, perm.n_permutations, f"{perm.p_values[0]:.4f}")
    True 8192 0.0015
    """
    if not isinstance(result, MetaResult):
        raise TypeError(f"permutation_test needs a MetaResult from rjtrial.meta.pool, not {type(result).__name__}")
    if result.method in ("MH", "Peto"):
        raise ValueError(f"permutation_test needs an inverse-variance model, not method={result.method!r}")
    if int(reps) < 2:
        raise ValueError(f"reps must be at least 2, got {reps!r}")
    reps = int(reps)
    rows = np.isfinite(result.yi) & np.isfinite(result.vi)
    y, v, X = result.yi[rows], result.vi[rows], result.X[rows]
    a = result.data_.weights[rows] if result.data_.weights is not None else None
    options = result.options_
    k, p = X.shape
    observed_beta, observed_stat, observed_qm = _statistics(y, v, X, options, a)
    generator = np.random.default_rng(rng)
    failed = 0
    if p == 1:
        total = 2.0**k
        is_exact = bool(exact) if exact is not None else total <= reps
        if is_exact:
            if k > 24:
                raise ValueError(f"an exact sign-flip test of {k} studies needs 2^{k} refits: too many")
            n = int(total)
            signs = 1.0 - 2.0 * ((np.arange(n)[:, None] >> np.arange(k)[None, :]) & 1)
        else:
            n = reps
            signs = generator.choice([-1.0, 1.0], size=(n, k))
            signs[0] = 1.0
        if options.method in ("FE", "DL", "ML", "REML") and a is None:
            stats = _sign_flip_statistics(signs * y[None, :], v, options)
        else:
            stats = np.vstack([_statistics(s * y, v, X, options, a)[1] for s in signs])
        qm = None
    else:
        _, codes = np.unique(X, axis=0, return_inverse=True)
        codes = codes.ravel()
        counts = np.bincount(codes)
        total = math.factorial(k) // math.prod(math.factorial(int(c)) for c in counts)
        is_exact = bool(exact) if exact is not None else total <= reps
        if is_exact:
            if total > 10**7:
                raise ValueError(f"an exact permutation test here needs {total:,} refits: too many")
            # each distinct arrangement of the design rows over the effects
            representative = np.array([np.flatnonzero(codes == c)[0] for c in range(len(counts))])
            orders: Iterable[np.ndarray] = (representative[np.array(perm)] for perm in _distinct_permutations(codes))
            n = total
        else:
            n = reps
            orders = [np.arange(k)] + [generator.permutation(k) for _ in range(reps - 1)]
        stats = np.empty((n, p))
        qm = np.empty(n)
        for i, order in enumerate(orders):
            try:
                _, stats[i], qm[i] = _statistics(y, v, X[order], options, a)
            except (np.linalg.LinAlgError, ValueError):
                stats[i], qm[i] = np.nan, np.nan
                failed += 1
    with np.errstate(invalid="ignore"):
        extreme = np.abs(stats) >= np.abs(observed_stat)[None, :] - COMPARISON_TOLERANCE
    valid = np.isfinite(stats)
    p_values = np.minimum(1.0, np.sum(extreme & valid, axis=0) / np.sum(valid, axis=0))
    moderator_p = None
    if qm is not None:
        ok = np.isfinite(qm)
        moderator_p = float(np.mean(qm[ok] >= observed_qm - COMPARISON_TOLERANCE))
    return PermutationTest(
        coefficient_names=result.coefficient_names,
        coefficients=np.asarray(observed_beta, float),
        statistics=np.asarray(observed_stat, float),
        p_values=p_values,
        model_p_values=np.asarray(result.coefficient_p_values, float),
        moderator_p_value=moderator_p,
        n_permutations=int(n),
        exact=bool(is_exact),
        n_failed=failed,
        method=result.method,
        test=result.test,
        alpha=result.alpha,
        permuted_statistics_=stats,
        permuted_moderator_statistics_=qm,
    )
