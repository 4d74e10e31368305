"""dat.normand1999 (Normand 1999): diagnostics of the REML pooled Hedges' g against R metafor.

``escalc("SMD", m1i, sd1i, n1i, m2i, sd2i, n2i, data = dat.normand1999)``, ``res <- rma(yi, vi,
method = "REML", control = CTRL)``. Trim-and-fill imputes no study here with L0 (the no-fill
path) and one with R0. Expected values from tests/reference/metafor_diagnostics.R.

Observed agreement: regtest 6e-15; ranktest 3e-16; trimfill 5e-15; fsn exact; leave1out 4e-12
(fast) / 4e-13 (refit); cumul 2e-13; influence 4e-13.
"""

from __future__ import annotations

import pytest
from _metafor_diagnostics_reference import (
    EGGER_QUANTITIES,
    INFLUENCE_COLUMNS,
    POOLED_COLUMNS,
    TRIMFILL_QUANTITIES,
    assert_close,
    load_diagnostics,
    params,
)
from _metafor_reference import normand_effects

from rjtrial.meta import begg, cumulative, egger, fail_safe_n, influence, leave_one_out, pool, trim_and_fill

REF = load_diagnostics()["normand1999"]["REML_z"]


@pytest.fixture(scope="module")
def res():
    return pool(normand_effects("hedges_g"), method="REML")


@pytest.mark.parametrize("attribute,rkey,kind", params(EGGER_QUANTITIES))
def test_egger_matches_regtest(res, attribute, rkey, kind):
    # R: regtest(res)
    assert_close(getattr(egger(res), attribute), REF["regtest"][rkey], kind)


@pytest.mark.parametrize("attribute,rkey,kind", [("statistic", "tau", "statistic"), ("p_value", "pval", "p_value")])
def test_begg_matches_ranktest(res, attribute, rkey, kind):
    # R: ranktest(res)
    assert_close(getattr(begg(res), attribute), REF["ranktest"][rkey], kind)


@pytest.mark.parametrize("attribute,rkey,kind", params(TRIMFILL_QUANTITIES))
def test_trim_and_fill_matches_trimfill(res, attribute, rkey, kind):
    # R: trimfill(res, control = CTRL)  -> k0 = 0, side = "right"
    tf = trim_and_fill(res)
    assert tf.side == REF["trimfill"]["side"]
    assert_close(getattr(tf, attribute), REF["trimfill"][rkey], kind)


@pytest.mark.parametrize(
    "attribute,rkey,kind",
    [("k0", "k0", "count"), ("estimate", "beta", "coef"), ("std_error", "se", "std_error"), ("tau2", "tau2", "tau2")],
)
def test_trim_and_fill_r0_matches_trimfill(res, attribute, rkey, kind):
    # R: trimfill(res, estimator = "R0", control = CTRL)  -> k0 = 1
    assert_close(getattr(trim_and_fill(res, estimator="R0"), attribute), REF["trimfill_R0"][rkey], kind)


@pytest.mark.parametrize(
    "method,attribute,rkey,kind",
    [
        ("rosenthal", "n", "rosenthal", "count"),  # R: fsn(yi, vi)$fsnum
        ("rosenthal", "p_value", "rosenthal_pval", "p_value"),  # R: fsn(yi, vi)$pval
        ("orwin", "n", "orwin", "count"),  # R: fsn(yi, vi, type = "Orwin")$fsnum
        ("rosenberg", "n", "rosenberg", "count"),  # R: fsn(yi, vi, type = "Rosenberg")$fsnum
        ("rosenberg", "p_value", "rosenberg_pval", "p_value"),  # R: fsn(yi, vi, type = "Rosenberg")$pval
    ],
)
def test_fail_safe_n_matches_fsn(res, method, attribute, rkey, kind):
    assert_close(getattr(fail_safe_n(res, method=method), attribute), REF["fsn"][rkey], kind)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "refit"])
@pytest.mark.parametrize("column,rkey,kind", params(POOLED_COLUMNS))
def test_leave_one_out_matches_leave1out(res, fast, column, rkey, kind):
    # R: leave1out(res)$<rkey>
    assert_close(leave_one_out(res, fast=fast)[column], REF["leave1out"][rkey], kind)


@pytest.mark.parametrize("column,rkey,kind", params(POOLED_COLUMNS))
def test_cumulative_matches_cumul(res, column, rkey, kind):
    # R: cumul(res)$<rkey>
    assert_close(cumulative(res)[column], REF["cumul"][rkey], kind)


@pytest.mark.parametrize("column,rkey,kind", params(INFLUENCE_COLUMNS))
def test_influence_matches_influence(res, column, rkey, kind):
    # R: influence(res)$inf$<rkey>
    assert_close(influence(res)[column], REF["influence"][rkey], kind)
