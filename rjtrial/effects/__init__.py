"""Effect sizes and their sampling variances from summary data (metafor's ``escalc`` stage).

Every function returns a DataFrame with one row per study, columns ``estimate`` and
``variance`` (plus the inputs that Mantel-Haenszel and Peto pooling need), the measure in
``attrs["measure"]``; :func:`rjtrial.meta.pool` takes it. Inputs are arrays, Series,
scalars, or column names of an optional ``data`` frame given first (arrays and Series are
taken in order, by position); bad input raises :class:`rjtrial.errors.DataError` naming the
study row and column. The result is indexed by ``study`` labels if given, else by the index
of ``data`` (or of the first Series).

===========================================  ===========================================
function                                     measure
===========================================  ===========================================
:func:`log_odds_ratio`                       ``log_odds_ratio`` (2x2 counts)
:func:`log_risk_ratio`                       ``log_risk_ratio`` (2x2 counts)
:func:`risk_difference`                      ``risk_difference`` (2x2 counts)
:func:`peto_log_odds_ratio`                  ``peto_log_odds_ratio`` (2x2 counts)
:func:`hedges_g`, :func:`cohens_d`           ``hedges_g``, ``cohens_d`` (means, SDs, n)
:func:`smd_from_t`, :func:`smd_from_p`       ``hedges_g`` / ``cohens_d`` (t or p, n)
:func:`log_hazard_ratio`                     ``log_hazard_ratio`` (HR and its CI)
:func:`log_hazard_ratio_logrank`             ``log_hazard_ratio`` (log-rank O - E, V)
:func:`log_incidence_rate_ratio`             ``log_incidence_rate_ratio`` (events, person-time)
:func:`d_to_log_odds_ratio`,                 conversions between d and log OR
:func:`log_odds_ratio_to_d`
===========================================  ===========================================

Every formula agrees with R ``metafor::escalc`` to 1e-12 (tests/validation/).
"""

from rjtrial.effects.binary import (
    CORRECTION_TARGETS,
    log_odds_ratio,
    log_risk_ratio,
    peto_log_odds_ratio,
    risk_difference,
)
from rjtrial.effects.continuous import cohens_d, correction_factor, hedges_g, smd_from_p, smd_from_t
from rjtrial.effects.conversions import d_to_log_odds_ratio, log_odds_ratio_to_d
from rjtrial.effects.rates import log_incidence_rate_ratio
from rjtrial.effects.time_to_event import log_hazard_ratio, log_hazard_ratio_logrank

__all__ = [
    "CORRECTION_TARGETS",
    "cohens_d",
    "correction_factor",
    "d_to_log_odds_ratio",
    "hedges_g",
    "log_hazard_ratio",
    "log_hazard_ratio_logrank",
    "log_incidence_rate_ratio",
    "log_odds_ratio",
    "log_odds_ratio_to_d",
    "log_risk_ratio",
    "peto_log_odds_ratio",
    "risk_difference",
    "smd_from_p",
    "smd_from_t",
]
