"""rjtrial.survival on the rats data, held to R survival 3.5-3.

Litter-matched tumorigenesis: Mantel, N., Bohidar, N. R., & Ciminera, J. L. (1977). Mantel-
Haenszel analyses of litter-matched time-to-response data. Cancer Research, 37, 3863-3868.
R: survival::rats (300 rats in 100 litters of 3).

Reference numbers: ``tests/reference/survival_datasets.R`` (the R call of each case is its
``r_call`` in ``survival_datasets.json`` and in the test id); checks in ``_survival_datasets.py``.
"""

from __future__ import annotations

import pytest
from _survival_datasets import cases, check_cox, check_km, check_logrank, cox_params

CASES = cases("rats")


@pytest.mark.parametrize("case, quantity", cox_params("rats"))
def test_cox(case, quantity):
    check_cox(case, quantity)


@pytest.mark.parametrize("case", CASES["km"])
def test_kaplan_meier(case):
    check_km(case)


@pytest.mark.parametrize("case", CASES["logrank"])
def test_logrank(case):
    check_logrank(case)
