"""dat.normand1999 (Normand 1999): conversions of its standardised mean differences to
point-biserial correlations, log odds ratios and back, against R metafor's escalc.

Cohen's d of the 9 studies converted with the group sizes equals escalc's point-biserial
correlation ``"RPB"`` (estimate and large-sample variance); with equal groups assumed, the
Borenstein et al. (2009, eq. 7.5-7.6) formulas written out in R; the conversions through log
odds ratios and back, and r to d, invert exactly. Expected values are R 4.2.2 / metafor 3.8-1
from tests/reference/metafor_escalc.R.

Observed agreement (maximum relative difference): 3e-15; round trips to 1e-14.
"""

from __future__ import annotations

import numpy as np
import pytest
from _escalc_reference import assert_escalc, load_escalc, read_csv
from _metafor_reference import assert_close

from rjtrial import effects

REF = load_escalc()["normand1999"]
DATA = read_csv("metadat_normand1999")
COLUMNS = dict(
    mean_treatment="m1i", sd_treatment="sd1i", n_treatment="n1i", mean_control="m2i", sd_control="sd2i", n_control="n2i"
)


def test_d_to_correlation_matches_escalc_point_biserial():
    # R: escalc("RPB", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = dat.normand1999)
    r = effects.d_to_correlation(effects.cohens_d(DATA, **COLUMNS))
    assert_escalc(r, REF["RPB"])
    assert r.attrs["measure"] == "correlation" and r.attrs["converted_from"] == "cohens_d"


def test_hedges_g_is_turned_back_into_d_first():
    # R: escalc("RPB", ...)$yi  (the correlation of the sample does not depend on the small-sample correction)
    r = effects.d_to_correlation(effects.hedges_g(DATA, **COLUMNS))
    assert_close(r["estimate"].to_numpy(), REF["RPB"]["yi"], "escalc")


def test_d_to_correlation_with_equal_groups_is_borensteins_formula():
    # R: d / sqrt(d^2 + 4), 16 v_d / (d^2 + 4)^3  (Borenstein et al. 2009, eq. 7.5-7.6)
    d = effects.cohens_d(DATA, **COLUMNS)[["estimate", "variance"]]
    d.attrs["measure"] = "cohens_d"
    assert_escalc(effects.d_to_correlation(d), REF["d_to_r_equal_groups"])


def test_log_odds_ratio_to_correlation_goes_through_d():
    # R: escalc("RPB", ...)$yi  (d -> log OR (D2ORL) -> d (OR2DL) -> r)
    log_or = effects.d_to_log_odds_ratio(effects.cohens_d(DATA, **COLUMNS))
    r = effects.log_odds_ratio_to_correlation(log_or)
    assert_close(r["estimate"].to_numpy(), REF["d_to_log_or_to_r"]["yi"], "escalc")


@pytest.mark.parametrize("sizes", [True, False], ids=["group-sizes", "equal-groups"])
def test_correlation_to_d_inverts_d_to_correlation(sizes):
    # R: escalc("RPB", ...) back to d: r sqrt(h) / sqrt(1 - r^2)
    d = effects.cohens_d(DATA, **COLUMNS)
    if not sizes:
        d = d[["estimate", "variance"]]
        d.attrs["measure"] = "cohens_d"
    back = effects.correlation_to_d(effects.d_to_correlation(d))
    np.testing.assert_allclose(back["estimate"], d["estimate"], rtol=1e-14)
    np.testing.assert_allclose(back["variance"], d["variance"], rtol=1e-14)
    lor = effects.correlation_to_log_odds_ratio(effects.d_to_correlation(d))
    np.testing.assert_allclose(lor["estimate"], effects.d_to_log_odds_ratio(d)["estimate"], rtol=1e-14)
