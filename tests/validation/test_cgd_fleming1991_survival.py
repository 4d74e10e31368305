"""rjtrial.survival on the cgd data, held to R survival 3.5-3.

Chronic granulomatous disease, interferon gamma trial: Fleming, T. R., & Harrington, D. P.
(1991). Counting Processes and Survival Analysis. Wiley, Appendix D.2. R: survival::cgd (203
rows, 128 patients; recurrent infections).

Reference numbers: ``tests/reference/survival_datasets.R`` (the R call of each case is its
``r_call`` in ``survival_datasets.json`` and in the test id); checks in ``_survival_datasets.py``.
"""

from __future__ import annotations

import pytest
from _survival_datasets import cases, check_cox, cox_params

CASES = cases("cgd")


@pytest.mark.parametrize("case, quantity", cox_params("cgd"))
def test_cox(case, quantity):
    check_cox(case, quantity)
