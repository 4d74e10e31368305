"""Time to reoffending in a randomised trial: survival analysis that agrees with R.

Verbs (each returns one result object; further verbs work on it):

* :func:`kaplan_meier` -- curves per arm, medians, survival at chosen times, a plot with
  numbers at risk (:class:`KaplanMeierResult`);
* :func:`logrank` -- log-rank test, optionally stratified (:class:`LogrankResult`);
* :func:`cox` -- Cox model with strata, cluster-robust variance, Efron or Breslow ties,
  global tests, concordance and the proportional-hazards test (:class:`CoxResult`);
* :func:`rmst` -- restricted mean time to reoffence per arm and the difference
  (:class:`RMSTResult`);
* recurrent reoffending on counting-process data: :func:`andersen_gill` -- the Cox model
  with variance clustered on the person; :func:`pwp` -- Prentice–Williams–Peterson
  total-time and gap-time models (a baseline hazard per event number,
  :func:`event_number`); :func:`frailty_cox` (or ``cox(..., frailty="id")``) -- the
  shared gamma frailty model (:class:`FrailtyCoxResult`);
* :func:`split_followup` -- counting-process rows from a follow-up table and dated
  events, as R's ``tmerge``: events (:func:`event`, :func:`cumulative_event`) and
  time-dependent covariates (:func:`covariate`, :func:`cumulative_covariate`);
* :func:`interaction_test` -- does the effect differ between subgroups (likelihood-ratio
  test of the arm-by-subgroup interaction);
* competing risks (death, deportation, long custody compete with reoffending):
  :func:`cumulative_incidence` -- Aalen–Johansen incidence of each cause per arm
  (:class:`CumulativeIncidenceResult`); :func:`gray_test` -- Gray's test across arms
  (:class:`GrayTestResult`); :func:`fine_gray` -- the subdistribution-hazards model
  (:class:`FineGrayResult`). Event codes: 0 censored, 1, 2, ... the causes.

Every number is checked against R's ``survival`` package to 1e-6 or better by
``tests/validation/`` (reference values in ``tests/reference/survival_reference.json``).
"""

from rjtrial.survival.batched import BatchedCox, BatchedLogrank, cox_batch, logrank_batch  # numba: on first use
from rjtrial.survival.competing_incidence import CumulativeIncidenceResult, cumulative_incidence
from rjtrial.survival.concordance import ConcordanceResult, concordance
from rjtrial.survival.cox import ChiSquareTest, CoxResult, cox
from rjtrial.survival.fine_gray import FineGrayResult, fine_gray
from rjtrial.survival.frailty import FrailtyCoxResult, frailty_cox
from rjtrial.survival.gray_test import GrayTestResult, gray_test
from rjtrial.survival.interaction import InteractionTestResult, interaction_test
from rjtrial.survival.kaplan_meier import KaplanMeierResult, kaplan_meier
from rjtrial.survival.logrank import LogrankResult, logrank
from rjtrial.survival.ph_test import proportional_hazards_test
from rjtrial.survival.recurrent import andersen_gill, event_number, pwp
from rjtrial.survival.rmst import RMSTResult, rmst
from rjtrial.survival.sample_size import (
    minimum_detectable_hazard_ratio,
    schoenfeld_events,
    schoenfeld_power,
    schoenfeld_sample_size,
)
from rjtrial.survival.split import covariate, cumulative_covariate, cumulative_event, event, split_followup

__all__ = [
    "BatchedCox",
    "BatchedLogrank",
    "ChiSquareTest",
    "ConcordanceResult",
    "CoxResult",
    "InteractionTestResult",
    "CumulativeIncidenceResult",
    "FineGrayResult",
    "FrailtyCoxResult",
    "GrayTestResult",
    "KaplanMeierResult",
    "LogrankResult",
    "RMSTResult",
    "andersen_gill",
    "concordance",
    "covariate",
    "cox",
    "cox_batch",
    "interaction_test",
    "cumulative_covariate",
    "cumulative_event",
    "cumulative_incidence",
    "event",
    "event_number",
    "fine_gray",
    "frailty_cox",
    "gray_test",
    "kaplan_meier",
    "logrank",
    "logrank_batch",
    "minimum_detectable_hazard_ratio",
    "proportional_hazards_test",
    "pwp",
    "rmst",
    "schoenfeld_events",
    "schoenfeld_power",
    "schoenfeld_sample_size",
    "split_followup",
]
