"""Litter-matched tumorigenesis (rats): the gamma frailty shared by a litter, held to R.

Mantel, N., Bohidar, N. R., & Ciminera, J. L. (1977). Mantel-Haenszel analyses of
litter-matched time-to-response data, with modifications for recovery of interlitter
information. Cancer Research, 37, 3863-3868. R: survival::rats (300 rats in 100 litters of
three; the frailty is the litter's).

Observed agreement (max): at R's theta (sparse = FALSE) coefficients 3e-13, variances 3e-13
relative, frailties 4e-16, degrees of freedom 1.3e-13; R's sparse default 7e-9; theta 4e-8
from R's tight search (its last step 3.6e-7) and 8e-9 from R's optimize().

Reference numbers: ``tests/reference/survival_recurrent.R`` (``survival_recurrent.json``);
checks in ``_recurrent_reference.py``.
"""

from __future__ import annotations

import pytest
from _recurrent_reference import check_frailty_at_theta, check_frailty_theta, frailty_params


@pytest.mark.parametrize("name, which, quantity", frailty_params("rats"))
def test_frailty_at_r_theta(name, which, quantity):
    # R: coxph(Surv(time, status) ~ rx + sex + frailty(litter, theta = <tight theta>, sparse = FALSE), rats)
    # R: coxph(Surv(time, status) ~ rx + sex + frailty(litter, theta = <tight theta>), rats)
    check_frailty_at_theta(name, which, quantity)


def test_frailty_theta():
    # R: coxph(Surv(time, status) ~ rx + sex + frailty(litter, eps = 1e-14), rats, control = ...)
    check_frailty_theta("rats_frailty")
