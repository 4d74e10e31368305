"""Morris (2008), Table 1: five pretest-posttest-control studies (Carlson & Schmidt 1999), the
standardised mean change of each arm and its difference, against R metafor's escalc and the
published effect sizes.

Raw-score (escalc ``"SMCR"``) and change-score (``"SMCC"``) standardisation, both variance types
(``"LS"``, ``"LS2"``), each arm, and the treatment-minus-control difference as metafor's own
Morris (2008) example computes it. Expected values are R 4.2.2 / metafor 3.8-1 from
tests/reference/metafor_escalc.R; the published d_ppc1 values (Morris 2008, Table 1, p. 368) are
given to two decimals.

Observed agreement (maximum relative difference): 4e-15 for every arm and difference,
estimate and variance; the published values to their rounding (0.005).
"""

from __future__ import annotations

import numpy as np
import pytest
from _escalc_reference import assert_escalc, load_escalc, read_csv

from rjtrial import effects

REF = load_escalc()["morris2008"]
DATA = read_csv("morris2008")
ARMS = {"t": "treatment", "c": "control"}


def _arm(arm: str, standardiser: str, variance_type: str):
    return effects.standardised_mean_change(
        DATA,
        mean_before=f"m_pre_{arm}",
        mean_after=f"m_post_{arm}",
        sd_before=f"sd_pre_{arm}",
        sd_after=f"sd_post_{arm}",
        correlation="r",
        n=f"n_{arm}",
        standardiser=standardiser,
        variance_type=variance_type,
        study="study",
    )


def _difference(standardiser: str, variance_type: str):
    return effects.standardised_mean_change_difference(
        DATA,
        standardiser=standardiser,
        variance_type=variance_type,
        study="study",
        **{
            f"{name}_{ARMS[arm]}": f"{column}_{arm}"
            for arm in ARMS
            for name, column in (
                ("mean_before", "m_pre"),
                ("mean_after", "m_post"),
                ("sd_before", "sd_pre"),
                ("sd_after", "sd_post"),
                ("n", "n"),
            )
        },
        correlation_treatment="r",
        correlation_control="r",
    )


@pytest.mark.parametrize("arm", ["t", "c"])
@pytest.mark.parametrize("variance_type", ["LS", "LS2"])
def test_raw_score_standardised_change_matches_escalc_smcr(arm, variance_type):
    # R: escalc("SMCR", m1i = m_post, m2i = m_pre, sd1i = sd_pre, ni = n, ri = r, vtype = vtype)
    es = _arm(arm, "raw_score", variance_type)
    assert_escalc(es, REF[f"SMCR_{arm}_{variance_type}"])
    assert es.attrs["measure"] == "standardised_mean_change_raw_score"


@pytest.mark.parametrize("arm", ["t", "c"])
@pytest.mark.parametrize("variance_type", ["LS", "LS2"])
def test_change_score_standardised_change_matches_escalc_smcc(arm, variance_type):
    # R: escalc("SMCC", m1i = m_post, m2i = m_pre, sd1i = sd_post, sd2i = sd_pre, ni = n, ri = r, vtype = vtype)
    es = _arm(arm, "change_score", variance_type)
    assert_escalc(es, REF[f"SMCC_{arm}_{variance_type}"])
    assert es.attrs["measure"] == "standardised_mean_change_change_score"


@pytest.mark.parametrize("standardiser,code", [("raw_score", "SMCR"), ("change_score", "SMCC")])
@pytest.mark.parametrize("variance_type", ["LS", "LS2"])
def test_difference_of_the_arms_matches_escalc(standardiser, code, variance_type):
    # R: yi = escalc(code, <treatment>)$yi - escalc(code, <control>)$yi; vi = the sum of the two vi
    assert_escalc(_difference(standardiser, variance_type), REF[f"{code}_difference_{variance_type}"])


def test_raw_score_difference_reproduces_morris_table_1():
    # R: round(escalc("SMCR", <treatment>)$yi - escalc("SMCR", <control>)$yi, 2)  (Morris 2008, Table 1, p. 368)
    es = _difference("raw_score", "LS")
    np.testing.assert_allclose(es["estimate"].to_numpy(), REF["published_d_ppc1"], atol=0.005)


def test_the_sd_of_the_change_scores_can_be_given_directly():
    # R: escalc("SMCC", m1i = m_post, m2i = m_pre, sd1i = sd_change, sd2i = 0, ri = 0, ni = n) is SMCC
    sd_change = np.sqrt(DATA.sd_post_t**2 + DATA.sd_pre_t**2 - 2 * DATA.r * DATA.sd_post_t * DATA.sd_pre_t)
    es = effects.standardised_mean_change(
        DATA.assign(sd_change=sd_change),
        mean_before="m_pre_t",
        mean_after="m_post_t",
        sd_change="sd_change",
        n="n_t",
        standardiser="change_score",
    )
    assert_escalc(es, REF["SMCC_t_LS"])
