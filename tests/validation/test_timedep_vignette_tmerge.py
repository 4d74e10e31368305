"""split_followup against R tmerge on the examples of survival's "Using Time Dependent Covariates" vignette.

Therneau, Crowson & Atkinson, vignette of R survival 3.5: (1) ``cgd0``, infections of
chronic granulomatous disease in wide form (``etime1``..``etime7``) turned into
counting-process rows, with the event number as ``cumtdc(tstart)``; (2) the Stanford heart
transplant data ``jasa``, transplant as a time-dependent covariate, and the vignette's model
6 of Kalbfleisch & Prentice; (3) ``pbc`` with the repeated laboratory values of
``pbcseq`` (1,945 visits; missing values carried forward) as time-dependent covariates.

Observed agreement: every column of every row identical to tmerge's (203, 170 and 1,807
rows), and its tcount tables; Cox fits on our tables against coxph on R's: coefficients
6e-15, standard errors 3e-15 relative.

Reference numbers: ``tests/reference/survival_recurrent.R`` (``survival_recurrent.json``,
``datasets/*_tmerge.csv``); checks in ``_recurrent_reference.py``.
"""

from __future__ import annotations

import pytest
from _recurrent_reference import check_counting, check_split_column, check_split_counts, counting_params, r_split


def _columns(name):
    return [pytest.param(name, column, id=f"{name}-{column}") for column in r_split(name).columns]


@pytest.mark.parametrize("name, column", _columns("cgd0"))
def test_cgd0(name, column):
    # R: newcgd <- tmerge(cgd0[, 1:13], cgd0, id = id, tstop = futime); tmerge(newcgd, cgd0, id = id, infect = event(etime1), ..., infect = event(etime7)); tmerge(newcgd, newcgd, id, enum = cumtdc(tstart))
    check_split_column(name, column)


@pytest.mark.parametrize("name, column", _columns("jasa"))
def test_jasa(name, column):
    # R: tmerge(jasa, tdata, id = subject, death = event(futime, fustat), trt = tdc(txtime), options = list(idname = "subject"))
    check_split_column(name, column)


@pytest.mark.parametrize("name, column", _columns("pbc"))
def test_pbc(name, column):
    # R: pbc2 <- tmerge(temp, temp, id = id, death = event(time, status)); tmerge(pbc2, pbcseq, id = id, ascites = tdc(day, ascites), bili = tdc(day, bili), ...)
    check_split_column(name, column)


@pytest.mark.parametrize("name, key", [("cgd0", "tcount_enum"), ("jasa", "tcount"), ("pbc", "tcount")])
def test_tcount(name, key):
    # R: attr(newcgd, "tcount"); attr(sdata, "tcount"); attr(pbc2, "tcount")
    check_split_counts(name, key)


@pytest.mark.parametrize("name, quantity", counting_params("cgd0") + counting_params("jasa") + counting_params("pbc"))
def test_models_on_our_tables(name, quantity):
    # R: coxph(Surv(tstart, tstop, infect) ~ treat + inherit + steroids, data = newcgd, cluster = id)
    # R: coxph(Surv(tstart, tstop, death) ~ age*trt + surgery + year, data = sdata, ties = "breslow")
    # R: coxph(Surv(tstart, tstop, death == 2) ~ log(bili) + log(protime), pbc2)
    check_counting(name, quantity)
