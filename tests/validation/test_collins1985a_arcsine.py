"""dat.collins1985a (Collins & Langman 1985): H2 antagonists in upper gastrointestinal bleeding,
27 trials with zero cells and outcomes some trials did not report: the arcsine risk difference
against R metafor's escalc.

Three outcomes (rebleeding, operation, death) with escalc's defaults (no correction for this
measure), with a correction of 1/2 for tables with a zero cell, and with double-zero tables
dropped. Trials that did not report an outcome have missing counts: escalc gives NA, and so do
we (``na_action="omit"``, counted in ``attrs["n_omitted"]``). Expected values are R 4.2.2 /
metafor 3.8-1 from tests/reference/metafor_escalc.R.

Observed agreement (maximum relative difference): 1e-14 (an estimate near 0; absolute
differences at most 5e-16); missing rows missing in both.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest
from _escalc_reference import assert_escalc, load_escalc, read_csv

from rjtrial import effects
from rjtrial.errors import RjtrialWarning

REF = load_escalc()["collins1985a"]
DATA = read_csv("metadat_collins1985a")
OUTCOMES = {"bleeding": ("b.xti", "b.xci"), "operation": ("o.xti", "o.xci"), "death": ("d.xti", "d.xci")}


def _arcsine(outcome: str, **options):
    treated, control = OUTCOMES[outcome]
    missing = DATA[[treated, control]].isna().to_numpy().any()
    with pytest.warns(RjtrialWarning, match="omitted for a missing value") if missing else nullcontext():
        return effects.arcsine_risk_difference(
            DATA,
            events_treatment=treated,
            n_treatment="nti",
            events_control=control,
            n_control="nci",
            study="trial",
            **options,
        )


@pytest.mark.parametrize("outcome", list(OUTCOMES))
def test_arcsine_risk_difference_matches_escalc_as(outcome):
    # R: escalc("AS", ai = <treated>, n1i = nti, ci = <control>, n2i = nci, data = dat.collins1985a)
    es = _arcsine(outcome)
    assert_escalc(es, REF[f"AS_{outcome}"])
    assert es.attrs["n_omitted"] == int(DATA[list(OUTCOMES[outcome])].isna().any(axis=1).sum())


def test_a_correction_given_applies_to_tables_with_a_zero_cell():
    # R: escalc("AS", ai = d.xti, n1i = nti, ci = d.xci, n2i = nci, data = dat.collins1985a, add = 1/2)
    assert_escalc(_arcsine("death", add=0.5), REF["AS_death_half"])


def test_double_zero_tables_can_be_dropped():
    # R: escalc("AS", ai = d.xti, n1i = nti, ci = d.xci, n2i = nci, data = dat.collins1985a, drop00 = TRUE)
    es = _arcsine("death", drop_double_zero=True)
    assert_escalc(es, REF["AS_death_drop00"])
    assert np.isnan(es["estimate"]).sum() > 0
