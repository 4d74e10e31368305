"""dat.hart1999 (Hart et al. 1999): warfarin in atrial fibrillation, strokes per patient-year in 6
trials: each arm's incidence rate and log rate, and the rate difference, against R metafor's escalc.

Expected values are R 4.2.2 / metafor 3.8-1 from tests/reference/metafor_escalc.R (the log
rate ratio is in test_metafor_hart1999.py).

Observed agreement (maximum relative difference): 4e-15.
"""

from __future__ import annotations

import pytest
from _escalc_reference import assert_escalc, load_escalc, read_csv

from rjtrial import effects

REF = load_escalc()["hart1999"]
DATA = read_csv("metadat_hart1999")
ARMS = {"treatment": ("x1i", "t1i"), "control": ("x2i", "t2i")}


@pytest.mark.parametrize("arm", list(ARMS))
def test_incidence_rates_match_escalc_ir(arm):
    # R: escalc("IR", xi = x1i (or x2i), ti = t1i (or t2i), data = dat.hart1999)
    events, time = ARMS[arm]
    assert_escalc(effects.incidence_rate(DATA, events=events, person_time=time, study="study"), REF[f"IR_{arm}"])


@pytest.mark.parametrize("arm", list(ARMS))
def test_log_incidence_rates_match_escalc_irln(arm):
    # R: escalc("IRLN", xi = x1i (or x2i), ti = t1i (or t2i), data = dat.hart1999)
    events, time = ARMS[arm]
    assert_escalc(effects.log_incidence_rate(DATA, events=events, person_time=time), REF[f"IRLN_{arm}"])


def test_rate_differences_match_escalc_ird():
    # R: escalc("IRD", x1i = x1i, t1i = t1i, x2i = x2i, t2i = t2i, data = dat.hart1999)
    es = effects.incidence_rate_difference(
        DATA, events_treatment="x1i", person_time_treatment="t1i", events_control="x2i", person_time_control="t2i"
    )
    assert_escalc(es, REF["IRD"])
