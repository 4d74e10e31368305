"""The shared gamma frailty Cox model: :func:`frailty_cox` and :class:`FrailtyCoxResult`.

People differ in their propensity to reoffend beyond what the covariates say; a frailty
model gives each person (or litter, case, school) a random multiplier of the hazard,
``exp(b_i)``, gamma distributed with mean 1 and variance ``theta``. This is R
``coxph(Surv(...) ~ x + frailty(id))`` (``frailty.gamma``, its default ``method = "em"``);
the numerics are in :mod:`rjtrial.survival._frailty_engine`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from rjtrial._checks import chi2_sf, wald
from rjtrial._result import Result, jsonable
from rjtrial.errors import CollinearityWarning, ConvergenceWarning, DataError, RjtrialWarning
from rjtrial.survival import _checks
from rjtrial.survival import _frailty_engine as engine
from rjtrial.survival.cox import TIES, ChiSquareTest, _aliased_columns, _codes, _design, _expand, _outcome, _warn

INFORMATION = ("exact", "sparse")


@dataclass(frozen=True)
class FrailtyCoxResult(Result):
    """A fitted shared gamma frailty Cox model (from :func:`frailty_cox`).

    Fitted attributes
    -----------------
    params_ : Series
        Log hazard ratios of the covariates, indexed by model-matrix column.
    variance_ : DataFrame
        R's ``fit$var``: the covariates' block of ``H^-1``, ``H`` the information of the
        penalised partial likelihood; its square roots are R's ``se(coef)`` and the
        ``std_error`` of :meth:`summary_frame`.
    variance2_ : DataFrame
        R's ``fit$var2``: the covariates' block of ``H^-1 I H^-1``, ``I`` the information
        without the penalty (R's ``se2``, column ``std_error2``).
    theta_ : float
        Variance of the frailty (R: ``Variance of random effect``).
    frailty_ : Series
        The fitted log frailties ``b_i``, indexed by group (R ``fit$frail``).
    frailty_variance_ : Series
        Their variances, the frailties' diagonal of ``H^-1`` (R ``fit$fvar``).
    degrees_of_freedom_ : Series
        Effective degrees of freedom of each term, the frailty term last (R ``fit$df``).
    log_likelihood_, log_likelihood_null_ : float
        Partial log-likelihood at the estimate (frailties included, no penalty) and with
        every coefficient and frailty 0 (R ``fit$loglik``).
    penalty_ : float
        The penalty at the estimate, ``-sum(b) / theta`` (R ``fit$penalty[2]``).
    penalized_log_likelihood_ : float
        ``log_likelihood_ - penalty_`` (R's ``loglik`` column of ``fit$history``).
    integrated_log_likelihood_ : float
        The marginal (integrated) log-likelihood, maximised over ``theta`` (R's
        ``I-likelihood``, ``c.loglik``).
    likelihood_ratio_test_, frailty_test_ : ChiSquareTest
        R's printed ``Likelihood ratio test`` (``2 (loglik[2] - loglik[1])`` on the summed
        degrees of freedom) and the frailty term's ``Chisq`` on its degrees of freedom.
    converged, n_iterations
        Newton–Raphson convergence at ``theta_`` and its number of iterations.
    theta_converged, n_theta_evaluations
        Whether the search for ``theta`` converged, and the number of values of ``theta``
        it fitted (0 when ``theta`` was given).
    notes : tuple of str
        What the fit had to say, each also issued as a warning.
    """

    formula: str
    frailty: str
    ties: str
    alpha: float
    strata: tuple
    start: str | None
    information: str
    theta_method: str
    n: int
    n_events: int
    n_omitted: int
    n_groups: int
    theta_: float
    params_: pd.Series = field(repr=False, compare=False)
    variance_: pd.DataFrame = field(repr=False, compare=False)
    variance2_: pd.DataFrame = field(repr=False, compare=False)
    frailty_: pd.Series = field(repr=False, compare=False)
    frailty_variance_: pd.Series = field(repr=False, compare=False)
    degrees_of_freedom_: pd.Series = field(repr=False, compare=False)
    log_likelihood_: float
    log_likelihood_null_: float
    penalty_: float
    penalized_log_likelihood_: float
    integrated_log_likelihood_: float
    likelihood_ratio_test_: ChiSquareTest
    frailty_test_: ChiSquareTest
    term_columns_: dict = field(repr=False, compare=False)
    converged: bool
    n_iterations: int
    theta_converged: bool
    n_theta_evaluations: int
    notes: tuple = ()

    def summary_frame(self) -> pd.DataFrame:
        """Coefficients table.

        Returns
        -------
        pandas.DataFrame
            One row per model-matrix column, with columns

            ``term``          column name of the model matrix;
            ``estimate``      log hazard ratio;
            ``std_error``     its standard error, from ``variance_`` (R ``se(coef)``);
            ``std_error2``    from ``variance2_`` (R ``se2``);
            ``hazard_ratio``  ``exp(estimate)``;
            ``ci_lower``, ``ci_upper``  Wald confidence interval **of the hazard ratio**,
            ``exp(estimate -/+ z * std_error)``;
            ``statistic``     Wald z, ``estimate / std_error`` (R prints its square, ``Chisq``);
            ``p_value``       two-sided normal p-value.

            ``attrs``: ``alpha``, ``ci_scale`` (``"hazard_ratio"``), ``theta``,
            ``information``, ``ties``, ``converged``, ``notes``.
        """
        est = self.params_.to_numpy()
        se = np.sqrt(np.diag(self.variance_.to_numpy())) if est.size else np.zeros(0)
        se2 = np.sqrt(np.diag(self.variance2_.to_numpy())) if est.size else np.zeros(0)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            stat, p_value, lower, upper = wald(est, se, self.alpha, exponentiate=True)
            out = pd.DataFrame(
                {
                    "term": self.params_.index,
                    "estimate": est,
                    "std_error": se,
                    "std_error2": se2,
                    "hazard_ratio": np.exp(est),
                    "ci_lower": lower,
                    "ci_upper": upper,
                    "statistic": stat,
                    "p_value": p_value,
                }
            )
        out.attrs.update(
            alpha=self.alpha,
            ci_scale="hazard_ratio",
            theta=self.theta_,
            information=self.information,
            ties=self.ties,
            converged=self.converged,
            notes=self.notes,
        )
        return out

    def tests_frame(self) -> pd.DataFrame:
        """The likelihood-ratio test and the frailty term's test, indexed by ``test``:
        columns ``statistic, df, p_value`` (``df`` effective, not whole)."""
        tests = [self.likelihood_ratio_test_, self.frailty_test_]
        return pd.DataFrame(
            {
                "statistic": [t.statistic for t in tests],
                "df": [t.df for t in tests],
                "p_value": [t.p_value for t in tests],
            },
            index=pd.Index([t.method for t in tests], name="test"),
        )

    def frailties(self) -> pd.DataFrame:
        """One row per group: ``group``, ``estimate`` (log frailty ``b``), ``std_error``
        (from ``frailty_variance_``) and ``frailty`` (``exp(b)``, the hazard multiplier)."""
        return pd.DataFrame(
            {
                "group": self.frailty_.index,
                "estimate": self.frailty_.to_numpy(),
                "std_error": np.sqrt(self.frailty_variance_.to_numpy()),
                "frailty": np.exp(self.frailty_.to_numpy()),
            }
        )

    def to_dict(self) -> dict:
        """JSON-ready: the model's description, coefficients, theta, likelihoods, tests and notes."""
        return {
            "model": "frailty_cox",
            "distribution": "gamma",
            "formula": self.formula,
            "frailty": self.frailty,
            "ties": self.ties,
            "alpha": self.alpha,
            "strata": list(self.strata),
            "start": self.start,
            "information": self.information,
            "theta_method": self.theta_method,
            "n": self.n,
            "n_events": self.n_events,
            "n_omitted": self.n_omitted,
            "n_groups": self.n_groups,
            "theta": jsonable(self.theta_),
            "converged": self.converged,
            "n_iterations": self.n_iterations,
            "theta_converged": self.theta_converged,
            "n_theta_evaluations": self.n_theta_evaluations,
            "log_likelihood": jsonable(self.log_likelihood_),
            "log_likelihood_null": jsonable(self.log_likelihood_null_),
            "penalty": jsonable(self.penalty_),
            "penalized_log_likelihood": jsonable(self.penalized_log_likelihood_),
            "integrated_log_likelihood": jsonable(self.integrated_log_likelihood_),
            "degrees_of_freedom": jsonable(self.degrees_of_freedom_.to_dict()),
            "coefficients": jsonable(self.summary_frame()),
            "tests": jsonable(self.tests_frame().reset_index()),
            "notes": list(self.notes),
        }

    def format(self, digits: int = 4) -> str:
        """The fit as a person reads it: header, coefficients, theta, likelihoods, degrees of
        freedom, tests and notes."""
        fmt = lambda v: f"{v:.{digits}g}"  # noqa: E731
        table = self.summary_frame().set_index("term")
        how = "maximum of the integrated likelihood" if self.theta_method == "maximum" else "fixed"
        dfs = ", ".join(f"{term} {value:.{digits}g}" for term, value in self.degrees_of_freedom_.items())
        lines = [
            f"Cox model with a shared gamma frailty ({self.ties} ties): n = {self.n}, events = {self.n_events}, "
            f"groups = {self.n_groups} ({self.frailty})"
            + (f" ({self.n_omitted} rows omitted for missing values)" if self.n_omitted else "")
            + (f", strata = {', '.join(self.strata)}" if self.strata else ""),
            table.to_string(float_format=fmt),
            f"confidence level {1 - self.alpha:.0%}, interval of the hazard ratio; std_error from var "
            f"({self.information} information), std_error2 from var2",
            f"variance of the frailty (theta) = {fmt(self.theta_)} ({how})",
            f"log-likelihood: integrated {fmt(self.integrated_log_likelihood_)}, penalised "
            f"{fmt(self.penalized_log_likelihood_)}, partial {fmt(self.log_likelihood_)} (null "
            f"{fmt(self.log_likelihood_null_)}), penalty {fmt(self.penalty_)}",
            f"degrees of freedom for terms: {dfs}",
            self.tests_frame().to_string(float_format=fmt),
            f"Newton-Raphson: {'converged' if self.converged else 'DID NOT CONVERGE'} in {self.n_iterations} "
            f"iterations at theta; {self.n_theta_evaluations} values of theta fitted",
        ]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"<FrailtyCoxResult {self.formula!r} + frailty({self.frailty}): n={self.n}, events={self.n_events}, "
            f"theta={self.theta_:.4g}>"
        )

    def __str__(self) -> str:
        return self.format()


def frailty_cox(
    df: pd.DataFrame,
    formula: str,
    *,
    time: str,
    event: str,
    frailty: str,
    start: str | None = None,
    strata: str | Sequence[str] | None = None,
    ties: str = "efron",
    theta: float | None = None,
    information: str = "exact",
    alpha: float = 0.05,
    na_action: str = "omit",
    event_coding: str = "0/1",
) -> FrailtyCoxResult:
    """Fit a Cox model with a shared gamma frailty (R ``coxph(Surv(...) ~ x + frailty(id))``).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per participant, or per ``(start, time]`` interval (recurrent events).
    formula : str
        Right-hand side for the covariates, e.g. ``"arm + age"`` (the frailty is given by
        ``frailty``, not in the formula).
    time, event : str
        Columns of times (ends of intervals when ``start`` is given) and event indicators.
    frailty : str
        Column identifying the groups that share a frailty: the person for recurrent
        reoffending, a case for co-offenders, a litter.
    start : str, optional
        Column of interval starts for ``(start, time]`` data.
    strata : str or list of str, optional
        Columns defining strata with separate baseline hazards.
    ties : {"efron", "breslow"}
    theta : float, optional
        A fixed frailty variance (R ``frailty(id, theta = ...)``); by default ``theta`` is
        the maximiser of the integrated likelihood (R's default, ``method = "em"``).
    information : {"exact", "sparse"}
        ``"exact"`` (default): variances from the exact information matrix, as R
        ``frailty(id, sparse = FALSE)``. ``"sparse"``: R's default for more than five
        groups, which takes the frailties' block of the information as diagonal; the
        coefficients and ``theta`` are the same, their variances and the degrees of
        freedom differ (by 2% in the standard errors on R's ``kidney`` data).
    alpha : float
        1 - confidence level of the intervals.
    na_action : {"omit", "raise"}
    event_coding : {"0/1", "r"}
        As :func:`~rjtrial.survival.cox`.

    Returns
    -------
    FrailtyCoxResult
        With ``summary_frame()`` (term, estimate, std_error, std_error2, hazard_ratio,
        ci_lower, ci_upper, statistic, p_value), ``tests_frame()`` (likelihood-ratio and
        frailty tests: statistic, df, p_value), ``frailties()`` (group, estimate,
        std_error, frailty), ``theta_``, the partial, penalised and integrated
        log-likelihoods and ``degrees_of_freedom_``.

    Notes
    -----
    For a given ``theta`` the coefficients and log frailties ``b`` maximise the penalised
    partial likelihood ``PL(beta, b) + (1/theta) sum(b - exp(b))``; ``theta`` maximises
    the integrated likelihood, which for the gamma frailty is that maximum plus
    ``sum_i [d_i + nu log nu - (nu + d_i) log(nu + d_i) + lgamma(nu + d_i) - lgamma(nu)]``
    (``nu = 1/theta``, ``d_i`` the events of group ``i``; R ``frailty.gammacon``). This is
    R's model and its estimate, found differently: R searches ``theta`` without derivatives
    and stops when the integrated likelihood changes by less than ``eps = 1e-5`` relative
    (its inner Newton loop at 1e-9), which on R's ``kidney`` data stops at 0.412 where the
    maximum is at 0.4077696; here the derivative of the integrated likelihood in ``theta``
    is exact (envelope theorem) and its root is found by Brent's method, and the Newton
    iterations use the exact information. ``var`` is ``H^-1`` and ``var2`` is
    ``H^-1 I H^-1`` (R ``coxpenal.df``); degrees of freedom are R's:
    ``trace(var_jj^-1 var2_jj)`` per term.

    Agreement with R survival 3.5-3 (tests/validation/test_*_frailty.py, eight fits on
    kidney, rats, bladder2, cgd and a generated trial): at R's theta, coefficients,
    frailties, both variances, degrees of freedom and the likelihoods to 1e-8 or better,
    for ``information="exact"`` against ``frailty(id, theta, sparse = FALSE)`` and for
    ``"sparse"`` against ``frailty(id, theta)``; ``theta`` to R's own precision (R run with
    ``eps = 1e-14``, within 1e-7 relative), and then the coefficients to 1e-6. Against
    R's default call the coefficients differ by up to 5e-3 and ``theta`` by 1% on
    kidney, because R's default search stops early.

    References
    ----------
    Therneau, T. M., Grambsch, P. M., & Pankratz, V. S. (2003). Penalized survival models
    and frailty. Journal of Computational and Graphical Statistics, 12(1), 156–175.
    doi:10.1198/1061860031365

    Examples
    --------
    Three spells each of 80 people whose propensity differs (gamma, variance 1):

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(7)
    >>> person = np.repeat(np.arange(1, 81), 3)
    >>> arm = np.repeat(np.where(np.arange(80) % 2 == 0, "rj", "control"), 3)
    >>> propensity = np.repeat(rng.gamma(1.0, 1.0, 80), 3)
    >>> days = np.ceil(rng.exponential(200 / (propensity * np.where(arm == "rj", 0.6, 1.0))))
    >>> data = pd.DataFrame({"id": person, "arm": arm, "days": np.minimum(days, 365),
    ...                      "event": (days <= 365).astype(int)})
    >>> fit = frailty_cox(data, "arm", time="days", event="event", frailty="id")
    >>> round(fit.theta_, 3), round(float(fit.params_["arm[T.rj]"]), 3)
    (0.731, -0.526)
    """
    ties = _checks.choice("ties", ties, TIES)
    information = _checks.choice("information", information, INFORMATION)
    alpha = _checks.alpha_value(alpha)
    if theta is not None and not (isinstance(theta, (int, float)) and np.isfinite(theta) and theta >= 0):
        raise ValueError(f"theta must be a number >= 0 (the variance of the frailty), got {theta!r}")
    if not isinstance(formula, str) or not formula.strip():
        raise ValueError("formula must be a non-empty string of terms, e.g. 'arm + age'")
    if not isinstance(frailty, str):
        raise ValueError(f"frailty must be the name of the column identifying the groups, got {frailty!r}")
    strata_cols = [strata] if isinstance(strata, str) else (list(strata) if strata is not None else [])
    df, n_omitted = _checks.prepare(
        df,
        {"time": time, "event": event, "start": start, "strata": strata_cols, "frailty": frailty},
        formula=formula.partition("~")[2] if "~" in formula else formula,
        na_action=na_action,
    )
    stop, evt, begin = _outcome(df, time=time, event=event, start=start, event_coding=event_coding)
    for name in strata_cols:
        _checks.labels(df, name, role="strata")
    labels = _checks.labels(df, frailty, role="frailty")
    codes, levels = pd.factorize(labels, sort=True)
    X, columns, terms = _design(df, formula)
    if evt.sum() == 0:
        raise DataError("there are no events; a Cox model needs at least one", table=_checks.TABLE, column=event)
    stop, begin = _checks.aeq_times(stop, begin, index=df.index, column=time)
    strata_codes = _codes(df, strata_cols) if strata_cols else None

    notes: list[str] = []
    estimable = np.ones(len(columns), dtype=bool)
    frs = engine.FrailtyRiskSets(X, codes, len(levels), stop, evt, start=begin, strata=strata_codes)
    if frs.p:
        _, _, info0 = frs.risk.loglik(np.zeros(frs.p), ties)
        estimable = ~_aliased_columns(info0)
        if not estimable.all():
            names = [columns[j] for j in np.flatnonzero(~estimable)]
            notes.append(
                _warn(
                    CollinearityWarning,
                    f"{'column' if len(names) == 1 else 'columns'} {', '.join(map(repr, names))} of the model matrix "
                    f"{'is' if len(names) == 1 else 'are'} a linear combination of the others: not estimable, reported "
                    "as NaN (R: NA)",
                )
            )
            frs = engine.FrailtyRiskSets(
                X[:, estimable], codes, len(levels), stop, evt, start=begin, strata=strata_codes
            )
    p = frs.p

    if theta is None:
        search, cache = engine.search_theta(frs, ties)
        theta_value = search.theta
        if search.boundary:
            notes.append(
                _warn(
                    RjtrialWarning,
                    f"the variance of the frailty is estimated as 0 (the integrated likelihood is largest at theta = 0): "
                    f"no heterogeneity between the groups of {frailty!r} beyond the covariates; the fit is the Cox model",
                )
            )
        elif not search.converged:
            notes.append(_warn(ConvergenceWarning, f"the search for theta did not converge: {search.message}"))
        fit = cache.get(theta_value)
        if fit is None:  # theta = 0, or a root Brent's method did not evaluate last
            near = cache[min(cache, key=lambda t: abs(t - theta_value))] if theta_value > 0 else None
            fit = engine.penalised_fit(
                frs, theta_value, ties, beta0=None if near is None else near.beta, b0=None if near is None else near.b
            )
        n_evaluations = search.n_evaluations
        theta_converged = search.converged
    else:
        theta_value = float(theta)
        fit = engine.penalised_fit(frs, theta_value, ties)
        n_evaluations = 0
        theta_converged = True
    if not fit.converged:
        notes.append(
            _warn(
                ConvergenceWarning,
                f"the penalised Cox model did not converge in {fit.n_iterations} Newton iterations at theta = "
                f"{theta_value:.6g}; the estimates are its last iterate",
            )
        )
    sparse = information == "sparse"
    term_cols = _estimable_terms(terms, estimable)
    if theta_value > 0:
        v = engine.variances(fit, sparse=sparse)
        beta_var, beta_var2, frailty_var = v.var, v.var2, v.frailty_variance
        term_dfs, frailty_df = engine.degrees_of_freedom(v, fit, term_cols.values())
        frailty_chisq = engine.frailty_wald(fit.b, v, sparse=sparse)
    else:  # frailties fixed at 0: the Cox model's variance; the frailties have none
        beta_var = np.linalg.inv(fit.information.XX) if p else np.zeros((0, 0))
        beta_var2, frailty_var = beta_var, np.full(frs.q, np.nan)
        term_dfs, frailty_df, frailty_chisq = [float(len(c)) for c in term_cols.values()], 0.0, 0.0
    ll0 = frs.evaluate(np.zeros(p), np.zeros(frs.q), ties, derivatives=False)
    nu_sum_b = np.sum(fit.b) / theta_value if theta_value > 0 else 0.0
    penalty = -nu_sum_b
    integrated = engine.integrated_loglik(frs, fit)
    total_df = float(np.sum(term_dfs) + frailty_df)
    lr = 2 * (fit.loglik - ll0)
    names = pd.Index(columns, name="term")
    frailty_term = f"frailty({frailty})"
    return FrailtyCoxResult(
        formula=formula,
        frailty=frailty,
        ties=ties,
        alpha=alpha,
        strata=tuple(strata_cols),
        start=start,
        information=information,
        theta_method="maximum" if theta is None else "fixed",
        n=len(df),
        n_events=int(evt.sum()),
        n_omitted=n_omitted,
        n_groups=len(levels),
        theta_=float(theta_value),
        params_=pd.Series(_expand(fit.beta, estimable), index=names, name="estimate"),
        variance_=pd.DataFrame(_expand(beta_var, estimable), index=names, columns=names),
        variance2_=pd.DataFrame(_expand(beta_var2, estimable), index=names, columns=names),
        frailty_=pd.Series(fit.b, index=pd.Index(levels, name=frailty), name="frailty"),
        frailty_variance_=pd.Series(frailty_var, index=pd.Index(levels, name=frailty), name="variance"),
        degrees_of_freedom_=pd.Series(
            term_dfs + [frailty_df], index=list(term_cols) + [frailty_term], name="degrees_of_freedom"
        ),
        log_likelihood_=float(fit.loglik),
        log_likelihood_null_=float(ll0),
        penalty_=float(penalty),
        penalized_log_likelihood_=float(fit.loglik - penalty),
        integrated_log_likelihood_=float(integrated),
        likelihood_ratio_test_=ChiSquareTest(float(lr), total_df, float(chi2_sf(lr, total_df)), "likelihood_ratio"),
        frailty_test_=ChiSquareTest(
            float(frailty_chisq),
            float(frailty_df),
            float(chi2_sf(frailty_chisq, max(frailty_df, 0.5))),
            frailty_term,
        ),
        term_columns_=terms,
        converged=bool(fit.converged),
        n_iterations=int(fit.n_iterations),
        theta_converged=bool(theta_converged),
        n_theta_evaluations=int(n_evaluations),
        notes=tuple(notes),
    )


def _estimable_terms(terms: dict, estimable: np.ndarray) -> dict:
    """Term -> positions of its estimable columns among the estimable columns (terms with none dropped)."""
    position = np.cumsum(estimable) - 1
    out = {}
    for term, cols in terms.items():
        kept = [int(position[c]) for c in cols if estimable[c]]
        if kept:
            out[term] = kept
    return out
