"""Effect sizes and their sampling variances from summary data (metafor's ``escalc`` stage).

Every function returns a DataFrame with one row per study, columns ``estimate`` and
``variance`` (plus the inputs that Mantel-Haenszel and Peto pooling need), the measure in
``attrs["measure"]``; :func:`rjtrial.meta.pool` takes it. Inputs are arrays, Series,
scalars, or column names of an optional ``data`` frame given first (arrays and Series are
taken in order, by position); bad input raises :class:`rjtrial.errors.DataError` naming the
study row and column. The result is indexed by ``study`` labels if given, else by the index
of ``data`` (or of the first Series).

=============================================  ============================================  ==========
function                                       measure (inputs)                              R escalc
=============================================  ============================================  ==========
:func:`log_odds_ratio`                         ``log_odds_ratio`` (2x2 counts)               OR
:func:`log_risk_ratio`                         ``log_risk_ratio`` (2x2 counts)               RR
:func:`risk_difference`                        ``risk_difference`` (2x2 counts)              RD
:func:`peto_log_odds_ratio`                    ``peto_log_odds_ratio`` (2x2 counts)          PETO
:func:`arcsine_risk_difference`                ``arcsine_risk_difference`` (2x2 counts)      AS
:func:`mean_difference`                        ``mean_difference`` (means, SDs, n)           MD
:func:`hedges_g`, :func:`cohens_d`             ``hedges_g``, ``cohens_d`` (means, SDs, n)    SMD
:func:`smd_from_t`, :func:`smd_from_p`         ``hedges_g`` / ``cohens_d`` (t or p, n)       SMD (ti)
:func:`log_ratio_of_means`                     ``log_ratio_of_means`` (means, SDs, n)        ROM
:func:`standardised_mean_change`               ``standardised_mean_change_*`` (before,       SMCC, SMCR
                                               after, SD, r, n)
:func:`standardised_mean_change_difference`    treatment change minus control change         SMCR - SMCR
:func:`correlation`, :func:`fisher_z`          ``correlation``, ``fisher_z`` (r, n)          COR, ZCOR
:func:`proportion`, :func:`log_proportion`,    ``proportion``, ``log_proportion``,           PR, PLN,
:func:`logit_proportion`                       ``logit_proportion`` (events, n)              PLO
:func:`arcsine_proportion`,                    ``arcsine_proportion``,                       PAS, PFT
:func:`freeman_tukey_proportion`               ``freeman_tukey_proportion`` (events, n)
:func:`incidence_rate`,                        ``incidence_rate``, ``log_incidence_rate``    IR, IRLN
:func:`log_incidence_rate`                     (events, person-time)
:func:`log_incidence_rate_ratio`,              ``log_incidence_rate_ratio``,                 IRR, IRD
:func:`incidence_rate_difference`              ``incidence_rate_difference`` (two arms)
:func:`log_hazard_ratio`                       ``log_hazard_ratio`` (HR and its CI)
:func:`log_hazard_ratio_logrank`               ``log_hazard_ratio`` (log-rank O - E, V)
=============================================  ============================================  ==========

:func:`effect_size` computes any of them by name (``effect_size(data, measure="proportion",
events=..., n=...)``, as ``escalc(measure=)``; :data:`MEASURES` lists them). Conversions between
d, log odds ratios, correlations and Fisher's z are in :mod:`rjtrial.effects.conversions`.
Missing inputs follow ``na_action`` (``"omit"``: the study keeps a row with a missing estimate,
counted in ``attrs["n_omitted"]`` and named in a warning; ``"raise"``: an error naming the row).

Every formula agrees with R ``metafor::escalc`` to 1e-12 (tests/validation/), zero-count
corrections (``add``, ``to``) and variance types (``variance_type``, escalc's ``vtype``)
included; where an uncorrected boundary case (a proportion of 0 or 1, a correlation of 1) gives
``escalc`` a zero or infinite variance, the study is here an error naming it.
"""

from rjtrial.effects.binary import (
    CORRECTION_TARGETS,
    arcsine_risk_difference,
    log_odds_ratio,
    log_risk_ratio,
    peto_log_odds_ratio,
    risk_difference,
)
from rjtrial.effects.change import STANDARDISERS, standardised_mean_change, standardised_mean_change_difference
from rjtrial.effects.continuous import cohens_d, correction_factor, hedges_g, smd_from_p, smd_from_t
from rjtrial.effects.conversions import (
    correlation_to_d,
    correlation_to_fisher_z,
    correlation_to_log_odds_ratio,
    d_to_correlation,
    d_to_log_odds_ratio,
    fisher_z_to_correlation,
    log_odds_ratio_to_correlation,
    log_odds_ratio_to_d,
)
from rjtrial.effects.correlations import correlation, fisher_z
from rjtrial.effects.means import log_ratio_of_means, mean_difference
from rjtrial.effects.measures import MEASURES, effect_size
from rjtrial.effects.proportions import (
    arcsine_proportion,
    freeman_tukey_proportion,
    log_proportion,
    logit_proportion,
    proportion,
)
from rjtrial.effects.rates import (
    incidence_rate,
    incidence_rate_difference,
    log_incidence_rate,
    log_incidence_rate_ratio,
)
from rjtrial.effects.time_to_event import log_hazard_ratio, log_hazard_ratio_logrank

__all__ = [
    "CORRECTION_TARGETS",
    "MEASURES",
    "STANDARDISERS",
    "arcsine_proportion",
    "arcsine_risk_difference",
    "cohens_d",
    "correction_factor",
    "correlation",
    "correlation_to_d",
    "correlation_to_fisher_z",
    "correlation_to_log_odds_ratio",
    "d_to_correlation",
    "d_to_log_odds_ratio",
    "effect_size",
    "fisher_z",
    "fisher_z_to_correlation",
    "freeman_tukey_proportion",
    "hedges_g",
    "incidence_rate",
    "incidence_rate_difference",
    "log_hazard_ratio",
    "log_hazard_ratio_logrank",
    "log_incidence_rate",
    "log_incidence_rate_ratio",
    "log_odds_ratio",
    "log_odds_ratio_to_correlation",
    "log_odds_ratio_to_d",
    "log_proportion",
    "log_ratio_of_means",
    "log_risk_ratio",
    "logit_proportion",
    "mean_difference",
    "peto_log_odds_ratio",
    "proportion",
    "risk_difference",
    "smd_from_p",
    "smd_from_t",
    "standardised_mean_change",
    "standardised_mean_change_difference",
]
