"""rjtrial.survival on the pbc data, held to R survival 3.5-3.

Mayo Clinic primary biliary cirrhosis trial: Dickson, E. R., et al. (1989). Prognosis in
primary biliary cirrhosis: model for decision making. Hepatology, 10(1), 1-7.
doi:10.1002/hep.1840100102; Fleming & Harrington (1991), Appendix D.1. R: survival::pbc (418
patients; the 106 not randomised have trt NA; death = status 2).

Reference numbers: ``tests/reference/survival_datasets.R`` (the R call of each case is its
``r_call`` in ``survival_datasets.json`` and in the test id); checks in ``_survival_datasets.py``.
"""

from __future__ import annotations

import pytest
from _survival_datasets import cases, check_cox, check_km, check_logrank, check_rmst, cox_params

CASES = cases("pbc")


@pytest.mark.parametrize("case, quantity", cox_params("pbc"))
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
