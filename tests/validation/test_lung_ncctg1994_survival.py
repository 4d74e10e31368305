"""rjtrial.survival on the lung data, held to R survival 3.5-3.

NCCTG advanced lung cancer trial: Loprinzi, C. L., et al. (1994). Prospective evaluation of
prognostic variables from patient-completed questionnaires. J Clin Oncol, 12(3), 601-607.
doi:10.1200/JCO.1994.12.3.601. R: survival::lung (228 patients; status 1 = censored, 2 =
dead; NAs in ph.ecog, ph.karno, wt.loss).

Reference numbers: ``tests/reference/survival_datasets.R`` (the R call of each case is its
``r_call`` in ``survival_datasets.json`` and in the test id); checks in ``_survival_datasets.py``.
"""

from __future__ import annotations

import pytest
from _survival_datasets import cases, check_cox, check_km, check_logrank, check_rmst, cox_params

CASES = cases("lung")


@pytest.mark.parametrize("case, quantity", cox_params("lung"))
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
