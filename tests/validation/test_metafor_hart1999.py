"""dat.hart1999 (Hart et al. 1999): warfarin against placebo or control for stroke prevention in
atrial fibrillation, 6 trials, strokes per patient-year, against R metafor.

Log incidence rate ratios from events and person-time, Mantel-Haenszel pooling of rate
ratios and inverse-variance pooling. Expected values are R 4.2.2 / metafor 3.8-1 from
tests/reference/metafor_reference.R.

Observed agreement (maximum absolute difference): log IRRs 5e-15; Mantel-Haenszel estimate,
SE, Q, I^2, weights 1e-13; inverse-variance pooling below 1e-9.
"""

from __future__ import annotations

import pytest
from _metafor_reference import (
    TABLE_QUANTITIES,
    assert_close,
    check_rma_quantity,
    fit,
    hart_effects,
    load_reference,
    rma_cases,
    split_key,
)

REF = load_reference()["hart1999"]


@pytest.mark.parametrize("column,key", [("estimate", "yi"), ("variance", "vi")])
def test_log_rate_ratios_match_escalc_irr(column, key):
    # R: escalc("IRR", x1i = x1i, t1i = t1i, x2i = x2i, t2i = t2i, data = dat.hart1999)
    assert_close(hart_effects()[column], REF["escalc"]["log_incidence_rate_ratio"][key], "effect_size")


@pytest.mark.parametrize("attribute,rkey,kind,r_call", TABLE_QUANTITIES, ids=[q[0] for q in TABLE_QUANTITIES])
def test_mantel_haenszel_rate_ratio_matches_rma_mh(attribute, rkey, kind, r_call):
    # R: res <- rma.mh(x1i = x1i, t1i = t1i, x2i = x2i, t2i = t2i, data = dat.hart1999, measure = "IRR"); r_call
    res = fit("hart1999", "log_incidence_rate_ratio", "MH", "z")
    assert_close(getattr(res, attribute), REF["mh"]["log_incidence_rate_ratio"][rkey], kind)


@pytest.mark.parametrize("key,attribute,rkey,kind,r_call", rma_cases(REF["rma"]))
def test_rate_ratio_pooling_matches_rma(key, attribute, rkey, kind, r_call):
    # R: res <- rma(yi, vi, data = escalc("IRR", ...), method = <method>, test = <test>, control = CTRL); r_call
    method, test = split_key(key)
    check_rma_quantity(
        fit("hart1999", "log_incidence_rate_ratio", method, test), REF["rma"][key], attribute, rkey, kind
    )
