"""Cox proportional-hazards regression: :func:`cox` and its result, :class:`CoxResult`.

Verbs on the result live in their own modules: :mod:`~rjtrial.survival.concordance`
(Harrell's C) and :mod:`~rjtrial.survival.ph_test` (R ``cox.zph``); both are also methods.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Sequence, overload

import numpy as np
import pandas as pd

from rjtrial._checks import chi2_sf, wald
from rjtrial._result import Result, jsonable
from rjtrial.errors import CollinearityWarning, ConvergenceWarning, DataError
from rjtrial.survival import _checks
from rjtrial.survival._coxengine import RiskSets, newton

if TYPE_CHECKING:
    from rjtrial.survival.frailty import FrailtyCoxResult

TIES = ("efron", "breslow")


@dataclass(frozen=True)
class ChiSquareTest:
    """A chi-square test statistic with its degrees of freedom and p-value."""

    statistic: float
    df: int | float  # float for the effective degrees of freedom of a penalised fit
    p_value: float
    method: str


def _chi2(statistic: float, df: int, method: str) -> ChiSquareTest:
    return ChiSquareTest(float(statistic), int(df), float(chi2_sf(statistic, df)), method)


def _quadratic(vector: np.ndarray, matrix: np.ndarray) -> float:
    """``v' M^{-1} v`` (0 when there are no coefficients)."""
    if vector.size == 0:
        return 0.0
    return float(vector @ np.linalg.solve(matrix, vector))


def _design(df: pd.DataFrame, formula: str):
    """Model matrix without intercept (R's contrasts) and term -> column positions."""
    import formulaic

    if not isinstance(formula, str) or not formula.strip():
        raise ValueError("formula must be a non-empty string of terms, e.g. 'arm + age'")
    rhs = formula.strip()
    if "~" in rhs:
        lhs, _, rhs = rhs.partition("~")
        if lhs.strip():
            raise ValueError(
                "formula takes the right-hand side only ('arm + age'); the outcome is given by time= and event="
            )
    needed = _checks.formula_columns(df, rhs)
    rhs = _checks.quote_dotted_names(rhs, needed)
    for name in needed:
        _checks.labels(df, name, role="covariate")
    mm = formulaic.model_matrix(rhs, df[needed] if needed else df.iloc[:, :0], na_action="raise")
    columns = [c for c in mm.columns if c != "Intercept"]
    keep = [i for i, c in enumerate(mm.columns) if c != "Intercept"]
    position = {old: new for new, old in enumerate(keep)}
    terms = {}
    for term, indices in mm.model_spec.term_indices.items():
        cols = [position[i] for i in indices if i in position]
        if cols:
            terms[str(term)] = cols
    X = np.asarray(mm[columns], dtype=float) if columns else np.zeros((len(df), 0))
    return X, columns, terms


def _codes(df: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    return df.groupby(list(names), sort=True, observed=True).ngroup().to_numpy()


@dataclass(frozen=True)
class CoxResult(Result):
    """A fitted Cox model (from :func:`cox` or :func:`~rjtrial.survival.andersen_gill`).

    Fitted attributes
    -----------------
    params_ : Series
        Log hazard ratios, indexed by model-matrix column (``"arm[T.rj]"``, ``"age"``).
    variance_ : DataFrame
        Variance matrix used for inference: the cluster-robust sandwich when ``cluster``
        was given, else the inverse information.
    naive_variance_ : DataFrame
        Inverse of the observed information (R ``fit$naive.var`` / ``fit$var``).
    log_likelihood_, log_likelihood_null_ : float
        Log partial likelihood at the estimate and at zero.
    likelihood_ratio_test_, wald_test_, score_test_ : ChiSquareTest
        Global tests of all coefficients being zero (R ``logtest``, ``wald.test``,
        ``score``); the Wald test uses ``variance_``.
    robust_score_test_ : ChiSquareTest or None
        Robust score test (R ``rscore``) when ``cluster`` was given.
    term_columns_ : dict
        Model term -> positions of its columns in ``params_``.
    converged, n_iterations
        Newton–Raphson convergence and number of iterations.
    n, n_events, n_omitted : int
        Rows used, events among them, and rows left out for a missing value
        (``na_action="omit"``).
    notes : tuple of str
        What the fit had to say: non-convergence, a coefficient tending to infinity
        (monotone likelihood), aliased columns, an information matrix that is not positive
        definite. Each was also issued as a :class:`~rjtrial.errors.ConvergenceWarning` or
        :class:`~rjtrial.errors.CollinearityWarning` and is printed by :meth:`format`.
    model : str
        ``"cox"``, or ``"pwp"`` for a Prentice–Williams–Peterson fit
        (:func:`~rjtrial.survival.pwp`), whose ``timescale`` (``"total"`` or ``"gap"``) and
        ``max_event_number`` (the cap on the event-number strata, or None) are recorded.
    """

    formula: str
    ties: str
    alpha: float
    strata: tuple
    cluster: str | None
    start: str | None
    n: int
    n_events: int
    n_omitted: int
    n_clusters: int | None
    params_: pd.Series = field(repr=False, compare=False)
    variance_: pd.DataFrame = field(repr=False, compare=False)
    naive_variance_: pd.DataFrame = field(repr=False, compare=False)
    variance_kind: str
    log_likelihood_: float
    log_likelihood_null_: float
    likelihood_ratio_test_: ChiSquareTest
    wald_test_: ChiSquareTest
    score_test_: ChiSquareTest
    robust_score_test_: ChiSquareTest | None
    term_columns_: dict = field(repr=False, compare=False)
    converged: bool
    n_iterations: int
    notes: tuple = ()
    model: str = "cox"
    timescale: str | None = None
    max_event_number: int | None = None
    _estimable: np.ndarray = field(kw_only=True, repr=False, compare=False)
    _risk: RiskSets = field(kw_only=True, repr=False, compare=False)
    _index: pd.Index = field(default=None, repr=False, compare=False)
    _cluster_codes: np.ndarray | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ tables
    def summary_frame(self) -> pd.DataFrame:
        """Coefficients table.

        Returns
        -------
        pandas.DataFrame
            One row per model-matrix column, with columns

            ``term``          column name of the model matrix;
            ``estimate``      log hazard ratio;
            ``std_error``     its standard error (cluster-robust when ``cluster`` was given);
            ``hazard_ratio``  ``exp(estimate)``;
            ``ci_lower``, ``ci_upper``  Wald confidence interval **of the hazard ratio**,
            ``exp(estimate -/+ z * std_error)`` (R ``summary(fit)$conf.int``);
            ``statistic``     Wald z, ``estimate / std_error``;
            ``p_value``       two-sided normal p-value.

            ``attrs``: ``alpha``, ``ci_scale`` (``"hazard_ratio"``), ``variance``
            (``"model-based"`` or ``"cluster-robust (<column>)"``), ``ties``, ``converged``,
            ``n_iterations``, ``notes``. Aliased columns have NaN in every column.
        """
        est = self.params_.to_numpy()
        se = np.sqrt(np.diag(self.variance_.to_numpy())) if est.size else np.zeros(0)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # an infinite coefficient was warned of
            out = self._coefficient_table(est, se)
        out.attrs.update(
            alpha=self.alpha,
            ci_scale="hazard_ratio",
            variance=self.variance_kind,
            ties=self.ties,
            converged=self.converged,
            n_iterations=self.n_iterations,
            notes=self.notes,
        )
        return out

    def _coefficient_table(self, est: np.ndarray, se: np.ndarray) -> pd.DataFrame:
        stat, p_value, lower, upper = wald(est, se, self.alpha, exponentiate=True)
        return pd.DataFrame(
            {
                "term": self.params_.index,
                "estimate": est,
                "std_error": se,
                "hazard_ratio": np.exp(est),
                "ci_lower": lower,
                "ci_upper": upper,
                "statistic": stat,
                "p_value": p_value,
            }
        )

    def to_dict(self) -> dict:
        """JSON-ready: the model's description, coefficients, global tests and notes."""
        return {
            "model": self.model,
            "formula": self.formula,
            "ties": self.ties,
            "alpha": self.alpha,
            **({"timescale": self.timescale, "max_event_number": self.max_event_number} if self.model == "pwp" else {}),
            "strata": list(self.strata),
            "cluster": self.cluster,
            "start": self.start,
            "n": self.n,
            "n_events": self.n_events,
            "n_omitted": self.n_omitted,
            "n_clusters": self.n_clusters,
            "variance": self.variance_kind,
            "converged": self.converged,
            "n_iterations": self.n_iterations,
            "log_likelihood": jsonable(self.log_likelihood_),
            "log_likelihood_null": jsonable(self.log_likelihood_null_),
            "coefficients": jsonable(self.summary_frame()),
            "tests": jsonable(self.tests_frame().reset_index()),
            "notes": list(self.notes),
        }

    def tests_frame(self) -> pd.DataFrame:
        """Global tests as a table indexed by ``test``: columns ``statistic, df, p_value``."""
        tests = [self.likelihood_ratio_test_, self.wald_test_, self.score_test_]
        if self.robust_score_test_ is not None:
            tests.append(self.robust_score_test_)
        return pd.DataFrame(
            {
                "statistic": [t.statistic for t in tests],
                "df": [t.df for t in tests],
                "p_value": [t.p_value for t in tests],
            },
            index=pd.Index([t.method for t in tests], name="test"),
        )

    # ------------------------------------------------------------------ verbs
    def concordance(self):
        """Harrell's C as R ``coxph`` reports it; see :func:`rjtrial.survival.concordance.concordance`."""
        from rjtrial.survival.concordance import concordance

        return concordance(self)

    def proportional_hazards_test(self, *, transform: str = "km") -> pd.DataFrame:
        """R ``cox.zph``; see :func:`rjtrial.survival.ph_test.proportional_hazards_test`."""
        from rjtrial.survival.ph_test import proportional_hazards_test

        return proportional_hazards_test(self, transform=transform)

    @property
    def estimable_params_(self) -> pd.Series:
        """``params_`` without the aliased (not estimable, NaN) columns."""
        return self.params_[self._estimable]

    def score_residuals(self) -> pd.DataFrame:
        """Score residuals, one row per input row (R ``residuals(fit, type = "score")``).

        Columns are the estimable model-matrix columns (aliased ones, NaN in ``params_``,
        are left out, as R leaves out ``NA`` coefficients).
        """
        params = self.estimable_params_
        values = self._risk.score_residuals(params.to_numpy(), self.ties)
        return pd.DataFrame(values, index=self._index, columns=params.index)

    def dfbeta(self) -> pd.DataFrame:
        """Approximate change in the coefficients when a row is left out: ``U_i I^{-1}``."""
        kept = self.estimable_params_.index
        return self.score_residuals() @ self.naive_variance_.loc[kept, kept]

    # ------------------------------------------------------------------ display
    def format(self, digits: int = 4) -> str:
        """The fit as a person reads it: header, coefficients, global tests, and any notes
        (non-convergence, infinite or aliased coefficients)."""
        table = self.summary_frame().set_index("term")
        title = "Cox model"
        if self.model == "pwp":
            cap = f"; numbers {self.max_event_number} and above pooled" if self.max_event_number else ""
            title = f"Prentice-Williams-Peterson {self.timescale}-time model (strata: event number{cap})"
        lines = [
            f"{title} ({self.ties} ties): n = {self.n}, events = {self.n_events}"
            + (f" ({self.n_omitted} rows omitted for missing values)" if self.n_omitted else "")
            + (f", strata = {', '.join(self.strata)}" if self.strata else "")
            + (f", clusters = {self.n_clusters} ({self.cluster})" if self.cluster else ""),
            table.to_string(float_format=lambda v: f"{v:.{digits}g}"),
            f"confidence level {1 - self.alpha:.0%}, interval of the hazard ratio; variance {self.variance_kind}",
            self.tests_frame().to_string(float_format=lambda v: f"{v:.{digits}g}"),
            f"Newton-Raphson: {'converged' if self.converged else 'DID NOT CONVERGE'} in {self.n_iterations} iterations",
        ]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def format_summary(self, digits: int = 4) -> str:
        """Same as :meth:`format`."""
        return self.format(digits)

    def __repr__(self) -> str:
        return f"<CoxResult {self.formula!r}: n={self.n}, events={self.n_events}, ties={self.ties!r}>"

    def __str__(self) -> str:
        return self.format()


@overload
def cox(
    df: pd.DataFrame,
    formula: str,
    *,
    time: str,
    event: str,
    start: str | None = None,
    strata: str | Sequence[str] | None = None,
    cluster: str | None = None,
    ties: str = "efron",
    alpha: float = 0.05,
    na_action: str = "omit",
    event_coding: str = "0/1",
    frailty: None = None,
) -> CoxResult: ...


@overload
def cox(
    df: pd.DataFrame,
    formula: str,
    *,
    time: str,
    event: str,
    start: str | None = None,
    strata: str | Sequence[str] | None = None,
    cluster: str | None = None,
    ties: str = "efron",
    alpha: float = 0.05,
    na_action: str = "omit",
    event_coding: str = "0/1",
    frailty: str,
) -> FrailtyCoxResult: ...


def cox(
    df: pd.DataFrame,
    formula: str,
    *,
    time: str,
    event: str,
    start: str | None = None,
    strata: str | Sequence[str] | None = None,
    cluster: str | None = None,
    ties: str = "efron",
    alpha: float = 0.05,
    na_action: str = "omit",
    event_coding: str = "0/1",
    frailty: str | None = None,
) -> CoxResult | FrailtyCoxResult:
    """Fit a Cox proportional-hazards model.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per participant, or per ``(start, time]`` interval for counting-process data.
    formula : str
        Right-hand side in formulaic/patsy syntax, e.g. ``"arm + age + prior"``; string
        and categorical columns get treatment contrasts against their first level.
    time : str
        Column of times to event or censoring (end of interval when ``start`` is given).
    event : str
        Column coded 1 (event) / 0 (censored).
    start : str, optional
        Column of interval starts for ``(start, time]`` data (recurrent events,
        time-varying covariates). A row is at risk at ``t`` when ``start < t <= time``.
    strata : str or list of str, optional
        Columns defining strata with separate baseline hazards (R ``strata()``).
    cluster : str, optional
        Column identifying clusters (co-offenders in one case; the person, for recurrent
        events): the variance becomes the cluster-robust sandwich (R ``cluster()``).
    ties : {"efron", "breslow"}
        Handling of tied event times.
    alpha : float
        1 - confidence level of the intervals in :meth:`CoxResult.summary_frame`.
    na_action : {"omit", "raise"}
        Rows with a missing value in any column the model uses: left out and counted in
        ``n_omitted`` (R's default, ``na.omit``), or an error naming the first.
    event_coding : {"0/1", "r"}
        ``"0/1"``: 0 censored, 1 event (or False/True); ``"r"``: R's 1 censored, 2 event.
        Never guessed from the values.
    frailty : str, optional
        Column identifying groups that share a gamma frailty (the person, for recurrent
        reoffending): fits the shared gamma frailty model of
        :func:`~rjtrial.survival.frailty_cox` (R ``coxph(... + frailty(id))``) with its
        defaults and returns a :class:`~rjtrial.survival.FrailtyCoxResult`. Not with
        ``cluster``.

    Returns
    -------
    CoxResult
        With ``summary_frame()`` (term, estimate, std_error, hazard_ratio, ci_lower,
        ci_upper, statistic, p_value), global tests (``likelihood_ratio_test_``,
        ``wald_test_``, ``score_test_``, ``robust_score_test_``), ``concordance()``,
        ``proportional_hazards_test()``, ``score_residuals()``; with ``frailty``, a
        :class:`~rjtrial.survival.FrailtyCoxResult` instead.

    Notes
    -----
    The partial likelihood is maximised by Newton–Raphson from zero, as R ``coxph``, on
    rjtrial's exact Efron/Breslow likelihood (:mod:`rjtrial.survival._coxengine`) run to
    machine-precision convergence. lifelines (``CoxPHFitter``) is not used for the fit:
    its default stopping rule can leave the estimate short of the optimum (2e-7 on the
    100,000-row benchmark data), it takes 38 s on a million rows where this takes 3 s
    (benchmarks/bench_survival_results.md), and its robust variance ignores ties in the
    score residuals (its own ``TODO: doesn't handle ties``) and is an O(n^2) Python loop,
    so its cluster-robust SEs differ from R's by ~1e-3..1e-2 relative on tied data. The
    tests check the estimate against lifelines as well as against R.

    The robust variance is R's: ``D'D`` with ``D`` the dfbeta residuals ``U_i I^{-1}``
    summed within clusters, ``U_i`` the score residuals with Efron's tie correction
    (R ``residuals.coxph(type = "dfbeta", collapse = cluster)``); no small-sample factor.
    The robust score test uses score residuals at zero, summed by cluster.

    Agrees with R ``survival::coxph`` 3.5-3 on the Rossi data and the generated trial to
    2e-9 or better in coefficients (R's default convergence; 1e-14 against R refitted with
    eps = 1e-14), 1e-8 relative in both standard errors and the LR/Wald/score/robust score
    tests, 1e-10 in log-likelihoods (tests/validation/test_rossi1980_cox.py,
    tests/validation/test_survival_generated_trial_r.py). Covariates are centred, as in R.

    References
    ----------
    Cox, D. R. (1972). Regression models and life-tables. JRSS B, 34(2), 187–220.
    doi:10.1111/j.2517-6161.1972.tb00899.x
    Lin, D. Y., & Wei, L. J. (1989). The robust inference for the Cox proportional hazards
    model. JASA, 84(408), 1074–1078. doi:10.1080/01621459.1989.10478874

    Examples
    --------
    >>> from lifelines.datasets import load_rossi
    >>> fit = cox(load_rossi(), "fin + age + race + wexp + mar + paro + prio", time="week", event="arrest")
    >>> round(float(fit.params_["fin"]), 7)
    -0.3794222
    >>> round(fit.likelihood_ratio_test_.statistic, 2)
    33.27
    """
    if frailty is not None:
        if cluster is not None:
            raise ValueError("give frailty= or cluster=, not both: the frailty model accounts for the grouping itself")
        from rjtrial.survival.frailty import frailty_cox

        return frailty_cox(
            df,
            formula,
            time=time,
            event=event,
            frailty=frailty,
            start=start,
            strata=strata,
            ties=ties,
            alpha=alpha,
            na_action=na_action,
            event_coding=event_coding,
        )
    ties = _checks.choice("ties", ties, TIES)
    alpha = _checks.alpha_value(alpha)
    if not isinstance(formula, str) or not formula.strip():
        raise ValueError("formula must be a non-empty string of terms, e.g. 'arm + age'")
    strata_cols = [strata] if isinstance(strata, str) else (list(strata) if strata is not None else [])
    df, n_omitted = _checks.prepare(
        df,
        {"time": time, "event": event, "start": start, "strata": strata_cols, "cluster": cluster},
        formula=formula.partition("~")[2] if "~" in formula else formula,
        na_action=na_action,
    )
    stop, evt, begin = _outcome(df, time=time, event=event, start=start, event_coding=event_coding)
    for name in strata_cols:
        _checks.labels(df, name, role="strata")
    X, columns, terms = _design(df, formula)
    strata_codes = _codes(df, strata_cols) if strata_cols else None
    if evt.sum() == 0:
        raise DataError("there are no events; a Cox model needs at least one", table=_checks.TABLE, column=event)
    stop, begin = _checks.aeq_times(stop, begin, index=df.index, column=time)

    notes: list[str] = []
    risk = RiskSets(X, stop, evt, start=begin, strata=strata_codes)
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
                    f"{'is' if len(names) == 1 else 'are'} a linear combination of the others (or constant within "
                    "strata): not estimable, reported as NaN (R: NA)",
                )
            )
            risk = RiskSets(X[:, estimable], stop, evt, start=begin, strata=strata_codes)
    kept = [c for c, keep in zip(columns, estimable) if keep]
    beta, ll, U, info, converged, n_iter = newton(risk, np.zeros(risk.p), ties)
    p = risk.p
    ll0, U0, I0 = risk.loglik(np.zeros(p), ties)
    try:
        naive = np.linalg.inv(info) if p else np.zeros((0, 0))
    except np.linalg.LinAlgError:
        naive = np.full((p, p), np.nan)
    if not converged:
        notes.append(
            _warn(
                ConvergenceWarning,
                f"the Cox model did not converge in {n_iter} Newton iterations; the estimates are its last iterate",
            )
        )
    elif p:
        # R coxph.fit's check: a Newton step still large at convergence means beta -> infinity
        step = np.abs(naive @ U)
        infinite = (step > 1e-9) & (step > np.sqrt(1e-9) * np.abs(beta))
        if infinite.any():
            names = [kept[j] for j in np.flatnonzero(infinite)]
            notes.append(
                _warn(
                    ConvergenceWarning,
                    f"the likelihood is monotone in {', '.join(map(repr, names))} (it separates those with and without "
                    "events): the coefficient tends to infinity and its standard error is meaningless",
                )
            )
    diag = np.diag(naive)
    if p and not (np.all(np.isfinite(diag)) and np.all(diag > 0)):
        names = [kept[j] for j in np.flatnonzero(~(np.isfinite(diag) & (diag > 0)))]
        notes.append(
            _warn(
                ConvergenceWarning,
                f"the information matrix is not positive definite at the estimate ({', '.join(map(repr, names))}): "
                "standard errors are not available",
            )
        )
    variance = naive
    robust_score = None
    n_clusters = None
    if cluster is not None:
        cl = pd.factorize(_checks.labels(df, cluster, role="cluster"), sort=True)[0]
        n_clusters = int(cl.max()) + 1
        dfbeta = _sum_by(risk.score_residuals(beta, ties) @ naive, cl, n_clusters)
        variance = dfbeta.T @ dfbeta
        score0 = _sum_by(risk.score_residuals(np.zeros(p), ties), cl, n_clusters)
        robust_score = _chi2(_quadratic(score0.sum(axis=0), score0.T @ score0), p, "robust_score")
    names = pd.Index(columns, name="term")
    return CoxResult(
        formula=formula,
        ties=ties,
        alpha=alpha,
        strata=tuple(strata_cols),
        cluster=cluster,
        start=start,
        n=len(df),
        n_events=int(evt.sum()),
        n_omitted=n_omitted,
        n_clusters=n_clusters,
        params_=pd.Series(_expand(beta, estimable), index=names, name="estimate"),
        variance_=pd.DataFrame(_expand(variance, estimable), index=names, columns=names),
        naive_variance_=pd.DataFrame(_expand(naive, estimable), index=names, columns=names),
        variance_kind=f"cluster-robust ({cluster})" if cluster is not None else "model-based",
        log_likelihood_=float(ll),
        log_likelihood_null_=float(ll0),
        likelihood_ratio_test_=_chi2(2 * (ll - ll0), p, "likelihood_ratio"),
        wald_test_=_chi2(_quadratic(beta, variance), p, "wald"),
        score_test_=_chi2(_quadratic(U0, I0), p, "score"),
        robust_score_test_=robust_score,
        term_columns_=terms,
        converged=bool(converged),
        n_iterations=int(n_iter),
        notes=tuple(notes),
        _estimable=estimable,
        _risk=risk,
        _index=df.index,
        _cluster_codes=cl if cluster is not None else None,
    )


def _outcome(df: pd.DataFrame, *, time: str, event: str, start: str | None, event_coding: str):
    """Checked ``(stop, event, start)`` arrays (``start`` None for right-censored data)."""
    stop = _checks.times(df, time)
    evt = _checks.events(df, event, event_coding)
    begin = None
    if start is not None:
        begin = _checks.times(df, start, role="start")
        bad = begin >= stop
        if bad.any():
            raise DataError(
                f"an interval must end after it starts ({start} < {time}); found start {begin[bad][0]:g} "
                f">= end {stop[bad][0]:g}",
                table=_checks.TABLE,
                row=df.index[int(np.flatnonzero(bad)[0])],
                column=time,
            )
    return stop, evt, begin


def _plural(word: str, items) -> str:
    return word if len(items) == 1 else word + "s"


def _warn(category, message: str) -> str:
    """Issue ``message`` as a warning at the user's call site and return it for ``notes``."""
    warnings.warn(message, category, stacklevel=_user_stacklevel())
    return message


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points at the first frame outside ``rjtrial.survival``."""
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("rjtrial.survival"):
        frame = frame.f_back
        level += 1
    return level


def _aliased_columns(info: np.ndarray, toler: float = np.finfo(float).eps ** 0.75) -> np.ndarray:
    """Columns whose information is a linear combination of earlier columns' (R ``cholesky2``).

    A symmetric elimination in column order; a pivot below ``toler`` times the largest
    diagonal element marks the column as aliased (R ``coxph``'s ``toler.chol``), and the
    column is then left out of the fit (its coefficient is ``NA`` in R).
    """
    a = np.array(info, dtype=float)
    p = a.shape[0]
    largest = np.max(np.diag(a), initial=0.0)
    eps = toler * largest if largest > 0 else toler
    aliased = np.zeros(p, dtype=bool)
    for i in range(p):
        pivot = a[i, i]
        if not np.isfinite(pivot) or pivot < eps:
            aliased[i] = True
            a[i, :] = 0.0
            a[:, i] = 0.0
            continue
        col = a[i + 1 :, i].copy()
        a[i + 1 :, i + 1 :] -= np.outer(col, col) / pivot
    return aliased


def _expand(values: np.ndarray, estimable: np.ndarray) -> np.ndarray:
    """Put the estimable columns' values back among NaNs for the aliased ones."""
    if estimable.all():
        return values
    full = len(estimable)
    if values.ndim == 1:
        out = np.full(full, np.nan)
        out[estimable] = values
        return out
    out = np.full((full, full), np.nan)
    out[np.ix_(estimable, estimable)] = values
    return out


def _sum_by(values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    return (
        np.column_stack([np.bincount(codes, weights=values[:, j], minlength=n_groups) for j in range(values.shape[1])])
        if values.shape[1]
        else np.zeros((n_groups, 0))
    )
