"""A generated dataset (40 studies with 1-6 correlated effects each, seed 20261205 in
tests/reference/metafor_multilevel.R): three-level models with and without correlated
sampling errors against R metafor ``rma.mv``, CR2 and HTZ against clubSandwich, RVE against
robumeta. A component whose profile lower limit is 0 and a three-level factor moderator
are exercised here.
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

REF = load_reference()["generated"]
DATA = read_dataset("generated_multilevel")
LEVELS = ["study", "es_id"]

CASES = {
    "REML": ("rma.mv(estimate, variance, random = ~ 1 | study/es_id, control = CTRL)", {}),
    "dose_outcome_REML_t": (
        "rma.mv(estimate, variance, mods = ~ dose + outcome, random = ~ 1 | study/es_id, test = 't', control = CTRL)",
        {"moderators": ["dose", "outcome"], "test": "t"},
    ),
    "rho05_dose_outcome_REML": (
        "rma.mv(estimate, impute_covariance_matrix(variance, study, r = 0.5), "
        "mods = ~ dose + outcome, random = ~ 1 | study/es_id, control = CTRL)",
        {"moderators": ["dose", "outcome"], "rho": 0.5},
    ),
}
_FITS: dict = {}


def fit(case):
    if case not in _FITS:
        _FITS[case] = pool_multilevel(DATA, levels=LEVELS, **CASES[case][1])
    return _FITS[case]


@pytest.mark.parametrize("quantity", sorted(MV_QUANTITIES))
@pytest.mark.parametrize("case", sorted(CASES))
def test_rma_mv_quantity(case, quantity):
    # R: see CASES[case]; the quantity's R expression is MV_QUANTITIES[quantity][0]
    check_mv_quantity(fit(case), REF[case], quantity)


@pytest.mark.parametrize("case", sorted(CASES))
def test_profile_likelihood_intervals(case):
    # R: confint(res, control = list(tol = 1e-12, maxiter = 10000))
    check_profile(fit(case), REF[case])


def test_a_profile_limit_at_zero():
    # R: confint(res)[[2]]$random["sigma^2.2", "ci.lb"] == 0 for the intercept-only model
    assert fit("REML").sigma2_ci_lower[1] == 0 == REF["REML"]["sigma2_ci"][1][1]


@pytest.mark.parametrize("case", sorted(CASES))
def test_prediction(case):
    # R: predict(res); predict(res, newmods = c(0.5, 0, 1))
    check_prediction(fit(case), REF[case])


@pytest.mark.parametrize("case", ["dose_outcome_REML_t", "rho05_dose_outcome_REML"])
def test_moderator_test(case):
    # R: res$QM, res$QMdf, res$QMp
    check_moderator_test(fit(case), REF[case])


@pytest.mark.parametrize("case", sorted(CASES))
def test_cr2(case):
    # R: coef_test(res, vcov = "CR2", cluster = gen$study)
    check_cr2(robust(fit(case)), REF["cr2_" + case])


@pytest.mark.parametrize("case", ["dose_outcome_REML_t", "rho05_dose_outcome_REML"])
def test_htz(case):
    # R: Wald_test(res, constrain_zero(2:4 or 3:4), vcov = "CR2", test = "HTZ")
    check_htz(robust(fit(case)), REF["cr2_" + case])


def test_cr2_and_htz_on_pool():
    # R: coef_test(rma(estimate, variance, mods = ~ dose + outcome), vcov = "CR2", cluster = gen$study)
    ref = REF["cr2_uni_dose_outcome"]
    res = pool(DATA, moderators=["dose", "outcome"])
    assert abs(res.tau2 - ref["tau2"]) < 1e-9
    rob = robust(res, cluster="study")
    check_cr2(rob, ref)
    check_htz(rob, ref)


def test_robumeta():
    # R: robu(estimate ~ dose + outcome, studynum = study, var.eff.size = variance, modelweights = "CORR",
    #         rho = 0.8, small = TRUE)
    check_robu(rve(DATA, cluster="study", moderators=["dose", "outcome"]), REF["robu_dose_outcome"])


@pytest.mark.parametrize("level", ["study", "study/es_id"])
def test_ranef(level):
    # R: ranef(res)[[level]]: intrcpt, se, pi.lb, pi.ub
    import numpy as np

    from rjtrial.meta import ranef

    frame = ranef(fit("REML"))[level]
    labels = ["/".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in frame.index]
    R = REF["REML"]["ranef"][level]
    frame = frame.set_axis(labels).loc[R["labels"]]
    for column, key in [("estimate", "pred"), ("std_error", "se"), ("pi_lower", "pi_lb"), ("pi_upper", "pi_ub")]:
        np.testing.assert_allclose(frame[column], R[key], rtol=0, atol=1e-6)
