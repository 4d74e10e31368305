"""dat.normand1999 (Normand 1999): specialist vs routine stroke care, 9 studies, against R metafor.

Continuous outcome (length of hospital stay, days): Hedges' g and Cohen's d from means,
SDs and sizes, g from t statistics and from two-sided p values, conversion of d to log odds
ratios, and pooling of g by every estimator with both tests. Expected values are R 4.2.2 /
metafor 3.8-1 from tests/reference/metafor_reference.R (``CTRL`` is
``list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)``).

Observed agreement (maximum absolute difference): g, d and variances 5e-15; g from t 2e-15,
from p 4e-15; d to log OR 5e-15; pooled estimates, SEs, CIs, PIs, tau^2 and its interval,
I^2, H^2, Q and weights below 1e-9 for every estimator and test.
"""

from __future__ import annotations

import numpy as np
import pytest
from _metafor_reference import (
    assert_close,
    check_rma_quantity,
    fit,
    load_reference,
    normand_effects,
    read_dataset,
    rma_cases,
    split_key,
)

from rjtrial import effects

REF = load_reference()["normand1999"]
ESC = REF["escalc"]
DATA = read_dataset("normand1999")


@pytest.mark.parametrize("column,key", [("estimate", "yi"), ("variance", "vi")])
def test_hedges_g_matches_escalc_smd(column, key):
    # R: escalc("SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = dat.normand1999)
    assert_close(normand_effects("hedges_g")[column], ESC["hedges_g"][key], "effect_size")


def test_correction_factor_matches_metafor():
    # R: metafor:::.cmicalc(n1i + n2i - 2)
    assert_close(effects.correction_factor(DATA.n1i + DATA.n2i - 2), ESC["correction_factor"], "effect_size")


@pytest.mark.parametrize("column,key", [("estimate", "yi"), ("variance", "vi")])
def test_cohens_d_is_escalc_smd_without_correction(column, key):
    # R: d = (m1i - m2i) / sp (= escalc("SMD")$yi / .cmicalc(m)); vi = 1/n1i + 1/n2i + d^2 / (2 (n1i + n2i))
    assert_close(normand_effects("cohens_d")[column], ESC["cohens_d"][key], "effect_size")


@pytest.mark.parametrize("column,key", [("estimate", "yi"), ("variance", "vi")])
def test_smd_from_t_matches_escalc_ti(column, key):
    # R: escalc("SMD", ti = t, n1i = n1i, n2i = n2i), t = d / sqrt(1/n1i + 1/n2i)
    es = effects.smd_from_t(t_statistic=ESC["t_statistic"], n_treatment=DATA.n1i, n_control=DATA.n2i)
    assert_close(es[column], ESC["hedges_g_from_t"][key], "effect_size")


@pytest.mark.parametrize("column,key", [("estimate", "yi"), ("variance", "vi")])
def test_smd_from_p_matches_escalc_ti_from_qt(column, key):
    # R: escalc("SMD", ti = sign(t) * qt(p / 2, n1i + n2i - 2, lower.tail = FALSE), n1i = n1i, n2i = n2i)
    es = effects.smd_from_p(
        p_value=ESC["p_value"], sign=np.sign(ESC["t_statistic"]), n_treatment=DATA.n1i, n_control=DATA.n2i
    )
    assert_close(es[column], ESC["hedges_g_from_p"][key], "effect_size")


def test_smd_from_t_without_correction_is_cohens_d():
    es = effects.smd_from_t(
        t_statistic=ESC["t_statistic"], n_treatment=DATA.n1i, n_control=DATA.n2i, small_sample_correction=False
    )
    assert_close(es["estimate"], ESC["cohens_d"]["yi"], "effect_size")
    assert es.attrs["measure"] == "cohens_d"


@pytest.mark.parametrize("method,key", [("logistic", "d2orl"), ("cox", "d2orn")])
@pytest.mark.parametrize("column,rkey", [("estimate", "yi"), ("variance", "vi")])
def test_d_to_log_odds_ratio_matches_escalc(method, key, column, rkey):
    # R: escalc("D2ORL" / "D2ORN", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i)
    converted = effects.d_to_log_odds_ratio(normand_effects("cohens_d"), method=method)
    assert_close(converted[column], ESC[key][rkey], "effect_size")
    assert converted.attrs["measure"] == "log_odds_ratio"


@pytest.mark.parametrize("key,attribute,rkey,kind,r_call", rma_cases(REF["rma"]))
def test_smd_pooling_matches_rma(key, attribute, rkey, kind, r_call):
    # R: res <- rma(yi, vi, data = escalc("SMD", ...), method = <method>, test = <test>, control = CTRL); r_call
    method, test = split_key(key)
    check_rma_quantity(fit("normand1999", "hedges_g", method, test), REF["rma"][key], attribute, rkey, kind)
