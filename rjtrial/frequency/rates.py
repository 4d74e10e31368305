"""Rate ratios of reoffences per unit of street time: negative binomial (default) or Poisson
models with exposure as offset (:func:`rate_ratio`, :class:`RateRatioResult`)."""

from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass, field
from types import FrameType
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import special

from rjtrial._checks import (
    TABLE,
    check_alpha,
    check_choice,
    check_frame,
    complete_rows,
    covariate_list,
    design_matrix,
    groups,
    numeric,
    require_columns,
    wald,
)
from rjtrial._result import Result, jsonable
from rjtrial.errors import ConvergenceWarning, DataError, FallbackWarning

__all__ = ["RateRatioResult", "rate_ratio"]

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
        warnings.warn(
            "RateRatioResult.alpha_ is now dispersion_ (alpha is the significance level); alpha_ will be removed",
            DeprecationWarning,
            stacklevel=2,
        )
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
            {
                "term": self.params_.index,
                "estimate": est,
                "std_error": se,
                "rate_ratio": np.exp(est),
                "ci_lower": lower,
                "ci_upper": upper,
                "statistic": statistic,
                "p_value": p_value,
            }
        )
        out.attrs.update(
            alpha=self.alpha,
            ci_scale="rate_ratio",
            model=self.model_fitted,
            model_requested=self.model,
            converged=self.converged,
            notes=self.notes,
        )
        return out

    def rates_frame(self) -> pd.DataFrame:
        """Crude rates per arm: columns ``group, n, events, exposure, rate``.

        ``rate`` is events per ``per`` units of exposure (``attrs["per"]``; by default 365.25,
        i.e. events per person-year of street time when exposure is in days).
        """
        return self._rates.copy()

    def _treatment_row(self) -> pd.Series:
        if len(self.levels) != 2:
            raise ValueError(f"{len(self.levels)} arms were compared; read each arm's rate ratio from summary_frame()")
        return self.summary_frame().iloc[1]

    rate_ratio = property(
        lambda self: float(self._treatment_row()["rate_ratio"]),
        doc="Rate ratio of the treatment arm against control (two arms only).",
    )
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
            "model": self.model_fitted,
            "model_requested": self.model,
            "model_label": self.model_label(),
            "n": self.n,
            "n_omitted": self.n_omitted,
            "control": jsonable(self.levels[0]),
            "alpha": self.alpha,
            "dispersion": jsonable(self.dispersion_),
            "theta": jsonable(self.theta_),
            "converged": self.converged,
            "n_iterations": self.n_iterations,
            "notes": list(self.notes),
            "coefficients": jsonable(self.summary_frame()),
            "rates": jsonable(self.rates_frame()),
        }

    def __repr__(self) -> str:
        return f"<RateRatioResult {self.model_fitted}: n={self.n}, groups={self.levels!r}>"


def _theta_information(y, mu, theta) -> float:
    """Observed information of theta given the means (R ``MASS::theta.ml``)."""
    return float(
        np.sum(
            -special.polygamma(1, theta + y)
            + special.polygamma(1, theta)
            - 1 / theta
            + 2 / (mu + theta)
            - (y + theta) / (mu + theta) ** 2
        )
    )


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
            table=TABLE,
            row=rows[0],
            column=exposure,
        )
    if not (isinstance(per, (int, float)) and per > 0):
        raise ValueError(f"per must be a positive number, got {per!r}")
    levels, codes = groups(df, group, control=control)
    if not y.any():
        raise DataError(f"{count} is 0 in every row: a rate ratio needs at least one event", table=TABLE, column=count)
    for k, level in enumerate(levels):
        if not y[codes == k].any():
            raise DataError(
                f"{count} is 0 in every row of group {level!r}: its rate is 0, so the rate ratio is 0 or "
                "infinite (no estimate)",
                table=TABLE,
                column=count,
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
        notes.append(
            _note(
                FallbackWarning,
                "the negative binomial fit found no overdispersion (its likelihood is largest at theta -> "
                "infinity, where R's glm.nb stops at its iteration limit): the Poisson fit is reported",
            )
        )
    elif not converged:
        notes.append(_note(ConvergenceWarning, f"the {model.replace('_', ' ')} fit did not converge"))
    loglik = float(final.llf)  # the full log-likelihood (theta fixed at its estimate for the NB)
    events = np.rint(np.bincount(codes, weights=y, minlength=len(levels))).astype(np.int64)
    time = np.bincount(codes, weights=t, minlength=len(levels))
    rates = pd.DataFrame(
        {
            "group": levels,
            "n": np.bincount(codes, minlength=len(levels)),
            "events": events,
            "exposure": time,
            "rate": events / time * per,
        }
    )
    rates.attrs.update(per=per)
    return RateRatioResult(
        params_=pd.Series(np.asarray(final.params), index=names),
        variance_=pd.DataFrame(np.asarray(final.cov_params()), index=names, columns=names),
        dispersion_=alpha_hat,
        theta_=theta,
        theta_std_error_=theta_se,
        log_likelihood_=loglik,
        converged=converged,
        n_iterations=n_iter,
        model=model,
        model_fitted="poisson" if fell_back else model,
        alpha=alpha,
        n=len(df),
        levels=levels,
        group=group,
        count=count,
        exposure=exposure,
        covariates=covariates,
        notes=tuple(notes),
        n_omitted=n_omitted,
        _rates=rates,
    )
