"""``pool_multilevel``: multilevel (three-level and deeper) meta-analysis of dependent effect sizes.

Several effect sizes per study (several outcomes, follow-up periods or sites of one trial)
are not independent. The multilevel model gives each level of nesting its own variance
component, as R ``metafor::rma.mv(yi, vi, random = ~ 1 | study/es_id)``; with ``rho`` the
sampling errors within a study are also correlated (``clubSandwich::impute_covariance_matrix``).
Cluster-robust inference on the result is :func:`rjtrial.meta.robust`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from rjtrial._result import Result, jsonable
from rjtrial.errors import ConvergenceWarning, DataError, RjtrialWarning
from rjtrial.meta._blocks import Blocks, codes_of
from rjtrial.meta._data import prepare
from rjtrial.meta._multilevel_fit import MultilevelModel, fit_components, profile_limits, starting_values
from rjtrial.meta.regression import TestResult

MULTILEVEL_METHODS = ("REML", "ML")
MULTILEVEL_TESTS = ("z", "t")


@dataclass(frozen=True, eq=False)
class MultilevelResult(Result):
    """A fitted multilevel meta-analysis (:func:`pool_multilevel`).

    Attributes
    ----------
    coefficient_names : tuple of str
        ``("intercept", moderators...)``.
    coefficients, vcov : numpy.ndarray
        Fixed effects and their model-based covariance ``(X' M^-1 X)^-1``.
    estimate, std_error, statistic, p_value, ci_lower, ci_upper : float
        The pooled effect (intercept-only models; NaN with moderators).
    pi_lower, pi_upper : float
        Prediction interval for a new effect: ``estimate -/+ crit sqrt(se^2 + sum sigma^2)``.
    levels : tuple of str
        Level names, outermost first; the variance of level ``l`` is between groups of the
        columns ``levels[: l + 1]`` (metafor's ``study`` and ``study/es_id``).
    sigma2 : numpy.ndarray
        Variance component of each level.
    sigma2_ci_lower, sigma2_ci_upper : numpy.ndarray
        Profile-likelihood confidence limits (NaN when ``profile=False``).
    n_groups : tuple of int
        Number of groups at each level.
    i2, i2_levels : float, numpy.ndarray
        I^2 (percent): total and per level, ``100 sigma_l^2 / (sum sigma^2 + s^2)`` with the
        typical sampling variance ``s^2 = (k - p) / tr(P)``, ``P`` from ``W = V^-1``
        (metafor's FAQ formula).
    q, q_df, q_p_value
        Test of (residual) heterogeneity, ``Q_E = e' P_V e`` (metafor's ``QE``).
    moderator_test : TestResult or None
        Omnibus test of the moderators (chi^2, or F with ``test="t"``).
    log_likelihood : float
        Log-likelihood (REML or ML) as metafor's ``logLik``.
    k, n_omitted : int
        Effects used; rows left out for a missing estimate or variance.
    method, test, alpha, df, rho, measure
        As given; ``df`` is ``k - p`` for ``test="t"``, None for z.
    converged, n_iterations
        Fisher scoring of the variance components.
    notes : tuple of str
        Anything the fit had to say (also issued as warnings).
    """

    coefficient_names: tuple[str, ...]
    coefficients: np.ndarray = field(repr=False)
    vcov: np.ndarray = field(repr=False)
    estimate: float
    std_error: float
    statistic: float
    p_value: float
    ci_lower: float
    ci_upper: float
    pi_lower: float
    pi_upper: float
    levels: tuple[str, ...]
    sigma2: np.ndarray = field(repr=False)
    sigma2_ci_lower: np.ndarray = field(repr=False)
    sigma2_ci_upper: np.ndarray = field(repr=False)
    n_groups: tuple[int, ...]
    i2: float
    i2_levels: np.ndarray = field(repr=False)
    typical_variance: float
    q: float
    q_df: int
    q_p_value: float
    moderator_test: TestResult | None
    log_likelihood: float
    k: int
    n_omitted: int
    method: str
    test: str
    alpha: float
    df: float | None
    rho: float | None
    measure: str | None
    converged: bool
    n_iterations: int
    notes: tuple[str, ...] = ()
    yi_: np.ndarray = field(kw_only=True, repr=False)
    vi_: np.ndarray = field(kw_only=True, repr=False)
    X_: np.ndarray = field(kw_only=True, repr=False)
    level_codes_: tuple = field(default=(), repr=False)
    studies_: pd.Index = field(default=None, repr=False)
    frame_: pd.DataFrame | None = field(default=None, repr=False)
    model_: Any = field(default=None, repr=False)
    options_: dict = field(default_factory=dict, repr=False)

    # ---- derived ---------------------------------------------------------------------------
    @property
    def has_moderators(self) -> bool:
        return len(self.coefficient_names) > 1

    @property
    def coefficient_std_errors(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vcov))

    def _critical(self) -> float:
        return float(stats.norm.isf(self.alpha / 2) if self.df is None else stats.t.isf(self.alpha / 2, self.df))

    # ---- tidy frames -----------------------------------------------------------------------
    def summary_frame(self) -> pd.DataFrame:
        """The fixed effects.

        Returns
        -------
        pandas.DataFrame
            One row per coefficient: ``term`` (``intercept``, moderators), ``estimate``,
            ``std_error``, ``statistic`` (z, or t on ``attrs["df"]``), ``p_value``,
            ``ci_lower``, ``ci_upper``. ``attrs``: ``alpha``, ``method``, ``test``, ``df``,
            ``measure``, ``notes``.
        """
        se = self.coefficient_std_errors
        with np.errstate(divide="ignore", invalid="ignore"):
            z = self.coefficients / se
        if self.df is None:
            p = 2 * stats.norm.sf(np.abs(z))
        else:
            p = 2 * stats.t.sf(np.abs(z), self.df)
        crit = self._critical()
        frame = pd.DataFrame(
            {
                "term": list(self.coefficient_names),
                "estimate": self.coefficients,
                "std_error": se,
                "statistic": z,
                "p_value": p,
                "ci_lower": self.coefficients - crit * se,
                "ci_upper": self.coefficients + crit * se,
            }
        )
        frame.attrs.update(
            alpha=self.alpha, method=self.method, test=self.test, df=self.df, measure=self.measure, notes=self.notes
        )
        return frame

    def variance_components_frame(self) -> pd.DataFrame:
        """One row per level: ``level``, ``n_groups``, ``sigma2``, ``sigma``, ``ci_lower``,
        ``ci_upper`` (profile-likelihood limits of sigma^2) and ``i2`` (percent of the total
        variance at that level). ``attrs["alpha"]``."""
        frame = pd.DataFrame(
            {
                "level": [self._level_label(i) for i in range(len(self.levels))],
                "n_groups": list(self.n_groups),
                "sigma2": self.sigma2,
                "sigma": np.sqrt(self.sigma2),
                "ci_lower": self.sigma2_ci_lower,
                "ci_upper": self.sigma2_ci_upper,
                "i2": self.i2_levels,
            }
        )
        frame.attrs.update(alpha=self.alpha, method=self.method, i2_total=self.i2)
        return frame

    def _level_label(self, i: int) -> str:
        return "/".join(self.levels[: i + 1])

    def confint(self) -> pd.DataFrame:
        """Profile-likelihood confidence intervals of the variance components (metafor's
        ``confint(res)`` on an ``rma.mv`` fit): :meth:`variance_components_frame`, the limits
        computed now if the fit was made with ``profile=False``."""
        if np.all(np.isfinite(self.sigma2_ci_lower)):
            return self.variance_components_frame()
        lower, upper, notes = _profile(
            self.model_,
            self.sigma2,
            self.log_likelihood,
            alpha=self.alpha,
            tol=self.options_["tol"],
            max_iterations=self.options_["max_iterations"],
            labels=[self._level_label(i) for i in range(len(self.levels))],
        )
        frame = self.variance_components_frame()
        frame["ci_lower"], frame["ci_upper"] = lower, upper
        if notes:
            frame.attrs["notes"] = tuple(notes)
        return frame

    def predict(self, moderators=None) -> pd.DataFrame:
        """Predicted mean effect with confidence and prediction intervals (``predict.rma``).

        Parameters
        ----------
        moderators : array-like, optional
            Moderator values (without the intercept), one row per prediction.

        Returns
        -------
        pandas.DataFrame
            ``estimate, std_error, ci_lower, ci_upper, pi_lower, pi_upper``; the prediction
            interval adds the sum of the variance components.
        """
        p = len(self.coefficient_names)
        if moderators is None:
            if p > 1:
                raise ValueError(f"give moderator values for {', '.join(self.coefficient_names[1:])}")
            x = np.ones((1, 1))
        else:
            values = np.atleast_2d(np.asarray(moderators, dtype=float))
            if values.shape[1] != p - 1:
                raise ValueError(
                    f"moderators need {p - 1} columns ({', '.join(self.coefficient_names[1:])}), got {values.shape[1]}"
                )
            x = np.column_stack([np.ones(len(values)), values])
        pred = x @ self.coefficients
        se = np.sqrt(np.einsum("ij,jk,ik->i", x, self.vcov, x))
        crit = self._critical()
        total = float(np.sum(self.sigma2))
        frame = pd.DataFrame(
            {
                "estimate": pred,
                "std_error": se,
                "ci_lower": pred - crit * se,
                "ci_upper": pred + crit * se,
                "pi_lower": pred - crit * np.sqrt(se**2 + total),
                "pi_upper": pred + crit * np.sqrt(se**2 + total),
            }
        )
        frame.attrs["alpha"] = self.alpha
        return frame

    def robust(self, *, cluster: str | None = None, adjust: str = "CR2"):
        """Cluster-robust inference; see :func:`rjtrial.meta.robust`."""
        from rjtrial.meta.cluster_robust import robust

        return robust(self, cluster=cluster, adjust=adjust)

    def ranef(self) -> dict[str, pd.DataFrame]:
        """Best linear unbiased predictions of the random effects; see :func:`rjtrial.meta.ranef`."""
        from rjtrial.meta.shrinkage import ranef

        return ranef(self)

    # ---- for robust variance and BLUPs -------------------------------------------------------
    def marginal_blocks(self, blocks: Blocks) -> list[np.ndarray]:
        """Blocks of the fitted marginal covariance M over the clusters of ``blocks`` (which
        must contain whole outermost-level groups)."""
        out = []
        top = self.level_codes_[0]
        rho = self.rho
        for b in blocks.batches:
            v = self.vi_[b.rows]
            m = b.size
            idx = np.arange(m)
            block = np.zeros((len(b.clusters), m, m))
            same_top = top[b.rows][:, :, None] == top[b.rows][:, None, :]
            if rho is not None:
                s = np.sqrt(v)
                block += np.where(same_top, rho * s[:, :, None] * s[:, None, :], 0.0)
            block[:, idx, idx] = v
            for level, s2 in enumerate(self.sigma2):
                codes = self.level_codes_[level][b.rows]
                block += s2 * (codes[:, :, None] == codes[:, None, :])
            out.append(block)
        return out

    # ---- text ------------------------------------------------------------------------------
    def format(self, digits: int = 4) -> str:
        f = f"{{:.{digits}f}}"
        level = f"{100 * (1 - self.alpha):g}%"
        kind = "Multilevel mixed-effects" if self.has_moderators else "Multilevel random-effects"
        head = (
            f"{kind} meta-analysis (k = {self.k}; {self.method}"
            + (", t tests on {:g} df".format(self.df) if self.df is not None else "")
            + ")"
        )
        lines = [head]
        if self.n_omitted:
            lines.append(f"{self.n_omitted} row(s) omitted (missing estimate, variance or moderator)")
        if self.measure:
            lines.append(f"measure: {self.measure}")
        if self.rho is not None:
            lines.append(f"sampling errors correlated within {self.levels[0]}: rho = {self.rho:g}")
        lines.append(f"Variance components ({level} profile-likelihood CI):")
        vc = self.variance_components_frame()
        for _, row in vc.iterrows():
            ci = "" if not np.isfinite(row.ci_lower) else f" [{f.format(row.ci_lower)}, {f.format(row.ci_upper)}]"
            lines.append(
                f"  sigma^2 {row.level:<24} {f.format(row.sigma2)}{ci}  (groups {row.n_groups}; I^2 {row.i2:.2f}%)"
            )
        lines.append(f"I^2 total = {self.i2:.2f}%   logLik = {self.log_likelihood:.4f}")
        lines.append(
            f"{'Residual heterogeneity' if self.has_moderators else 'Heterogeneity'}: "
            f"Q({self.q_df}) = {self.q:.4f}, {_p(self.q_p_value)}"
        )
        if self.moderator_test is not None:
            t = self.moderator_test
            dist = f"F({t.df:g}, {t.df_denominator:g})" if t.distribution == "F" else f"QM({t.df:g})"
            lines.append(f"Moderators: {dist} = {t.statistic:.4f}, {_p(t.p_value)}")
        lines.append(self.summary_frame().to_string(index=False, float_format=f.format))
        if not self.has_moderators:
            lines.append(f"{level} PI [{f.format(self.pi_lower)}, {f.format(self.pi_upper)}]")
        for note in self.notes:
            lines.append(f"note: {note}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "method": self.method,
            "test": self.test,
            "alpha": self.alpha,
            "df": self.df,
            "k": self.k,
            "n_omitted": self.n_omitted,
            "rho": self.rho,
            "measure": self.measure,
            "estimate": self.estimate,
            "std_error": self.std_error,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
            "pi_lower": self.pi_lower,
            "pi_upper": self.pi_upper,
            "i2": self.i2,
            "q": self.q,
            "q_df": self.q_df,
            "q_p_value": self.q_p_value,
            "log_likelihood": self.log_likelihood,
            "converged": self.converged,
            "n_iterations": self.n_iterations,
            "notes": list(self.notes),
            "coefficients": self.summary_frame(),
            "variance_components": self.variance_components_frame(),
            "moderator_test": self.moderator_test,
        }
        out["summary"] = out["coefficients"]
        return jsonable(out)


def _p(p: float) -> str:
    return "p = NA" if not np.isfinite(p) else ("p < .0001" if p < 1e-4 else f"p = {p:.4f}")


def _profile(model, sigma2, log_likelihood, *, alpha, tol, max_iterations, labels):
    from rjtrial.meta._multilevel_fit import ComponentFit

    fit = ComponentFit(np.asarray(sigma2, float), float(log_likelihood), True, 0)
    critical = float(stats.chi2.ppf(1 - alpha, 1))
    lower, upper, notes = [], [], []
    for level in range(len(sigma2)):
        lo, hi, lo_bounded, hi_bounded, ok = profile_limits(
            model, fit, level, critical=critical, tol=tol, max_iterations=max_iterations
        )
        lower.append(lo)
        upper.append(hi)
        if hi_bounded:
            notes.append(f"the upper profile limit of sigma^2 ({labels[level]}) is the search bound {hi:g}")
        if not ok:
            notes.append(f"a profile refit for sigma^2 ({labels[level]}) did not converge")
    return np.array(lower), np.array(upper), notes


def _level_columns(effects: pd.DataFrame, levels) -> list[str]:
    if isinstance(levels, str):
        levels = [levels]
    levels = list(levels)
    if not levels:
        raise ValueError("levels must name at least one column (the study)")
    missing = [c for c in levels if c not in effects.columns]
    if missing:
        raise ValueError(
            f"levels {missing} are not columns of effects (columns: {', '.join(map(str, effects.columns))})"
        )
    for name in levels:
        col = effects[name]
        if col.isna().any():
            row = col.index[np.flatnonzero(col.isna().to_numpy())[0]]
            raise DataError("missing level label", table="effects", row=row, column=str(name))
    return levels


def _check_rho(rho: float, codes: np.ndarray, labels: np.ndarray, column: str) -> None:
    """A constant correlation ``rho`` among m effects is a covariance only when
    ``rho > -1/(m - 1)``; name the largest group when it is not."""
    sizes = np.bincount(codes)
    m = int(sizes.max())
    if m > 1 and rho <= -1 / (m - 1):
        label = labels[np.flatnonzero(codes == int(np.argmax(sizes)))[0]]
        label = label.item() if isinstance(label, np.generic) else label
        raise ValueError(
            f"rho={rho:g} is impossible for the {m} effects of {column} {label!r}: a constant correlation among "
            f"{m} effects must exceed -1/({m} - 1) = {-1 / (m - 1):.4g}, else their sampling covariance is not "
            "positive definite"
        )


def pool_multilevel(
    effects: pd.DataFrame,
    *,
    levels=("study", "es_id"),
    method: str = "REML",
    moderators=None,
    test: str = "z",
    rho: float | None = None,
    alpha: float = 0.05,
    profile: bool = True,
    tol: float = 1e-12,
    max_iterations: int = 1000,
    na_action: str = "omit",
) -> MultilevelResult:
    """Multilevel meta-analysis: nested random effects for dependent effect sizes.

    Parameters
    ----------
    effects : pandas.DataFrame
        One row per effect size with ``estimate``, ``variance`` and the level columns.
    levels : sequence of str, default ("study", "es_id")
        Columns naming the nested groups, outermost first: ``["study", "es_id"]`` is
        metafor's ``random = ~ 1 | study/es_id`` (a three-level model: sampling error, effects
        within studies, studies). Inner labels need only be unique within their outer group.
    method : {"REML", "ML"}, default "REML"
    moderators : str, list of str, DataFrame or array, optional
        Meta-regression, as in :func:`rjtrial.meta.pool` (text and categorical columns become
        treatment-coded dummies; the first category of a ``pd.Categorical``, else the first
        in sorted order, is the reference).
    test : {"z", "t"}, default "z"
        Normal tests, or t tests and F omnibus test on k - p df (metafor ``test="t"``).
    rho : float, optional
        Correlation of the sampling errors of effects of the same outermost group: V gets
        ``rho sqrt(v_i v_j)`` off the diagonal (``clubSandwich::impute_covariance_matrix``); a
        negative ``rho`` must exceed -1/(m - 1) for a group of m effects.
    alpha : float, default 0.05
    profile : bool, default True
        Compute the profile-likelihood intervals of the variance components now (else NaN,
        and :meth:`MultilevelResult.confint` computes them on demand).
    tol, max_iterations
        Convergence of Fisher scoring and of the profile root search.
    na_action : {"omit", "raise"}, default "omit"
        Rows with a missing estimate, variance or moderator: left out with a warning and
        counted in ``n_omitted`` (metafor's ``na.omit``), or a DataError naming the row.

    Returns
    -------
    MultilevelResult
        ``summary_frame()`` (term, estimate, std_error, statistic, p_value, ci_lower,
        ci_upper), ``variance_components_frame()`` (level, n_groups, sigma2, sigma, ci_lower,
        ci_upper, i2), the pooled ``estimate`` and prediction interval, Q_E, the omnibus
        moderator test, log-likelihood, ``notes``.

    Raises
    ------
    ValueError
        An unknown method or test, a level that is not a column, a rank-deficient design, a
        ``rho`` too negative for the largest group.
    rjtrial.errors.DataError
        A missing level label, a non-positive variance, a missing moderator (naming the row).

    Notes
    -----
    Fits ``M = V + sum_l sigma_l^2 Z_l Z_l'`` by Fisher scoring on the exact REML (or ML)
    likelihood; block-diagonal algebra over the outermost level keeps a fit of 5,000 effects
    in 1,000 studies to a few milliseconds per iteration. Agrees with R ``metafor::rma.mv(yi,
    vi, random = ~ 1 | study/es_id)`` (with ``V = impute_covariance_matrix(vi, study, r =
    rho)``) and its ``confint()`` to 1e-6 or better on dat.konstantopoulos2011,
    dat.assink2016, dat.tannersmith2016 and a generated set
    (tests/validation/test_*_multilevel.py). metafor optimises log sigma^2 numerically, so a
    component at 0 is reported by R as ~1e-10; here it is 0.

    References
    ----------
    Konstantopoulos, S. (2011). Fixed effects and variance components estimation in
    three-level meta-analysis. Research Synthesis Methods, 2(1), 61-76. doi:10.1002/jrsm.35

    Cheung, M. W.-L. (2014). Modeling dependent effect sizes with three-level
    meta-analyses: a structural equation modeling approach. Psychological Methods, 19(2),
    211-229. doi:10.1037/a0032968

    Examples
    --------
    >>> from rjtrial import datasets, meta
    >>> schools = datasets.load_konstantopoulos2011()
    >>> res = meta.pool_multilevel(schools, levels=["district", "school"])
    >>> print(f"{res.estimate:.4f} {res.sigma2[0]:.4f} {res.sigma2[1]:.4f}")
    0.1847 0.0651 0.0327
    """
    if method not in MULTILEVEL_METHODS:
        raise ValueError(f"method={method!r}: choose one of {', '.join(map(repr, MULTILEVEL_METHODS))}")
    if test not in MULTILEVEL_TESTS:
        raise ValueError(f"test={test!r}: choose one of {', '.join(map(repr, MULTILEVEL_TESTS))}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if rho is not None and not -1 < float(rho) < 1:
        raise ValueError(f"rho must be in (-1, 1), got {rho!r}")
    columns = _level_columns(effects, levels)
    data = prepare(effects, moderators, na_action=na_action)
    notes: list[str] = []
    rows = data.estimable
    n_omitted = int((~rows).sum())
    if n_omitted:
        note = (
            f"{n_omitted} row(s) with a missing estimate, variance or moderator omitted: "
            + ", ".join(map(str, data.studies[~rows][:10]))
            + (" ..." if n_omitted > 10 else "")
        )
        warnings.warn(note, RjtrialWarning, stacklevel=2)
        notes.append(note)
    yi, vi, X = data.yi[rows], data.vi[rows], data.X[rows]
    k, p = X.shape
    if k == 0:
        raise ValueError("no effect has an estimate and a variance")
    if np.linalg.matrix_rank(X) < p:
        raise ValueError(
            f"the design ({', '.join(data.names)}) is rank deficient on the {k} effects used: "
            "a moderator is constant or collinear with others"
        )
    if k <= p:
        raise ValueError(f"{k} effects cannot fit {p} coefficients and variance components")
    level_codes = tuple(codes_of(*[effects[c].to_numpy()[rows] for c in columns[: i + 1]]) for i in range(len(columns)))
    n_groups = tuple(int(c.max()) + 1 for c in level_codes)
    blocks = Blocks(level_codes[0])
    if rho is not None:
        _check_rho(float(rho), level_codes[0], effects[columns[0]].to_numpy()[rows], columns[0])
    V = blocks.sampling_covariance(vi, None if rho is None else float(rho))
    G = [blocks.same(codes) for codes in level_codes]
    model = MultilevelModel(blocks, yi, X, V, G, reml=method == "REML")
    fit = fit_components(model, starting_values(model, vi), tol=tol, max_iterations=max_iterations)
    if not fit.converged:
        note = f"Fisher scoring of the variance components did not converge in {fit.n_iterations} iterations"
        warnings.warn(note, ConvergenceWarning, stacklevel=2)
        notes.append(note)
    final = model.evaluate(fit.sigma2)
    fixed_only = model.evaluate(np.zeros(len(columns)))
    q_df = k - p
    q = max(0.0, float(fixed_only.rss))
    typical = q_df / fixed_only.trace_p
    total = float(np.sum(fit.sigma2))
    i2_levels = 100 * fit.sigma2 / (total + typical)
    labels = ["/".join(columns[: i + 1]) for i in range(len(columns))]
    if profile:
        lower, upper, profile_notes = _profile(
            model, fit.sigma2, fit.log_likelihood, alpha=alpha, tol=tol, max_iterations=max_iterations, labels=labels
        )
        for note in profile_notes:
            warnings.warn(note, ConvergenceWarning if "converge" in note else RjtrialWarning, stacklevel=2)
        notes.extend(profile_notes)
    else:
        lower = upper = np.full(len(columns), np.nan)
    df = float(k - p) if test == "t" else None
    beta, vcov = final.beta, final.vcov
    moderator_test = None
    if p > 1:
        b = beta[1:]
        qm = float(b @ np.linalg.solve(vcov[1:, 1:], b))
        m = p - 1
        if df is None:
            moderator_test = TestResult(
                qm, float(m), float(stats.chi2.sf(qm, m)), "chi2", "omnibus Wald test of moderators"
            )
        else:
            moderator_test = TestResult(
                qm / m, float(m), float(stats.f.sf(qm / m, m, df)), "F", "omnibus F test of moderators", df
            )
    crit = float(stats.norm.isf(alpha / 2) if df is None else stats.t.isf(alpha / 2, df))
    if p == 1:
        se = float(np.sqrt(vcov[0, 0]))
        est = float(beta[0])
        z = est / se
        pval = float(2 * (stats.norm.sf(abs(z)) if df is None else stats.t.sf(abs(z), df)))
        pooled = (
            est,
            se,
            z,
            pval,
            est - crit * se,
            est + crit * se,
            est - crit * np.sqrt(se**2 + total),
            est + crit * np.sqrt(se**2 + total),
        )
    else:
        pooled = (np.nan,) * 8
    for array in (beta, vcov, fit.sigma2, lower, upper, i2_levels, yi, vi, X):
        array.flags.writeable = False
    return MultilevelResult(
        coefficient_names=tuple(data.names),
        coefficients=beta,
        vcov=vcov,
        estimate=pooled[0],
        std_error=pooled[1],
        statistic=pooled[2],
        p_value=pooled[3],
        ci_lower=pooled[4],
        ci_upper=pooled[5],
        pi_lower=pooled[6],
        pi_upper=pooled[7],
        levels=tuple(map(str, columns)),
        sigma2=fit.sigma2,
        sigma2_ci_lower=lower,
        sigma2_ci_upper=upper,
        n_groups=n_groups,
        i2=float(100 * total / (total + typical)),
        i2_levels=i2_levels,
        typical_variance=float(typical),
        q=q,
        q_df=int(q_df),
        q_p_value=float(stats.chi2.sf(q, q_df)),
        moderator_test=moderator_test,
        log_likelihood=float(fit.log_likelihood),
        k=int(k),
        n_omitted=n_omitted,
        method=method,
        test=test,
        alpha=float(alpha),
        df=df,
        rho=None if rho is None else float(rho),
        measure=data.measure,
        converged=bool(fit.converged),
        n_iterations=int(fit.n_iterations),
        notes=tuple(notes),
        yi_=yi,
        vi_=vi,
        X_=X,
        level_codes_=level_codes,
        studies_=data.studies[rows],
        frame_=effects.iloc[np.flatnonzero(rows)],
        model_=model,
        options_={"tol": tol, "max_iterations": max_iterations},
    )
