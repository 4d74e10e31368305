"""A generated RJ trial (strata, clustered co-offenders, recurrent reoffending) against R.

Data: tests/reference/make_survival_trial.py (seed 20240917): 400 participants in 278
cases at three sites, whole-day times with ties; 1,569 counting-process intervals with
1,169 reoffences. Expected values: R 4.2.2 / survival 3.5-3 via
tests/reference/survival_reference.R, the R call beside each assertion. R's factor level
``armrj`` is our column ``arm[T.rj]``. Observed agreement: coefficients and standard
errors (naive and robust) 1e-14, log-likelihoods 6e-11, tests 1e-12, concordance counts
exact, cox.zph 1e-14, Kaplan-Meier 2e-15, log-rank 1e-15, RMST 1e-13.
"""

from __future__ import annotations

import numpy as np
import pytest
from _survival_reference import TOL, as_array, assert_close, load_reference, read_csv

from rjtrial.survival import andersen_gill, cox, kaplan_meier, logrank, rmst

REF = load_reference()["trial"]
TRIAL = read_csv("survival_trial.csv")
RECURRENT = read_csv("survival_trial_recurrent.csv")
FORMULA = "arm + age + prior"
R_NAMES = {"armrj": "arm[T.rj]", "age": "age", "prior": "prior"}


def _fit(key):
    first = dict(time="time", event="event")
    counting = dict(start="start", stop="stop", event="event", id="id")
    return {
        # R: coxph(Surv(time, event) ~ arm + age + prior + strata(site), data = trial)
        "cox_strata": lambda: cox(TRIAL, FORMULA, strata="site", **first),
        # R: coxph(Surv(time, event) ~ arm + age + prior + strata(site) + cluster(case_id), data = trial)
        "cox_cluster": lambda: cox(TRIAL, FORMULA, strata="site", cluster="case_id", **first),
        # R: the same with ties = "breslow"
        "cox_cluster_breslow": lambda: cox(TRIAL, FORMULA, strata="site", cluster="case_id", ties="breslow", **first),
        # R: coxph(Surv(start, stop, event) ~ arm + age + prior + cluster(id), data = rec)
        "andersen_gill": lambda: andersen_gill(RECURRENT, FORMULA, **counting),
        # R: coxph(Surv(start, stop, event) ~ arm + age + prior + strata(site) + cluster(id), data = rec)
        "andersen_gill_strata": lambda: andersen_gill(RECURRENT, FORMULA, strata="site", **counting),
        # R: coxph(Surv(start, stop, event) ~ arm + age + prior + cluster(id), data = rec, ties = "breslow")
        "andersen_gill_breslow": lambda: andersen_gill(RECURRENT, FORMULA, ties="breslow", **counting),
    }[key]()


MODELS = [
    "cox_strata",
    "cox_cluster",
    "cox_cluster_breslow",
    "andersen_gill",
    "andersen_gill_strata",
    "andersen_gill_breslow",
]
ROBUST = [m for m in MODELS if m != "cox_strata"]
WITH_ZPH = ["cox_strata", "andersen_gill", "andersen_gill_strata"]


@pytest.fixture(scope="module")
def fits():
    return {key: _fit(key) for key in MODELS}


def test_term_names_match_r():
    # R: names(coef(fit))
    for key in MODELS:
        assert [R_NAMES[t] for t in REF[key]["terms"]] == ["arm[T.rj]", "age", "prior"]


@pytest.mark.parametrize("model", MODELS)
def test_coefficients(fits, model):
    # R: coef(fit)
    assert_close(fits[model].params_, REF[model]["coef"], "coef")


@pytest.mark.parametrize("model", MODELS)
def test_std_errors(fits, model):
    # R: sqrt(diag(fit$var))  -- the robust variance when cluster() is in the model
    assert_close(fits[model].summary_frame()["std_error"], REF[model]["se"], "std_error")


@pytest.mark.parametrize("model", ROBUST)
def test_naive_std_errors(fits, model):
    # R: sqrt(diag(fit$naive.var))
    assert_close(np.sqrt(np.diag(fits[model].naive_variance_)), REF[model]["naive_se"], "std_error")


@pytest.mark.parametrize("model", MODELS)
def test_hazard_ratio_intervals(fits, model):
    # R: summary(fit)$conf.int[, c("exp(coef)", "lower .95", "upper .95")]; summary(fit)$coefficients[, "Pr(>|z|)"]
    table = fits[model].summary_frame()
    assert_close(table["hazard_ratio"], REF[model]["hazard_ratio"], "statistic")
    assert_close(table["ci_lower"], REF[model]["hr_lower"], "statistic")
    assert_close(table["ci_upper"], REF[model]["hr_upper"], "statistic")
    assert_close(table["p_value"], REF[model]["p"], "p_value")


@pytest.mark.parametrize("model", MODELS)
def test_log_likelihood(fits, model):
    # R: fit$loglik
    assert_close([fits[model].log_likelihood_null_, fits[model].log_likelihood_], REF[model]["loglik"], "loglik")


@pytest.mark.parametrize(
    "model, attribute, key",
    [(m, "likelihood_ratio_test_", "logtest") for m in MODELS]
    + [(m, "wald_test_", "waldtest") for m in MODELS]
    + [(m, "score_test_", "sctest") for m in MODELS]
    + [(m, "robust_score_test_", "robscore") for m in ROBUST],
)
def test_global_tests(fits, model, attribute, key):
    # R: 2 * diff(fit$loglik); fit$wald.test (robust variance if clustered); fit$score; fit$rscore
    test = getattr(fits[model], attribute)
    assert test.statistic == pytest.approx(REF[model][key]["statistic"], **TOL["statistic"])
    assert test.p_value == pytest.approx(REF[model][key]["p_value"], **TOL["p_value"])


@pytest.mark.parametrize("model", MODELS)
def test_concordance(fits, model):
    # R: fit$concordance  (within strata; (start, stop] risk sets for the Andersen-Gill fits)
    c = fits[model].concordance()
    assert_close(
        [c.concordant, c.discordant, c.tied_risk, c.tied_time, c.tied_both], REF[model]["concordance"][:5], "count"
    )
    assert c.concordance == pytest.approx(REF[model]["concordance"][5], **TOL["concordance"])


@pytest.mark.parametrize("model, transform", [(m, t) for m in WITH_ZPH for t in ("km", "rank")])
def test_proportional_hazards(fits, model, transform):
    # R: cox.zph(fit, transform = "km" / "rank")$table
    ref = REF[model][f"zph_{transform}"]
    table = fits[model].proportional_hazards_test(transform=transform)
    assert list(table.index) == ref["terms"]  # by model term, as R's terms = TRUE: "arm", not "armrj"
    assert_close(table["statistic"], ref["chisq"], "statistic")
    assert_close(table["p_value"], ref["p"], "p_value")


# --------------------------------------------------------------------------- KM, log-rank, RMST
@pytest.fixture(scope="module")
def km():
    # R: survfit(Surv(time, event) ~ arm, data = trial, conf.type = "log-log")
    return kaplan_meier(TRIAL, time="time", event="event", group="arm")


@pytest.mark.parametrize(
    "column, key, kind",
    [
        ("time", "time", "time"),
        ("at_risk", "n_risk", "count"),
        ("events", "n_event", "count"),
        ("censored", "n_censor", "count"),
        ("survival", "surv", "survival"),
        ("ci_lower", "lower", "survival"),
        ("ci_upper", "upper", "survival"),
    ],
)
def test_kaplan_meier_table(km, column, key, kind):
    # R: fit$time, fit$n.risk, fit$n.event, fit$n.censor, fit$surv, fit$lower, fit$upper
    assert [str(g) for g in km.table["group"]] == REF["km_arm"]["table"]["group"]
    assert_close(km.table[column], REF["km_arm"]["table"][key], kind)


def test_kaplan_meier_std_error_of_survival(km):
    # R: fit$std.err is the SE of -log S; the SE of S is fit$surv * fit$std.err (Greenwood)
    ref = REF["km_arm"]["table"]
    assert_close(km.table["std_error"], as_array(ref["surv"]) * as_array(ref["std_err_cumhaz"]), "std_error")


@pytest.mark.parametrize("column, key", [("estimate", "quantile"), ("ci_lower", "lower"), ("ci_upper", "upper")])
def test_median(km, column, key):
    # R: quantile(fit, probs = 0.5)$quantile / $lower / $upper
    assert_close(km.median()[column], REF["km_arm"]["median"][key], "time")


@pytest.mark.parametrize(
    "column, key, kind",
    [
        ("at_risk", "n_risk", "count"),
        ("survival", "surv", "survival"),
        ("std_error", "std_err", "std_error"),
        ("ci_lower", "lower", "survival"),
        ("ci_upper", "upper", "survival"),
    ],
)
def test_survival_at_times(km, column, key, kind):
    # R: summary(fit, times = c(90, 180, 365, 730))
    assert_close(km.survival_at([90, 180, 365, 730])[column], REF["km_arm"]["at_times"][key], kind)


@pytest.mark.parametrize(
    "key, kwargs",
    [
        ("logrank_arm", {"group": "arm"}),  # R: survdiff(Surv(time, event) ~ arm, data = trial)
        ("logrank_arm_strata", {"group": "arm", "strata": "site"}),  # R: survdiff(... ~ arm + strata(site))
        ("logrank_site", {"group": "site"}),  # R: survdiff(Surv(time, event) ~ site): 3 groups, 2 df
    ],
)
def test_logrank(key, kwargs):
    ref = REF[key]
    res = logrank(TRIAL, time="time", event="event", **kwargs)
    assert res.statistic == pytest.approx(ref["chisq"], **TOL["statistic"])
    assert res.df == ref["df"]
    assert res.p_value == pytest.approx(ref["p"], **TOL["p_value"])
    assert_close(res.table["observed"], ref["observed"], "count")
    assert_close(res.table["expected"], ref["expected"], "statistic")


@pytest.mark.parametrize("key, tau", [("rmst_arm_365", 365), ("rmst_arm_730", 730)])
def test_rmst_per_arm(key, tau):
    # R: summary(survfit(Surv(time, event) ~ arm), rmean = tau)$table[, c("rmean", "se(rmean)")]
    res = rmst(TRIAL, tau=tau, time="time", event="event", group="arm")
    assert_close(res.table["estimate"], REF[key]["rmean"], "rmst")
    assert_close(res.table["std_error"], REF[key]["se"], "rmst")


@pytest.mark.parametrize("key, tau", [("rmst_arm_365", 365), ("rmst_arm_730", 730)])
def test_rmst_difference(key, tau):
    # R: rmean["arm=rj"] - rmean["arm=control"]; sqrt(sum(se^2)); rj - control +- 1.96 se; 2 * pnorm(-|z|)
    ref = REF[key]
    diff = rmst(TRIAL, tau=tau, time="time", event="event", group="arm").difference.iloc[0]
    assert (diff["group"], diff["control"]) == ("rj", "control")
    assert diff["estimate"] == pytest.approx(ref["difference"], **TOL["rmst"])
    assert diff["std_error"] == pytest.approx(ref["difference_se"], **TOL["rmst"])
    assert diff["ci_lower"] == pytest.approx(ref["difference_lower"], **TOL["rmst"])
    assert diff["ci_upper"] == pytest.approx(ref["difference_upper"], **TOL["rmst"])
    assert diff["statistic"] == pytest.approx(ref["difference_z"], **TOL["statistic"])
    assert diff["p_value"] == pytest.approx(ref["difference_p"], **TOL["p_value"])


# --------------------------------------------------------------------------- median rules
SMALL = read_csv("km_small.csv")
SMALL_REF = load_reference()["small"]


@pytest.mark.parametrize("column, key", [("estimate", "quantile"), ("ci_lower", "lower"), ("ci_upper", "upper")])
def test_median_rules_on_flat_stretches(column, key):
    # R: quantile(survfit(Surv(time, event) ~ group, data = small, conf.type = "log-log"), 0.5)
    # group a: S = 0.5 exactly on [3, 5) -> (3 + 5) / 2 = 4; group c: ends flat at 0.5 -> (2 + 4) / 2 = 3
    median = kaplan_meier(SMALL, time="time", event="event", group="group").median()
    assert_close(median[column], SMALL_REF["km_group"]["median"][key], "time")


def test_small_survival_at_times_before_first_time():
    # R: summary(fit, times = c(0, 1, 2.5, 4, 6))  (R drops times after a group's last time)
    at = kaplan_meier(SMALL, time="time", event="event", group="group").survival_at([0, 1, 2.5, 4, 6])
    at = at.dropna(subset=["survival"])
    ref = SMALL_REF["km_group"]["at_times"]
    assert_close(at["survival"], ref["surv"], "survival")
    assert_close(at["ci_lower"], ref["lower"], "survival")
    assert_close(at["at_risk"], ref["n_risk"], "count")
