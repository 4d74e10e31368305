"""Meta-analysis: pool effect sizes across trials (metafor's ``rma`` stage).

``pool(effects, method=..., test=..., moderators=..., subgroup=...)`` returns one
:class:`MetaResult`; further verbs work on it (``summary_frame()``,
``coefficients_frame()``, ``heterogeneity_frame()``, ``study_frame()``, ``predict()``,
``refit(mask)``). Module map:

* :mod:`rjtrial.meta.pooling` -- ``pool`` and the model-fitting engine;
* :mod:`rjtrial.meta.estimators` -- tau^2 estimators (DL, REML, ML, PM, HE, SJ, EB, HS);
* :mod:`rjtrial.meta.heterogeneity` -- Q, I^2, H^2, Q-profile interval of tau^2;
* :mod:`rjtrial.meta.regression` -- weighted fit given tau^2, Knapp-Hartung, omnibus test,
  pseudo-R^2, prediction;
* :mod:`rjtrial.meta.mantel_haenszel` -- Mantel-Haenszel and Peto pooling of tables;
* :mod:`rjtrial.meta.subgroups` -- subgroup table and test of subgroup differences;
* :mod:`rjtrial.meta.result` -- :class:`MetaResult`;
* :mod:`rjtrial.meta.bias` -- Egger, Begg, trim-and-fill, fail-safe N;
* :mod:`rjtrial.meta.sensitivity` -- leave-one-out, cumulative, influence;
* :mod:`rjtrial.meta.plots` -- forest and funnel plots.

Every quantity agrees with R ``metafor`` 3.8 to 1e-6 or better (tests/validation/).
"""

from rjtrial.meta.bias import begg, egger, fail_safe_n, trim_and_fill
from rjtrial.meta.estimators import TAU2_METHODS
from rjtrial.meta.pooling import METHODS, SUBGROUP_TAU2, pool
from rjtrial.meta.regression import TESTS, TestResult
from rjtrial.meta.result import MetaResult
from rjtrial.meta.sensitivity import cumulative, influence, leave_one_out

__all__ = ["METHODS", "MetaResult", "SUBGROUP_TAU2", "TAU2_METHODS", "TESTS", "TestResult", "begg", "cumulative",
           "egger", "fail_safe_n", "influence", "leave_one_out", "pool", "trim_and_fill"]
