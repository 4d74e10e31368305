"""The result of :func:`rjtrial.meta.pool`: one frozen object, tidy frames on demand."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rjtrial.meta.regression import TestResult

POOLED_COLUMNS = ("estimate", "std_error", "statistic", "p_value", "ci_lower", "ci_upper")


@dataclass(frozen=True, eq=False)
class MetaResult:
    """A fitted meta-analysis (fixed, random or mixed effects; MH or Peto).

    Attributes
    ----------
    estimate, std_error, statistic, p_value, ci_lower, ci_upper : float
        Pooled effect on the scale of the effect sizes (e.g. log risk ratio), its standard
        error, z (or t with Knapp-Hartung) statistic, p value and (1 - alpha) confidence
        interval. NaN for meta-regression (see :meth:`coefficients_frame` and
        :meth:`predict`).
    pi_lower, pi_upper : float
        (1 - alpha) prediction interval for the effect in a new study:
        ``estimate -/+ crit sqrt(std_error^2 + tau2)``, crit normal (z) or t on k - 1 df
        (knha). Equal to the confidence interval when tau2 = 0 (fixed-effect models).
    tau2, tau2_std_error, tau2_ci_lower, tau2_ci_upper : float
        Between-study variance (residual, with moderators), its standard error and
        Q-profile confidence interval (NaN for fixed-effect models).
    i2, i2_ci_lower, i2_ci_upper : float
        I^2 in percent, with the interval from the tau^2 interval.
    h2, h2_ci_lower, h2_ci_upper : float
        H^2 with its interval.
    q, q_df, q_p_value
        Cochran's Q test of (residual) heterogeneity.
    k : int
        Number of studies in the estimate.
    method, test, measure : str
        ``method`` as given to :func:`pool`; ``test`` ``"z"``, ``"knha"``, ``"t"`` or ``"adhoc"``; ``measure``
        from ``effects.attrs`` (None if absent).
    alpha : float
        1 - confidence level of every interval.
    df : float or None
        Degrees of freedom of the t tests (k - p: ``"knha"``, ``"t"``, ``"adhoc"``), None for z.
    converged, n_iterations
        Convergence of the iterative tau^2 estimator (and of the Q-profile root search);
        non-iterative estimators report ``True, 0``.
    coefficient_names, coefficients, vcov : tuple, numpy.ndarray
        The fixed part: ``("intercept", moderators...)``; intercept-only models have one.
        ``coefficient_std_errors, coefficient_statistics, coefficient_p_values,
        coefficient_ci_lower, coefficient_ci_upper`` hold the rest of
        :meth:`coefficients_frame`.
    moderator_test : TestResult or None
        Omnibus test of the moderators (metafor's QM: chi^2, or F with Knapp-Hartung).
    r2 : float or None
        Pseudo-R^2 (percent) of the moderators: (tau2 without - tau2 with) / tau2 without,
        truncated at 0 (adjusted R^2 of the weighted regression for ``method="FE"``).
    yi, vi, weights : numpy.ndarray
        Per study, in the order of ``studies`` (every row of the effects frame): estimates and
        variances (NaN where a study has none, e.g. a double-zero table; for Peto, (O - E) / V
        and 1 / V) and weights in percent of the total (metafor's ``weights()``: inverse
        variance 1 / (v + tau2), or the MH / Peto weights).
    X : numpy.ndarray
        Design matrix (intercept first), one row per study.
    studies : pandas.Index
        Study labels (the index of the effects frame).
    typical_variance : float
        metafor's typical within-study variance s^2 = (k - p) / tr(P) behind I^2 and H^2.
    knha_factor : float
        The Knapp-Hartung variance multiplier s^2 (at least 1 with ``"adhoc"``; 1 for ``"z"``, ``"t"``).
    subgroups : pandas.DataFrame or None
        Per subgroup: ``k, estimate, std_error, statistic, p_value, ci_lower, ci_upper, tau2,
        q, q_df, q_p_value, i2``; ``attrs`` hold ``alpha`` and ``subgroup_tau2``.
    subgroup_test : TestResult or None
        Test of subgroup differences.
    subgroup_results : dict or None
        With ``subgroup_tau2="separate"``: the :class:`MetaResult` of each subgroup.
    n_omitted : int
        Rows of the effects frame left out (a missing estimate, variance or moderator).
    """

    estimate: float
    std_error: float
    statistic: float
    p_value: float
    ci_lower: float
    ci_upper: float
    pi_lower: float
    pi_upper: float
    tau2: float
    tau2_std_error: float
    tau2_ci_lower: float
    tau2_ci_upper: float
    i2: float
    i2_ci_lower: float
    i2_ci_upper: float
    h2: float
    h2_ci_lower: float
    h2_ci_upper: float
    q: float
    q_df: int
    q_p_value: float
    k: int
    method: str
    test: str
    measure: str | None
    alpha: float
    df: float | None
    converged: bool
    n_iterations: int
    coefficient_names: tuple[str, ...]
    coefficients: np.ndarray = field(repr=False)
    vcov: np.ndarray = field(repr=False)
    coefficient_std_errors: np.ndarray = field(repr=False)
    coefficient_statistics: np.ndarray = field(repr=False)
    coefficient_p_values: np.ndarray = field(repr=False)
    coefficient_ci_lower: np.ndarray = field(repr=False)
    coefficient_ci_upper: np.ndarray = field(repr=False)
    moderator_test: TestResult | None
    r2: float | None
    yi: np.ndarray = field(repr=False)
    vi: np.ndarray = field(repr=False)
    weights: np.ndarray = field(repr=False)
    X: np.ndarray = field(repr=False)
    studies: pd.Index = field(repr=False)
    typical_variance: float = field(repr=False)
    knha_factor: float = field(repr=False)
    data_: Any = field(repr=False)
    options_: Any = field(repr=False)
    subgroups: pd.DataFrame | None = field(default=None, repr=False)
    subgroup_test: TestResult | None = None
    subgroup_results: dict | None = field(default=None, repr=False)
    n_omitted: int = 0

    # ---- derived -----------------------------------------------------------------------------
    @property
    def tau(self) -> float:
        """sqrt(tau2)."""
        return float(np.sqrt(self.tau2))

    @property
    def has_moderators(self) -> bool:
        return len(self.coefficient_names) > 1

    @property
    def is_fixed_effect(self) -> bool:
        return self.method in ("FE", "MH", "Peto")

    # ---- tidy frames ---------------------------------------------------------------------------
    def _attrs(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame.attrs.update({"alpha": self.alpha, "method": self.method, "test": self.test, "measure": self.measure})
        if self.df is not None:
            frame.attrs["df"] = self.df
        return frame

    def coefficients_frame(self) -> pd.DataFrame:
        """One row per coefficient (``intercept`` and moderators).

        Columns ``estimate, std_error, statistic, p_value, ci_lower, ci_upper``;
        ``attrs["alpha"]`` and, with Knapp-Hartung, ``attrs["df"]``.
        """
        frame = pd.DataFrame(
            {
                "estimate": self.coefficients,
                "std_error": self.coefficient_std_errors,
                "statistic": self.coefficient_statistics,
                "p_value": self.coefficient_p_values,
                "ci_lower": self.coefficient_ci_lower,
                "ci_upper": self.coefficient_ci_upper,
            },
            index=pd.Index(self.coefficient_names, name="coefficient"),
        )
        return self._attrs(frame)

    def summary_frame(self) -> pd.DataFrame:
        """The pooled rows.

        Intercept-only models: one row per subgroup (if any) then ``"overall"``, with
        ``k, estimate, std_error, statistic, p_value, ci_lower, ci_upper, pi_lower, pi_upper,
        tau2, i2, q, q_df, q_p_value``. Meta-regression: :meth:`coefficients_frame`.
        """
        if self.has_moderators:
            return self.coefficients_frame()
        row = {
            "k": self.k,
            **{c: getattr(self, c) for c in POOLED_COLUMNS},
            "pi_lower": self.pi_lower,
            "pi_upper": self.pi_upper,
            "tau2": self.tau2,
            "i2": self.i2,
            "q": self.q,
            "q_df": self.q_df,
            "q_p_value": self.q_p_value,
        }
        frame = pd.DataFrame([row], index=pd.Index(["overall"], name="subgroup"))
        if self.subgroups is not None:
            parts = self.subgroups.reindex(columns=frame.columns)
            parts.index = parts.index.map(str).rename("subgroup")
            frame = pd.concat([parts, frame])
        return self._attrs(frame)

    def heterogeneity_frame(self) -> pd.DataFrame:
        """Rows ``tau2, tau, i2, h2`` with ``estimate, ci_lower, ci_upper`` (metafor's
        ``confint(res)$random``); ``attrs["alpha"]``."""
        frame = pd.DataFrame(
            {
                "estimate": [self.tau2, self.tau, self.i2, self.h2],
                "ci_lower": [self.tau2_ci_lower, np.sqrt(self.tau2_ci_lower), self.i2_ci_lower, self.h2_ci_lower],
                "ci_upper": [self.tau2_ci_upper, np.sqrt(self.tau2_ci_upper), self.i2_ci_upper, self.h2_ci_upper],
            },
            index=pd.Index(["tau2", "tau", "i2", "h2"], name="quantity"),
        )
        return self._attrs(frame)

    def study_frame(self) -> pd.DataFrame:
        """One row per study: ``estimate, variance, std_error, ci_lower, ci_upper, weight``
        (weight in percent); normal-theory intervals at the result's alpha."""
        from scipy import stats

        se = np.sqrt(self.vi)
        crit = stats.norm.isf(self.alpha / 2)
        frame = pd.DataFrame(
            {
                "estimate": self.yi,
                "variance": self.vi,
                "std_error": se,
                "ci_lower": self.yi - crit * se,
                "ci_upper": self.yi + crit * se,
                "weight": self.weights,
            },
            index=self.studies,
        )
        return self._attrs(frame)

    # ---- small verbs on the fit ------------------------------------------------------------------
    def refit(self, keep) -> "MetaResult":
        """The same model (method, test, alpha, moderators) on a subset of the studies.

        ``keep`` is a boolean mask over :attr:`studies` (all rows of the effects frame). The
        building block of leave-one-out and influence diagnostics; the refit carries no
        subgroup analysis.
        """
        from rjtrial.meta.pooling import refit

        return refit(self, keep)

    def predict(self, moderators=None) -> pd.DataFrame:
        """Predicted effect with confidence and prediction intervals (R ``predict.rma``).

        Parameters
        ----------
        moderators : array-like, optional
            Moderator values (without the intercept), one row per prediction, columns in the
            order of ``coefficient_names[1:]``. Omit for intercept-only models.

        Returns
        -------
        pandas.DataFrame
            ``estimate, std_error, ci_lower, ci_upper, pi_lower, pi_upper``.
        """
        from rjtrial.meta.regression import FixedPart, prediction

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
        from scipy import stats

        crit = stats.norm.isf(self.alpha / 2) if self.df is None else stats.t.isf(self.alpha / 2, self.df)
        fixed = FixedPart(
            self.coefficients,
            self.vcov,
            self.coefficient_std_errors,
            self.coefficient_statistics,
            self.coefficient_p_values,
            self.coefficient_ci_lower,
            self.coefficient_ci_upper,
            self.df,
            float(crit),
            self.knha_factor,
        )
        return self._attrs(pd.DataFrame(prediction(fixed, x, self.tau2)))

    def leave_one_out(self, *, fast: bool = True) -> pd.DataFrame:
        """Leave-one-out refits; see :func:`rjtrial.meta.sensitivity.leave_one_out`."""
        from rjtrial.meta.sensitivity import leave_one_out

        return leave_one_out(self, fast=fast)

    def cumulative(self, *, order=None) -> pd.DataFrame:
        """Cumulative meta-analysis; see :func:`rjtrial.meta.sensitivity.cumulative`."""
        from rjtrial.meta.sensitivity import cumulative

        return cumulative(self, order=order)

    def influence(self) -> pd.DataFrame:
        """Case-deletion diagnostics; see :func:`rjtrial.meta.sensitivity.influence`."""
        from rjtrial.meta.sensitivity import influence

        return influence(self)

    def plot_forest(self, **kwargs):
        """Forest plot, returning the Axes; see :func:`rjtrial.meta.plots.forest`."""
        from rjtrial.meta.plots import forest

        return forest(self, **kwargs)

    def plot_funnel(self, **kwargs):
        """Funnel plot, returning the Axes; see :func:`rjtrial.meta.plots.funnel`."""
        from rjtrial.meta.plots import funnel

        return funnel(self, **kwargs)

    # ---- text ----------------------------------------------------------------------------------
    def format_summary(self, digits: int = 4) -> str:
        """A plain-text summary in the manner of metafor's print method."""
        from rjtrial.meta._format import format_summary

        return format_summary(self, digits=digits)

    def __str__(self) -> str:
        return self.format_summary()
