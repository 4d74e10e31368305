"""Recurrent infections in chronic granulomatous disease (cgd): AG, PWP and gamma frailty, held to R.

Interferon gamma and serious infections: Fleming, T. R., & Harrington, D. P. (1991).
Counting Processes and Survival Analysis, Wiley, Appendix D.2; International CGD
Cooperative Study Group (1991), NEJM 324:509-516, doi:10.1056/NEJM199102213240801. R:
survival::cgd (counting-process form, 203 rows, 128 patients, 76 infections; ``enum`` the
event number).

Observed agreement (max): PWP and AG coefficients 8e-16, standard errors 1.3e-15 relative;
frailty at R's theta (sparse = FALSE) coefficients 2e-15, variances 3e-14 relative; R's
sparse default 1.5e-8 (R's own convergence); theta 2e-9 from R's tight search.

Reference numbers: ``tests/reference/survival_recurrent.R`` (``survival_recurrent.json``);
checks in ``_recurrent_reference.py``.
"""

from __future__ import annotations

import pytest
from _recurrent_reference import (
    check_counting,
    check_frailty_at_theta,
    check_frailty_theta,
    counting_params,
    dataset,
    frailty_params,
)

from rjtrial.survival import event_number


@pytest.mark.parametrize("name, quantity", counting_params("cgd"))
def test_andersen_gill_and_pwp(name, quantity):
    # R: coxph(Surv(tstart, tstop, status) ~ treat + inherit + steroids + age + strata(enum) + cluster(id), cgd)
    # R: coxph(Surv(tstop - tstart, status) ~ treat + inherit + steroids + age + strata(enum) + cluster(id), cgd)
    # R: coxph(Surv(tstop - tstart, status) ~ treat + age + strata(pmin(enum, 2), hos.cat) + cluster(id), cgd)
    check_counting(name, quantity)


def test_event_number_is_rs_enum():
    # R: cgd$enum
    data = dataset("cgd")
    assert (event_number(data, start="tstart", event="status", id="id") == data["enum"]).all()


@pytest.mark.parametrize("name, which, quantity", frailty_params("cgd"))
def test_frailty_at_r_theta(name, which, quantity):
    # R: coxph(Surv(tstart, tstop, status) ~ treat + inherit + steroids + age + frailty(id, theta = <tight>, sparse = FALSE), cgd)
    check_frailty_at_theta(name, which, quantity)


def test_frailty_theta():
    # R: coxph(Surv(tstart, tstop, status) ~ treat + inherit + steroids + age + frailty(id, eps = 1e-14), cgd, control = ...)
    check_frailty_theta("cgd_frailty")
