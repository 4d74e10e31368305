"""dat.normand1999 (Normand 1999): specialist vs routine stroke care, length of stay in 9
studies: mean differences, every variance type of the standardised mean difference and the
ratio of means, against R metafor's escalc.

Expected values are R 4.2.2 / metafor 3.8-1 from tests/reference/metafor_escalc.R (Hedges' g
with the default variance type is in test_metafor_normand1999.py).

Observed agreement (maximum relative difference): 4e-15 for every measure and variance type.
"""

from __future__ import annotations

import pytest
from _escalc_reference import assert_escalc, load_escalc, read_csv

from rjtrial import effects

REF = load_escalc()["normand1999"]
DATA = read_csv("metadat_normand1999")
COLUMNS = dict(
    mean_treatment="m1i",
    sd_treatment="sd1i",
    n_treatment="n1i",
    mean_control="m2i",
    sd_control="sd2i",
    n_control="n2i",
    study="source",
)


@pytest.mark.parametrize("variance_type", ["LS", "HO"])
def test_mean_difference_matches_escalc_md(variance_type):
    # R: escalc("MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = dat.normand1999, vtype = vtype)
    assert_escalc(effects.mean_difference(DATA, **COLUMNS, variance_type=variance_type), REF[f"MD_{variance_type}"])


@pytest.mark.parametrize("variance_type", ["LS", "LS2", "UB", "AV"])
def test_hedges_g_variance_types_match_escalc_smd(variance_type):
    # R: escalc("SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = dat.normand1999, vtype = vtype)
    es = effects.hedges_g(DATA, **COLUMNS, variance_type=variance_type)
    assert_escalc(es, REF[f"SMD_{variance_type}"])
    assert es.attrs["variance_type"] == variance_type


def test_g_from_t_with_the_unbiased_variance_matches_escalc():
    # R: escalc("SMD", ti = d / sqrt(1/n1i + 1/n2i), n1i = n1i, n2i = n2i, data = dat.normand1999, vtype = "UB")
    d = effects.cohens_d(DATA, **COLUMNS)
    t = d["estimate"].to_numpy() / (1 / DATA.n1i.to_numpy() + 1 / DATA.n2i.to_numpy()) ** 0.5
    es = effects.smd_from_t(t_statistic=t, n_treatment=DATA.n1i, n_control=DATA.n2i, variance_type="UB")
    assert_escalc(es, REF["SMD_ti_UB"])


def test_log_ratio_of_means_matches_escalc_rom():
    # R: escalc("ROM", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = dat.normand1999)
    assert_escalc(effects.log_ratio_of_means(DATA, **COLUMNS), REF["ROM_LS"])
