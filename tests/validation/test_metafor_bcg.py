"""dat.bcg (Colditz et al. 1994): BCG vaccine against tuberculosis, 13 trials, against R metafor.

Log risk ratios from the 2x2 counts (``escalc("RR", ai = tpos, bi = tneg, ci = cpos,
di = cneg, data = dat.bcg)``), pooled by every estimator with both tests, Mantel-Haenszel
(OR, RR, RD) and Peto, subgroups by allocation, and the meta-regression on absolute latitude
and year. Every expected value is R 4.2.2 / metafor 3.8-1 from
tests/reference/metafor_reference.R; the R call is beside each assertion (``CTRL`` is
``list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)``).

Observed agreement, maximum absolute difference over every estimator and test: effect sizes
5e-15; pooled estimate, SE, CI 2e-9; tau^2 6e-12, its SE 4e-12, Q-profile limits 2e-11; I^2
3e-9 (percent) and its limits 7e-9; H^2 and limits 7e-10; Q 2e-9; prediction interval 6e-15;
weights 6e-10 (percent); meta-regression coefficients 8e-10, QM 2e-9, R^2 2e-9 (percent),
predictions 5e-11; Mantel-Haenszel and Peto 5e-13; subgroup estimates and tests 1e-14.
(The differences above 1e-12 come from R's stopping rule and the 15 digits of the JSON.)
"""

from __future__ import annotations

import numpy as np
import pytest
from _metafor_reference import (
    COEFFICIENT_QUANTITIES,
    RMA_QUANTITIES,
    TABLE_QUANTITIES,
    TOL,
    assert_close,
    bcg_effects,
    check_rma_quantity,
    fit,
    load_reference,
    rma_cases,
    split_key,
    table_cases,
)

from rjtrial import effects
from rjtrial.meta import pool

REF = load_reference()["bcg"]
MODERATORS = ("ablat", "year")


# --------------------------------------------------------------------------- published values
def test_reml_matches_the_issue_values():
    # R: rma(yi, vi, data = escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg))
    #    -> estimate -0.7145, tau^2 = 0.3132 (SE = 0.1664), I^2 = 92.22%
    res = fit("bcg", "log_risk_ratio", "REML", "z")
    assert round(res.estimate, 4) == -0.7145
    assert round(res.tau2, 4) == 0.3132
    assert round(res.i2, 2) == 92.22


# --------------------------------------------------------------------------- effect sizes
@pytest.mark.parametrize("measure", ["log_risk_ratio", "log_odds_ratio", "risk_difference", "peto_log_odds_ratio"])
@pytest.mark.parametrize("column,key", [("estimate", "yi"), ("variance", "vi")])
def test_effect_sizes_match_escalc(measure, column, key):
    # R: escalc(measure = c("RR", "OR", "RD", "PETO"), ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
    assert_close(bcg_effects(measure)[column], REF["escalc"][measure][key], "effect_size")


@pytest.mark.parametrize("method,key", [("logistic", "or2dl"), ("cox", "or2dn")])
@pytest.mark.parametrize("column,rkey", [("estimate", "yi"), ("variance", "vi")])
def test_log_odds_ratio_to_d_matches_escalc(method, key, column, rkey):
    # R: escalc(measure = "OR2DL" / "OR2DN", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
    d = effects.log_odds_ratio_to_d(bcg_effects("log_odds_ratio"), method=method)
    assert_close(d[column], REF["escalc"][key][rkey], "effect_size")


# --------------------------------------------------------------------------- rma: every estimator, both tests
@pytest.mark.parametrize("key,attribute,rkey,kind,r_call", rma_cases(REF["rma"]))
def test_log_risk_ratio_pooling_matches_rma(key, attribute, rkey, kind, r_call):
    # R: res <- rma(yi, vi, data = <log RR>, method = <method>, test = <test>, control = CTRL); then r_call
    method, test = split_key(key)
    check_rma_quantity(fit("bcg", "log_risk_ratio", method, test), REF["rma"][key], attribute, rkey, kind)


@pytest.mark.parametrize(
    "measure,refkey", [("log_odds_ratio", "rma_log_odds_ratio"), ("risk_difference", "rma_risk_difference")]
)
@pytest.mark.parametrize("attribute,rkey,kind,r_call", RMA_QUANTITIES, ids=[q[0] for q in RMA_QUANTITIES])
def test_other_measures_pooling_matches_rma(measure, refkey, attribute, rkey, kind, r_call):
    # R: res <- rma(yi, vi, data = escalc("OR" / "RD", ...), method = FE / DL / REML, test = z / knha); r_call
    for key, ref in REF[refkey].items():
        method, test = split_key(key)
        check_rma_quantity(fit("bcg", measure, method, test), ref, attribute, rkey, kind)


def test_iterative_estimators_report_convergence():
    # REML/ML/EB by Fisher scoring, PM by Brent's method: all converge on dat.bcg
    for method in ("REML", "ML", "EB", "PM"):
        res = fit("bcg", "log_risk_ratio", method, "z")
        assert res.converged and res.n_iterations > 0
    assert fit("bcg", "log_risk_ratio", "DL", "z").n_iterations == 0


# --------------------------------------------------------------------------- Mantel-Haenszel and Peto
@pytest.mark.parametrize("measure,attribute,rkey,kind,r_call", table_cases(REF["mh"]))
def test_mantel_haenszel_matches_rma_mh(measure, attribute, rkey, kind, r_call):
    # R: res <- rma.mh(ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg, measure = "OR" / "RR" / "RD")
    res = fit("bcg", measure, "MH", "z")
    assert_close(getattr(res, attribute), REF["mh"][measure][rkey], kind)


@pytest.mark.parametrize("attribute,rkey,kind,r_call", TABLE_QUANTITIES, ids=[q[0] for q in TABLE_QUANTITIES])
def test_peto_matches_rma_peto(attribute, rkey, kind, r_call):
    # R: res <- rma.peto(ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)  (no zero cells here,
    #    so its escalc-corrected yi.f are the plain (O - E) / V)
    res = fit("bcg", "log_odds_ratio", "Peto", "z")
    assert_close(getattr(res, attribute), REF["peto"][rkey], kind)


def test_peto_study_estimates_match_escalc():
    # R: escalc("PETO", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)  (no zero cells in dat.bcg)
    res = fit("bcg", "log_odds_ratio", "Peto", "z")
    assert_close(res.yi, REF["escalc"]["peto_log_odds_ratio"]["yi"], "effect_size")
    assert_close(res.vi, REF["escalc"]["peto_log_odds_ratio"]["vi"], "effect_size")


# --------------------------------------------------------------------------- meta-regression
METAREG_KEYS = list(REF["metareg"])


@pytest.mark.parametrize("key", METAREG_KEYS)
@pytest.mark.parametrize("column,rkey,kind,r_call", COEFFICIENT_QUANTITIES, ids=[q[0] for q in COEFFICIENT_QUANTITIES])
def test_metaregression_coefficients_match_rma(key, column, rkey, kind, r_call):
    # R: res <- rma(yi, vi, mods = ~ ablat + year, data = <log RR>, method = <method>, test = <test>, control = CTRL)
    method, test = split_key(key)
    res = fit("bcg", "log_risk_ratio", method, test, moderators=MODERATORS)
    assert list(res.coefficient_names) == ["intercept", "ablat", "year"]
    assert_close(res.coefficients_frame()[column], REF["metareg"][key][rkey], kind)


@pytest.mark.parametrize("key", METAREG_KEYS)
def test_metaregression_omnibus_test_matches_rma(key):
    method, test = split_key(key)
    res = fit("bcg", "log_risk_ratio", method, test, moderators=MODERATORS)
    ref = REF["metareg"][key]
    assert_close(res.moderator_test.statistic, ref["QM"], "statistic")  # R: res$QM (F = QM / m with knha)
    assert_close(res.moderator_test.p_value, ref["QMp"], "p_value")  # R: res$QMp
    assert res.moderator_test.df == ref["QMdf"][0]  # R: res$QMdf[1]
    if test == "knha":
        assert res.moderator_test.distribution == "F"
        assert res.moderator_test.df_denominator == ref["QMdf"][1]  # R: res$QMdf[2] = k - p
    else:
        assert res.moderator_test.distribution == "chi2"


@pytest.mark.parametrize("key", METAREG_KEYS)
@pytest.mark.parametrize(
    "attribute,rkey,kind",
    [
        ("tau2", "tau2", "tau2"),  # R: res$tau2 (residual)
        ("tau2_std_error", "se_tau2", "tau2"),  # R: res$se.tau2
        ("tau2_ci_lower", ("tau2_ci", 0), "tau2"),  # R: confint(res)$random["tau^2", "ci.lb"]
        ("tau2_ci_upper", ("tau2_ci", 1), "tau2"),  # R: confint(res)$random["tau^2", "ci.ub"]
        ("i2", "I2", "percent"),  # R: res$I2 (residual)
        ("i2_ci_lower", ("I2_ci", 0), "percent"),
        ("i2_ci_upper", ("I2_ci", 1), "percent"),
        ("h2", "H2", "ratio"),  # R: res$H2
        ("h2_ci_lower", ("H2_ci", 0), "ratio"),
        ("h2_ci_upper", ("H2_ci", 1), "ratio"),
        ("q", "QE", "statistic"),  # R: res$QE (residual heterogeneity)
        ("q_p_value", "QEp", "p_value"),  # R: res$QEp
        ("q_df", "QE_df", "count"),  # R: res$k - res$p
        ("weights", "weights", "percent"),  # R: weights(res)
    ],
)
def test_metaregression_heterogeneity_matches_rma(key, attribute, rkey, kind):
    method, test = split_key(key)
    res = fit("bcg", "log_risk_ratio", method, test, moderators=MODERATORS)
    check_rma_quantity(res, REF["metareg"][key], attribute, rkey, kind)


@pytest.mark.parametrize("key", METAREG_KEYS)
def test_metaregression_pseudo_r2_matches_rma(key):
    # R: res$R2 = max(0, 100 (tau2_RE - tau2_ME) / tau2_RE) (adjusted R^2 of lm(yi ~ X, weights = 1/vi) for FE)
    method, test = split_key(key)
    res = fit("bcg", "log_risk_ratio", method, test, moderators=MODERATORS)
    assert_close(res.r2, REF["metareg"][key]["R2"], "percent")


@pytest.mark.parametrize("key", METAREG_KEYS)
@pytest.mark.parametrize(
    "column,rkey",
    [
        ("estimate", "pred"),
        ("std_error", "pred_se"),
        ("ci_lower", "pred_ci_lb"),
        ("ci_upper", "pred_ci_ub"),
        ("pi_lower", "pi_lb"),
        ("pi_upper", "pi_ub"),
    ],
)
def test_metaregression_prediction_matches_predict(key, column, rkey):
    # R: predict(res, newmods = c(30, 1970))  (FE: no separate prediction interval, it is the CI)
    method, test = split_key(key)
    res = fit("bcg", "log_risk_ratio", method, test, moderators=MODERATORS)
    ref = REF["metareg"][key]
    predicted = res.predict([ref["newmods"]])
    if not ref[rkey]:
        assert predicted[column][0] == predicted[column.replace("pi_", "ci_")][0]
        return
    assert_close(predicted[column], ref[rkey], "coef")


@pytest.mark.parametrize("key", ["REML_z", "REML_knha"])
def test_categorical_moderator_matches_factor_coding(key):
    # R: res <- rma(yi, vi, mods = ~ factor(alloc) + ablat, method = "REML", test = <test>, control = CTRL)
    method, test = split_key(key)
    res = fit("bcg", "log_risk_ratio", method, test, moderators=("alloc", "ablat"))
    ref = REF["metareg_alloc_ablat"][key]
    assert list(res.coefficient_names) == ["intercept", "alloc[random]", "alloc[systematic]", "ablat"]
    assert_close(res.coefficients, ref["beta"], "coef")  # R: coef(res)
    assert_close(res.coefficient_std_errors, ref["se"], "std_error")  # R: res$se
    assert_close(res.tau2, ref["tau2"], "tau2")  # R: res$tau2
    assert_close(res.moderator_test.statistic, ref["QM"], "statistic")  # R: res$QM
    assert_close(res.r2, ref["R2"], "percent")  # R: res$R2


# --------------------------------------------------------------------------- subgroups by allocation
SUBGROUP_KEYS = list(REF["subgroups_alloc"])


@pytest.mark.parametrize("key", SUBGROUP_KEYS)
@pytest.mark.parametrize(
    "column,rkey,kind",
    [
        ("estimate", "beta", "coef"),
        ("std_error", "se", "std_error"),
        ("p_value", "pval", "p_value"),
        ("ci_lower", "ci_lb", "coef"),
        ("ci_upper", "ci_ub", "coef"),
        ("tau2", "tau2", "tau2"),
    ],
)
@pytest.mark.parametrize("mode", ["separate", "common"])
def test_subgroup_estimates_match_metafor(key, column, rkey, kind, mode):
    # R (separate): rma(yi, vi, subset = alloc == g, method = <method>, test = <test>) for each g
    # R (common):   rma(yi, vi, mods = ~ factor(alloc) - 1, method = <method>, test = <test>)
    method, test = split_key(key)
    res = fit("bcg", "log_risk_ratio", method, test, subgroup="alloc", subgroup_tau2=mode)
    ref = REF["subgroups_alloc"][key][mode]
    assert list(res.subgroups.index) == ref["levels"]
    expected = ref[rkey] if not (mode == "common" and rkey == "tau2") else [ref["tau2"]] * len(ref["levels"])
    assert_close(res.subgroups[column], expected, kind)


@pytest.mark.parametrize("key", SUBGROUP_KEYS)
def test_separate_subgroup_test_matches_fixed_effect_q_between(key):
    # R: rma(estimate_g, sei = se_g, method = "FE")$QE on G - 1 = 2 df
    method, test = split_key(key)
    res = fit("bcg", "log_risk_ratio", method, test, subgroup="alloc")
    ref = REF["subgroups_alloc"][key]["separate"]
    assert_close(res.subgroup_test.statistic, ref["Qb"], "statistic")
    assert_close(res.subgroup_test.p_value, ref["Qb_p"], "p_value")
    assert res.subgroup_test.df == ref["Qb_df"]
    assert_close(res.subgroups["q"], ref["QE"], "statistic")  # R: res_g$QE
    assert_close(res.subgroups["i2"], ref["I2"], "percent")  # R: res_g$I2


@pytest.mark.parametrize("key", SUBGROUP_KEYS)
def test_common_subgroup_test_matches_qm(key):
    # R: rma(yi, vi, mods = ~ factor(alloc), method = <method>, test = <test>)$QM (F with knha), $QMp
    method, test = split_key(key)
    res = fit("bcg", "log_risk_ratio", method, test, subgroup="alloc", subgroup_tau2="common")
    ref = REF["subgroups_alloc"][key]["common"]
    assert_close(res.subgroup_test.statistic, ref["QM"], "statistic")
    assert_close(res.subgroup_test.p_value, ref["QMp"], "p_value")
    assert res.subgroup_test.df == ref["QMdf"][0]


def test_subgroup_overall_is_the_plain_fit():
    overall = fit("bcg", "log_risk_ratio", "REML", "z")
    with_groups = fit("bcg", "log_risk_ratio", "REML", "z", subgroup="alloc")
    assert with_groups.estimate == overall.estimate and with_groups.tau2 == overall.tau2
    assert np.isclose(
        with_groups.subgroup_results["random"].estimate,
        REF["subgroups_alloc"]["REML_z"]["separate"]["beta"][1],
        atol=TOL["coef"]["abs"],
    )


def test_pool_accepts_dataframe_columns_directly():
    # the issue's call: effects.log_odds_ratio(events_treatment=..., ...) with Series, then pool
    from _metafor_reference import read_dataset

    bcg = read_dataset("bcg")
    es = effects.log_risk_ratio(
        events_treatment=bcg["tpos"],
        n_treatment=bcg["tpos"] + bcg["tneg"],
        events_control=bcg["cpos"],
        n_control=bcg["cpos"] + bcg["cneg"],
    )
    assert_close(pool(es).estimate, REF["rma"]["REML_z"]["beta"], "coef")
