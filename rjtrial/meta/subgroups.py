"""Subgroup analysis: pooled effect per subgroup and the test of subgroup differences.

Two conventions, both reproducing R ``metafor``:

* ``"separate"`` (the default; RevMan and the Cochrane Handbook): each subgroup is pooled
  on its own, with its own tau^2, by the same method and test; the test of differences is
  the fixed-effect Q between the subgroup estimates,
  ``Q_between = sum (theta_g - theta_bar)^2 / se_g^2`` on G - 1 df
  (R: ``rma(estimate, sei = se, method = "FE")$QE``).
* ``"common"``: one tau^2 shared by the subgroups, the meta-regression on subgroup dummies;
  subgroup estimates are the cell means (R: ``rma(yi, vi, mods = ~ factor(g) - 1)``) and the
  test is its omnibus test (R: ``rma(yi, vi, mods = ~ factor(g))$QM``: chi^2 on G - 1 df, or
  F on (G - 1, k - G) df with Knapp-Hartung).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from rjtrial.meta import heterogeneity as het
from rjtrial.meta.estimators import estimate_tau2
from rjtrial.meta.regression import TestResult, contrast_test, fit_fixed_part
from rjtrial.meta.result import MetaResult

SUBGROUP_COLUMNS = (
    "k",
    "estimate",
    "std_error",
    "statistic",
    "p_value",
    "ci_lower",
    "ci_upper",
    "tau2",
    "q",
    "q_df",
    "q_p_value",
    "i2",
)


def _levels(labels: pd.Series) -> list:
    values = list(pd.unique(labels))
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def subgroup_analysis(result: MetaResult, labels: pd.Series, *, tau2: str = "separate") -> MetaResult:
    """Add the per-subgroup table and the test of subgroup differences to an overall result."""
    levels = _levels(labels)
    if len(levels) < 2:
        raise ValueError(f"a subgroup analysis needs at least two subgroups, got {levels}")
    if tau2 == "separate":
        table, test, fits = _separate(result, labels, levels)
    else:
        table, test = _common(result, labels, levels)
        fits = None
    table.attrs.update({"alpha": result.alpha, "subgroup_tau2": tau2, "method": result.method, "test": result.test})
    return dataclasses.replace(result, subgroups=table, subgroup_test=test, subgroup_results=fits)


def _separate(result: MetaResult, labels: pd.Series, levels: list):
    from rjtrial.meta.pooling import fit

    fits = {}
    for level in levels:
        fits[level] = fit(result.data_.subset((labels == level).to_numpy()), result.options_)
    table = pd.DataFrame(
        [{c: getattr(f, c) for c in SUBGROUP_COLUMNS} for f in fits.values()],
        index=pd.Index(levels, name="subgroup"),
    )
    est = table["estimate"].to_numpy(dtype=float)
    se = table["std_error"].to_numpy(dtype=float)
    if np.all(np.isfinite(se)) and np.all(se > 0):
        q = het.cochran_q(est, se**2, np.ones((len(est), 1)))
        test = TestResult(
            q.statistic,
            float(q.df),
            q.p_value,
            "chi2",
            "test of subgroup differences (fixed-effect Q between subgroups)",
        )
    else:
        test = TestResult(
            np.nan,
            float(len(levels) - 1),
            np.nan,
            "chi2",
            "test of subgroup differences (undefined: a subgroup has no standard error)",
        )
    return table, test, fits


def _common(result: MetaResult, labels: pd.Series, levels: list):
    data, options = result.data_, result.options_
    if options.method in ("MH", "Peto"):
        raise ValueError(
            f"subgroup_tau2='common' needs an inverse-variance method, not {options.method!r}; "
            "use subgroup_tau2='separate'"
        )
    rows = data.estimable
    yi, vi = data.yi[rows], data.vi[rows]
    group = labels.to_numpy()[rows]
    X = np.column_stack([(group == level).astype(float) for level in levels])
    if np.any(X.sum(axis=0) == 0):
        empty = [str(level) for level, n in zip(levels, X.sum(axis=0)) if n == 0]
        raise ValueError(f"subgroup(s) {', '.join(empty)} have no study with an estimate")
    k, p = X.shape
    if options.method == "FE":
        tau2 = 0.0
    else:
        tau2 = estimate_tau2(
            yi, vi, X, method=options.method, tol=options.tol, max_iterations=options.max_iterations
        ).tau2
    fixed = fit_fixed_part(yi, vi, X, tau2, test=options.test, alpha=options.alpha)
    contrasts = np.column_stack([-np.ones(p - 1), np.eye(p - 1)])
    test = contrast_test(
        fixed,
        contrasts,
        k=k,
        p=p,
        method="test of subgroup differences (common tau^2: omnibus test of subgroup dummies)",
    )
    records = []
    for j, level in enumerate(levels):
        in_group = group == level
        q = het.cochran_q(yi[in_group], vi[in_group], np.ones((int(in_group.sum()), 1)))
        records.append(
            {
                "k": int(in_group.sum()),
                "estimate": fixed.beta[j],
                "std_error": fixed.std_error[j],
                "statistic": fixed.statistic[j],
                "p_value": fixed.p_value[j],
                "ci_lower": fixed.ci_lower[j],
                "ci_upper": fixed.ci_upper[j],
                "tau2": tau2,
                "q": q.statistic,
                "q_df": q.df,
                "q_p_value": q.p_value,
                "i2": np.nan,
            }
        )
    table = pd.DataFrame(records, index=pd.Index(levels, name="subgroup"))
    return table, test
