"""dat.curtis1998 (Curtis & Wang 1998): woody plant mass under elevated and ambient CO2, 102
experiments, ratios of means and mean differences against R metafor's escalc.

The log ratio of means with each of escalc's variance types (large-sample, homoscedastic,
and the two averaged coefficient-of-variation forms), and the raw mean difference with both
variance types. Expected values are R 4.2.2 / metafor 3.8-1 from
tests/reference/metafor_escalc.R.

Observed agreement (maximum relative difference): 5e-15 over every variance type of both measures.
"""

from __future__ import annotations

import pytest
from _escalc_reference import assert_escalc, load_escalc, read_csv

from rjtrial import effects

REF = load_escalc()["curtis1998"]
DATA = read_csv("metadat_curtis1998")
COLUMNS = dict(
    mean_treatment="m1i", sd_treatment="sd1i", n_treatment="n1i", mean_control="m2i", sd_control="sd2i", n_control="n2i"
)


@pytest.mark.parametrize("variance_type", ["LS", "HO", "AV", "AVHO"])
def test_log_ratio_of_means_matches_escalc_rom(variance_type):
    # R: escalc("ROM", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = dat.curtis1998, vtype = vtype)
    es = effects.log_ratio_of_means(DATA, **COLUMNS, variance_type=variance_type)
    assert_escalc(es, REF[f"ROM_{variance_type}"])
    assert es.attrs["measure"] == "log_ratio_of_means" and es.attrs["variance_type"] == variance_type


@pytest.mark.parametrize("variance_type", ["LS", "HO"])
def test_mean_difference_matches_escalc_md(variance_type):
    # R: escalc("MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = dat.curtis1998, vtype = vtype)
    es = effects.mean_difference(DATA, **COLUMNS, variance_type=variance_type)
    assert_escalc(es, REF[f"MD_{variance_type}"])


def test_the_entry_point_gives_the_same_frame():
    # R: escalc(measure = "ROM", ...) is effect_size(measure = "log_ratio_of_means", ...)
    by_name = effects.effect_size(DATA, measure="log_ratio_of_means", **COLUMNS)
    assert_escalc(by_name, REF["ROM_LS"])
