"""``pool``: fixed-, random- and mixed-effects meta-analysis of effect sizes (metafor's rma stage)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from rjtrial.errors import RjtrialWarning
from rjtrial.meta import heterogeneity as het
from rjtrial.meta import mantel_haenszel as mh
from rjtrial.meta._data import MetaData, group_labels, prepare
from rjtrial.meta.estimators import TAU2_METHODS, estimate_tau2
from rjtrial.meta.regression import (
    TESTS,
    FixedPart,
    fit_fixed_part,
    fixed_effect_r2,
    omnibus_test,
    prediction,
    pseudo_r2,
)
from rjtrial.meta.result import MetaResult

TABLE_METHODS = ("MH", "Peto")
METHODS = ("FE",) + TABLE_METHODS + TAU2_METHODS
SUBGROUP_TAU2 = ("separate", "common")


@dataclass(frozen=True)
class Options:
    """How a model is fitted; kept on the result so that it can be refitted on a subset."""

    method: str
    test: str
    alpha: float
    tol: float
    max_iterations: int

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r}: choose one of {', '.join(map(repr, METHODS))}")
        if self.test not in TESTS:
            raise ValueError(f"test={self.test!r}: choose one of {', '.join(map(repr, TESTS))}")
        if self.method in TABLE_METHODS and self.test != "z":
            raise ValueError(f"method={self.method!r} supports only test='z'")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha!r}")
        if not self.tol > 0:
            raise ValueError(f"tol must be positive, got {self.tol!r}")
        if int(self.max_iterations) < 1:
            raise ValueError(f"max_iterations must be at least 1, got {self.max_iterations!r}")


def pool(
    effects: pd.DataFrame,
    *,
    method: str = "REML",
    test: str = "z",
    moderators=None,
    subgroup=None,
    subgroup_tau2: str = "separate",
    alpha: float = 0.05,
    tol: float = 1e-12,
    max_iterations: int = 1000,
    weights=None,
    na_action: str = "omit",
) -> MetaResult:
    """Pool study effect sizes: fixed-effect, random-effects or mixed-effects meta-analysis.

    Parameters
    ----------
    effects : pandas.DataFrame
        One row per study with ``estimate`` and ``variance`` (from :mod:`rjtrial.effects`;
        its index labels the studies). Rows whose estimate and variance are both missing
        (e.g. double-zero tables with ``drop_double_zero=True``) are left out of
        inverse-variance pooling, with a warning.
    method : str, default "REML"
        ``"FE"`` fixed effect (inverse variance); ``"MH"`` Mantel-Haenszel and ``"Peto"``
        (need the count columns of a 2x2 or rate frame); random effects with tau^2 by
        ``"DL"`` DerSimonian-Laird, ``"REML"``, ``"ML"``, ``"PM"`` Paule-Mandel, ``"HE"``
        Hedges, ``"SJ"`` Sidik-Jonkman, ``"EB"`` empirical Bayes, ``"HS"`` Hunter-Schmidt,
        ``"HSk"`` Hunter-Schmidt with the k / (k - p) correction, ``"PMM"`` median-unbiased
        Paule-Mandel, ``"GENQ"`` generalised Q with ``weights`` (DerSimonian & Kacker 2007).
    test : {"z", "knha", "t", "adhoc"}, default "z"
        Normal-theory tests and intervals; the Knapp-Hartung adjustment (t and F on
        k - p df); plain t and F on k - p df (``"t"``); or Knapp-Hartung with the ad hoc
        truncation of its variance factor at 1 (``"adhoc"``), as metafor's ``test``.
    moderators : str, list of str, DataFrame or array, optional
        Meta-regression: columns of ``effects`` (or a frame/array with one row per study).
        Numeric columns enter as they are; text, boolean and categorical ones as
        treatment-coded dummies. The reference level is the first category of a
        ``pd.Categorical`` (its order is respected); for text it is the first in Python's sorted
        order, by Unicode code point: upper case before lower case, accented letters after
        ``z``. R's ``factor()`` sorts by the locale's collation, so for such labels the two can
        pick different references -- give a ``pd.Categorical`` to be sure. Rows with a missing
        moderator follow ``na_action``. An intercept is always included.
    subgroup : str or array-like, optional
        Subgroup label per study (a column of ``effects`` or one label per row): adds the
        per-subgroup table and the test of subgroup differences.
    subgroup_tau2 : {"separate", "common"}, default "separate"
        ``"separate"`` (default, as RevMan and the Cochrane Handbook): each subgroup is
        pooled on its own, with its own tau^2, and the test is the fixed-effect Q between
        the subgroup estimates (chi^2 on G - 1 df). ``"common"``: one tau^2 for all
        subgroups, the model ``mods = ~ factor(subgroup)`` whose omnibus test (chi^2, or F
        with Knapp-Hartung) is the test.
    alpha : float, default 0.05
        Intervals are (1 - alpha) confidence / prediction intervals.
    tol, max_iterations
        Convergence of the iterative tau^2 estimators and the Q-profile interval.
    weights : str or array-like, optional
        User weights (a column of ``effects`` or one positive value per row), as metafor's
        ``rma(..., weights = )``: the fixed part becomes ``(X' A X)^-1 X' A y`` with the
        sandwich covariance ``(X' A X)^-1 X' A M A X (X' A X)^-1``; required by ``"GENQ"``
        (whose tau^2 interval, metafor's generalised Q-profile, is not computed: NaN).
    na_action : {"omit", "raise"}, default "omit"
        Rows with a missing estimate, variance or moderator are left out with a warning and
        counted in ``n_omitted`` and ``format_summary()`` (metafor's ``na.omit``), or raise a
        DataError naming the row and column.

    Returns
    -------
    MetaResult
        The pooled estimate ``estimate, std_error, statistic, p_value, ci_lower, ci_upper``,
        prediction interval ``pi_lower, pi_upper``, heterogeneity ``tau2`` (with Q-profile
        CI), ``i2`` (percent) and ``h2`` (with CIs), ``q, q_df, q_p_value``, per-study
        ``yi, vi, weights``, coefficients and the omnibus test for moderators, subgroup
        table and test, ``converged`` and ``n_iterations``. See :class:`MetaResult`.

    Raises
    ------
    ValueError
        An unknown method or test (the message lists the options), MH/Peto on effects
        without counts, moderators with MH/Peto, or too few studies for the model.
    rjtrial.errors.DataError
        A study with a non-positive or missing variance, or a missing moderator; the
        message names the study row.

    Notes
    -----
    Reproduces R ``metafor`` 3.8: ``rma(yi, vi, mods, method, test)``, ``confint()``,
    ``predict()``, ``rma.mh()``, ``rma.peto()``, to 1e-6 or better on dat.bcg,
    dat.normand1999, dat.collins1985a, dat.pignon2000 and dat.hart1999
    (tests/validation/test_metafor_*.py, with the maximum differences observed).

    References
    ----------
    Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
    Journal of Statistical Software, 36(3), 1-48. doi:10.18637/jss.v036.i03

    Examples
    --------
    >>> import pandas as pd
    >>> from rjtrial import effects
    >>> bcg = pd.DataFrame({"tpos": [4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27],
    ...     "tneg": [119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886],
    ...     "cpos": [11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29],
    ...     "cneg": [128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825]})
    >>> es = effects.log_risk_ratio(bcg, events_treatment="tpos", n_treatment=bcg.tpos + bcg.tneg,
    ...                             events_control="cpos", n_control=bcg.cpos + bcg.cneg)
    >>> res = pool(es, method="REML")
    >>> print(f"{res.estimate:.4f} {res.tau2:.4f} {res.i2:.2f}")
    -0.7145 0.3132 92.22
    """
    options = Options(method, test, float(alpha), float(tol), int(max_iterations))
    if subgroup_tau2 not in SUBGROUP_TAU2:
        raise ValueError(f"subgroup_tau2={subgroup_tau2!r}: choose one of {', '.join(map(repr, SUBGROUP_TAU2))}")
    if subgroup is not None and moderators is not None:
        raise ValueError(
            "give either subgroup or moderators: a subgroup with moderators is a meta-regression "
            "with the subgroup among the moderators"
        )
    from rjtrial.meta.estimators import WEIGHTED_METHODS

    if method in WEIGHTED_METHODS and weights is None:
        raise ValueError(f"method={method!r} needs weights= (the weights of the generalised Q statistic)")
    if weights is not None and method in TABLE_METHODS:
        raise ValueError(f"weights cannot be used with method={method!r}")
    data = prepare(effects, moderators, weights=weights, na_action=na_action)
    labels = group_labels(effects, subgroup) if subgroup is not None else None
    result = fit(data, options)
    if labels is None:
        return result
    from rjtrial.meta.subgroups import subgroup_analysis

    return subgroup_analysis(result, labels, tau2=subgroup_tau2)


def fit(data: MetaData, options: Options) -> MetaResult:
    """Fit one model to prepared study rows (the engine behind :func:`pool` and refits)."""
    if options.method in TABLE_METHODS:
        return _fit_tables(data, options)
    return _fit_inverse_variance(data, options)


def _fit_tables(data: MetaData, options: Options) -> MetaResult:
    table = mh.mantel_haenszel(data) if options.method == "MH" else mh.peto(data)
    q, q_df, q_p = mh.q_about(table)
    i2, h2 = het.i2_h2_fixed(het.QTest(q, q_df, q_p))
    fixed = _scalar_fixed(table.estimate, table.std_error, options.alpha)
    weights = 100 * table.weights / table.weights.sum()
    return _result(
        data,
        options,
        fixed,
        tau2=0.0,
        tau2_se=np.nan,
        interval=None,
        i2=i2,
        h2=h2,
        vt=np.nan,
        q=(q, q_df, q_p),
        k=table.k,
        yi=table.yi,
        vi=table.vi,
        weights=weights,
        converged=True,
        n_iterations=0,
        X=data.X,
        moderator_test=None,
        r2=None,
    )


def _scalar_fixed(estimate: float, se: float, alpha: float) -> FixedPart:
    """The fixed part of a Mantel-Haenszel / Peto fit: one coefficient with z tests."""
    z = estimate / se
    crit = float(stats.norm.isf(alpha / 2))
    return FixedPart(
        np.array([estimate]),
        np.array([[se**2]]),
        np.array([se]),
        np.array([z]),
        np.array([2 * stats.norm.sf(abs(z))]),
        np.array([estimate - crit * se]),
        np.array([estimate + crit * se]),
        None,
        crit,
        1.0,
    )


def _fit_inverse_variance(data: MetaData, options: Options) -> MetaResult:
    rows = data.estimable
    if not rows.any():
        raise ValueError("no study has an estimate and a variance")
    if not rows.all():
        left_out = ", ".join(map(str, data.studies[~rows]))
        warnings.warn(
            f"studies left out of pooling: {left_out} (missing estimate, variance or moderator)",
            RjtrialWarning,
            stacklevel=4,
        )
    yi, vi, X = data.yi[rows], data.vi[rows], data.X[rows]
    a = data.weights[rows] if data.weights is not None else None
    k, p = X.shape
    if np.linalg.matrix_rank(X) < p:
        raise ValueError(
            f"the design ({', '.join(data.names)}) is rank deficient on the {k} studies used: "
            "a moderator is constant or collinear with others"
        )
    if k < p or (k == p and p > 1):
        raise ValueError(f"{k} studies cannot fit {p} coefficients")
    if options.method == "FE" or k == 1:
        tau2, tau2_se, converged, n_iterations = 0.0, np.nan, True, 0
    else:
        fit_tau2 = estimate_tau2(
            yi, vi, X, method=options.method, tol=options.tol, max_iterations=options.max_iterations, weights=a
        )
        tau2, tau2_se = fit_tau2.tau2, fit_tau2.std_error
        converged, n_iterations = fit_tau2.converged, fit_tau2.n_iterations
    fixed = fit_fixed_part(yi, vi, X, tau2, test=options.test, alpha=options.alpha, weights=a)
    q = het.cochran_q(yi, vi, X)
    vt = het.typical_variance(vi, X)
    interval = None
    if options.method == "FE":
        i2, h2 = het.i2_h2_fixed(q)
    elif k == 1:
        i2, h2 = 0.0, 1.0
    elif options.method == "GENQ":
        i2, h2 = het.i2_h2_random(tau2, vt)
        warnings.warn(
            "method='GENQ': the confidence interval of tau^2 (metafor's generalised Q-profile) is not computed",
            RjtrialWarning,
            stacklevel=4,
        )
    else:
        i2, h2 = het.i2_h2_random(tau2, vt)
        interval = het.q_profile_interval(
            yi, vi, X, tau2=tau2, alpha=options.alpha, tol=options.tol, max_iterations=options.max_iterations
        )
    weights = np.full(data.n_rows, np.nan)
    w = 1.0 / (vi + tau2) if a is None else a
    weights[rows] = 100 * w / w.sum()
    moderator_test = r2 = None
    if p > 1:
        moderator_test = omnibus_test(fixed, np.arange(1, p), k=k, p=p)
        if options.method == "FE":
            r2 = fixed_effect_r2(yi, vi, X)
        else:
            without = estimate_tau2(
                yi,
                vi,
                X[:, :1],
                method=options.method,
                tol=options.tol,
                max_iterations=options.max_iterations,
                weights=a,
            )
            r2 = pseudo_r2(without.tau2, tau2)
    yi_all = np.where(rows, data.yi, np.nan)
    vi_all = np.where(rows, data.vi, np.nan)
    return _result(
        data,
        options,
        fixed,
        tau2=tau2,
        tau2_se=tau2_se,
        interval=interval,
        i2=i2,
        h2=h2,
        vt=vt,
        q=(q.statistic, q.df, q.p_value),
        k=k,
        yi=yi_all,
        vi=vi_all,
        weights=weights,
        converged=converged,
        n_iterations=n_iterations,
        X=data.X,
        moderator_test=moderator_test,
        r2=r2,
    )


def _result(
    data,
    options,
    fixed,
    *,
    tau2,
    tau2_se,
    interval,
    i2,
    h2,
    vt,
    q,
    k,
    yi,
    vi,
    weights,
    converged,
    n_iterations,
    X,
    moderator_test,
    r2,
) -> MetaResult:
    nan = np.nan
    if X.shape[1] == 1:
        pooled = tuple(
            float(v[0])
            for v in (fixed.beta, fixed.std_error, fixed.statistic, fixed.p_value, fixed.ci_lower, fixed.ci_upper)
        )
        pred = prediction(fixed, np.ones((1, 1)), tau2)
        pi_lower, pi_upper = float(pred["pi_lower"][0]), float(pred["pi_upper"][0])
    else:
        pooled = (nan,) * 6
        pi_lower = pi_upper = nan
    if interval is not None:
        tau2_ci = (interval.lower, interval.upper)
        i2_ci = tuple(het.i2_h2_random(t, vt)[0] for t in tau2_ci)
        h2_ci = tuple(het.i2_h2_random(t, vt)[1] for t in tau2_ci)
        converged = converged and interval.converged
    else:
        tau2_ci = i2_ci = h2_ci = (nan, nan)
    for array in (
        fixed.beta,
        fixed.vcov,
        fixed.std_error,
        fixed.statistic,
        fixed.p_value,
        fixed.ci_lower,
        fixed.ci_upper,
        yi,
        vi,
        weights,
    ):
        array.flags.writeable = False
    estimate, std_error, statistic, p_value, ci_lower, ci_upper = pooled
    return MetaResult(
        estimate=estimate,
        std_error=std_error,
        statistic=statistic,
        p_value=p_value,
        ci_lower=ci_lower,
        ci_upper=ci_upper,
        pi_lower=pi_lower,
        pi_upper=pi_upper,
        tau2=float(tau2),
        tau2_std_error=float(tau2_se),
        tau2_ci_lower=float(tau2_ci[0]),
        tau2_ci_upper=float(tau2_ci[1]),
        i2=float(i2),
        i2_ci_lower=float(i2_ci[0]),
        i2_ci_upper=float(i2_ci[1]),
        h2=float(h2),
        h2_ci_lower=float(h2_ci[0]),
        h2_ci_upper=float(h2_ci[1]),
        q=float(q[0]),
        q_df=int(q[1]),
        q_p_value=float(q[2]),
        k=int(k),
        method=options.method,
        test=options.test,
        measure=data.measure,
        alpha=options.alpha,
        df=fixed.df,
        converged=bool(converged),
        n_iterations=int(n_iterations),
        coefficient_names=data.names[: X.shape[1]],
        coefficients=fixed.beta,
        vcov=fixed.vcov,
        coefficient_std_errors=fixed.std_error,
        coefficient_statistics=fixed.statistic,
        coefficient_p_values=fixed.p_value,
        coefficient_ci_lower=fixed.ci_lower,
        coefficient_ci_upper=fixed.ci_upper,
        moderator_test=moderator_test,
        r2=r2,
        yi=yi,
        vi=vi,
        weights=weights,
        X=X,
        studies=data.studies,
        typical_variance=float(vt),
        knha_factor=float(fixed.knha_factor),
        data_=data,
        options_=options,
        n_omitted=int(data.n_rows - k),
    )


def refit(result: MetaResult, keep) -> MetaResult:
    """The same model (method, test, alpha, moderators) on the studies where ``keep`` is True."""
    return fit(result.data_.subset(keep), result.options_)
