"""dat.molloy2014 (Molloy et al. 2014): conscientiousness and medication adherence, 16
correlations, against R metafor's escalc.

Raw correlations with both variance types, Fisher's z, and the conversions between the two
(which give escalc's ZCOR from its COR and back). Expected values are R 4.2.2 / metafor 3.8-1
from tests/reference/metafor_escalc.R.

Observed agreement (maximum relative difference): 6e-15, conversions included.
"""

from __future__ import annotations

import pytest
from _escalc_reference import assert_escalc, load_escalc, read_csv
from _metafor_reference import assert_close

from rjtrial import effects

REF = load_escalc()["molloy2014"]
DATA = read_csv("metadat_molloy2014")


@pytest.mark.parametrize("variance_type", ["LS", "AV"])
def test_correlations_match_escalc_cor(variance_type):
    # R: escalc("COR", ri = ri, ni = ni, data = dat.molloy2014, vtype = vtype)
    es = effects.correlation(DATA, correlation="ri", n="ni", study="authors", variance_type=variance_type)
    assert_escalc(es, REF[f"COR_{variance_type}"])


def test_fisher_z_matches_escalc_zcor():
    # R: escalc("ZCOR", ri = ri, ni = ni, data = dat.molloy2014)
    assert_escalc(effects.fisher_z(DATA, correlation="ri", n="ni"), REF["ZCOR"])


def test_correlation_to_fisher_z_is_escalc_zcor():
    # R: escalc("ZCOR", ri = ri, ni = ni, data = dat.molloy2014); transf.rtoz(ri)
    z = effects.correlation_to_fisher_z(effects.correlation(DATA, correlation="ri", n="ni"))
    assert_escalc(z, REF["ZCOR"])
    assert_close(z["estimate"].to_numpy(), REF["rtoz"], "escalc")


def test_fisher_z_to_correlation_is_escalc_cor():
    # R: escalc("COR", ri = ri, ni = ni, data = dat.molloy2014); transf.ztor(escalc("ZCOR", ...)$yi)
    r = effects.fisher_z_to_correlation(effects.fisher_z(DATA, correlation="ri", n="ni"))
    assert_escalc(r, REF["COR_LS"])
    assert_close(r["estimate"].to_numpy(), REF["ztor"], "escalc")
