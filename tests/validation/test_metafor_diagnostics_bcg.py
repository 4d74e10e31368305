"""dat.bcg (Colditz et al. 1994): publication-bias and sensitivity diagnostics against R metafor.

Log risk ratios (``escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)``)
pooled by REML and DL (z) and REML with Knapp-Hartung; influence also for the meta-regression
on absolute latitude. Expected values: R 4.2.2 / metafor 3.8-1 from
tests/reference/metafor_diagnostics.R (``res <- rma(yi, vi, method = <method>, test = <test>,
control = CTRL)``); the R call is beside each assertion.

Observed agreement (max abs difference over the three fits): regtest 4e-15; ranktest 4e-16;
trimfill (k0, side, estimate, SE, CI, tau^2, filled values) 5e-15; fsn exact (integers) and
p 1e-43; leave1out 3e-12 (fast path) / 5e-13 (refit loop); cumul 5e-13; influence 4e-13
(q_deleted), 2e-14 otherwise.
"""

from __future__ import annotations

import numpy as np
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
from _metafor_reference import fit

from rjtrial.meta import begg, cumulative, egger, fail_safe_n, influence, leave_one_out, trim_and_fill

REF = load_diagnostics()["bcg"]
FITS = ["REML_z", "DL_z", "REML_knha"]


def model(key):
    method, test = key.rsplit("_", 1)
    return fit("bcg", "log_risk_ratio", method, test)


@pytest.mark.parametrize("key", FITS)
@pytest.mark.parametrize("attribute,rkey,kind", params(EGGER_QUANTITIES))
def test_egger_matches_regtest(key, attribute, rkey, kind):
    # R: regtest(res)  (model = "rma", predictor = "sei"); slope = coef(r$fit)[2], tau2 = r$fit$tau2
    assert_close(getattr(egger(model(key)), attribute), REF[key]["regtest"][rkey], kind)


@pytest.mark.parametrize("key", FITS)
@pytest.mark.parametrize("attribute,rkey,kind", [("statistic", "tau", "statistic"), ("p_value", "pval", "p_value")])
def test_begg_matches_ranktest(key, attribute, rkey, kind):
    # R: ranktest(res)$tau, $pval  (exact Kendall p: no ties)
    assert_close(getattr(begg(model(key)), attribute), REF[key]["ranktest"][rkey], kind)


@pytest.mark.parametrize("key", FITS)
@pytest.mark.parametrize("attribute,rkey,kind", params(TRIMFILL_QUANTITIES))
def test_trim_and_fill_matches_trimfill(key, attribute, rkey, kind):
    # R: trimfill(res, control = CTRL)  (estimator = "L0"; refit with test = "z" as metafor)
    assert_close(getattr(trim_and_fill(model(key)), attribute), REF[key]["trimfill"][rkey], kind)


@pytest.mark.parametrize("key", FITS)
def test_trim_and_fill_side_and_filled_values(key):
    # R: tf <- trimfill(res, control = CTRL); tf$side; tf$yi; tf$vi; tf$fill
    tf = trim_and_fill(model(key))
    ref = REF[key]["trimfill"]
    assert tf.side == ref["side"]
    assert_close(tf.result.yi, ref["yi"], "coef")
    assert_close(tf.result.vi, ref["vi"], "effect_size")
    assert list(tf.result.studies.str.startswith("Filled")) == ref["fill"]


@pytest.mark.parametrize("key", FITS)
@pytest.mark.parametrize(
    "attribute,rkey,kind",
    [("k0", "k0", "count"), ("estimate", "beta", "coef"), ("std_error", "se", "std_error"), ("tau2", "tau2", "tau2")],
)
def test_trim_and_fill_r0_matches_trimfill(key, attribute, rkey, kind):
    # R: trimfill(res, estimator = "R0", control = CTRL)
    tf = trim_and_fill(model(key), estimator="R0")
    assert tf.side == REF[key]["trimfill_R0"]["side"]
    assert_close(getattr(tf, attribute), REF[key]["trimfill_R0"][rkey], kind)


@pytest.mark.parametrize(
    "method,attribute,rkey,kind",
    [
        ("rosenthal", "n", "rosenthal", "count"),  # R: fsn(yi, vi)$fsnum
        ("rosenthal", "p_value", "rosenthal_pval", "p_value"),  # R: fsn(yi, vi)$pval
        ("orwin", "n", "orwin", "count"),  # R: fsn(yi, vi, type = "Orwin")$fsnum
        ("orwin", "target", "orwin_target", "coef"),  # R: fsn(yi, vi, type = "Orwin")$target
        ("orwin", "mean_effect", "orwin_meanes", "coef"),  # R: fsn(yi, vi, type = "Orwin")$meanes
        ("rosenberg", "n", "rosenberg", "count"),  # R: fsn(yi, vi, type = "Rosenberg")$fsnum
        ("rosenberg", "p_value", "rosenberg_pval", "p_value"),  # R: fsn(yi, vi, type = "Rosenberg")$pval
        ("rosenberg", "mean_effect", "rosenberg_meanes", "coef"),  # R: fsn(yi, vi, type = "Rosenberg")$meanes
    ],
)
def test_fail_safe_n_matches_fsn(method, attribute, rkey, kind):
    assert_close(getattr(fail_safe_n(model("REML_z"), method=method), attribute), REF["REML_z"]["fsn"][rkey], kind)


@pytest.mark.parametrize("key", FITS)
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "refit"])
@pytest.mark.parametrize("column,rkey,kind", params(POOLED_COLUMNS))
def test_leave_one_out_matches_leave1out(key, fast, column, rkey, kind):
    # R: leave1out(res)$<rkey>  (zval is tval with test = "knha")
    assert_close(leave_one_out(model(key), fast=fast)[column], REF[key]["leave1out"][rkey], kind)


@pytest.mark.parametrize("key", FITS)
@pytest.mark.parametrize("column,rkey,kind", params(POOLED_COLUMNS))
def test_cumulative_matches_cumul(key, column, rkey, kind):
    # R: cumul(res)$<rkey>
    assert_close(cumulative(model(key))[column], REF[key]["cumul"][rkey], kind)


@pytest.mark.parametrize("key", FITS)
@pytest.mark.parametrize("column,rkey,kind", params(INFLUENCE_COLUMNS))
def test_influence_matches_influence(key, column, rkey, kind):
    # R: influence(res)$inf$<rkey>
    assert_close(influence(model(key))[column], REF[key]["influence"][rkey], kind)


@pytest.mark.parametrize("column,rkey,kind", params(INFLUENCE_COLUMNS))
def test_influence_of_meta_regression_matches_influence(column, rkey, kind):
    # R: influence(rma(yi, vi, mods = ~ ablat, data = <log RR>, control = CTRL))$inf$<rkey>
    res = fit("bcg", "log_risk_ratio", "REML", "z", moderators=("ablat",))
    assert_close(influence(res)[column], REF["REML_ablat_influence"][rkey], kind)


def test_cumulative_first_row_is_the_first_study():
    # R: cumul(res)[1, ]: one study, tau^2 = 0, Q = 0, Qp = 1
    res = model("REML_z")
    first = cumulative(res).iloc[0]
    assert first["k"] == 1 and first["tau2"] == 0 and first["q"] == 0
    assert first["estimate"] == pytest.approx(res.yi[0], abs=1e-12)
    assert np.isclose(first["q_p_value"], 1.0)
