"""rjtrial.survival on the veteran data, held to R survival 3.5-3.

Veterans' Administration lung cancer trial: Kalbfleisch, J. D., & Prentice, R. L. (1980).
The Statistical Analysis of Failure Time Data. Wiley, Appendix I. R: survival::veteran (137
men; celltype a four-level factor).

Reference numbers: ``tests/reference/survival_datasets.R`` (the R call of each case is its
``r_call`` in ``survival_datasets.json`` and in the test id); checks in ``_survival_datasets.py``.
"""

from __future__ import annotations

import pytest
from _survival_datasets import cases, check_cox, check_km, check_logrank, check_rmst, cox_params

CASES = cases("veteran")


@pytest.mark.parametrize("case, quantity", cox_params("veteran"))
def test_cox(case, quantity):
    check_cox(case, quantity)


@pytest.mark.parametrize("case", CASES["km"])
def test_kaplan_meier(case):
    check_km(case)


@pytest.mark.parametrize("case", CASES["logrank"])
def test_logrank(case):
    check_logrank(case)


@pytest.mark.parametrize("case", CASES["rmst"])
def test_rmst(case):
    check_rmst(case)
