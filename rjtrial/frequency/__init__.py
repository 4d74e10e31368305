"""How often people reoffend: rate ratios, risk measures, before–after change, observed/expected.

Verbs (each returns one result object):

* :func:`rate_ratio` -- reoffences per unit of street time by arm, with a negative binomial
  (default) or Poisson model and exposure as offset (:class:`RateRatioResult`);
* :func:`risk_ratio`, :func:`risk_difference`, :func:`odds_ratio` -- any reoffence (a 0/1
  column) by arm, Wald intervals (:class:`TwoByTwoResult`); :func:`compare_proportions`
  does the same from counts;
* :func:`before_after_smd` -- the standardised difference between arms in the change of
  offending from before to after assignment (:class:`BeforeAfterSMDResult`);
* :func:`observed_expected` -- observed reoffending against a predicted-risk column (an
  OGRS-like score) by arm, with exact Poisson intervals (:class:`ObservedExpectedResult`).

Every verb takes the data first and the rest by keyword; the arms come from one ``group``
column whose control level is the reference (``control=``, else the first level: the
first category of a categorical column, else the smallest value). Bad input raises
:class:`rjtrial.errors.DataError` (a ``ValueError``) naming the column and the row.
Agreement with R is checked to 1e-6 by ``tests/validation/test_frequency_compliance_r.py``.
"""

from __future__ import annotations

from rjtrial.frequency.change import BeforeAfterSMDResult, before_after_smd
from rjtrial.frequency.expected import ObservedExpectedResult, observed_expected
from rjtrial.frequency.proportions import (
    MEASURES,
    TwoByTwoResult,
    compare_proportions,
    odds_ratio,
    risk_difference,
    risk_ratio,
)
from rjtrial.frequency.rates import MODELS, RateRatioResult, rate_ratio

__all__ = [
    "MEASURES",
    "MODELS",
    "BeforeAfterSMDResult",
    "ObservedExpectedResult",
    "RateRatioResult",
    "TwoByTwoResult",
    "before_after_smd",
    "compare_proportions",
    "observed_expected",
    "odds_ratio",
    "rate_ratio",
    "risk_difference",
    "risk_ratio",
]
