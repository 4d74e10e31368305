"""Recurrent bladder tumours (bladder2): Andersen–Gill, PWP total and gap time, gamma frailty, held to R.

Bladder cancer recurrences: Byar, D. P. (1980). The Veterans Administration study of
chemoprophylaxis for recurrent stage I bladder tumors. In Bladder Tumors and Other Topics in
Urological Oncology, Plenum, 363-370; Wei, L. J., Lin, D. Y., & Weissfeld, L. (1989). JASA,
84, 1065-1073. R: survival::bladder2 (counting-process form, 178 rows, 85 patients, 112
recurrences; ``enum`` the event number, which rjtrial's ``event_number`` reproduces).

Observed agreement (max): PWP and AG coefficients 8e-13, robust and naive standard errors
5e-13 relative, tests 5e-13; frailty at R's theta (sparse = FALSE) coefficients 5e-16,
variances 4e-14 relative, frailties 2e-13, degrees of freedom 9e-14; R's sparse default
1e-7 (R's own convergence); theta 3e-8 from R's tight search (its last step 1.4e-7).

Reference numbers: ``tests/reference/survival_recurrent.R`` (``survival_recurrent.json``);
checks in ``_recurrent_reference.py``.
"""

from __future__ import annotations

import pytest
from _recurrent_reference import (
    TOL,
    case,
    check_counting,
    check_frailty_at_theta,
    check_frailty_theta,
    counting_params,
    dataset,
    frailty_params,
)

from rjtrial.survival import event_number


@pytest.mark.parametrize("name, quantity", counting_params("bladder2"))
def test_andersen_gill_and_pwp(name, quantity):
    # R: coxph(Surv(start, stop, event) ~ rx + number + size + strata(enum) + cluster(id), bladder2)
    # R: coxph(Surv(stop - start, event) ~ rx + number + size + strata(enum) + cluster(id), bladder2)
    # (each case's R call: its r_call in survival_recurrent.json; the capped case strata(pmin(enum, 3)))
    check_counting(name, quantity)


def test_event_number_is_rs_enum():
    # R: bladder2$enum
    data = dataset("bladder2")
    assert (event_number(data, start="start", event="event", id="id") == data["enum"]).all()


@pytest.mark.parametrize("name, which, quantity", frailty_params("bladder2"))
def test_frailty_at_r_theta(name, which, quantity):
    # R: coxph(Surv(start, stop, event) ~ rx + number + size + frailty(id, theta = <tight theta>, sparse = FALSE), bladder2)
    check_frailty_at_theta(name, which, quantity)


def test_frailty_theta():
    # R: coxph(Surv(start, stop, event) ~ rx + number + size + frailty(id, eps = 1e-14), bladder2, control = ...)
    check_frailty_theta("bladder2_frailty")
    assert case("bladder2_frailty")["tight"]["theta"] == pytest.approx(1.0751559, abs=TOL["theta"]["abs"] * 10)
