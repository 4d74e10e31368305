"""dat.assink2016 (recidivism and mental health in delinquent juveniles; 100 effects in 17
studies): three-level models against R metafor ``rma.mv``, CR2 inference and HTZ Wald tests
against clubSandwich, and the correlated-effects RVE model against robumeta.

R 4.2.2 / metafor 3.8-1 / clubSandwich 0.5.8 / robumeta 2.0 from
tests/reference/metafor_multilevel.R (``CTRL`` is ``list(rel.tol = 1e-12, iter.max = 10000,
eval.max = 10000)``); ``V06`` is ``impute_covariance_matrix(vi, cluster = study, r = 0.6)``.
"""

from __future__ import annotations

import pytest
from _multilevel_reference import (
    MV_QUANTITIES,
    check_cr2,
    check_htz,
    check_moderator_test,
    check_mv_quantity,
    check_prediction,
    check_profile,
    check_robu,
    load_reference,
    read_dataset,
)

from rjtrial.meta import pool, pool_multilevel, robust, rve

REF = load_reference()["assink2016"]
DATA = read_dataset("metadat_assink2016")
LEVELS = ["study", "esid"]

CASES = {
    "REML": ("rma.mv(yi, vi, random = ~ 1 | study/esid, data = dat, control = CTRL)", {}),
    "deltype_REML": (
        "rma.mv(yi, vi, mods = ~ deltype, random = ~ 1 | study/esid, control = CTRL)",
        {"moderators": "deltype"},
    ),
    "deltype_year_REML_t": (
        "rma.mv(yi, vi, mods = ~ deltype + year, random = ~ 1 | study/esid, test = 't', control = CTRL)",
        {"moderators": ["deltype", "year"], "test": "t", "profile": False},
    ),
    "rho06_REML": ("rma.mv(yi, V06, random = ~ 1 | study/esid, control = CTRL)", {"rho": 0.6}),
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


def test_factor_reference_level_is_r_s():
    # R: rownames(res$beta) = intrcpt, deltypegeneral, deltypeovert ("covert", first in sorted order, is the reference)
    assert fit("deltype_REML").coefficient_names == ("intercept", "deltype[general]", "deltype[overt]")


@pytest.mark.parametrize("case", ["REML", "deltype_REML", "rho06_REML"])
def test_profile_likelihood_intervals(case):
    # R: confint(res, control = list(tol = 1e-12, maxiter = 10000))
    check_profile(fit(case), REF[case])


@pytest.mark.parametrize("case", sorted(CASES))
def test_prediction(case):
    # R: predict(res); predict(res, newmods = c(1, 0)); predict(res, newmods = c(0, 1, 2))
    check_prediction(fit(case), REF[case])


@pytest.mark.parametrize("case", ["deltype_REML", "deltype_year_REML_t"])
def test_moderator_test(case):
    # R: res$QM, res$QMdf, res$QMp
    check_moderator_test(fit(case), REF[case])


@pytest.mark.parametrize("case", sorted(CASES))
def test_cr2_coef_test(case):
    # R: coef_test(res, vcov = "CR2", cluster = dat$study)
    check_cr2(robust(fit(case)), REF["cr2_" + case])


@pytest.mark.parametrize("case", ["deltype_REML", "deltype_year_REML_t"])
def test_cr2_htz_wald_test(case):
    # R: Wald_test(res, constraints = constrain_zero(2:3 or 2:4), vcov = "CR2", test = "HTZ")
    check_htz(robust(fit(case)), REF["cr2_" + case])


def test_cr2_and_htz_on_a_univariate_fit():
    # R: res <- rma(yi, vi, mods = ~ deltype + year, data = dat, control = list(threshold = 1e-12, ...))
    #    coef_test(res, vcov = "CR2", cluster = dat$study); Wald_test(res, constrain_zero(2:4), "CR2", test = "HTZ")
    res = pool(DATA, method="REML", moderators=["deltype", "year"])
    ref = REF["cr2_uni_deltype_year"]
    assert abs(res.tau2 - ref["tau2"]) < 1e-9
    rob = robust(res, cluster="study")
    check_cr2(rob, ref)
    check_htz(rob, ref)


@pytest.mark.parametrize("case,moderators", [("robu", None), ("robu_deltype_year", ["deltype", "year"])])
def test_robumeta_correlated_effects(case, moderators):
    # R: robu(yi ~ 1 [or ~ deltype + year], data = dat, studynum = study, var.eff.size = vi,
    #         modelweights = "CORR", rho = 0.8, small = TRUE)
    check_robu(rve(DATA, cluster="study", moderators=moderators), REF[case])
