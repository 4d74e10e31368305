"""The generated recurrent-reoffending trial: Andersen–Gill, PWP and gamma frailty models, held to R.

400 participants of a synthetic restorative-justice trial reoffending repeatedly at a
person-level rate with a gamma frailty (tests/reference/make_survival_trial.py;
survival_trial_recurrent.csv: 1,569 intervals, whole days, so tied times throughout).

Observed agreement (max): AG and PWP coefficients 2e-10 (against R's default eps), standard
errors 2.4e-10 relative; frailty at R's theta (sparse = FALSE) coefficients 1.2e-14,
variances 8e-14 relative, frailties 1.4e-14; R's sparse default 6e-7 (R's convergence);
theta 1.9e-7 from R's tight search (its last step 5.9e-7), 2.5e-9 from R's optimize().

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
    frailty_params,
)


@pytest.mark.parametrize("name, quantity", counting_params("trial", data="trial"))
def test_andersen_gill_and_pwp(name, quantity):
    # R: coxph(Surv(start, stop, event) ~ arm + age + prior + strata(enum) + cluster(id), rec)
    # R: coxph(Surv(stop - start, event) ~ arm + age + prior + strata(enum) + cluster(id), rec)
    # R: coxph(Surv(start, stop, event) ~ arm + age + prior + strata(pmin(enum, 4), site) + cluster(id), rec)
    check_counting(name, quantity)


@pytest.mark.parametrize("name, which, quantity", frailty_params("trial"))
def test_frailty_at_r_theta(name, which, quantity):
    # R: coxph(Surv(start, stop, event) ~ arm + age + prior + frailty(id, theta = <tight theta>, sparse = FALSE), rec)
    # R: coxph(Surv(start, stop, event) ~ arm + age + prior + strata(site) + frailty(id, theta = <tight>), rec)
    check_frailty_at_theta(name, which, quantity)


@pytest.mark.parametrize("name", ["trial_frailty", "trial_frailty_strata"])
def test_frailty_theta(name):
    # R: coxph(Surv(start, stop, event) ~ arm + age + prior + frailty(id, eps = 1e-14), rec, control = ...)
    check_frailty_theta(name)
