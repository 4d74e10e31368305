"""Boundary cases of every count-based measure and of correlations, against R metafor's escalc.

Made-up tables (tests/reference/escalc_boundary_proportions.csv and its siblings, written by the
R script) with no events, only events, double-zero 2x2 tables, samples of one, zero event counts in rate data, and
correlations of -1, 1 and 0.999 on 3 to 100 participants, under each zero-count rule ``to``
(escalc's only0, all, if0all, none) and increments ``add`` of 1/2, 1/4 and 0, and escalc's own
defaults. Expected values are R 4.2.2 / metafor 3.8-1 from tests/reference/metafor_escalc.R.

Where escalc gives a finite estimate and a positive variance, ours agree. Where escalc gives NA
(a log or logit of 0, an infinite Fisher's z, a correlation on 3 participants) or a variance of 0
(an uncorrected proportion of 0 or 1, a correlation of 1, a double-zero table's risk
difference), the study cannot be pooled: we raise a DataError naming it (the documented
difference).

Observed agreement (maximum relative difference): 4e-15 over the 167 cases.
"""

from __future__ import annotations

import numpy as np
import pytest
from _escalc_reference import assert_escalc, defined_rows, load_escalc, read_csv

from rjtrial import effects
from rjtrial.errors import DataError

REF = load_escalc()["boundary"]
TO = {"only0": "only_zero", "all": "all", "if0all": "if_any_zero", "none": "none"}

PROPORTIONS = {
    "PR": effects.proportion,
    "PLN": effects.log_proportion,
    "PLO": effects.logit_proportion,
    "PAS": effects.arcsine_proportion,
    "PFT": effects.freeman_tukey_proportion,
}
TABLES = {
    "AS": effects.arcsine_risk_difference,
    "RD": effects.risk_difference,
    "OR": effects.log_odds_ratio,
    "RR": effects.log_risk_ratio,
}
TWO_ARM_RATES = {"IRD": effects.incidence_rate_difference, "IRR": effects.log_incidence_rate_ratio}
ONE_ARM_RATES = {"IR": effects.incidence_rate, "IRLN": effects.log_incidence_rate}


def _call(code: str, data, **options):
    if code in PROPORTIONS:
        return PROPORTIONS[code](data, events="xi", n="ni", **options)
    if code in TABLES:
        return TABLES[code](
            data, events_treatment="ai", n_treatment="n1i", events_control="ci", n_control="n2i", **options
        )
    if code in TWO_ARM_RATES:
        return TWO_ARM_RATES[code](
            data,
            events_treatment="x1i",
            person_time_treatment="t1i",
            events_control="x2i",
            person_time_control="t2i",
            **options,
        )
    if code in ONE_ARM_RATES:
        return ONE_ARM_RATES[code](data, events="x1i", person_time="t1i", **options)
    if code == "COR":
        return effects.correlation(data, correlation="ri", n="ni", **options)
    return effects.fisher_z(data, correlation="ri", n="ni", **options)


def _table(code: str):
    if code in PROPORTIONS:
        return read_csv("escalc_boundary_proportions")
    if code in TABLES:
        return read_csv("escalc_boundary_two_by_two")
    if code in TWO_ARM_RATES or code in ONE_ARM_RATES:
        return read_csv("escalc_boundary_rates")
    return read_csv("escalc_boundary_correlations")


def _case(key: str):
    """(escalc code, our options) of a reference key: ``PR_only0_0.25``, ``AS_default``, ``IRD_drop00``..."""
    code, _, rest = key.partition("_")
    if rest == "default" or rest == "LS" or not rest:
        return code, {}
    if rest == "drop00":
        return code, {"drop_double_zero": True}
    to, add = rest.rsplit("_", 1)
    return code, {"to": TO[to], "add": float(add)}


CASES = sorted(REF)


@pytest.mark.parametrize("key", CASES)
def test_defined_studies_match_escalc_and_undefined_ones_are_errors(key):
    # R: escalc(code, <boundary table>, to = to, add = add)  (see tests/reference/metafor_escalc.R)
    code, options = _case(key)
    data = _table(code)
    expected = REF[key]
    rows = defined_rows(expected)
    yi = np.array([np.nan if v is None else v for v in expected["yi"]], dtype=float)
    dropped = np.isnan(yi) & bool(options.get("drop_double_zero"))
    usable = np.union1d(rows, np.flatnonzero(dropped))
    if options.get("to") == "if_any_zero" and usable.size < len(data):
        assert options["add"] == 0  # a subset decides "any zero" like the whole table only when nothing is added
    assert_escalc(_call(code, data.iloc[usable], **options), expected, rows=usable)
    for i in sorted(set(range(len(data))) - set(usable)):
        with pytest.raises(DataError) as info:
            _call(code, data.iloc[[i]], **options)
        assert info.value.row == data.index[i]


def test_every_measure_and_rule_is_covered():
    codes = {_case(key)[0] for key in CASES}
    assert codes == set(PROPORTIONS) | set(TABLES) | set(TWO_ARM_RATES) | set(ONE_ARM_RATES) | {"COR", "ZCOR"}
    assert len(CASES) >= 156
