"""dat.pignon2000 (Pignon et al. 2000): chemotherapy added to locoregional treatment for head and
neck cancer, 65 trials, against R metafor.

Time-to-event outcome: log hazard ratios from the log-rank O - E and V of each trial
(``yi = OmE / V``, ``vi = 1 / V``, as metadat documents), pooled by every estimator with
both tests, and subgroups by the timing of chemotherapy (``grp``: 1 adjuvant, 2
neoadjuvant, 3 concomitant) with separate and common tau^2. Expected values are R 4.2.2 /
metafor 3.8-1 from tests/reference/metafor_reference.R (``CTRL`` is
``list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)``).

Observed agreement (maximum absolute difference): log HRs 4e-15; every pooled quantity,
tau^2 interval, I^2 / H^2 intervals and weights below 1e-8; subgroup estimates and tests
1e-14.
"""

from __future__ import annotations

import pytest
from _metafor_reference import (
    assert_close,
    check_rma_quantity,
    fit,
    load_reference,
    pignon_effects,
    rma_cases,
    split_key,
)

REF = load_reference()["pignon2000"]


@pytest.mark.parametrize("column,key", [("estimate", "yi"), ("variance", "vi")])
def test_log_hazard_ratios_from_logrank_match_metadat(column, key):
    # R: yi <- with(dat.pignon2000, OmE / V); vi <- with(dat.pignon2000, 1 / V)
    es = pignon_effects()
    assert_close(es[column], REF["escalc"][key], "effect_size")
    assert es.attrs["measure"] == "log_hazard_ratio"


@pytest.mark.parametrize("key,attribute,rkey,kind,r_call", rma_cases(REF["rma"]))
def test_log_hazard_ratio_pooling_matches_rma(key, attribute, rkey, kind, r_call):
    # R: res <- rma(yi, vi, method = <method>, test = <test>, control = CTRL); then r_call
    method, test = split_key(key)
    check_rma_quantity(fit("pignon2000", "log_hazard_ratio", method, test), REF["rma"][key], attribute, rkey, kind)


SUBGROUP_KEYS = list(REF["subgroups_grp"])


@pytest.mark.parametrize("key", SUBGROUP_KEYS)
@pytest.mark.parametrize("mode", ["separate", "common"])
@pytest.mark.parametrize(
    "column,rkey,kind",
    [
        ("estimate", "beta", "coef"),
        ("std_error", "se", "std_error"),
        ("p_value", "pval", "p_value"),
        ("ci_lower", "ci_lb", "coef"),
        ("ci_upper", "ci_ub", "coef"),
    ],
)
def test_subgroup_estimates_match_metafor(key, mode, column, rkey, kind):
    # R (separate): rma(yi, vi, subset = grp == g, method = <method>, test = <test>, control = CTRL)
    # R (common):   rma(yi, vi, mods = ~ factor(grp) - 1, method = <method>, test = <test>, control = CTRL)
    method, test = split_key(key)
    res = fit("pignon2000", "log_hazard_ratio", method, test, subgroup="grp", subgroup_tau2=mode)
    ref = REF["subgroups_grp"][key][mode]
    assert [str(level) for level in res.subgroups.index] == ref["levels"]
    assert_close(res.subgroups[column], ref[rkey], kind)


@pytest.mark.parametrize("key", SUBGROUP_KEYS)
def test_subgroup_tau2_matches_metafor(key):
    method, test = split_key(key)
    separate = fit("pignon2000", "log_hazard_ratio", method, test, subgroup="grp")
    common = fit("pignon2000", "log_hazard_ratio", method, test, subgroup="grp", subgroup_tau2="common")
    assert_close(separate.subgroups["tau2"], REF["subgroups_grp"][key]["separate"]["tau2"], "tau2")  # R: res_g$tau2
    assert_close(common.subgroups["tau2"].iloc[0], REF["subgroups_grp"][key]["common"]["tau2"], "tau2")  # R: res$tau2


@pytest.mark.parametrize("key", SUBGROUP_KEYS)
def test_tests_of_subgroup_differences_match_metafor(key):
    method, test = split_key(key)
    ref = REF["subgroups_grp"][key]
    separate = fit("pignon2000", "log_hazard_ratio", method, test, subgroup="grp")
    # R: rma(estimate_g, sei = se_g, method = "FE")$QE, $QEp on 2 df
    assert_close(separate.subgroup_test.statistic, ref["separate"]["Qb"], "statistic")
    assert_close(separate.subgroup_test.p_value, ref["separate"]["Qb_p"], "p_value")
    common = fit("pignon2000", "log_hazard_ratio", method, test, subgroup="grp", subgroup_tau2="common")
    # R: rma(yi, vi, mods = ~ factor(grp), method = <method>, test = <test>)$QM, $QMp (F on (2, 62) df with knha)
    assert_close(common.subgroup_test.statistic, ref["common"]["QM"], "statistic")
    assert_close(common.subgroup_test.p_value, ref["common"]["QMp"], "p_value")
    assert common.subgroup_test.df == ref["common"]["QMdf"][0]
