"""dat.tannersmith2016 (brief alcohol interventions for adolescents; 113 effects in 17
studies): robust variance estimation against R robumeta, and the three-level model with CR2
inference against metafor ``rma.mv`` and clubSandwich.

R 4.2.2 / robumeta 2.0 / metafor 3.8-1 / clubSandwich 0.5.8 from
tests/reference/metafor_multilevel.R. ``esid`` numbers the effects within a study.
robumeta's estimator is closed form, so agreement is to rounding (observed below 3e-13).
"""

from __future__ import annotations

import pytest
from _multilevel_reference import (
    MV_QUANTITIES,
    check_cr2,
    check_htz,
    check_mv_quantity,
    check_profile,
    check_robu,
    load_reference,
    read_dataset,
)

from rjtrial.meta import pool_multilevel, robust, rve

REF = load_reference()["tannersmith2016"]
DATA = read_dataset("metadat_tannersmith2016")

ROBU = {
    # case -> (R call, rve keywords)
    "robu": ("robu(yi ~ 1, studynum = studyid, var.eff.size = vi, modelweights = 'CORR', rho = 0.8, small = TRUE)", {}),
    "robu_aget1_propmale": (
        "robu(yi ~ aget1 + propmale, ..., rho = 0.8, small = TRUE)",
        {"moderators": ["aget1", "propmale"]},
    ),
    "robu_aget1_propmale_large": (
        "robu(yi ~ aget1 + propmale, ..., rho = 0.8, small = FALSE)",
        {"moderators": ["aget1", "propmale"], "small": False},
    ),
    "robu_rho0": ("robu(yi ~ 1, ..., rho = 0, small = TRUE)", {"rho": 0.0}),
}


@pytest.mark.parametrize("case", sorted(ROBU))
def test_robumeta(case):
    # R: see ROBU[case]
    check_robu(rve(DATA, cluster="studyid", **ROBU[case][1]), REF[case])


def test_rho_moves_tau2_but_weights_only_through_it():
    # robumeta: rho enters tau.sq only; with tau.sq = 0 at both rho the estimates coincide
    high, low = rve(DATA, cluster="studyid"), rve(DATA, cluster="studyid", rho=0.0)
    assert (high.tau2 > 0) == (REF["robu"]["tau2"] > 0)
    assert (high.tau2 == low.tau2) == (REF["robu"]["tau2"] == REF["robu_rho0"]["tau2"])


MV = {
    "REML": ("rma.mv(yi, vi, random = ~ 1 | studyid/esid, control = CTRL)", {}),
    "aget1_propmale_REML": (
        "rma.mv(yi, vi, mods = ~ aget1 + propmale, random = ~ 1 | studyid/esid, control = CTRL)",
        {"moderators": ["aget1", "propmale"]},
    ),
}
_FITS: dict = {}


def fit(case):
    if case not in _FITS:
        _FITS[case] = pool_multilevel(DATA, levels=["studyid", "esid"], **MV[case][1])
    return _FITS[case]


@pytest.mark.parametrize("quantity", sorted(MV_QUANTITIES))
@pytest.mark.parametrize("case", sorted(MV))
def test_rma_mv_quantity(case, quantity):
    # R: see MV[case]; the quantity's R expression is MV_QUANTITIES[quantity][0]
    check_mv_quantity(fit(case), REF[case], quantity)


@pytest.mark.parametrize("case", sorted(MV))
def test_profile_likelihood_intervals(case):
    # R: confint(res, control = list(tol = 1e-12, maxiter = 10000))
    check_profile(fit(case), REF[case])


@pytest.mark.parametrize("case", sorted(MV))
def test_cr2(case):
    # R: coef_test(res, vcov = "CR2", cluster = dat$studyid)
    check_cr2(robust(fit(case)), REF["cr2_" + case])


def test_htz():
    # R: Wald_test(res, constraints = constrain_zero(2:3), vcov = "CR2", test = "HTZ")
    check_htz(robust(fit("aget1_propmale_REML")), REF["cr2_aget1_propmale_REML"])
