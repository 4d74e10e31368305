"""dat.pritz1997 (Pritz 1997): favourable outcome after surgery in 14 case series, single
proportions against R metafor's escalc.

The raw proportion (each variance type), log and logit proportions (each variance type), the
arcsine and Freeman-Tukey transformations, with escalc's default zero-count handling (two
series have only events: 10 of 10 and 12 of 12) and with every series corrected. Expected
values are R 4.2.2 / metafor 3.8-1 from tests/reference/metafor_escalc.R.

Observed agreement (maximum relative difference): 4e-15 for every measure and variance type.
"""

from __future__ import annotations

import pytest
from _escalc_reference import assert_escalc, load_escalc, read_csv

from rjtrial import effects

REF = load_escalc()["pritz1997"]
DATA = read_csv("metadat_pritz1997")

CASES = [
    # (reference key, function, options)
    ("PR_LS", effects.proportion, {}),
    ("PR_UB", effects.proportion, {"variance_type": "UB"}),
    ("PR_AV", effects.proportion, {"variance_type": "AV"}),
    ("PLN_LS", effects.log_proportion, {}),
    ("PLN_AV", effects.log_proportion, {"variance_type": "AV"}),
    ("PLO_LS", effects.logit_proportion, {}),
    ("PLO_AV", effects.logit_proportion, {"variance_type": "AV"}),
    ("PAS", effects.arcsine_proportion, {}),
    ("PFT", effects.freeman_tukey_proportion, {}),
    ("PR_all", effects.proportion, {"to": "all"}),
    ("PLO_all_quarter", effects.logit_proportion, {"to": "all", "add": 0.25}),
    ("PFT_all_half", effects.freeman_tukey_proportion, {"to": "all", "add": 0.5}),
]


@pytest.mark.parametrize("key,function,options", CASES, ids=[case[0] for case in CASES])
def test_proportions_match_escalc(key, function, options):
    # R: escalc("PR" | "PLN" | "PLO" | "PAS" | "PFT", xi = xi, ni = ni, data = dat.pritz1997, vtype =, to =, add =)
    es = function(DATA, events="xi", n="ni", study="authors", **options)
    assert_escalc(es, REF[key])
    assert list(es.index) == list(DATA.authors)


def test_only_events_are_corrected_by_default():
    # R: escalc("PR", xi = xi, ni = ni, data = dat.pritz1997)$yi[5]  (10 of 10: (10 + 1/2) / 11)
    es = effects.proportion(DATA, events="xi", n="ni")
    assert es.loc[4, "estimate"] == pytest.approx(10.5 / 11, rel=1e-15)
    assert es.attrs["zero_cell_correction"] == {"add": 0.5, "to": "only_zero"}
