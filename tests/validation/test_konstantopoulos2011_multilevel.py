"""dat.konstantopoulos2011 (56 schools in 11 districts): three-level models against R metafor
``rma.mv`` and cluster-robust inference against clubSandwich.

R 4.2.2 / metafor 3.8-1 / clubSandwich 0.5.8 from tests/reference/metafor_multilevel.R
(``CTRL`` is ``list(rel.tol = 1e-12, iter.max = 10000, eval.max = 10000)``).

The year moderator is centred at 1990 (``year1990 = year - 1990``, in R and here): with raw
years the intercept (~ -20) turns R's optimiser error in sigma^2 (~5e-9) into 2e-5.
"""

from __future__ import annotations

import numpy as np
import pytest
from _multilevel_reference import (
    MV_QUANTITIES,
    check_cr2,
    check_htz,
    check_moderator_test,
    check_mv_quantity,
    check_prediction,
    check_profile,
    load_reference,
    read_dataset,
)

from rjtrial.meta import pool, pool_multilevel, robust

REF = load_reference()["konstantopoulos2011"]
DATA = read_dataset("metadat_konstantopoulos2011").assign(year1990=lambda d: d.year - 1990)
LEVELS = ["district", "school"]

# case -> (R call, pool_multilevel keywords)
CASES = {
    "REML": ("rma.mv(yi, vi, random = ~ 1 | district/school, data = dat, control = CTRL)", {}),
    "ML": ("rma.mv(yi, vi, random = ~ 1 | district/school, method = 'ML', control = CTRL)", {"method": "ML"}),
    "REML_t": (
        "rma.mv(yi, vi, random = ~ 1 | district/school, test = 't', control = CTRL)",
        {"test": "t", "profile": False},
    ),
    "year_REML": (
        "rma.mv(yi, vi, mods = ~ year1990, random = ~ 1 | district/school, control = CTRL)",
        {"moderators": "year1990"},
    ),
    "year_REML_t": (
        "rma.mv(yi, vi, mods = ~ year1990, random = ~ 1 | district/school, test = 't', control = CTRL)",
        {"moderators": "year1990", "test": "t", "profile": False},
    ),
}
_FITS: dict = {}


def fit(case: str):
    if case not in _FITS:
        _FITS[case] = pool_multilevel(DATA, levels=LEVELS, **CASES[case][1])
    return _FITS[case]


@pytest.mark.parametrize("quantity", sorted(MV_QUANTITIES))
@pytest.mark.parametrize("case", sorted(CASES))
def test_rma_mv_quantity(case, quantity):
    # R: see CASES[case]; the quantity's R expression is MV_QUANTITIES[quantity][0]
    check_mv_quantity(fit(case), REF[case], quantity)


@pytest.mark.parametrize("case", ["REML", "ML", "year_REML"])
def test_profile_likelihood_intervals(case):
    # R: confint(res, control = list(tol = 1e-12, maxiter = 10000))
    check_profile(fit(case), REF[case])


@pytest.mark.parametrize("case", sorted(CASES))
def test_prediction(case):
    # R: predict(res) (intercept only), predict(res, newmods = 5)
    check_prediction(fit(case), REF[case])


@pytest.mark.parametrize("case", ["year_REML", "year_REML_t"])
def test_moderator_test(case):
    # R: res$QM, res$QMdf, res$QMp (chi^2; F on (1, k - p) with test = "t")
    check_moderator_test(fit(case), REF[case])


def test_t_tests_use_k_minus_p_df():
    # R: rma.mv(..., test = "t")$ddf
    assert fit("REML_t").df == REF["REML_t"]["ddf"] == 55


@pytest.mark.parametrize("case,ref", [("REML", "cr2_REML"), ("year_REML", "cr2_year_REML")])
def test_cr2_coef_test(case, ref):
    # R: coef_test(res, vcov = "CR2", cluster = dat$district)
    check_cr2(robust(fit(case)), REF[ref])


def test_cr2_htz_wald_test():
    # R: Wald_test(res, constraints = constrain_zero(2), vcov = "CR2", test = "HTZ")
    check_htz(robust(fit("year_REML")), REF["cr2_year_REML"])


def test_cr2_on_a_univariate_fit():
    # R: coef_test(rma(yi, vi, data = dat), vcov = "CR2", cluster = dat$district)
    res = pool(DATA, method="REML")
    assert abs(res.tau2 - REF["uni_tau2"]) < 1e-9
    check_cr2(robust(res, cluster="district"), REF["cr2_uni"])


@pytest.mark.parametrize("level", ["district", "district/school"])
def test_ranef(level):
    # R: ranef(res)[[level]]: intrcpt, se, pi.lb, pi.ub (rows named "11", "11/1", ...)
    from rjtrial.meta import ranef

    frame = ranef(fit("REML"))[level]
    labels = ["/".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in frame.index]
    R = REF["REML"]["ranef"][level]
    frame = frame.set_axis(labels).loc[R["labels"]]
    for column, key in [("estimate", "pred"), ("std_error", "se"), ("pi_lower", "pi_lb"), ("pi_upper", "pi_ub")]:
        np.testing.assert_allclose(frame[column], R[key], rtol=0, atol=1e-6)
