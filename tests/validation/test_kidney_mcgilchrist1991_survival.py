"""rjtrial.survival on the kidney data, held to R survival 3.5-3.

Recurrence of kidney infection: McGilchrist, C. A., & Aisbett, C. W. (1991). Regression with
frailty in survival analysis. Biometrics, 47(2), 461-466. doi:10.2307/2532138. R:
survival::kidney (76 rows, 38 patients; ties in time).

Reference numbers: ``tests/reference/survival_datasets.R`` (the R call of each case is its
``r_call`` in ``survival_datasets.json`` and in the test id); checks in ``_survival_datasets.py``.
"""

from __future__ import annotations

import pytest
from _survival_datasets import cases, check_cox, cox_params

CASES = cases("kidney")


@pytest.mark.parametrize("case, quantity", cox_params("kidney"))
def test_cox(case, quantity):
    check_cox(case, quantity)
