"""Recurrent kidney infections (kidney): the shared gamma frailty model of the person, held to R.

McGilchrist, C. A., & Aisbett, C. W. (1991). Regression with frailty in survival analysis.
Biometrics, 47(2), 461-466. doi:10.2307/2532138. R: survival::kidney (76 catheter
infections of 38 patients; the frailty example of R's ``coxph`` documentation).

Observed agreement (max): at R's theta (sparse = FALSE) coefficients 4e-15, variances 2e-14
relative, frailties 3e-15, degrees of freedom 4e-15, likelihoods 6e-14; R's sparse default
2e-7 (R's own convergence); theta 2e-8 from R's tight search and 6e-8 from R's optimize().
R's default call stops its search for theta at 0.41216 (the maximum is 0.40777): its
coefficients differ from the maximum's by 4.3e-3 and its theta by 1.1%. With ``disease``
the maximum is at theta = 0, where R stops at 5e-8 (its frailty.gammacon switches to an
approximation below 1e-7 / max(d) that makes a spurious bump there).

Reference numbers: ``tests/reference/survival_recurrent.R`` (``survival_recurrent.json``);
checks in ``_recurrent_reference.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from _recurrent_reference import (
    TOL,
    case,
    check_frailty_at_theta,
    check_frailty_theta,
    close,
    default_difference,
    fit_frailty,
    frailty_params,
    vector,
)


@pytest.mark.parametrize("name, which, quantity", frailty_params("kidney"))
def test_frailty_at_r_theta(name, which, quantity):
    # R: coxph(Surv(time, status) ~ age + sex + frailty(id, theta = <tight theta>, sparse = FALSE), kidney)
    # R: coxph(Surv(time, status) ~ age + sex + frailty(id, theta = <tight theta>), kidney, ties = 'breslow')
    check_frailty_at_theta(name, which, quantity)


@pytest.mark.parametrize("name", ["kidney_frailty", "kidney_frailty_breslow"])
def test_frailty_theta(name):
    # R: coxph(Surv(time, status) ~ age + sex + frailty(id, eps = 1e-14), kidney, control = coxph.control(eps = 1e-14, ...))
    check_frailty_theta(name)


def test_the_maximum_on_the_boundary():
    # R: coxph(Surv(time, status) ~ age + sex + disease + frailty(id, eps = 1e-14), kidney, control = ...)
    fit = fit_frailty("kidney_frailty_disease")
    tight = case("kidney_frailty_disease")["tight"]
    assert fit.theta_ == 0 and tight["theta"] < TOL["theta"]["abs"]
    close(fit.params_, vector(tight["coef"]), "coef")
    assert any("estimated as 0" in note for note in fit.notes)
    assert fit.frailty_.abs().max() == 0


def test_rs_default_call_stops_short_of_the_maximum():
    # R: coxph(Surv(time, status) ~ age + sex + frailty(id), kidney)  # Variance of random effect = 0.412
    difference = default_difference("kidney_frailty")
    assert case("kidney_frailty")["default"]["theta"] == pytest.approx(0.4121647, abs=1e-6)
    assert -0.0045 < difference["theta"] < -0.004 and 0.004 < difference["coef"] < 0.005


def test_sparse_information_changes_the_standard_errors_by_two_percent():
    # R: frailty(id, theta, sparse = FALSE) against R's default sparse = TRUE: se(coef) 0.01168 / 0.01186 (age)
    exact, sparse = case("kidney_frailty")["exact"], case("kidney_frailty")["sparse"]
    ratio = vector(exact["se"]) / vector(sparse["se"])
    assert np.all((ratio > 0.97) & (ratio < 0.99))
    ours = (
        fit_frailty("kidney_frailty", "tight", "exact").summary_frame()["std_error"]
        / fit_frailty("kidney_frailty", "tight", "sparse").summary_frame()["std_error"]
    )
    close(ours, ratio, "std_error")
