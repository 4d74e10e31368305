"""R metafor reference numbers for rjtrial.meta.bias / rjtrial.meta.sensitivity.

From ``tests/reference/metafor_diagnostics.R`` (R 4.2.2, metafor 3.8-1), stored in
``tests/reference/metafor_diagnostics.json`` (15 significant digits; ``null`` is R's NA).
Models are fitted with ``control = CTRL`` (``list(threshold = 1e-12, tol = 1e-12,
maxiter = 10000)``); tolerances are ``TOL`` of ``_metafor_reference`` (one place).
"""

from __future__ import annotations

import json
from functools import lru_cache

import pytest
from _metafor_reference import REFERENCE_DIR, TOL, assert_close  # noqa: F401  (re-exported)

# leave1out / cumul columns: (our column, R column, kind)
POOLED_COLUMNS = [
    ("estimate", "estimate", "coef"),
    ("std_error", "se", "std_error"),
    ("statistic", "zval", "statistic"),
    ("p_value", "pval", "p_value"),
    ("ci_lower", "ci_lb", "coef"),
    ("ci_upper", "ci_ub", "coef"),
    ("q", "Q", "statistic"),
    ("q_p_value", "Qp", "p_value"),
    ("tau2", "tau2", "tau2"),
    ("i2", "I2", "percent"),
    ("h2", "H2", "ratio"),
]

# influence(res)$inf columns: (our column, R column, kind)
INFLUENCE_COLUMNS = [
    ("rstudent", "rstudent", "statistic"),
    ("dffits", "dffits", "statistic"),
    ("cooks_distance", "cook_d", "statistic"),
    ("covariance_ratio", "cov_r", "ratio"),
    ("tau2_deleted", "tau2_del", "tau2"),
    ("q_deleted", "QE_del", "statistic"),
    ("hat", "hat", "ratio"),
    ("weight", "weight", "percent"),
]

# regtest(res): (our attribute of EggerTest, R element, kind)
EGGER_QUANTITIES = [
    ("statistic", "zval", "statistic"),
    ("p_value", "pval", "p_value"),
    ("limit_estimate", "est", "coef"),
    ("limit_ci_lower", "ci_lb", "coef"),
    ("limit_ci_upper", "ci_ub", "coef"),
    ("slope", "slope", "coef"),
    ("slope_std_error", "slope_se", "std_error"),
    ("tau2", "tau2", "tau2"),
]

# trimfill(res, control = CTRL): (our attribute of TrimFillResult, R element, kind)
TRIMFILL_QUANTITIES = [
    ("k0", "k0", "count"),
    ("k0_std_error", "se_k0", "statistic"),
    ("estimate", "beta", "coef"),
    ("std_error", "se", "std_error"),
    ("statistic", "zval", "statistic"),
    ("p_value", "pval", "p_value"),
    ("ci_lower", "ci_lb", "coef"),
    ("ci_upper", "ci_ub", "coef"),
    ("tau2", "tau2", "tau2"),
    ("k", "k", "count"),
]


@lru_cache(maxsize=1)
def load_diagnostics() -> dict:
    with open(REFERENCE_DIR / "metafor_diagnostics.json") as handle:
        return json.load(handle)


def params(items):
    return [pytest.param(*item, id=item[0]) for item in items]
