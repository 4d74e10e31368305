"""How often people reoffend: rate ratios, risk measures, before–after change, observed/expected.

Verbs (each returns one result object):

* :func:`rate_ratio` -- reoffences per unit of street time by arm, with a negative binomial
  (default) or Poisson model and exposure as offset (:class:`RateRatioResult`);
* :func:`risk_ratio`, :func:`risk_difference`, :func:`odds_ratio` -- any reoffence (a 0/1
  column) by arm, Wald intervals (:class:`TwoByTwoResult`); :func:`compare_proportions`
  does the same from counts;
* :func:`before_after_smd` -- the standardised difference between arms in the change of
  offending from before to after assignment (:class:`BeforeAfterSMDResult`);
* :func:`observed_expected` -- observed reoffending against a predicted-risk column (an
  OGRS-like score) by arm, with exact Poisson intervals (:class:`ObservedExpectedResult`).

Every verb takes the data first and the rest by keyword; the arms come from one ``group``
column whose control level is the reference (``control=``, else the first level: the
first category of a categorical column, else the smallest value). Bad input raises
:class:`rjtrial.errors.DataError` (a ``ValueError``) naming the column and the row.
Agreement with R is checked to 1e-6 by ``tests/validation/test_frequency_compliance_r.py``.
"""

from __future__ import annotations

import math
import warnings
import sys
from dataclasses import dataclass, field
from types import FrameType
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import special, stats

from rjtrial._checks import (
    complete_rows,
    TABLE,
    check_frame,
    require_columns,
    numeric,
    binary,
    groups,
    design_matrix,
    covariate_list,
    check_alpha,
    check_choice,
    wald,
)
from rjtrial._result import Result, jsonable
from rjtrial.errors import ConvergenceWarning, DataError, FallbackWarning

__all__ = [
    "BeforeAfterSMDResult", "ObservedExpectedResult", "RateRatioResult", "TwoByTwoResult", "before_after_smd",
    "compare_proportions", "observed_expected", "odds_ratio", "rate_ratio", "risk_difference", "risk_ratio",
]

MODELS = ("negative_binomial", "poisson")


# ----------------------------------------------------------------------------- rate ratio
@dataclass(frozen=True)
class RateRatioResult(Result):
    """A fitted count model of reoffences with exposure as offset (from :func:`rate_ratio`).

    Fitted attributes
    -----------------
    params_ : Series
        Coefficients on the log scale, indexed by term (``"Intercept"``, ``"arm[T.rj]"``,
        covariates); the intercept is the log rate per unit of ``exposure``.
    variance_ : DataFrame
        Their variance: the inverse expected information at the estimate, with the
        dispersion fixed (R ``vcov(fit)``).
    dispersion_, theta_ : float or None
        Negative binomial dispersion, ``Var(Y) = mu + dispersion_ * mu**2``, and R's
        ``theta = 1 / dispersion_``; None for the Poisson model, 0 and inf when the negative
        binomial likelihood is largest at no overdispersion (the Poisson fit is then
        reported: ``model_fitted == "poisson"``). ``alpha_`` is its deprecated name.
    theta_std_error_ : float or None
        Standard error of ``theta_`` from its observed information given the fitted means
        (R ``fit$SE.theta``, evaluated at the converged theta; see :func:`rate_ratio`).
    log_likelihood_ : float
        Full log-likelihood at the estimate (R ``logLik(fit)``).
    model, model_fitted : str
        The model asked for and the model whose fit is reported (they differ after a
        fallback from the negative binomial to the Poisson).
    converged, n_iterations
        Convergence of the maximum likelihood fit and its number of Newton iterations.
    notes : tuple of str
        What the fit had to do or say (a fallback, non-convergence); also issued as a
        warning of :class:`~rjtrial.errors.RjtrialWarning`'s family.
    n, n_omitted : int
        Rows used, and rows left out for a missing value (``na_action="omit"``).
    """

    params_: pd.Series = field(repr=False, compare=False)
    variance_: pd.DataFrame = field(repr=False, compare=False)
    dispersion_: float | None
    theta_: float | None
    theta_std_error_: float | None
    log_likelihood_: float
    converged: bool
    n_iterations: int
    model: str
    model_fitted: str
    alpha: float
    n: int
    levels: list
    group: str
    count: str
    exposure: str
    covariates: list
    notes: tuple = ()
    n_omitted: int = 0
    _rates: pd.DataFrame = field(default=None, repr=False, compare=False)

    @property
    def alpha_(self) -> float | None:
        """Deprecated name of :attr:`dispersion_` (``alpha`` is the significance level)."""
        warnings.warn("RateRatioResult.alpha_ is now dispersion_ (alpha is the significance level); alpha_ will be "
                      "removed", DeprecationWarning, stacklevel=2)
        return self.dispersion_

    def summary_frame(self) -> pd.DataFrame:
        """Coefficient table.

        Returns
        -------
        pandas.DataFrame
            One row per term, with columns ``term``; ``estimate`` (log rate ratio);
            ``std_error``; ``rate_ratio`` = ``exp(estimate)``; ``ci_lower``, ``ci_upper``
            (Wald interval **of the rate ratio**, R ``exp(confint.default(fit))``);
            ``statistic`` (Wald z); ``p_value`` (two-sided, normal). ``attrs``: ``alpha``,
            ``ci_scale`` (``"rate_ratio"``), ``model``.
        """
        est = self.params_.to_numpy()
        se = np.sqrt(np.diag(self.variance_.to_numpy()))
        statistic, p_value, lower, upper = wald(est, se, self.alpha, exponentiate=True)
        out = pd.DataFrame(
            {"term": self.params_.index, "estimate": est, "std_error": se, "rate_ratio": np.exp(est),
             "ci_lower": lower, "ci_upper": upper, "statistic": statistic, "p_value": p_value}
        )
        out.attrs.update(alpha=self.alpha, ci_scale="rate_ratio", model=self.model_fitted, model_requested=self.model,
                         converged=self.converged, notes=self.notes)
        return out

    def rates_frame(self) -> pd.DataFrame:
        """Crude rates per arm: columns ``group, n, events, exposure, rate``.

        ``rate`` is events per ``per`` units of exposure (``attrs["per"]``; by default 365.25,
        i.e. events per person-year of street time when exposure is in days).
        """
        return self._rates.copy()

    def _treatment_row(self) -> pd.Series:
        if len(self.levels) != 2:
            raise ValueError(
                f"{len(self.levels)} arms were compared; read each arm's rate ratio from summary_frame()"
            )
        return self.summary_frame().iloc[1]

    rate_ratio = property(lambda self: float(self._treatment_row()["rate_ratio"]),
                          doc="Rate ratio of the treatment arm against control (two arms only).")
    ci_lower = property(lambda self: float(self._treatment_row()["ci_lower"]))
    ci_upper = property(lambda self: float(self._treatment_row()["ci_upper"]))
    p_value = property(lambda self: float(self._treatment_row()["p_value"]))

    def model_label(self) -> str:
        """The model as a reader should see it, e.g. ``"Poisson (fallback from negative binomial:
        no overdispersion)"``."""
        label = {"negative_binomial": "negative binomial", "poisson": "Poisson"}
        if self.model_fitted != self.model:
            return f"{label[self.model_fitted]} (fallback from {label[self.model]}: no overdispersion)"
        return label[self.model]

    def format(self, digits: int = 4) -> str:
        fmt = lambda v: f"{v:.{digits}g}"  # noqa: E731
        head = f"{self.model_label()} rate ratio: n = {self.n}, control = {self.levels[0]!r}"
        if self.n_omitted:
            head += f" ({self.n_omitted} rows omitted for missing values)"
        if self.theta_ is not None and self.model_fitted == "negative_binomial":
            head += f", theta = {self.theta_:.{digits}g} (dispersion {self.dispersion_:.{digits}g})"
        lines = [
            head,
            self.summary_frame().set_index("term").to_string(float_format=fmt),
            f"confidence level {1 - self.alpha:.0%}, Wald interval of the rate ratio",
            self.rates_frame().set_index("group").to_string(float_format=fmt),
        ]
        return "\n".join(lines + [f"note: {note}" for note in self.notes])

    def format_summary(self, digits: int = 4) -> str:
        """Same as :meth:`format`."""
        return self.format(digits)

    def to_dict(self) -> dict:
        return {
            "model": self.model_fitted, "model_requested": self.model, "model_label": self.model_label(),
            "n": self.n, "n_omitted": self.n_omitted, "control": jsonable(self.levels[0]), "alpha": self.alpha,
            "dispersion": jsonable(self.dispersion_), "theta": jsonable(self.theta_),
            "converged": self.converged, "n_iterations": self.n_iterations, "notes": list(self.notes),
            "coefficients": jsonable(self.summary_frame()), "rates": jsonable(self.rates_frame()),
        }

    def __repr__(self) -> str:
        return f"<RateRatioResult {self.model_fitted}: n={self.n}, groups={self.levels!r}>"


def _theta_information(y, mu, theta) -> float:
    """Observed information of theta given the means (R ``MASS::theta.ml``)."""
    return float(np.sum(
        -special.polygamma(1, theta + y) + special.polygamma(1, theta) - 1 / theta
        + 2 / (mu + theta) - (y + theta) / (mu + theta) ** 2
    ))


def _fit_negative_binomial(y, X, offset):
    """Joint ML of (beta, alpha): (params, converged, n_iterations); alpha <= 0 means no overdispersion."""
    import statsmodels.api as sm

    # The NB2 log-likelihood's slope in alpha at alpha = 0 is sum((y - mu)^2 - y) / 2 with mu
    # the Poisson fit's means (Cameron & Trivedi 2013, sec. 3.4). Not above zero: the data are
    # not overdispersed and the maximum is at the Poisson boundary, where Newton and BFGS
    # only crawl towards alpha = 0 (tens of seconds on some small underdispersed samples).
    poisson = sm.GLM(y, X, family=sm.families.Poisson(), offset=offset).fit()
    mu = np.asarray(poisson.fittedvalues)
    if np.sum((y - mu) ** 2 - y) <= 0:
        return np.append(np.asarray(poisson.params), 0.0), False, int(poisson.fit_history["iteration"])
    model = sm.NegativeBinomial(y, X, offset=offset, loglike_method="nb2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(method="newton", maxiter=100, tol=1e-12, disp=0)
        # Newton from the Poisson start can fail outright (not converged) or silently
        # (NaN parameters reported as converged): either way, fall back to BFGS.
        if not fit.mle_retvals["converged"] or not np.all(np.isfinite(fit.params)):
            # Newton from the Poisson start failed: BFGS on log alpha, then polish with Newton
            rough = model.fit(method="bfgs", maxiter=1000, gtol=1e-10, disp=0)
            if np.all(np.isfinite(rough.params)) and rough.params[-1] > 1e-8:
                polished = model.fit(start_params=rough.params, method="newton", maxiter=100, tol=1e-12, disp=0)
                fit = polished if np.all(np.isfinite(polished.params)) else rough
    params = np.asarray(fit.params)
    iterations = fit.mle_retvals.get("iterations", fit.mle_retvals.get("gcalls", 0))  # BFGS reports gcalls
    converged = bool(fit.mle_retvals["converged"]) and bool(np.all(np.isfinite(params))) and params[-1] > 0
    return params, converged, int(iterations)


def _note(category, message: str) -> str:
    """Warn at the user's call site (the first frame outside rjtrial) and return the text for ``notes``."""
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("rjtrial."):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
    return message


def rate_ratio(
    df: pd.DataFrame,
    *,
    count: str,
    exposure: str,
    group: str,
    covariates: Sequence[str] | None = None,
    model: str = "negative_binomial",
    control=None,
    alpha: float = 0.05,
    per: float = 365.25,
    na_action: str = "omit",
) -> RateRatioResult:
    """Rate ratio of reoffending between arms, with exposure (street time) as offset.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per participant, e.g. from :func:`rjtrial.followup.build`.
    count : str
        Column of reoffence counts (non-negative whole numbers).
    exposure : str
        Column of time at risk (e.g. ``exposure_days``); must be positive: a participant with
        no street time contributes no information and raises an error naming the rows, so
        that excluding them is the analyst's visible choice (``df[df.exposure_days > 0]``).
    group : str
        Column of the arms.
    covariates : list of str, optional
        Further columns: numeric ones enter linearly, others as treatment-coded dummies
        (``site[T.b]``) with their first level as reference.
    model : {"negative_binomial", "poisson"}
        Negative binomial (NB2, dispersion estimated by maximum likelihood jointly with the
        coefficients) or Poisson.
    control : optional
        The reference arm; by default the first level of ``group``.
    alpha : float
        Significance level of the confidence intervals.
    per : float
        Exposure units per rate unit in :meth:`RateRatioResult.rates_frame` (365.25: rates
        per person-year when exposure is in days).
    na_action : {"omit", "raise"}
        Rows with a missing value in a column the model uses: left out and counted in
        ``n_omitted`` (R's default, ``na.omit``), or an error naming the first.

    Returns
    -------
    RateRatioResult
        ``summary_frame()`` (term, estimate, std_error, rate_ratio, ci_lower, ci_upper,
        statistic, p_value), ``rates_frame()`` (group, n, events, exposure, rate), the
        shortcuts ``rate_ratio``, ``ci_lower``, ``ci_upper``, ``p_value`` (two arms), and the
        fitted attributes ``params_``, ``variance_``, ``dispersion_``, ``theta_``,
        ``theta_std_error_``, ``log_likelihood_``, ``converged``, ``n_iterations``,
        ``model_fitted`` and ``notes``.

    Notes
    -----
    The model is ``log E[Y_i] = log(exposure_i) + x_i' beta``. The negative binomial
    estimates (beta, theta) by joint maximum likelihood (statsmodels ``NegativeBinomial``,
    Newton, step tolerance 1e-12); the covariance of beta is the inverse expected
    information with theta fixed (statsmodels ``GLM`` with ``NegativeBinomial(alpha)``),
    as R reports it. Inference is Wald (normal). Agrees with R
    ``MASS::glm.nb(count ~ group + covariates + offset(log(exposure)))`` and
    ``glm(..., family = poisson)`` to 1e-8 in coefficients, standard errors and theta.
    R's ``fit$SE.theta`` is evaluated one Newton step before ``theta.ml`` stops (its
    tolerance is ``.Machine$double.eps^0.25``), so it can differ from ours by ~1e-5
    relative; ``attr(theta.ml(y, fitted(fit), limit = 100, eps = 1e-14), "SE")`` agrees.
    When the data show no overdispersion the likelihood is largest at dispersion 0 (R's
    ``glm.nb`` then stops at "iteration limit reached" with a huge theta, or fails): a
    :class:`~rjtrial.errors.FallbackWarning` is issued and the Poisson fit is reported, with
    ``model_fitted = "poisson"``, ``dispersion_ = 0``, ``theta_ = inf``, ``converged =
    False`` and the fallback in ``notes`` (and so in :meth:`~RateRatioResult.format`,
    ``to_dict()`` and the report).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"arm": ["control"] * 4 + ["rj"] * 4,
    ...                    "reoffences": [3, 1, 4, 2, 1, 0, 2, 1], "days": [730.5] * 8})
    >>> fit = rate_ratio(df, count="reoffences", exposure="days", group="arm", model="poisson")
    >>> round(fit.rate_ratio, 4)
    0.4
    >>> fit.rates_frame()[["group", "events", "rate"]]
         group  events  rate
    0  control      10  1.25
    1       rj       4  0.50
    """
    import statsmodels.api as sm

    df = check_frame(df)
    model = check_choice("model", model, MODELS)
    alpha = check_alpha(alpha)
    covariates = covariate_list(covariates)
    require_columns(df, count=count, exposure=exposure, group=group, covariates=covariates)
    df, n_omitted = complete_rows(df, [count, exposure, group, *covariates], na_action=na_action, table=TABLE)
    y = numeric(df, count, role="count", nonnegative=True, integer=True)
    t = numeric(df, exposure, role="exposure", nonnegative=True)
    zero = t == 0
    if zero.any():
        rows = df.index[zero].tolist()
        shown = ", ".join(map(str, rows[:10])) + (", ..." if len(rows) > 10 else "")
        raise DataError(
            f"exposure is 0 in {len(rows)} row(s) ({shown}); no time at risk gives no information about "
            "a rate: drop these rows (as the Campbell review's sensitivity analysis did) before fitting",
            table=TABLE, row=rows[0], column=exposure,
        )
    if not (isinstance(per, (int, float)) and per > 0):
        raise ValueError(f"per must be a positive number, got {per!r}")
    levels, codes = groups(df, group, control=control)
    if not y.any():
        raise DataError(f"{count} is 0 in every row: a rate ratio needs at least one event", table=TABLE,
                        column=count)
    for k, level in enumerate(levels):
        if not y[codes == k].any():
            raise DataError(
                f"{count} is 0 in every row of group {level!r}: its rate is 0, so the rate ratio is 0 or "
                "infinite (no estimate)", table=TABLE, column=count,
            )
    X, names = design_matrix(df, group, levels, codes, covariates)
    offset = np.log(t)

    if model == "poisson":
        family = sm.families.Poisson()
        alpha_hat = theta = theta_se = None
        start = None
    else:
        params, converged, n_iter = _fit_negative_binomial(y, X, offset)
        if converged:
            alpha_hat = float(params[-1])
            family, start = sm.families.NegativeBinomial(alpha=alpha_hat), params[:-1]
        else:  # the likelihood is largest at alpha = 0 (or the fit failed): report the Poisson fit
            alpha_hat, theta, theta_se = 0.0, math.inf, math.nan
            family, start = sm.families.Poisson(), None
    glm_model = sm.GLM(y, X, family=family, offset=offset)
    glm = glm_model.fit(start_params=start, maxiter=100, tol=0.0, rtol=1e-13)
    # One more scoring step from the estimate, so that the covariance uses the weights at the
    # estimate rather than at the previous iterate (a 1e-8 relative difference in SEs).
    final = glm_model.fit(start_params=np.asarray(glm.params), maxiter=1)
    if model == "poisson":
        converged, n_iter = bool(glm.converged), int(glm.fit_history["iteration"])
    elif converged and alpha_hat is not None:
        converged = bool(glm.converged)
        theta = 1.0 / alpha_hat
        theta_se = 1.0 / math.sqrt(_theta_information(y, final.mu, theta))
    notes = []
    fell_back = model != "poisson" and alpha_hat == 0
    if fell_back:
        notes.append(_note(FallbackWarning,
                           "the negative binomial fit found no overdispersion (its likelihood is largest at theta -> "
                           "infinity, where R's glm.nb stops at its iteration limit): the Poisson fit is reported"))
    elif not converged:
        notes.append(_note(ConvergenceWarning, f"the {model.replace('_', ' ')} fit did not converge"))
    loglik = float(final.llf)  # the full log-likelihood (theta fixed at its estimate for the NB)
    events = np.rint(np.bincount(codes, weights=y, minlength=len(levels))).astype(np.int64)
    time = np.bincount(codes, weights=t, minlength=len(levels))
    rates = pd.DataFrame({"group": levels, "n": np.bincount(codes, minlength=len(levels)),
                          "events": events, "exposure": time, "rate": events / time * per})
    rates.attrs.update(per=per)
    return RateRatioResult(
        params_=pd.Series(np.asarray(final.params), index=names),
        variance_=pd.DataFrame(np.asarray(final.cov_params()), index=names, columns=names),
        dispersion_=alpha_hat, theta_=theta, theta_std_error_=theta_se, log_likelihood_=loglik,
        converged=converged, n_iterations=n_iter, model=model, model_fitted="poisson" if fell_back else model,
        alpha=alpha, n=len(df), levels=levels, group=group, count=count, exposure=exposure, covariates=covariates,
        notes=tuple(notes), n_omitted=n_omitted, _rates=rates,
    )


# ----------------------------------------------------------------------------- two-by-two
MEASURES = ("risk_ratio", "risk_difference", "odds_ratio")


@dataclass(frozen=True)
class TwoByTwoResult:
    """A risk ratio, risk difference or odds ratio of a binary outcome between two arms.

    ``estimate``, ``ci_lower`` and ``ci_upper`` are on the natural scale (a ratio, or a
    difference of proportions); ``std_error`` and ``statistic`` are on the scale of the
    Wald interval: the log scale for the two ratios (``scale = "log"``), the difference
    itself otherwise. ``correction`` is what was added to every cell (0 unless a cell
    was empty); ``risk_treatment`` and ``risk_control`` are the uncorrected proportions.
    """

    measure: str
    estimate: float
    std_error: float
    ci_lower: float
    ci_upper: float
    statistic: float
    p_value: float
    scale: str
    alpha: float
    events_treatment: int
    n_treatment: int
    events_control: int
    n_control: int
    treatment: object
    control: object
    correction: float

    @property
    def risk_treatment(self) -> float:
        return self.events_treatment / self.n_treatment

    @property
    def risk_control(self) -> float:
        return self.events_control / self.n_control

    def summary_frame(self) -> pd.DataFrame:
        """One row: ``measure, estimate, std_error, ci_lower, ci_upper, statistic, p_value,
        events_treatment, n_treatment, events_control, n_control``; ``attrs``: ``alpha``, ``scale``."""
        keys = ["measure", "estimate", "std_error", "ci_lower", "ci_upper", "statistic", "p_value",
                "events_treatment", "n_treatment", "events_control", "n_control"]
        out = pd.DataFrame([{key: getattr(self, key) for key in keys}])
        out.attrs.update(alpha=self.alpha, scale=self.scale)
        return out


def compare_proportions(
    *,
    measure: str,
    events_treatment: int,
    n_treatment: int,
    events_control: int,
    n_control: int,
    alpha: float = 0.05,
    correction: float = 0.5,
    treatment="treatment",
    control="control",
) -> TwoByTwoResult:
    """Risk ratio, risk difference or odds ratio from the counts of a 2×2 table.

    Parameters
    ----------
    measure : {"risk_ratio", "risk_difference", "odds_ratio"}
    events_treatment, n_treatment, events_control, n_control : int
        Participants with the outcome, and all participants, in each arm.
    alpha : float
        Significance level of the Wald interval.
    correction : float
        Added to all four cells when any cell is 0 (none added otherwise), as R
        ``metafor::escalc(add = 1/2, to = "only0")`` does; 0 turns it off (then an empty
        cell gives a ratio of 0 or infinity with an infinite standard error).

    Returns
    -------
    TwoByTwoResult

    Notes
    -----
    With cells a, b (treatment: events, non-events), c, d (control), n1 = a + b,
    n2 = c + d, p1 = a/n1, p2 = c/n2 (after any correction):

    - risk ratio: log RR = log(p1/p2), SE² = 1/a − 1/n1 + 1/c − 1/n2;
    - odds ratio: log OR = log(ad/bc), SE² = 1/a + 1/b + 1/c + 1/d;
    - risk difference: RD = p1 − p2, SE² = p1(1 − p1)/n1 + p2(1 − p2)/n2.

    The interval is ``estimate ± z SE`` on the log scale for ratios (exponentiated) and on
    the difference scale for RD; the p-value is the two-sided Wald test. Agrees to 1e-12
    with R ``metafor::escalc(measure = "RR" | "OR" | "RD")`` (``yi``, ``vi``) and with the
    same formulas written out in R.

    Examples
    --------
    >>> r = compare_proportions(measure="risk_ratio", events_treatment=20, n_treatment=100,
    ...                         events_control=30, n_control=100)
    >>> round(r.estimate, 4), round(r.ci_lower, 4), round(r.ci_upper, 4)
    (0.6667, 0.4071, 1.0917)
    """
    measure = check_choice("measure", measure, MEASURES)
    alpha = check_alpha(alpha)
    counts = {"events_treatment": events_treatment, "n_treatment": n_treatment,
              "events_control": events_control, "n_control": n_control}
    for key, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{key} must be a non-negative whole number, got {value!r}")
    if events_treatment > n_treatment or events_control > n_control or 0 in (n_treatment, n_control):
        raise ValueError(f"events must not exceed a positive n in each arm; got {counts}")
    if not (isinstance(correction, (int, float)) and correction >= 0):
        raise ValueError(f"correction must be a number >= 0, got {correction!r}")
    a, c = float(events_treatment), float(events_control)
    b, d = n_treatment - a, n_control - c
    added = float(correction) if min(a, b, c, d) == 0 else 0.0
    a, b, c, d = a + added, b + added, c + added, d + added
    n1, n2 = a + b, c + d
    p1, p2 = a / n1, c / n2
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "risk_ratio":
            est, var = np.log(p1) - np.log(p2), np.float64(1) / a - 1 / n1 + np.float64(1) / c - 1 / n2
        elif measure == "odds_ratio":
            est = np.log(a) + np.log(d) - np.log(b) - np.log(c)
            var = np.float64(1) / a + np.float64(1) / b + np.float64(1) / c + np.float64(1) / d
        else:
            est, var = np.float64(p1 - p2), np.float64(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
        se = np.sqrt(var)
        ratio = measure != "risk_difference"
        statistic, p_value, lower, upper = wald(est, se, alpha, exponentiate=ratio)
    return TwoByTwoResult(
        measure=measure, estimate=float(np.exp(est) if ratio else est), std_error=float(se),
        ci_lower=float(lower), ci_upper=float(upper), statistic=float(statistic), p_value=float(p_value),
        scale="log" if ratio else "difference", alpha=alpha, events_treatment=int(events_treatment),
        n_treatment=int(n_treatment), events_control=int(events_control), n_control=int(n_control),
        treatment=treatment, control=control, correction=added,
    )


def _from_frame(df, measure, outcome, group, control, alpha, correction) -> TwoByTwoResult:
    df = check_frame(df)
    require_columns(df, outcome=outcome, group=group)
    y = binary(df, outcome, role="outcome")
    levels, codes = groups(df, group, control=control, exactly_two=True)
    return compare_proportions(
        measure=measure, events_treatment=int(y[codes == 1].sum()), n_treatment=int((codes == 1).sum()),
        events_control=int(y[codes == 0].sum()), n_control=int((codes == 0).sum()),
        alpha=alpha, correction=correction, treatment=levels[1], control=levels[0],
    )


_TWO_BY_TWO_DOC = """{title} of a binary outcome (e.g. any reoffence) between two arms.

    Parameters
    ----------
    df : pandas.DataFrame
    outcome : str
        A 0/1 or boolean column (for any reoffence from a count, add ``df.reoffences > 0``).
    group : str
        Column of the two arms.
    control : optional
        The reference arm; by default the first level of ``group``.
    alpha : float
        Significance level of the Wald interval.
    correction : float
        Added to every cell of the 2×2 table when one is empty (metafor's ``to="only0"``).

    Returns
    -------
    TwoByTwoResult
        ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper``, ``statistic``, ``p_value``
        and the counts per arm; formulas in :func:`compare_proportions`.

    Notes
    -----
    Agrees with R ``metafor::escalc(measure = "{r}")`` and hand formulas to 1e-12.
    """


def risk_ratio(df, *, outcome: str, group: str, control=None, alpha: float = 0.05, correction: float = 0.5):
    return _from_frame(df, "risk_ratio", outcome, group, control, alpha, correction)


def risk_difference(df, *, outcome: str, group: str, control=None, alpha: float = 0.05, correction: float = 0.5):
    return _from_frame(df, "risk_difference", outcome, group, control, alpha, correction)


def odds_ratio(df, *, outcome: str, group: str, control=None, alpha: float = 0.05, correction: float = 0.5):
    return _from_frame(df, "odds_ratio", outcome, group, control, alpha, correction)


risk_ratio.__doc__ = _TWO_BY_TWO_DOC.format(title="Risk ratio", r="RR")
risk_difference.__doc__ = _TWO_BY_TWO_DOC.format(title="Risk difference", r="RD")
odds_ratio.__doc__ = _TWO_BY_TWO_DOC.format(title="Odds ratio", r="OR")


# ----------------------------------------------------------------------------- before-after SMD
@dataclass(frozen=True)
class BeforeAfterSMDResult:
    """Standardised difference between arms in the before–after change (:func:`before_after_smd`)."""

    estimate: float
    std_error: float
    ci_lower: float
    ci_upper: float
    statistic: float
    p_value: float
    alpha: float
    hedges: bool
    mean_change_treatment: float
    mean_change_control: float
    sd_change_treatment: float
    sd_change_control: float
    pooled_sd: float
    n_treatment: int
    n_control: int
    treatment: object
    control: object

    def summary_frame(self) -> pd.DataFrame:
        """One row: ``estimate, std_error, ci_lower, ci_upper, statistic, p_value, n_treatment,
        n_control``; ``attrs``: ``alpha``, ``measure`` (``"hedges_g"`` or ``"cohens_d"``)."""
        keys = ["estimate", "std_error", "ci_lower", "ci_upper", "statistic", "p_value", "n_treatment", "n_control"]
        out = pd.DataFrame([{key: getattr(self, key) for key in keys}])
        out.attrs.update(alpha=self.alpha, measure="hedges_g" if self.hedges else "cohens_d")
        return out


def before_after_smd(
    df: pd.DataFrame,
    *,
    before: str,
    after: str,
    group: str,
    control=None,
    hedges: bool = False,
    alpha: float = 0.05,
) -> BeforeAfterSMDResult:
    """Standardised mean difference between arms in the change from before to after.

    Parameters
    ----------
    df : pandas.DataFrame
    before, after : str
        Numeric columns measured over windows of the same length, e.g. convictions in the two
        years before and the two years after random assignment (``prior_offences``,
        ``reoffences``), or rates.
    group : str
        Column of the two arms.
    control : optional
        The reference arm; by default the first level of ``group``.
    hedges : bool
        Multiply by the small-sample correction J (Hedges' g) instead of reporting Cohen's d.
    alpha : float
        Significance level of the Wald interval.

    Returns
    -------
    BeforeAfterSMDResult
        ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper``, ``statistic``, ``p_value``, and
        per arm the mean and SD of the change and ``n``; ``pooled_sd``.

    Notes
    -----
    With change ``c_i = after_i − before_i``, arm means ``m_T, m_C``, SDs ``s_T, s_C``
    (denominator n − 1) and sizes ``n_T, n_C``:

    ``d = (m_T − m_C) / s_p``, ``s_p² = ((n_T − 1)s_T² + (n_C − 1)s_C²) / (n_T + n_C − 2)``;
    ``Var(d) = 1/n_T + 1/n_C + d² / (2(n_T + n_C))``. With ``hedges=True`` the estimate is
    ``g = J d``, ``J = Γ(m/2) / (√(m/2) Γ((m − 1)/2))``, ``m = n_T + n_C − 2``, and the variance
    uses ``g`` in place of ``d`` (R ``metafor::escalc(measure = "SMD", vtype = "LS")`` on the
    change scores, to 1e-12). A negative value means offending fell more (or rose less) in the
    treatment arm.

    This is *a* standardised before–after difference in the spirit of the Campbell review of
    restorative-justice conferencing (Strang et al. 2013), which compared the before–after
    change in repeat convictions between arms; we do not claim it is the exact computation
    used there, whose standardiser is not reproduced here.

    References
    ----------
    Strang, H., Sherman, L. W., Mayo-Wilson, E., Woods, D. and Ariel, B. (2013). Restorative
    justice conferencing (RJC) using face-to-face meetings of offenders and victims: effects on
    offender recidivism and victim satisfaction. A systematic review. *Campbell Systematic
    Reviews* 9(1). doi:10.4073/csr.2013.12

    Hedges, L. V. and Olkin, I. (1985). *Statistical Methods for Meta-Analysis*. Academic Press.
    """
    df = check_frame(df)
    alpha = check_alpha(alpha)
    require_columns(df, before=before, after=after, group=group)
    change = numeric(df, after, role="after") - numeric(df, before, role="before")
    levels, codes = groups(df, group, control=control, exactly_two=True)
    ct, cc = change[codes == 1], change[codes == 0]
    nt, nc = len(ct), len(cc)
    if min(nt, nc) < 2:
        raise DataError("needs at least two participants in each arm", table=TABLE, column=group)
    st, sc = ct.std(ddof=1), cc.std(ddof=1)
    m = nt + nc - 2
    pooled = math.sqrt(((nt - 1) * st**2 + (nc - 1) * sc**2) / m)
    if pooled == 0:
        raise DataError("the change after - before is the same for everyone: no spread to standardise by",
                        table=TABLE, column=after)
    estimate = (ct.mean() - cc.mean()) / pooled
    if hedges:
        estimate *= math.exp(special.gammaln(m / 2) - math.log(math.sqrt(m / 2)) - special.gammaln((m - 1) / 2))
    se = math.sqrt(1 / nt + 1 / nc + estimate**2 / (2 * (nt + nc)))
    statistic, p_value, lower, upper = wald(estimate, se, alpha)
    return BeforeAfterSMDResult(
        estimate=float(estimate), std_error=se, ci_lower=float(lower), ci_upper=float(upper),
        statistic=float(statistic), p_value=float(p_value), alpha=alpha, hedges=bool(hedges),
        mean_change_treatment=float(ct.mean()), mean_change_control=float(cc.mean()),
        sd_change_treatment=float(st), sd_change_control=float(sc), pooled_sd=pooled,
        n_treatment=nt, n_control=nc, treatment=levels[1], control=levels[0],
    )


# ----------------------------------------------------------------------------- observed vs expected
def _poisson_exact(x: int, expected: float, alpha: float) -> tuple[float, float, float]:
    """Exact CI of x/expected and two-sided p of ratio 1 (R ``poisson.test(x, expected)``)."""
    lower = 0.0 if x == 0 else stats.gamma.ppf(alpha / 2, x) / expected
    upper = stats.gamma.isf(alpha / 2, x + 1) / expected
    m = expected
    if x == m:
        return lower, upper, 1.0
    d = stats.poisson.pmf(x, m) * (1 + 1e-7)
    if x < m:
        n_max = math.ceil(2 * m - x)
        while stats.poisson.pmf(n_max, m) > d:
            n_max *= 2
        y = int(np.sum(stats.poisson.pmf(np.arange(math.ceil(m), n_max + 1), m) <= d))
        p = stats.poisson.cdf(x, m) + stats.poisson.sf(n_max - y, m)
    else:
        y = int(np.sum(stats.poisson.pmf(np.arange(0, math.floor(m) + 1), m) <= d))
        p = stats.poisson.cdf(y - 1, m) + stats.poisson.sf(x - 1, m)
    return float(lower), float(upper), float(min(1.0, p))


class ObservedExpectedResult:
    """Observed against expected reoffending per arm (from :func:`observed_expected`)."""

    def __init__(self, arms: pd.DataFrame, comparisons: pd.DataFrame, alpha: float):
        self._arms, self._comparisons, self.alpha = arms, comparisons, alpha

    def summary_frame(self) -> pd.DataFrame:
        """Per arm: ``group, n, observed, expected, observed_mean, expected_mean, estimate``
        (observed/expected), ``ci_lower, ci_upper`` (exact Poisson), ``p_value`` (exact test of
        a ratio of 1). ``attrs``: ``alpha``."""
        return self._arms.copy()

    def comparison_frame(self) -> pd.DataFrame:
        """Each arm against control: ``group, estimate`` (ratio of the O/E ratios), ``ci_lower,
        ci_upper, p_value`` (exact, conditional on the total observed). ``attrs``: ``alpha``."""
        return self._comparisons.copy()

    def __repr__(self) -> str:
        return f"<ObservedExpectedResult groups={self._arms['group'].tolist()!r}>"

    def __str__(self) -> str:
        fmt = lambda v: f"{v:.4g}"  # noqa: E731
        return "\n".join([self._arms.set_index("group").to_string(float_format=fmt),
                          self._comparisons.set_index("group").to_string(float_format=fmt)])


def observed_expected(
    df: pd.DataFrame, *, observed: str, expected: str, group: str, control=None, alpha: float = 0.05
) -> ObservedExpectedResult:
    """Observed reoffending against a predicted-risk column, by arm (observed/expected ratio).

    Parameters
    ----------
    df : pandas.DataFrame
    observed : str
        Observed outcome: 0/1 (reconvicted) or a count (non-negative whole numbers).
    expected : str
        The expected value of ``observed`` for each participant from a baseline risk score
        (e.g. the OGRS probability of reconviction within two years), non-negative.
    group : str
        Column of the arms.
    control : optional
        The reference arm of :meth:`ObservedExpectedResult.comparison_frame`.
    alpha : float
        Significance level of the intervals.

    Returns
    -------
    ObservedExpectedResult
        ``summary_frame()`` per arm and ``comparison_frame()`` between arms (columns listed there).

    Notes
    -----
    For an arm, O = Σ observed and E = Σ expected; the ratio O/E is an indirectly
    standardised ratio (as the Sheffield evaluation compared actual with OGRS-predicted
    reconviction). O is treated as Poisson with mean (O/E)·E and E as fixed: the interval is
    the exact (Garwood) one and the p-value the exact test of O/E = 1, as R
    ``poisson.test(O, E)``. For 0/1 outcomes the Poisson is an approximation to a sum of
    Bernoulli trials, conservative when predicted risks are high. Arms are compared by the
    ratio of their O/E ratios with the exact conditional (binomial) interval and test, as R
    ``poisson.test(c(O_T, O_C), c(E_T, E_C))``. The uncertainty of the risk score itself is
    ignored.
    """
    df = check_frame(df)
    alpha = check_alpha(alpha)
    require_columns(df, observed=observed, expected=expected, group=group)
    o = numeric(df, observed, role="observed", nonnegative=True, integer=True)
    e = numeric(df, expected, role="expected", nonnegative=True)
    levels, codes = groups(df, group, control=control)
    rows = []
    for k, level in enumerate(levels):
        ok, ek, nk = int(o[codes == k].sum()), float(e[codes == k].sum()), int((codes == k).sum())
        if ek <= 0:
            raise DataError(f"expected sums to 0 in arm {level!r}", table=TABLE, column=expected)
        lower, upper, p = _poisson_exact(ok, ek, alpha)
        rows.append({"group": level, "n": nk, "observed": ok, "expected": ek, "observed_mean": ok / nk,
                     "expected_mean": ek / nk, "estimate": ok / ek, "ci_lower": lower, "ci_upper": upper,
                     "p_value": p})
    arms = pd.DataFrame(rows)
    comparisons = []
    oc, ec = arms.loc[0, "observed"], arms.loc[0, "expected"]
    for k in range(1, len(levels)):
        ot, et = arms.loc[k, "observed"], arms.loc[k, "expected"]
        if ot + oc == 0:
            est = lower = upper = p = np.nan
        else:
            test = stats.binomtest(int(ot), int(ot + oc), et / (et + ec))
            ci = test.proportion_ci(confidence_level=1 - alpha, method="exact")
            with np.errstate(divide="ignore"):
                lower = ci.low / (1 - ci.low) * ec / et
                upper = ci.high / (1 - ci.high) * ec / et if ci.high < 1 else np.inf
                est = (ot / et) / (oc / ec) if oc > 0 else np.inf
            p = test.pvalue
        comparisons.append({"group": levels[k], "estimate": est, "ci_lower": lower, "ci_upper": upper, "p_value": p})
    comparisons = pd.DataFrame(comparisons)
    for table in (arms, comparisons):
        table.attrs.update(alpha=alpha, control=levels[0])
    return ObservedExpectedResult(arms, comparisons, alpha)
