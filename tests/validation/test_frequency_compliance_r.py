"""Rate ratios, risk measures, before–after SMD, victims, ITT/CACE, O/E and costs against R.

Data: tests/reference/make_frequency_trial.py (seed 20250311), 500 participants, 250 per arm,
one-sided non-compliance (171 of 250 assigned to RJ had a conference). Expected values:
R 4.2.2 with MASS 7.3-58.2, metafor 3.8-1, AER 1.2-10, sandwich, via
tests/reference/frequency_reference.R (stored in frequency_reference.json); the R call is
beside each assertion. R's ``armrj`` is our ``arm[T.rj]``, ``siteb`` our ``site[T.b]``.

Observed agreement (max abs / max rel difference): negative binomial coefficients 7e-13 /
2e-12, standard errors 3e-12 / 2e-11, theta 3e-14 / 2e-14 against theta.ml polished at the
fitted means (5e-11 rel against glm.nb's own theta), SE(theta) 6e-15 / 5e-14 against the
polished value -- R's stock ``glm.nb`` SE.theta differs by 1.2e-6 / 9e-6, see
``test_stock_glm_nb_se_theta_is_one_step_behind``; Poisson coefficients 2e-14, standard errors
2e-10 rel (R's IRLS weights lag one iteration); log-likelihoods 2e-13; 2x2 measures, SMD,
ANCOVA, ITT/CACE (both covariances), first-stage F, observed/expected and costs 1e-12 or better.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rjtrial.compliance import cace
from rjtrial.costs import benefit_cost
from rjtrial.frequency import (
    before_after_smd,
    compare_proportions,
    observed_expected,
    odds_ratio,
    rate_ratio,
    risk_difference,
    risk_ratio,
)
from rjtrial.frequency.expected import _poisson_exact
from rjtrial.victims import above_threshold, ancova, binary_outcome

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
REF = json.loads((REFERENCE / "frequency_reference.json").read_text())
TRIAL = pd.read_csv(REFERENCE / "frequency_trial.csv")

# Agreement required with R, by kind of quantity (assert_allclose keywords).
TOL = {
    "coef": {"atol": 1e-6, "rtol": 0},  # log rate ratios, regression coefficients, differences
    "std_error": {"atol": 0, "rtol": 1e-6},
    "statistic": {"atol": 1e-9, "rtol": 1e-6},  # z, t, F
    "p_value": {"atol": 1e-6, "rtol": 0},
    "ratio": {"atol": 0, "rtol": 1e-6},  # rate/risk/odds ratios, their limits, theta, O/E
    "loglik": {"atol": 1e-6, "rtol": 0},
    "count": {"atol": 0, "rtol": 0},  # events, sizes, degrees of freedom: exact
}
R_TERMS = {
    "(Intercept)": "Intercept",
    "armrj": "arm[T.rj]",
    "prior_offences": "prior_offences",
    "age": "age",
    "siteb": "site[T.b]",
    "sitec": "site[T.c]",
    "ies_baseline": "ies_baseline",
}
COVARIATES = ["prior_offences", "age", "site"]


def close(actual, expected, kind):
    expected = np.array([np.nan if v is None else v for v in np.atleast_1d(expected)], dtype=float)
    np.testing.assert_allclose(np.asarray(actual, dtype=float), expected, err_msg=kind, **TOL[kind])


# ---------------------------------------------------------------------------- rate ratios
RATE_MODELS = {
    # R: glm.nb(reoffences ~ arm + offset(log(exposure_days)), control = glm.control(1e-12, 100))
    "nb_simple": dict(model="negative_binomial"),
    # R: glm.nb(reoffences ~ arm + prior_offences + age + site + offset(log(exposure_days)), ...)
    "nb_adjusted": dict(model="negative_binomial", covariates=COVARIATES),
    # R: glm(reoffences ~ arm + offset(log(exposure_days)), family = poisson, control = glm.control(1e-12, 100))
    "poisson_simple": dict(model="poisson"),
    # R: glm(reoffences ~ arm + prior_offences + age + site + offset(log(exposure_days)), family = poisson)
    "poisson_adjusted": dict(model="poisson", covariates=COVARIATES),
}


@pytest.fixture(scope="module")
def rate_fits():
    return {
        key: rate_ratio(TRIAL, count="reoffences", exposure="exposure_days", group="arm", **kwargs)
        for key, kwargs in RATE_MODELS.items()
    }


@pytest.mark.parametrize("key", list(RATE_MODELS))
def test_rate_ratio_terms(rate_fits, key):
    # R: names(coef(fit))
    assert list(rate_fits[key].params_.index) == [R_TERMS[t] for t in REF[key]["terms"]]


@pytest.mark.parametrize("key", list(RATE_MODELS))
def test_rate_ratio_coefficients(rate_fits, key):
    table = rate_fits[key].summary_frame()
    close(table["estimate"], REF[key]["coef"], "coef")  # R: coef(fit)
    close(table["std_error"], REF[key]["se"], "std_error")  # R: sqrt(diag(vcov(fit)))
    close(table["statistic"], REF[key]["z"], "statistic")  # R: coef(summary(fit))[, "z value"]
    close(table["p_value"], REF[key]["p"], "p_value")  # R: coef(summary(fit))[, "Pr(>|z|)"]
    close(table["ci_lower"], REF[key]["ci_lower"], "ratio")  # R: exp(confint.default(fit))[, 1]
    close(table["ci_upper"], REF[key]["ci_upper"], "ratio")  # R: exp(confint.default(fit))[, 2]


@pytest.mark.parametrize("key", list(RATE_MODELS))
def test_rate_ratio_log_likelihood(rate_fits, key):
    # R: logLik(fit)
    close(rate_fits[key].log_likelihood_, REF[key]["loglik"], "loglik")
    assert rate_fits[key].converged


@pytest.mark.parametrize("key", ["nb_simple", "nb_adjusted"])
def test_negative_binomial_theta(rate_fits, key):
    fit = rate_fits[key]
    # R: theta.ml(reoffences, fitted(fit), limit = 100, eps = 1e-14)  (== fit$theta to 1e-10)
    close(fit.theta_, REF[key]["theta"], "ratio")
    close(fit.theta_, REF[key]["theta_glm_nb"], "ratio")  # R: fit$theta
    close(fit.alpha_, 1 / REF[key]["theta"], "ratio")
    # R: attr(theta.ml(reoffences, fitted(fit), limit = 100, eps = 1e-14), "SE")
    close(fit.theta_std_error_, REF[key]["se_theta"], "std_error")
    # R: fit$twologlik
    close(2 * fit.log_likelihood_, REF[key]["twologlik"], "loglik")


@pytest.mark.parametrize("key", ["nb_simple", "nb_adjusted"])
def test_stock_glm_nb_se_theta_is_one_step_behind(rate_fits, key):
    # R: fit$SE.theta is evaluated at theta.ml's last-but-one iterate (eps = .Machine$double.eps^0.25),
    # so it is off by up to ~1e-5 relative; documented in rate_ratio's Notes.
    stock = REF[key]["se_theta_glm_nb"]
    assert rate_fits[key].theta_std_error_ == pytest.approx(stock, rel=5e-5)
    assert REF[key]["se_theta"] != pytest.approx(stock, rel=1e-6)  # why we hold ours to the polished value


def test_rates_per_person_year(rate_fits):
    rates = rate_fits["nb_simple"].rates_frame()
    assert rates["group"].tolist() == REF["rates"]["group"]  # R: levels(arm)
    close(rates["events"], REF["rates"]["events"], "count")  # R: tapply(reoffences, arm, sum)
    close(rates["exposure"], REF["rates"]["exposure"], "count")  # R: tapply(exposure_days, arm, sum)
    close(rates["rate"], REF["rates"]["rate"], "ratio")  # R: events / exposure * 365.25


# ---------------------------------------------------------------------------- 2x2 measures
MEASURES = {"risk_ratio": risk_ratio, "odds_ratio": odds_ratio, "risk_difference": risk_difference}


def check_two_by_two(result, ref):
    ratio = result.measure != "risk_difference"
    close(result.estimate, ref["estimate"], "ratio" if ratio else "coef")
    close(result.std_error, ref["se"], "std_error")
    close(result.ci_lower, ref["ci_lower"], "ratio" if ratio else "coef")
    close(result.ci_upper, ref["ci_upper"], "ratio" if ratio else "coef")
    close(result.statistic, ref["z"], "statistic")
    close(result.p_value, ref["p"], "p_value")


@pytest.mark.parametrize("measure", list(MEASURES))
def test_any_reoffence(measure):
    # R: two_by_two(sum(event[rj]), sum(rj), sum(event[!rj]), sum(!rj)); checked against
    #    escalc(measure = "RR" | "OR" | "RD", ai, n1i, ci, n2i)
    result = MEASURES[measure](TRIAL, outcome="event", group="arm")
    ref = REF["any_reoffence"]
    assert [result.events_treatment, result.n_treatment, result.events_control, result.n_control] == ref["counts"]
    assert result.correction == ref["correction"] == 0
    check_two_by_two(result, ref[measure])


@pytest.mark.parametrize("table", ["first_empty", "control_empty", "no_events", "all_events"])
@pytest.mark.parametrize("measure", list(MEASURES))
def test_zero_cells_as_escalc_only0(table, measure):
    # R: escalc(measure, ai, n1i, ci, n2i)  (add = 1/2, to = "only0")
    ref = REF["zero_cells"][table]
    a, n1, c, n2 = (int(v) for v in ref["counts"])
    result = compare_proportions(measure=measure, events_treatment=a, n_treatment=n1, events_control=c, n_control=n2)
    assert result.correction == ref["correction"] == 0.5
    check_two_by_two(result, ref[measure])


# ---------------------------------------------------------------------------- before-after SMD
@pytest.mark.parametrize("hedges, key", [(False, "cohen_d"), (True, "hedges_g")])
def test_before_after_smd(hedges, key):
    # R: change <- reoffences - prior_offences; (mean(ct) - mean(cc)) / sp, var 1/nt + 1/nc + d^2/(2(nt+nc));
    #    hedges_g checked against escalc("SMD", m1i, sd1i, n1i, m2i, sd2i, n2i)
    result = before_after_smd(TRIAL, before="prior_offences", after="reoffences", group="arm", hedges=hedges)
    ref = REF["before_after"][key]
    close(result.estimate, ref["estimate"], "coef")
    close(result.std_error, ref["se"], "std_error")
    close([result.ci_lower, result.ci_upper], [ref["ci_lower"], ref["ci_upper"]], "coef")
    close(result.statistic, ref["z"], "statistic")
    close(result.p_value, ref["p"], "p_value")
    close(result.pooled_sd, REF["before_after"]["pooled_sd"], "std_error")
    close([result.mean_change_treatment, result.mean_change_control], REF["before_after"]["mean_change"], "coef")


# ---------------------------------------------------------------------------- victims
VICTIM_OUTCOMES = {"satisfied": "victim_satisfied", "recommend": "victim_recommend", "fearful": "victim_fearful"}


@pytest.mark.parametrize("key", list(VICTIM_OUTCOMES))
def test_victim_binary_outcomes(key):
    # R: two_by_two() on table(arm, victim_<key>): risk difference and risk ratio
    result = binary_outcome(TRIAL, outcome=VICTIM_OUTCOMES[key], group="arm")
    check_two_by_two(result.risk_difference, REF["victims"][key]["risk_difference"])
    check_two_by_two(result.risk_ratio, REF["victims"][key]["risk_ratio"])


def test_ies_r_above_25():
    # R: two_by_two() on table(arm, ies_followup >= 25)
    result = above_threshold(TRIAL, score="ies_followup", group="arm", threshold=25)
    ref = REF["victims"]["ies_above_25"]
    assert result.proportions_frame()["events"].tolist() == [ref["counts"][2], ref["counts"][0]]
    check_two_by_two(result.risk_difference, ref["risk_difference"])
    check_two_by_two(result.risk_ratio, ref["risk_ratio"])


@pytest.mark.parametrize(
    "key, covariates",
    [
        ("ancova_simple", None),  # R: lm(ies_followup ~ arm + ies_baseline)
        ("ancova_site", ["site"]),  # R: lm(ies_followup ~ arm + ies_baseline + site)
    ],
)
def test_ancova(key, covariates):
    fit = ancova(TRIAL, outcome="ies_followup", baseline="ies_baseline", group="arm", covariates=covariates)
    ref, table = REF[key], fit.summary_frame()
    assert table["term"].tolist() == [R_TERMS[t] for t in ref["terms"]]
    close(table["estimate"], ref["coef"], "coef")  # R: coef(summary(fit))[, 1]
    close(table["std_error"], ref["se"], "std_error")  # R: coef(summary(fit))[, 2]
    close(table["statistic"], ref["t"], "statistic")  # R: coef(summary(fit))[, 3]
    close(table["p_value"], ref["p"], "p_value")  # R: coef(summary(fit))[, 4]
    close(table["ci_lower"], ref["ci_lower"], "coef")  # R: confint(fit)[, 1]
    close(table["ci_upper"], ref["ci_upper"], "coef")  # R: confint(fit)[, 2]
    close(fit.residual_std_error_, ref["sigma"], "std_error")  # R: summary(fit)$sigma
    close(fit.r_squared_, ref["r_squared"], "coef")  # R: summary(fit)$r.squared
    assert fit.df_resid_ == ref["df_residual"]  # R: fit$df.residual
    close(fit.estimate, ref["coef"][1], "coef")


# ---------------------------------------------------------------------------- ITT and CACE
@pytest.fixture(scope="module")
def cace_fits():
    out = {}
    for key, covariates in (("cace_simple", None), ("cace_adjusted", COVARIATES)):
        for cov_type in ("unadjusted", "robust"):
            out[key, cov_type] = cace(
                TRIAL,
                outcome="reoffences",
                assigned="arm",
                treated="treatment_received",
                covariates=covariates,
                cov_type=cov_type,
            )
    return out


CACE_CASES = [(k, c) for k in ("cace_simple", "cace_adjusted") for c in ("unadjusted", "robust")]


@pytest.mark.parametrize("key, cov_type", CACE_CASES)
@pytest.mark.parametrize("effect", ["itt_outcome", "itt_uptake", "cace"])
def test_itt_and_cace(cace_fits, key, cov_type, effect):
    # R: itt_outcome  lm(reoffences ~ arm + W); itt_uptake  lm(treatment_received ~ arm + W)
    #    cace  two lm stages, variance with residuals from the observed D written out, checked
    #          against ivreg(reoffences ~ treatment_received + W | arm + W) (vcov, or vcovHC type "HC1")
    row = cace_fits[key, cov_type].summary_frame().loc[effect]
    ref = REF[key][cov_type][effect]
    close(row["estimate"], ref["estimate"], "coef")
    close(row["std_error"], ref["se"], "std_error")
    close([row["ci_lower"], row["ci_upper"]], [ref["ci_lower"], ref["ci_upper"]], "coef")  # est -/+ qt(.975, df) se
    close(row["statistic"], ref["t"], "statistic")
    close(row["p_value"], ref["p"], "p_value")  # R: 2 * pt(-abs(t), n - k)
    assert row["df"] == ref["df"]


@pytest.mark.parametrize("key, cov_type", CACE_CASES)
def test_first_stage_f_and_wald_ratio(cace_fits, key, cov_type):
    fit = cace_fits[key, cov_type]
    # R: t^2 of armrj in lm(treatment_received ~ arm + W) (= AER's weak-instruments F, classic vcov)
    close(fit.first_stage_f_, REF[key][cov_type]["first_stage_f"], "statistic")
    close(fit.first_stage_p_value_, REF[key][cov_type]["first_stage_f_p"], "p_value")
    # R: coef(itt_y)["armrj"] / coef(itt_d)["armrj"]
    close(fit.wald_ratio_, REF[key]["wald_ratio"], "coef")
    close(fit.estimate, REF[key]["wald_ratio"], "coef")


# ---------------------------------------------------------------------------- observed vs expected
def test_observed_expected_by_arm():
    result = observed_expected(TRIAL, observed="event", expected="risk_score", group="arm")
    arms = result.summary_frame().set_index("group")
    for group, ref in REF["observed_expected"]["arms"].items():
        row = arms.loc[group]
        assert row["observed"] == ref["observed"]  # R: sum(event[arm == g])
        close(row["expected"], ref["expected"], "ratio")  # R: sum(risk_score[arm == g])
        close(row["estimate"], ref["estimate"], "ratio")  # R: poisson.test(O, E)$estimate
        close([row["ci_lower"], row["ci_upper"]], [ref["ci_lower"], ref["ci_upper"]], "ratio")  # $conf.int
        close(row["p_value"], ref["p"], "p_value")  # $p.value
    comparison = result.comparison_frame().iloc[0]
    ref = REF["observed_expected"]["comparison"]
    # R: poisson.test(c(O_rj, O_control), c(E_rj, E_control))
    close(comparison["estimate"], ref["estimate"], "ratio")
    close([comparison["ci_lower"], comparison["ci_upper"]], [ref["ci_lower"], ref["ci_upper"]], "ratio")
    close(comparison["p_value"], ref["p"], "p_value")


@pytest.mark.parametrize("case", range(4))
def test_exact_poisson_small_counts(case):
    # R: poisson.test(x, T) for (0, 2.5), (1, 4.2), (7, 3.1), (3, 3)
    ref = REF["poisson_exact_small"][case]
    lower, upper, p = _poisson_exact(int(ref["x"]), ref["expected"], 0.05)
    close([lower, upper], [ref["ci_lower"], ref["ci_upper"]], "ratio")
    close(p, ref["p"], "p_value")


# ---------------------------------------------------------------------------- costs
def test_benefit_cost_point_estimate():
    # R: n_t * (colMeans(counts[control, ]) - colMeans(counts[rj, ])); sum(prevented * unit) / (2000 * n_t)
    ref = REF["costs"]
    columns = {f"reoffences_{t}": t for t in ref["unit_cost"]}
    result = benefit_cost(
        TRIAL,
        offence_counts=columns,
        costs=ref["unit_cost"],
        group="arm",
        programme_cost_per_participant=ref["programme_cost_per_participant"],
        n_bootstrap=0,
        rng=0,
    )
    close(result.prevented_frame()["prevented"], ref["prevented"], "coef")
    close(result.benefit_, ref["benefit"], "ratio")
    close(result.ratio_, ref["ratio"], "ratio")
