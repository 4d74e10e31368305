"""Victim outcomes by arm: yes/no answers, stress scores, clinical thresholds.

Verbs:

* :func:`binary_outcome` -- a 0/1 answer (satisfied, would recommend, still fearful) by arm,
  with the risk difference and the risk ratio (:class:`BinaryOutcomeResult`);
* :func:`ancova` -- a continuous score at follow-up (e.g. post-traumatic stress on the
  IES-R) compared between arms adjusting for its baseline value (:class:`AncovaResult`);
* :func:`above_threshold` -- the share of victims at or above a clinical cut-off (IES-R ≥ 25,
  as in Angel et al. 2014), compared as a binary outcome.

Victims who were not interviewed have missing answers; the verbs do not drop them silently
but raise an error naming the first such row: select the interviewed victims first
(``df.dropna(subset=[...])``) and report how many were lost in each arm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from rjtrial._checks import (
    binary,
    check_alpha,
    check_frame,
    covariate_list,
    design_matrix,
    groups,
    numeric,
    require_columns,
)
from rjtrial._result import Result, jsonable
from rjtrial.frequency import TwoByTwoResult, compare_proportions

__all__ = ["AncovaResult", "BinaryOutcomeResult", "above_threshold", "ancova", "binary_outcome"]

_COLUMNS = ["estimate", "std_error", "ci_lower", "ci_upper", "statistic", "p_value"]


@dataclass(frozen=True)
class BinaryOutcomeResult:
    """A binary victim outcome by arm: risk difference and risk ratio (treatment − / ÷ control)."""

    outcome: str
    risk_difference: TwoByTwoResult
    risk_ratio: TwoByTwoResult
    alpha: float

    def summary_frame(self) -> pd.DataFrame:
        """Rows ``risk_difference``, ``risk_ratio`` (index ``measure``) with columns ``estimate,
        std_error, ci_lower, ci_upper, statistic, p_value``; the standard error and statistic of
        the risk ratio are on the log scale. ``attrs``: ``alpha``, ``outcome``."""
        rows = [{key: getattr(r, key) for key in _COLUMNS} for r in (self.risk_difference, self.risk_ratio)]
        out = pd.DataFrame(rows, index=pd.Index(["risk_difference", "risk_ratio"], name="measure"))
        out.attrs.update(alpha=self.alpha, outcome=self.outcome)
        return out

    def proportions_frame(self) -> pd.DataFrame:
        """Per arm (control first): ``group, n, events, proportion``."""
        r = self.risk_difference
        return pd.DataFrame(
            {
                "group": [r.control, r.treatment],
                "n": [r.n_control, r.n_treatment],
                "events": [r.events_control, r.events_treatment],
                "proportion": [r.risk_control, r.risk_treatment],
            }
        )

    def __str__(self) -> str:
        fmt = lambda v: f"{v:.4g}"  # noqa: E731
        return "\n".join(
            [
                f"{self.outcome} by arm",
                self.proportions_frame().set_index("group").to_string(float_format=fmt),
                self.summary_frame().to_string(float_format=fmt),
                f"confidence level {1 - self.alpha:.0%}; risk ratio interval from the log scale",
            ]
        )


def _binary_result(label, events, codes, levels, alpha, correction) -> BinaryOutcomeResult:
    counts = dict(
        events_treatment=int(events[codes == 1].sum()),
        n_treatment=int((codes == 1).sum()),
        events_control=int(events[codes == 0].sum()),
        n_control=int((codes == 0).sum()),
        alpha=alpha,
        correction=correction,
        treatment=levels[1],
        control=levels[0],
    )
    return BinaryOutcomeResult(
        outcome=label,
        risk_difference=compare_proportions(measure="risk_difference", **counts),
        risk_ratio=compare_proportions(measure="risk_ratio", **counts),
        alpha=alpha,
    )


def binary_outcome(
    df: pd.DataFrame,
    *,
    outcome: str,
    group: str,
    control=None,
    alpha: float = 0.05,
    correction: float = 0.5,
    coding=None,
) -> BinaryOutcomeResult:
    """A yes/no victim outcome by arm, with risk difference and risk ratio.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per victim interviewed.
    outcome : str
        0/1 or boolean column (e.g. satisfied with how the case was dealt with); text
        ``"0"``/``"1"`` or ``"False"``/``"True"`` when the whole column is such text. Every
        other value, and a blank, is an error naming the row: drop unanswered rows first.
    group : str
        Column of the two arms.
    control : optional
        The reference arm; by default the first level of ``group``.
    alpha : float
        Significance level of the Wald intervals.
    correction : float
        Added to every cell when one is empty (see :func:`rjtrial.frequency.compare_proportions`).
    coding : mapping, optional
        Another coding of ``outcome``, stated: ``{"yes": True, "no": False}``. It replaces the
        default codes; no coding is ever guessed.

    Returns
    -------
    BinaryOutcomeResult
        ``risk_difference`` and ``risk_ratio`` (:class:`~rjtrial.frequency.TwoByTwoResult`),
        ``summary_frame()`` and ``proportions_frame()``.

    Notes
    -----
    Risk difference p1 − p2 with SE² = p1(1 − p1)/n1 + p2(1 − p2)/n2; risk ratio p1/p2 with
    the Wald interval on the log scale, SE² = 1/a − 1/n1 + 1/c − 1/n2. Agrees with the
    same formulas written in R and with ``metafor::escalc(measure = "RD" | "RR")`` to 1e-12.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"arm": ["control"] * 5 + ["rj"] * 5,
    ...                    "satisfied": [1, 0, 0, 1, 0, 1, 1, 1, 0, 1]})
    >>> res = binary_outcome(df, outcome="satisfied", group="arm")
    >>> round(res.risk_difference.estimate, 2), round(res.risk_ratio.estimate, 2)
    (0.4, 2.0)
    """
    df = check_frame(df)
    alpha = check_alpha(alpha)
    require_columns(df, outcome=outcome, group=group)
    events = binary(df, outcome, role="outcome", coding=coding)
    levels, codes = groups(df, group, control=control, exactly_two=True)
    return _binary_result(outcome, events, codes, levels, alpha, correction)


def above_threshold(
    df: pd.DataFrame,
    *,
    score: str,
    group: str,
    threshold: float = 25,
    control=None,
    alpha: float = 0.05,
    correction: float = 0.5,
) -> BinaryOutcomeResult:
    """Share of victims scoring at or above a clinical threshold, by arm.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per victim interviewed.
    score : str
        Numeric score column (e.g. the IES-R total at follow-up).
    group : str
        Column of the two arms.
    threshold : float
        The cut-off; a score **greater than or equal to** it counts. The default 25 is the
        IES-R cut-off for post-traumatic stress symptoms used by Angel et al. (2014).
    control : optional
        The reference arm; by default the first level of ``group``.
    alpha, correction
        As in :func:`binary_outcome`.

    Returns
    -------
    BinaryOutcomeResult
        As :func:`binary_outcome`, for the outcome ``score >= threshold``.

    Notes
    -----
    ``binary_outcome`` applied to ``df[score] >= threshold``; R:
    ``table(arm, score >= 25)`` and the formulas of :func:`binary_outcome`.

    References
    ----------
    Angel, C. M., Sherman, L. W., Strang, H., Ariel, B., Bennett, S., Inkpen, N., Keane, A.
    and Richmond, T. S. (2014). Short-term effects of restorative justice conferences on
    post-traumatic stress symptoms among robbery and burglary victims: a randomized
    controlled trial. *Journal of Experimental Criminology* 10, 291–307.
    doi:10.1007/s11292-014-9200-0

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"arm": ["control"] * 4 + ["rj"] * 4,
    ...                    "ies_r": [30, 25, 10, 40, 12, 26, 8, 20]})
    >>> above_threshold(df, score="ies_r", group="arm").proportions_frame()
         group  n  events  proportion
    0  control  4       3        0.75
    1       rj  4       1        0.25
    """
    df = check_frame(df)
    alpha = check_alpha(alpha)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    require_columns(df, score=score, group=group)
    values = numeric(df, score, role="score")
    levels, codes = groups(df, group, control=control, exactly_two=True)
    return _binary_result(f"{score} >= {threshold:g}", values >= threshold, codes, levels, alpha, correction)


@dataclass(frozen=True)
class AncovaResult(Result):
    """A follow-up score compared between arms adjusting for baseline (from :func:`ancova`).

    Fitted attributes
    -----------------
    params_ : Series
        OLS coefficients by term (``Intercept``, ``arm[T.rj]``, the baseline, covariates).
    variance_ : DataFrame
        Their covariance, ``s² (X'X)⁻¹`` (R ``vcov(lm(...))``).
    df_resid_ : int
        Residual degrees of freedom, n − k.
    residual_std_error_, r_squared_ : float
        ``s`` and R² (R ``summary(fit)$sigma``, ``$r.squared``).
    estimate, std_error, ci_lower, ci_upper, statistic, p_value : float
        The adjusted difference, treatment − control (two arms only).
    n, alpha, levels, group, outcome, baseline, covariates
        Victims in the fit, significance level, arms (control first) and the columns used.
    """

    params_: pd.Series = field(repr=False, compare=False)
    variance_: pd.DataFrame = field(repr=False, compare=False)
    df_resid_: int
    residual_std_error_: float
    r_squared_: float
    n: int
    alpha: float
    levels: list
    group: str
    outcome: str
    baseline: str
    covariates: list[str]
    _table: pd.DataFrame = field(repr=False, compare=False)
    _means: pd.DataFrame = field(repr=False, compare=False)

    def _effect(self, key: str) -> float:
        if len(self.levels) != 2:
            raise ValueError(f"{len(self.levels)} arms were compared; read each arm's term from summary_frame()")
        return float(self._table.loc[1, key])

    estimate = property(lambda self: self._effect("estimate"), doc="Adjusted difference, treatment − control.")
    std_error = property(lambda self: self._effect("std_error"))
    ci_lower = property(lambda self: self._effect("ci_lower"))
    ci_upper = property(lambda self: self._effect("ci_upper"))
    statistic = property(lambda self: self._effect("statistic"))
    p_value = property(lambda self: self._effect("p_value"))

    def summary_frame(self) -> pd.DataFrame:
        """Coefficient table: ``term, estimate, std_error, ci_lower, ci_upper, statistic, p_value``
        (t on ``df_resid_`` degrees of freedom, R ``summary(fit)$coefficients`` and
        ``confint(fit)``). ``attrs``: ``alpha``, ``df_resid``."""
        return self._table.copy()

    def means_frame(self) -> pd.DataFrame:
        """Unadjusted summaries per arm: ``group, n, baseline_mean, outcome_mean, outcome_sd``."""
        return self._means.copy()

    def format(self, digits: int = 4) -> str:
        fmt = lambda v: f"{v:.{digits}g}"  # noqa: E731
        return "\n".join(
            [
                f"ANCOVA of {self.outcome} adjusting for {self.baseline}: n = {self.n}, control = {self.levels[0]!r}",
                self._table.set_index("term").to_string(float_format=fmt),
                f"residual standard error {self.residual_std_error_:.{digits}g} on {self.df_resid_} df; confidence level "
                f"{1 - self.alpha:.0%}",
                self._means.set_index("group").to_string(float_format=fmt),
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        """The scalars, ``summary`` (the coefficient table), ``attrs`` and ``means`` (per arm),
        JSON-ready."""
        out = super().to_dict()
        out["means"] = jsonable(self._means)
        return out

    def __repr__(self) -> str:
        return f"<AncovaResult {self.outcome} ~ {self.group} + {self.baseline}: n={self.n}>"


def ancova(
    df: pd.DataFrame,
    *,
    outcome: str,
    baseline: str,
    group: str,
    covariates: Sequence[str] | None = None,
    control=None,
    alpha: float = 0.05,
) -> AncovaResult:
    """Analysis of covariance: follow-up score on arm, adjusting for the baseline score.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per victim with both scores.
    outcome : str
        Score at follow-up (e.g. IES-R total).
    baseline : str
        The same score before random assignment.
    group : str
        Column of the arms (two or more; each non-control arm gets a term).
    covariates : list of str, optional
        Further adjustment columns (numeric linearly, others as dummies).
    control : optional
        The reference arm; by default the first level of ``group``.
    alpha : float
        Significance level of the confidence intervals.

    Returns
    -------
    AncovaResult
        ``summary_frame()`` (term, estimate, std_error, ci_lower, ci_upper, statistic,
        p_value), ``means_frame()`` and, for two arms, the adjusted difference as ``estimate``,
        ``std_error``, ``ci_lower``, ``ci_upper``, ``statistic``, ``p_value``.

    Notes
    -----
    Ordinary least squares ``outcome = b0 + b1 [arm = treatment] + b2 baseline + ... + e``
    (statsmodels ``OLS``); ``b1`` is the difference between arms in mean follow-up score at
    equal baseline. Inference uses t(n − k). Agrees with R
    ``lm(outcome ~ arm + baseline + covariates)`` (``summary``, ``confint``) to 1e-10.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"arm": ["control"] * 4 + ["rj"] * 4,
    ...                    "before": [30, 20, 40, 10, 35, 25, 15, 30],
    ...                    "after": [28, 19, 35, 12, 25, 17, 9, 22]})
    >>> round(ancova(df, outcome="after", baseline="before", group="arm").estimate, 3)
    -6.239
    """
    import statsmodels.api as sm
    from scipy import stats

    df = check_frame(df)
    alpha = check_alpha(alpha)
    covariates = covariate_list(covariates)
    require_columns(df, outcome=outcome, baseline=baseline, group=group, covariates=covariates)
    y = numeric(df, outcome, role="outcome")
    base = numeric(df, baseline, role="baseline")
    levels, codes = groups(df, group, control=control)
    X, names = design_matrix(df, group, levels, codes, [baseline] + covariates)
    fit = sm.OLS(y, X).fit()
    est, se = np.asarray(fit.params), np.asarray(fit.bse)
    dof = int(round(fit.df_resid))
    half = stats.t.ppf(1 - alpha / 2, dof) * se
    t = est / se
    table = pd.DataFrame(
        {
            "term": names,
            "estimate": est,
            "std_error": se,
            "ci_lower": est - half,
            "ci_upper": est + half,
            "statistic": t,
            "p_value": 2 * stats.t.sf(np.abs(t), dof),
        }
    )
    table.attrs.update(alpha=alpha, df_resid=dof)
    means = pd.DataFrame(
        {
            "group": levels,
            "n": np.bincount(codes, minlength=len(levels)),
            "baseline_mean": [base[codes == k].mean() for k in range(len(levels))],
            "outcome_mean": [y[codes == k].mean() for k in range(len(levels))],
            "outcome_sd": [y[codes == k].std(ddof=1) if (codes == k).sum() > 1 else np.nan for k in range(len(levels))],
        }
    )
    return AncovaResult(
        params_=pd.Series(est, index=names),
        variance_=pd.DataFrame(np.asarray(fit.cov_params()), index=names, columns=names),
        df_resid_=dof,
        residual_std_error_=float(np.sqrt(fit.scale)),
        r_squared_=float(fit.rsquared),
        n=len(df),
        alpha=alpha,
        levels=levels,
        group=group,
        outcome=outcome,
        baseline=baseline,
        covariates=covariates,
        _table=table,
        _means=means,
    )
