"""split_followup against R tmerge on a generated trial with the records real data have.

A synthetic trial of 300 participants (tests/reference/make_recurrent_split_trial.py):
offences before random assignment, on its day, after the end of follow-up, two on one day,
on the day a custody spell starts, of an id not in the trial, with a missing seriousness;
custody spells in long form starting before assignment; a programme start; second
conferences. Seven chained calls add an event, a cumulative event, an event with a value,
custody and programme as time-dependent covariates, and two cumulative covariates.

Observed agreement: all 1,713 rows and 16 columns identical to tmerge's, and its tcount
table; Andersen–Gill and PWP gap-time fits on our table against coxph on R's: coefficients
1e-15, standard errors 1e-15 relative.

Reference numbers: ``tests/reference/survival_recurrent.R`` (``survival_recurrent.json``,
``datasets/trial_tmerge.csv``); checks in ``_recurrent_reference.py``.
"""

from __future__ import annotations

import pytest
from _recurrent_reference import check_counting, check_split_column, check_split_counts, counting_params, r_split


@pytest.mark.parametrize("column", list(r_split("trial").columns))
def test_table(column):
    # R: tm <- tmerge(fu, fu, id = id, tstop = followup_days); tmerge(tm, off, id = id, reoffence = event(day), offences = cumevent(day)); ... (split$trial$r_call)
    check_split_column("trial", column)


def test_tcount():
    # R: attr(tm, "tcount")
    check_split_counts("trial")


@pytest.mark.parametrize("name, quantity", counting_params("trial_tmerge"))
def test_models_on_our_table(name, quantity):
    # R: coxph(Surv(tstart, tstop, reoffence) ~ arm + custody + programme + prior + cluster(id), tm)
    # R: coxph(Surv(tstop - tstart, reoffence) ~ arm + custody + prior + strata(enum) + cluster(id), tm)
    check_counting(name, quantity)
