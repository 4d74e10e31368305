"""The Fine–Gray proportional subdistribution-hazards model: :func:`fine_gray`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from rjtrial._checks import wald
from rjtrial._result import Result, jsonable
from rjtrial.errors import CollinearityWarning, ConvergenceWarning, DataError
from rjtrial.survival import _checks
from rjtrial.survival._coxengine import newton
from rjtrial.survival._finegray_engine import SubdistributionRiskSets
from rjtrial.survival.competing import competing_data
from rjtrial.survival.cox import (
    ChiSquareTest,
    _aliased_columns,
    _chi2,
    _design,
    _expand,
    _plural,
    _quadratic,
    _sum_by,
    _warn,
)

METHODS = ("crr", "finegray")
TIES = ("breslow", "efron")


@dataclass(frozen=True)
class FineGrayResult(Result):
    """A fitted Fine–Gray model (from :func:`fine_gray`).

    Fitted attributes
    -----------------
    params_ : Series
        Log subdistribution hazard ratios, indexed by model-matrix column.
    variance_ : DataFrame
        Variance used for inference: crr's sandwich (``method="crr"``) or the
        cluster-robust sandwich (``method="finegray"``); see :func:`fine_gray`.
    naive_variance_ : DataFrame
        Inverse of the information matrix (crr ``invinf``; coxph ``naive.var``).
    log_likelihood_, log_likelihood_null_ : float
        Log pseudo-partial likelihood at the estimate and at zero (crr ``loglik``,
        ``loglik.null``).
    likelihood_ratio_test_, wald_test_ : ChiSquareTest
        Pseudo likelihood-ratio test (crr's ``summary``: not a true likelihood ratio, the
        weights being estimated) and the Wald test with ``variance_``.
    converged, n_iterations
    notes : tuple of str
        Non-convergence, a coefficient tending to infinity, aliased columns.
    """

    formula: str
    cause: int
    method: str
    ties: str
    alpha: float
    strata: str | None
    cluster: str | None
    n: int
    events: int
    competing_events: int
    censored: int
    params_: pd.Series = field(compare=False, repr=False)
    variance_: pd.DataFrame = field(compare=False, repr=False)
    naive_variance_: pd.DataFrame = field(compare=False, repr=False)
    variance_kind: str
    log_likelihood_: float
    log_likelihood_null_: float
    likelihood_ratio_test_: ChiSquareTest
    wald_test_: ChiSquareTest
    converged: bool
    n_iterations: int
    notes: tuple = ()
    term_columns_: dict = field(default_factory=dict, compare=False, repr=False)
    _baseline: Any = field(default=None, compare=False, repr=False)
    _spec: Any = field(default=None, compare=False, repr=False)
    _levels: Any = field(default=None, compare=False, repr=False)
    _estimable: Any = field(default=None, compare=False, repr=False)
    _strata_levels: Any = field(default=None, compare=False, repr=False)

    # ------------------------------------------------------------------ tables
    def summary_frame(self) -> pd.DataFrame:
        """Coefficients table.

        Returns
        -------
        pandas.DataFrame
            One row per model-matrix column:

            ``term``          column name of the model matrix;
            ``estimate``      log subdistribution hazard ratio;
            ``std_error``     its standard error (``attrs["variance"]`` says which);
            ``subdistribution_hazard_ratio``  ``exp(estimate)``;
            ``ci_lower``, ``ci_upper``  Wald confidence interval **of the ratio** (R
            ``summary(crr)$conf.int``);
            ``statistic``     Wald z, ``estimate / std_error``;
            ``p_value``       two-sided normal p-value.

            ``attrs``: ``alpha``, ``ci_scale``, ``variance``, ``method``, ``ties``,
            ``cause``, ``converged``, ``n_iterations``, ``notes``. Aliased columns are NaN.
        """
        est = self.params_.to_numpy()
        se = np.sqrt(np.diag(self.variance_.to_numpy())) if est.size else np.zeros(0)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            stat, p_value, lower, upper = wald(est, se, self.alpha, exponentiate=True)
            out = pd.DataFrame(
                {
                    "term": self.params_.index,
                    "estimate": est,
                    "std_error": se,
                    "subdistribution_hazard_ratio": np.exp(est),
                    "ci_lower": lower,
                    "ci_upper": upper,
                    "statistic": stat,
                    "p_value": p_value,
                }
            )
        out.attrs.update(
            alpha=self.alpha,
            ci_scale="subdistribution_hazard_ratio",
            variance=self.variance_kind,
            method=self.method,
            ties=self.ties,
            cause=self.cause,
            converged=self.converged,
            n_iterations=self.n_iterations,
            notes=self.notes,
        )
        return out

    def tests_frame(self) -> pd.DataFrame:
        """Global tests indexed by ``test``: columns ``statistic, df, p_value``."""
        tests = [self.likelihood_ratio_test_, self.wald_test_]
        return pd.DataFrame(
            {
                "statistic": [t.statistic for t in tests],
                "df": [t.df for t in tests],
                "p_value": [t.p_value for t in tests],
            },
            index=pd.Index([t.method for t in tests], name="test"),
        )

    @property
    def baseline_hazard_(self) -> pd.DataFrame:
        """Baseline cumulative subdistribution hazard (covariates all 0), per stratum.

        Columns ``stratum`` (``"all"`` without strata), ``time`` (the distinct times of the
        cause), ``hazard`` (the jump there, crr's ``bfitj``) and ``cumulative_hazard``.
        """
        pieces = []
        for label, (times, jumps) in zip(self._strata_levels, self._baseline):
            pieces.append(
                pd.DataFrame({"stratum": label, "time": times, "hazard": jumps, "cumulative_hazard": np.cumsum(jumps)})
            )
        return pd.concat(pieces, ignore_index=True)

    def predict(self, df: pd.DataFrame, *, times: Sequence[float] | None = None) -> pd.DataFrame:
        """Cumulative incidence of the cause for covariate profiles (R ``predict.crr``).

        ``F(t | x) = 1 - exp(-exp(x'beta) Lambda_0(t))`` with ``Lambda_0`` the baseline
        cumulative subdistribution hazard (of the profile's stratum).

        Parameters
        ----------
        df : pandas.DataFrame
            One row per profile, with the formula's columns (and the strata column).
        times : sequence of float, optional
            Times at which to evaluate F; default: the distinct times of the cause.

        Returns
        -------
        pandas.DataFrame
            Columns ``profile`` (the row label in ``df``), ``time``, ``estimate``.
        """
        if not isinstance(df, pd.DataFrame) or len(df) == 0:
            raise ValueError("predict needs a DataFrame with one row per covariate profile")
        for column, levels in (self._levels or {}).items():
            if column not in df.columns:
                raise DataError(f"no column {column!r} (a variable of the formula)", table="profiles", column=column)
            if levels is not None:
                unseen = ~df[column].isin(levels).to_numpy()
                if unseen.any():
                    raise DataError(
                        f"{df[column].to_numpy()[unseen][0]!r} is not a level the model was fitted to "
                        f"({', '.join(map(repr, levels))})",
                        table="profiles",
                        row=df.index[int(np.flatnonzero(unseen)[0])],
                        column=column,
                    )
        X = np.zeros((len(df), 0))
        if self._spec is not None:
            import warnings

            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # formulaic warns of unseen levels; refused below
                    mm = self._spec.get_model_matrix(df, na_action="ignore")
            except Exception as exc:  # formulaic's errors for values it cannot encode
                raise ValueError(f"cannot build the model matrix of the profiles: {exc}") from exc
            X = np.asarray(mm[[c for c in mm.columns if c != "Intercept"]], dtype=float)[:, self._estimable]
            bad = np.isnan(X).any(axis=1)
            if bad.any():
                raise DataError(
                    "a covariate value is missing", table="profiles", row=df.index[int(np.flatnonzero(bad)[0])]
                )
        beta = self.params_.to_numpy()[self._estimable]
        if self.strata is None:
            which = [0] * len(df)
        else:
            if self.strata not in df.columns:
                raise DataError(f"no column {self.strata!r} (the strata)", table="profiles", column=self.strata)
            labels = list(self._strata_levels)
            which = []
            for value in df[self.strata]:
                if value not in labels:
                    raise ValueError(f"stratum {value!r} was not in the data the model was fitted to")
                which.append(labels.index(value))
        pieces = []
        for row, (label, s) in enumerate(zip(df.index, which)):
            event_times, jumps = self._baseline[s]
            cumulative = np.cumsum(jumps)
            at = event_times if times is None else np.atleast_1d(np.asarray(times, dtype=float))
            position = np.searchsorted(event_times, at, side="right") - 1
            hazard = np.where(position >= 0, cumulative[np.maximum(position, 0)] if len(cumulative) else 0.0, 0.0)
            pieces.append(
                pd.DataFrame({"profile": label, "time": at, "estimate": 1 - np.exp(-np.exp(X[row] @ beta) * hazard)})
            )
        return pd.concat(pieces, ignore_index=True)

    # ------------------------------------------------------------------ display
    def format(self, digits: int = 4) -> str:
        """The fit as a person reads it: header, coefficients, tests, notes."""
        table = self.summary_frame().set_index("term")
        lines = [
            f"Fine-Gray model for cause {self.cause} ({'R crr' if self.method == 'crr' else 'R finegray + coxph'}, "
            f"{self.ties} ties): n = {self.n}, events = {self.events}, competing events = {self.competing_events}, "
            f"censored = {self.censored}" + (f", strata = {self.strata}" if self.strata else ""),
            table.to_string(float_format=lambda v: f"{v:.{digits}g}"),
            f"confidence level {1 - self.alpha:.0%}, interval of the subdistribution hazard ratio; "
            f"variance {self.variance_kind}",
            self.tests_frame().to_string(float_format=lambda v: f"{v:.{digits}g}"),
            f"Newton-Raphson: {'converged' if self.converged else 'DID NOT CONVERGE'} "
            f"in {self.n_iterations} iterations",
        ]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["tests"] = jsonable(self.tests_frame().reset_index())
        return out

    def __repr__(self) -> str:
        return (
            f"<FineGrayResult {self.formula!r}: cause={self.cause}, n={self.n}, events={self.events}, "
            f"method={self.method!r}>"
        )


def fine_gray(
    df: pd.DataFrame,
    formula: str,
    *,
    time: str,
    event: str,
    cause: int = 1,
    method: str = "crr",
    ties: str | None = None,
    strata: str | None = None,
    cluster: str | None = None,
    alpha: float = 0.05,
) -> FineGrayResult:
    """Fine–Gray model: proportional hazards for the subdistribution of one cause.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per participant.
    formula : str
        Right-hand side, as in :func:`~rjtrial.survival.cox`: ``"arm + age + site"``;
        factors get treatment contrasts against their first level; interactions allowed.
    time : str
        Column of times to the first event (any cause) or censoring.
    event : str
        Column of event codes: 0 censored, 1, 2, ... the causes.
    cause : int
        The cause modelled (e.g. 1, reoffending); every other cause competes.
    method : {"crr", "finegray"}
        Which R route to match (see Notes): ``"crr"``, R ``cmprsk::crr`` (default);
        ``"finegray"``, R ``survival::finegray`` + ``coxph(weights = fgwt)``.
    ties : {"breslow", "efron"}, optional
        Handling of tied times of the cause. Default: the method's R default, Breslow for
        ``"crr"`` (its only choice) and Efron for ``"finegray"`` (``coxph``'s default).
    strata : str, optional
        Column of strata with separate baseline hazards and separate censoring distributions
        (``finegray(... + strata(s))`` + ``coxph(... + strata(s))``); ``method="finegray"`` only.
    cluster : str, optional
        Column identifying clusters (co-offenders in one case) for the robust variance;
        ``method="finegray"`` only (crr has no clustered variance). Default: each row.
    alpha : float
        1 - confidence level of the intervals.

    Returns
    -------
    FineGrayResult
        ``summary_frame()`` (term, estimate, std_error, subdistribution_hazard_ratio,
        ci_lower, ci_upper, statistic, p_value), ``tests_frame()``, ``baseline_hazard_``,
        ``predict(profiles)``, ``format()``, ``to_dict()``.

    Notes
    -----
    The model: the subdistribution hazard of cause ``k``, ``-d log(1 - F_k(t)) / dt``, is
    ``lambda_0(t) exp(x'beta)``. It is fitted by maximising a Cox partial likelihood in
    which those who failed from another cause stay in the risk set with the weight
    ``G(t-) / G(t_i-)``, ``G`` the Kaplan–Meier estimate of the censoring distribution
    (Fine & Gray 1999). The two R routes share that estimator and differ in two details:

    * **ties of failures and censorings** in ``G``: crr's ``G`` is the ordinary Kaplan–Meier
      of the censoring times (a failure at ``t`` is at risk of censoring at ``t``);
      finegray takes failures out of the censoring risk set just before censorings at the
      same time (Geskus 2011). The coefficients differ where failures and censorings share a
      time: by 3.4e-4 on mgus2 (0.7% of a standard error), 3e-6 on the generated trial,
      not at all on Melanoma;
    * **variance**: crr's is Fine & Gray's sandwich ``I^{-1} sum_i (eta_i + psi_i)^2 I^{-1}``,
      whose ``psi_i`` accounts for ``G`` being estimated; coxph's robust variance on
      finegray's data, ``I^{-1} sum_c (sum_{i in c} eta_i)^2 I^{-1}``, treats the weights as
      known (a few per cent smaller here).

    ``method="crr"`` agrees with R ``cmprsk::crr(time, event, model.matrix(...)[, -1],
    failcode = cause, gtol = 1e-12)`` (2.2-11) to 1e-8 in the coefficients (R's own line
    search stops there; its default ``gtol = 1e-6`` stops up to 5e-6 short), 1e-8 relative
    in the standard errors, 1e-12 in the log-likelihoods and in the baseline jumps
    (``bfitj``), and ``predict`` with ``predict.crr``. ``method="finegray"`` agrees with
    ``coxph(Surv(fgstart, fgstop, fgstatus) ~ ... + cluster(id), weights = fgwt,
    data = finegray(Surv(time, factor(event)) ~ ., data, etype = cause, id = id))``
    (survival 3.5-3) to 1e-12 in the coefficients, both variances (``naive.var`` and
    ``var``) and the log-likelihood, with Breslow or Efron ties, clusters and strata
    (tests/validation: mgus2, Melanoma, the generated trial). Beyond 46,340 at risk crr's
    own standard errors are wrong: its Fortran squares the number at risk in 32-bit
    integers, which overflows (4e-5 relative at 100,000 rows; with the overflow emulated
    ours equal crr's to 5e-8, benchmarks/bench_fine_gray.py). Times within floating-point
    noise of each other are tied first (R ``aeqSurv``, which finegray applies and crr
    does not).

    References
    ----------
    Fine, J. P., & Gray, R. J. (1999). A proportional hazards model for the subdistribution
    of a competing risk. JASA, 94(446), 496–509. doi:10.1080/01621459.1999.10474144
    Geskus, R. B. (2011). Cause-specific cumulative incidence estimation and the Fine and
    Gray model under both left truncation and right censoring. Biometrics, 67(1), 39–49.
    doi:10.1111/j.1541-0420.2010.01420.x

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"days": [5, 8, 12, 20, 30, 31, 40, 41, 50, 60, 9, 70],
    ...                    "outcome": [1, 2, 1, 0, 1, 1, 2, 0, 1, 0, 2, 1],
    ...                    "arm": ["rj"] * 6 + ["control"] * 6})
    >>> fit = fine_gray(df, "arm", time="days", event="outcome", cause=1)
    >>> fit.summary_frame()[["term", "estimate", "std_error"]].round(4)
            term  estimate  std_error
    0  arm[T.rj]    1.7064     0.7809
    """
    method = _checks.choice("method", method, METHODS)
    ties = {"crr": "breslow", "finegray": "efron"}[method] if ties is None else _checks.choice("ties", ties, TIES)
    alpha = _checks.alpha_value(alpha)
    if isinstance(cause, bool) or not isinstance(cause, (int, np.integer)) or cause < 1:
        raise ValueError(f"cause must be one positive whole number (a code in the event column), got {cause!r}")
    if method == "crr":
        if ties != "breslow":
            raise ValueError("method='crr' has Breslow ties only (R crr); use method='finegray' for ties='efron'")
        for name, value in (("strata", strata), ("cluster", cluster)):
            if value is not None:
                raise ValueError(f"{name}= needs method='finegray' (R crr has no {name})")
    data = competing_data(
        df,
        time=time,
        event=event,
        cause=cause,
        strata=strata,
        cluster=cluster,
        covariates=_formula_variables(df, formula),
    )
    X, columns, terms = _design(data.frame, formula)
    status = np.where(data.code == 0, 0, np.where(data.code == cause, 1, 2))
    strata_codes, strata_levels = None, ["all"]
    if strata is not None:
        strata_levels = _checks.group_levels(data.strata)
        strata_codes = pd.Categorical(data.strata, categories=strata_levels).codes.astype(np.int64)

    notes: list[str] = []
    risk = SubdistributionRiskSets(X, data.time, status, strata=strata_codes, convention=method)
    estimable = np.ones(len(columns), dtype=bool)
    if risk.p:
        _, _, info0 = risk.loglik(np.zeros(risk.p), ties)
        estimable = ~_aliased_columns(info0)
        if not estimable.all():
            names = [columns[j] for j in np.flatnonzero(~estimable)]
            notes.append(
                _warn(
                    CollinearityWarning,
                    f"{_plural('column', names)} {', '.join(map(repr, names))} of the model matrix "
                    f"{'is' if len(names) == 1 else 'are'} a linear combination of the others (or constant among those "
                    "at risk): not estimable, reported as NaN (R: NA)",
                )
            )
            risk = SubdistributionRiskSets(X[:, estimable], data.time, status, strata=strata_codes, convention=method)
    kept = [c for c, keep in zip(columns, estimable) if keep]
    beta, ll, U, info, converged, n_iter = newton(risk, np.zeros(risk.p), ties)
    p = risk.p
    ll0 = risk.loglik(np.zeros(p), ties, derivatives=False)
    try:
        naive = np.linalg.inv(info) if p else np.zeros((0, 0))
    except np.linalg.LinAlgError:
        naive = np.full((p, p), np.nan)
    if not converged:
        notes.append(
            _warn(
                ConvergenceWarning,
                f"the Fine-Gray model did not converge in {n_iter} Newton iterations; the estimates are its last iterate",
            )
        )
    elif p:
        step = np.abs(naive @ U)
        infinite = (step > 1e-9) & (step > np.sqrt(1e-9) * np.abs(beta))
        if infinite.any():
            names = [kept[j] for j in np.flatnonzero(infinite)]
            notes.append(
                _warn(
                    ConvergenceWarning,
                    f"the likelihood is monotone in {', '.join(map(repr, names))}: the coefficient tends to infinity "
                    "and its standard error is meaningless",
                )
            )
    eta = risk.score_residuals(beta, ties)
    if method == "crr":
        influence = eta + risk.censoring_residuals(beta)
        variance = naive @ influence.T @ influence @ naive if p else np.zeros((0, 0))
        kind = "Fine-Gray sandwich with the censoring-weight term (R crr)"
    else:
        if cluster is not None:
            codes = pd.factorize(data.cluster, sort=True)[0]
            eta = _sum_by(eta, codes, int(codes.max()) + 1)
        dfbeta = eta @ naive
        variance = dfbeta.T @ dfbeta
        kind = f"cluster-robust ({cluster if cluster is not None else 'each row'}), weights taken as known (R coxph)"
    names = pd.Index(columns, name="term")
    spec, levels = _model_spec(data.frame, formula)
    return FineGrayResult(
        formula=formula,
        cause=int(cause),
        method=method,
        ties=ties,
        alpha=alpha,
        strata=strata,
        cluster=cluster,
        n=len(status),
        events=int((status == 1).sum()),
        competing_events=int((status == 2).sum()),
        censored=int((status == 0).sum()),
        params_=pd.Series(_expand(beta, estimable), index=names, name="estimate"),
        variance_=pd.DataFrame(_expand(variance, estimable), index=names, columns=names),
        naive_variance_=pd.DataFrame(_expand(naive, estimable), index=names, columns=names),
        variance_kind=kind,
        log_likelihood_=float(ll),
        log_likelihood_null_=float(ll0),
        likelihood_ratio_test_=_chi2(2 * (ll - ll0), p, "pseudo_likelihood_ratio"),
        wald_test_=_chi2(_quadratic(beta, variance), p, "wald"),
        converged=bool(converged),
        n_iterations=int(n_iter),
        notes=tuple(notes),
        term_columns_=terms,
        _baseline=risk.baseline_jumps(beta),
        _spec=spec,
        _levels=levels,
        _estimable=estimable,
        _strata_levels=tuple(strata_levels),
    )


def _formula_variables(df, formula) -> list[str]:
    """The formula's variables that are columns of ``df`` (so that :func:`competing_data`
    checks them with the rest); a formula that does not parse is left to ``_design``."""
    import formulaic

    try:
        rhs = formula.strip().partition("~")[2] if "~" in formula else formula.strip()
        needed = formulaic.Formula(rhs).required_variables
    except Exception:
        return []
    return sorted(name for name in needed if isinstance(df, pd.DataFrame) and name in df.columns)


def _model_spec(df: pd.DataFrame, formula: str):
    """formulaic's model spec of the fit and the levels of its non-numeric variables (None for
    numeric ones), to build and check profiles' model matrices in ``predict``."""
    import formulaic

    rhs = formula.strip().partition("~")[2] if "~" in formula else formula.strip()
    needed = sorted(formulaic.Formula(rhs).required_variables)
    if not needed:
        return None, {}
    levels = {}
    for name in needed:
        values = df[name]
        numeric = pd.api.types.is_numeric_dtype(values) and values.dtype != bool
        levels[name] = None if numeric else sorted(values.unique().tolist(), key=str)
    return formulaic.model_matrix(rhs, df[needed], na_action="raise").model_spec, levels
