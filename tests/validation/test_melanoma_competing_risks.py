"""Melanoma (R MASS): death from melanoma, with death from other causes as a competing risk.

205 patients with malignant melanoma operated on at Odense University Hospital 1962-77
(Andersen, Borgan, Gill & Keiding 1993, *Statistical Models Based on Counting Processes*,
doi:10.1007/978-1-4612-4348-9), shipped with R's ``MASS`` as ``Melanoma``: ``time`` in days,
``status`` 1 died of melanoma, 2 alive, 3 died of other causes -- recoded by
tests/reference/competing_risks.R to ``event`` 1 / 0 / 2 (melanoma.csv keeps ``status``).

Every expected value is R 4.2 / survival 3.5-3 / cmprsk 2.2-11 / MASS 7.3-58; the R call is
beside each assertion. Observed agreement (max): incidence 3e-17, influence SE 8e-17, delta
variance 5e-18, Gray's statistic 2e-15 relative (unstratified, stratified, rho = 1), crr
coefficients 2e-15 and SEs 1e-15 relative, finegray + coxph 3e-13. crr and finegray give
the same coefficients here: no failure shares a day with a censoring.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _competing_reference import (
    TOL,
    aalen_johansen_curve,
    close,
    cuminc_values,
    load_reference,
    matrix,
    our_curve,
    read_csv,
)

from rjtrial.errors import DataError
from rjtrial.survival import cumulative_incidence, fine_gray, gray_test

REF = load_reference()["melanoma"]
MELANOMA = read_csv("melanoma.csv")
FORMULA = "sex + age + thickness + ulcer"
CAUSES = [1, 2]


@pytest.fixture(scope="module")
def curves():
    return {
        conf: cumulative_incidence(MELANOMA, time="time", event="event", group="ulcer", cause=None, conf_type=conf)
        for conf in ("log", "log-log", "plain")
    }


@pytest.mark.parametrize("group", [0, 1])
@pytest.mark.parametrize("cause", CAUSES)
def test_incidence_standard_error_and_limits(curves, group, cause):
    # R: fit <- survfit(Surv(time, factor(event)) ~ ulcer, data = Melanoma, conf.type = conf)
    ref = REF["aj_ulcer"]
    close(
        our_curve(curves["log"], group, cause, "time"),
        np.array(ref["time"])[np.array(ref["group"]) == str(group)],
        "time",
    )
    close(
        our_curve(curves["log"], group, cause, "estimate"),
        aalen_johansen_curve(ref, str(group), str(cause), "pstate"),
        "incidence",
    )  # fit$pstate
    close(
        our_curve(curves["log"], group, cause, "std_error"),
        aalen_johansen_curve(ref, str(group), str(cause), "std_err"),
        "std_error",
    )  # fit$std.err
    for conf, result in curves.items():
        close(
            our_curve(result, group, cause, "ci_lower"),
            aalen_johansen_curve(ref, str(group), str(cause), f"lower_{conf}"),
            "incidence",
        )  # fit$lower
        close(
            our_curve(result, group, cause, "ci_upper"),
            aalen_johansen_curve(ref, str(group), str(cause), f"upper_{conf}"),
            "incidence",
        )  # fit$upper


@pytest.mark.parametrize("cause", CAUSES)
def test_incidence_without_groups(cause):
    # R: survfit(Surv(time, factor(event)) ~ 1, data = Melanoma)  (one curve, "all")
    ref = REF["aj_all"]
    result = cumulative_incidence(MELANOMA, time="time", event="event", cause=cause, conf_type="log")
    assert result.groups == ("all",) and result.tests is None
    close(
        our_curve(result, "all", cause, "estimate"), aalen_johansen_curve(ref, "all", str(cause), "pstate"), "incidence"
    )
    close(
        our_curve(result, "all", cause, "std_error"),
        aalen_johansen_curve(ref, "all", str(cause), "std_err"),
        "std_error",
    )
    close(our_curve(result, "all", cause, "at_risk"), ref["n_risk"], "count")


@pytest.mark.parametrize("group", [0, 1])
@pytest.mark.parametrize("cause", CAUSES)
def test_cuminc_delta_variance(group, cause):
    # R: timepoints(cuminc(time, event, ulcer), times)$est / $var, at every distinct day and
    #    at 1, 2, 5 and 10 years, some beyond the last follow-up (NA there)
    ref = REF["cuminc_ulcer"]
    result = cumulative_incidence(MELANOMA, time="time", event="event", group="ulcer", cause=cause, variance="delta")
    at = result.at(np.array(ref["times"], dtype=float))
    mine = at[at["group"] == group]
    close(mine["estimate"], cuminc_values(ref, f"{group} {cause}", "est"), "incidence")
    close(mine["std_error"] ** 2, cuminc_values(ref, f"{group} {cause}", "var"), "variance")


@pytest.mark.parametrize(
    "key, strata, rho",
    [
        ("cuminc_ulcer", None, 0),  # R: cuminc(time, event, ulcer)$Tests
        ("cuminc_ulcer_strata_sex", "sex", 0),  # R: cuminc(time, event, ulcer, strata = sex)$Tests
        ("cuminc_ulcer_rho1", None, 1),  # R: cuminc(time, event, ulcer, rho = 1)$Tests
    ],
)
def test_gray_test(key, strata, rho):
    ref = REF[key]["tests"]
    table = gray_test(
        MELANOMA, time="time", event="event", group="ulcer", cause=None, strata=strata, rho=rho
    ).summary_frame()
    assert [str(c) for c in table["cause"]] == ref["cause"]
    close(table["statistic"], ref["stat"], "statistic")
    close(table["p_value"], ref["p_value"], "p_value")
    close(table["df"], ref["df"], "count")


@pytest.mark.parametrize("cause, key", [(1, "crr_melanoma"), (2, "crr_other")])
def test_crr(cause, key):
    # R: crr(time, event, model.matrix(~ sex + age + thickness + ulcer)[, -1], failcode = cause,
    #        gtol = 1e-12, maxiter = 100)
    ref = REF[key]
    fit = fine_gray(MELANOMA, FORMULA, time="time", event="event", cause=cause)
    table = fit.summary_frame()
    close(table["estimate"], ref["coef"], "coef")  # fit$coef
    close(table["std_error"], ref["se"], "std_error")  # sqrt(diag(fit$var))
    close(fit.variance_, matrix(ref["var"]), "std_error")  # fit$var
    close(table["p_value"], ref["p_value"], "p_value")
    assert fit.log_likelihood_ == pytest.approx(ref["loglik"], **TOL["loglik"])  # fit$loglik
    assert fit.log_likelihood_null_ == pytest.approx(ref["loglik_null"], **TOL["loglik"])  # fit$loglik.null
    close(fit.baseline_hazard_["hazard"], ref["bfitj"], "hazard")  # fit$bfitj


def test_crr_predict():
    # R: predict(fit, rbind(c(0, 50, 2, 0), c(1, 60, 5, 1)))
    ref = REF["crr_melanoma"]
    fit = fine_gray(MELANOMA, FORMULA, time="time", event="event", cause=1)
    profiles = pd.DataFrame({"sex": [0, 1], "age": [50, 60], "thickness": [2.0, 5.0], "ulcer": [0, 1]})
    pred = fit.predict(profiles)
    for j in range(2):
        close(pred.loc[pred["profile"] == j, "estimate"], matrix(ref["predict_cif"])[:, j], "incidence")
    # at chosen days: the step function in force then
    at = fit.predict(profiles.iloc[[1]], times=[ref["predict_time"][3], ref["predict_time"][3] + 0.5])
    close(at["estimate"], [matrix(ref["predict_cif"])[3, 1]] * 2, "incidence")


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_finegray_coxph(ties):
    # R: fg <- finegray(Surv(time, factor(event)) ~ ., data = Melanoma, etype = "1", id = id)
    #    coxph(Surv(fgstart, fgstop, fgstatus) ~ sex + age + thickness + ulcer + cluster(id),
    #          weights = fgwt, data = fg, ties = ties)
    ref = REF["finegray_melanoma"][ties]
    fit = fine_gray(MELANOMA, FORMULA, time="time", event="event", cause=1, method="finegray", ties=ties)
    close(fit.params_, ref["coef"], "coef")
    close(np.sqrt(np.diag(fit.naive_variance_)), ref["se_model"], "std_error")  # fit$naive.var
    close(fit.variance_, matrix(ref["var_robust"]), "std_error")  # fit$var
    assert fit.log_likelihood_ == pytest.approx(ref["loglik"][1], **TOL["loglik"])


def test_crr_and_finegray_coefficients_agree_without_tied_failures_and_censorings():
    # No day carries both a failure and a censoring, so the two conventions for G coincide.
    close(REF["crr_melanoma"]["coef"], REF["finegray_melanoma"]["breslow"]["coef"], "coef")


def test_raw_status_coding_is_refused_with_the_column_named():
    # MASS codes 2 = alive: used as is, "2" would be a cause; codes 0..3 are valid codes,
    # so the mistake shows only as a cause that is not what was meant. Asking for a cause
    # that the column lacks is the error we can catch.
    with pytest.raises(DataError, match=r"column 'status'.*cause 4 never occurs; the causes present are 1, 2, 3"):
        cumulative_incidence(MELANOMA, time="time", event="status", cause=4)
