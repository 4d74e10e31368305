"""Meta-analysis: pool effect sizes across trials (metafor's ``rma`` stage).

``pool(effects, method=..., test=..., moderators=..., subgroup=...)`` returns one
:class:`MetaResult`; further verbs work on it (``summary_frame()``,
``coefficients_frame()``, ``heterogeneity_frame()``, ``study_frame()``, ``predict()``,
``refit(mask)``). Module map:

* :mod:`rjtrial.meta.pooling` -- ``pool`` and the model-fitting engine;
* :mod:`rjtrial.meta.estimators` -- tau^2 estimators (DL, REML, ML, PM, PMM, HE, SJ, EB, HS, HSk, GENQ);
* :mod:`rjtrial.meta.heterogeneity` -- Q, I^2, H^2, Q-profile interval of tau^2;
* :mod:`rjtrial.meta.regression` -- weighted fit given tau^2, tests z / t / Knapp-Hartung / ad hoc, omnibus test,
  pseudo-R^2, prediction;
* :mod:`rjtrial.meta.mantel_haenszel` -- Mantel-Haenszel and Peto pooling of tables;
* :mod:`rjtrial.meta.subgroups` -- subgroup table and test of subgroup differences;
* :mod:`rjtrial.meta.result` -- :class:`MetaResult`;
* :mod:`rjtrial.meta.bias` -- Egger, Begg, trim-and-fill, fail-safe N;
* :mod:`rjtrial.meta.sensitivity` -- leave-one-out, cumulative, influence;
* :mod:`rjtrial.meta.plots` -- forest and funnel plots;
* :mod:`rjtrial.meta.table` -- ``effects_from_table``: a table of studies (ready-made effects or
  summary data) to the effect-size frame ``pool`` takes, every value checked;
* :mod:`rjtrial.meta.multilevel` -- ``pool_multilevel``: nested random effects for dependent
  effect sizes (metafor's ``rma.mv``), profile-likelihood CIs, I^2 by level;
* :mod:`rjtrial.meta.cluster_robust` -- ``robust``: cluster-robust CR2 inference with Satterthwaite df
  and HTZ Wald tests (clubSandwich) on ``pool`` and multilevel fits;
* :mod:`rjtrial.meta.correlated_effects` -- ``rve``: the correlated-effects RVE model (robumeta);
* :mod:`rjtrial.meta.permutation` -- ``permutation_test`` (metafor's ``permutest``);
* :mod:`rjtrial.meta.shrinkage` -- ``blup`` and ``ranef``: study-level predictions;
* :mod:`rjtrial.meta.bayesian` -- ``bayes``: Bayesian random effects for few trials, the exact
  posterior by quadrature (R ``bayesmeta``'s model), with :mod:`rjtrial.meta.bayesian_plots`;
* :mod:`rjtrial.meta.ipd` -- ``two_stage``: per-trial effects from individual participants'
  follow-up tables (Cox, rate ratio, risk measures), the first stage of an IPD meta-analysis.

Every quantity agrees with R ``metafor`` 3.8 to 1e-6 or better (tests/validation/).
"""

import importlib

#: Public name -> the module that defines it. Imported on first use, so that
#: `rjtrial --help` (whose parser imports rjtrial.cli.meta) does not load scipy.stats.
_EXPORTS = {
    "begg": "bias",
    "egger": "bias",
    "fail_safe_n": "bias",
    "small_study_diagnostics": "bias",
    "trim_and_fill": "bias",
    "MEASURE_COLUMNS": "table",
    "effects_from_table": "table",
    "TAU2_METHODS": "estimators",
    "two_stage": "ipd",
    "METHODS": "pooling",
    "SUBGROUP_TAU2": "pooling",
    "pool": "pooling",
    "TESTS": "regression",
    "TestResult": "regression",
    "MetaResult": "result",
    "cumulative": "sensitivity",
    "influence": "sensitivity",
    "leave_one_out": "sensitivity",
    "MultilevelResult": "multilevel",
    "pool_multilevel": "multilevel",
    "RobustResult": "cluster_robust",
    "WaldTest": "cluster_robust",
    "robust": "cluster_robust",
    "RVEResult": "correlated_effects",
    "rve": "correlated_effects",
    "PermutationTest": "permutation",
    "permutation_test": "permutation",
    "blup": "shrinkage",
    "ranef": "shrinkage",
    "BayesResult": "bayesian",
    "bayes": "bayesian",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rjtrial.meta' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"rjtrial.meta.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
