"""dat.collins1985a (Collins & Langman 1985): H2 antagonists in upper GI bleeding, against R metafor.

Binary outcomes with sparse tables: persistent or recurrent bleeding (25 trials), need for
operation (22 trials, two of them with no operations in either arm) and death (22 trials,
several with a zero arm). Log odds ratios, log risk ratios and risk differences with
metafor's zero-cell correction (``add = 1/2, to = "only0"``), Peto's log odds ratios, and
pooling by Mantel-Haenszel (OR, RR, RD), Peto and inverse variance. Trials that do not report
an outcome are left out, as R does (``na.omit``). Expected values are R 4.2.2 /
metafor 3.8-1 from tests/reference/metafor_reference.R.

Observed agreement (maximum absolute difference): effect sizes 5e-15; Mantel-Haenszel and
Peto estimates, SEs, Q, I^2, weights 5e-13; inverse-variance pooling below 1e-9.
The double-zero trials enter the Mantel-Haenszel sums but not Q (R: ``drop00 = TRUE``),
so Q has k - 3 = 19 df for the operation outcome, as in R.
"""

from __future__ import annotations

import numpy as np
import pytest
from _metafor_reference import (
    COLLINS_OUTCOMES,
    TABLE_QUANTITIES,
    assert_close,
    check_rma_quantity,
    collins_effects,
    fit,
    load_reference,
    read_dataset,
    rma_cases,
    split_key,
)

from rjtrial import effects

REF = load_reference()["collins1985a"]
OUTCOMES = list(COLLINS_OUTCOMES)
MEASURES = ["log_odds_ratio", "log_risk_ratio", "risk_difference"]


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_trials_used_are_those_r_uses(outcome):
    # R: which(!is.na(x.xti) & !is.na(x.xci))  (1-based rows of dat.collins1985a)
    data = read_dataset("collins1985a")
    kept = collins_effects(outcome, "log_odds_ratio").index
    assert [int(i) + 1 for i in np.flatnonzero(data.trial.isin(kept))] == REF[outcome]["rows"]


@pytest.mark.parametrize("outcome", OUTCOMES)
@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("column,key", [("estimate", "yi"), ("variance", "vi")])
def test_effect_sizes_match_escalc(outcome, measure, column, key):
    # R: escalc(measure = "OR" / "RR" / "RD", ai = x.xti, n1i = nti, ci = x.xci, n2i = nci)  (add = 1/2, to = "only0")
    assert_close(collins_effects(outcome, measure)[column], REF[outcome]["escalc"][measure][key], "effect_size")


@pytest.mark.parametrize("outcome", OUTCOMES)
@pytest.mark.parametrize("column,key", [("estimate", "yi"), ("variance", "vi")])
def test_peto_effect_sizes_match_escalc(outcome, column, key):
    # R: escalc("PETO", ..., to = "none", drop00 = TRUE)  -- our default: no correction, double zeros missing
    assert_close(
        collins_effects(outcome, "peto_log_odds_ratio")[column],
        REF[outcome]["escalc"]["peto_log_odds_ratio"][key],
        "effect_size",
    )


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_peto_effect_sizes_with_escalc_default_correction(outcome):
    # R: escalc("PETO", ...)  (its default add = 1/2, to = "only0", drop00 = FALSE)
    treated, control = COLLINS_OUTCOMES[outcome]
    data = read_dataset("collins1985a").dropna(subset=[treated, control])
    es = effects.peto_log_odds_ratio(
        data,
        events_treatment=treated,
        n_treatment="nti",
        events_control=control,
        n_control="nci",
        to="only_zero",
        drop_double_zero=False,
    )
    assert_close(es["estimate"], REF[outcome]["escalc"]["peto_log_odds_ratio_only0"]["yi"], "effect_size")
    assert_close(es["variance"], REF[outcome]["escalc"]["peto_log_odds_ratio_only0"]["vi"], "effect_size")


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_dropping_double_zero_tables_matches_drop00(outcome):
    # R: escalc("OR", ..., drop00 = TRUE)
    treated, control = COLLINS_OUTCOMES[outcome]
    data = read_dataset("collins1985a").dropna(subset=[treated, control])
    es = effects.log_odds_ratio(
        data,
        events_treatment=treated,
        n_treatment="nti",
        events_control=control,
        n_control="nci",
        drop_double_zero=True,
    )
    assert_close(es["estimate"], REF[outcome]["escalc"]["log_odds_ratio_drop00"]["yi"], "effect_size")


@pytest.mark.parametrize("outcome", OUTCOMES)
@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("attribute,rkey,kind,r_call", TABLE_QUANTITIES, ids=[q[0] for q in TABLE_QUANTITIES])
def test_mantel_haenszel_matches_rma_mh(outcome, measure, attribute, rkey, kind, r_call):
    # R: res <- rma.mh(ai = x.xti, n1i = nti, ci = x.xci, n2i = nci, measure = "OR" / "RR" / "RD"); r_call
    res = fit(f"collins1985a:{outcome}", measure, "MH", "z")
    assert_close(getattr(res, attribute), REF[outcome]["mh"][measure][rkey], kind)


PETO_QUANTITIES = [q for q in TABLE_QUANTITIES if q[0] not in ("yi", "vi")]


@pytest.mark.parametrize("outcome", OUTCOMES)
@pytest.mark.parametrize("attribute,rkey,kind,r_call", PETO_QUANTITIES, ids=[q[0] for q in PETO_QUANTITIES])
def test_peto_matches_rma_peto(outcome, attribute, rkey, kind, r_call):
    # R: res <- rma.peto(ai = x.xti, n1i = nti, ci = x.xci, n2i = nci); r_call
    res = fit(f"collins1985a:{outcome}", "log_odds_ratio", "Peto", "z")
    assert_close(getattr(res, attribute), REF[outcome]["peto"][rkey], kind)


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_peto_study_rows_are_uncorrected(outcome):
    # R: escalc("PETO", ..., to = "none", drop00 = TRUE): the (O - E) / V that rma.peto pools
    res = fit(f"collins1985a:{outcome}", "log_odds_ratio", "Peto", "z")
    assert_close(res.yi, REF[outcome]["escalc"]["peto_log_odds_ratio"]["yi"], "effect_size")


def test_peto_pools_the_same_from_peto_or_plain_log_odds_ratio_frames():
    a = fit("collins1985a:operation", "log_odds_ratio", "Peto", "z")
    b = fit("collins1985a:operation", "peto_log_odds_ratio", "Peto", "z")
    assert a.estimate == b.estimate and a.q == b.q


@pytest.mark.parametrize("outcome", OUTCOMES)
@pytest.mark.parametrize("key,attribute,rkey,kind,r_call", rma_cases(REF["bleeding"]["rma"]))
def test_inverse_variance_pooling_matches_rma(outcome, key, attribute, rkey, kind, r_call):
    # R: res <- rma(yi, vi, data = escalc("OR", ...), method = <method>, test = <test>, control = CTRL); r_call
    method, test = split_key(key)
    check_rma_quantity(
        fit(f"collins1985a:{outcome}", "log_odds_ratio", method, test), REF[outcome]["rma"][key], attribute, rkey, kind
    )


def test_mantel_haenszel_ignores_the_zero_cell_correction():
    # the pooled MH estimate comes from the raw counts: a different correction leaves it unchanged
    from rjtrial.meta import pool

    base = collins_effects("death", "log_odds_ratio")
    counts = base[["events_treatment", "n_treatment", "events_control", "n_control"]]
    other = effects.log_odds_ratio(counts, **{c: c for c in counts.columns}, add=0.1)
    reference = fit("collins1985a:death", "log_odds_ratio", "MH", "z").estimate
    assert np.isclose(pool(other, method="MH").estimate, reference, rtol=0, atol=1e-15)
