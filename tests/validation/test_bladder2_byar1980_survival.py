"""rjtrial.survival on the bladder2 data, held to R survival 3.5-3.

Bladder cancer recurrences: Byar, D. P. (1980). The Veterans Administration study of
chemoprophylaxis for recurrent stage I bladder tumors. In Bladder Tumors and Other Topics in
Urological Oncology, Plenum, 363-370; Wei, L. J., Lin, D. Y., & Weissfeld, L. (1989). JASA,
84, 1065-1073. R: survival::bladder2 (counting-process form, 178 rows, 85 patients).

Reference numbers: ``tests/reference/survival_datasets.R`` (the R call of each case is its
``r_call`` in ``survival_datasets.json`` and in the test id); checks in ``_survival_datasets.py``.
"""

from __future__ import annotations

import pytest
from _survival_datasets import cases, check_cox, cox_params

CASES = cases("bladder2")


@pytest.mark.parametrize("case, quantity", cox_params("bladder2"))
def test_cox(case, quantity):
    check_cox(case, quantity)
