"""rjtrial.survival on the colon data, held to R survival 3.5-3.

Adjuvant chemotherapy for colon cancer: Moertel, C. G., et al. (1990). Levamisole and
fluorouracil for adjuvant therapy of resected colon carcinoma. N Engl J Med, 322(6),
352-358. doi:10.1056/NEJM199002083220602. R: survival::colon (929 patients, two rows each:
recurrence and death; NAs in nodes).

Reference numbers: ``tests/reference/survival_datasets.R`` (the R call of each case is its
``r_call`` in ``survival_datasets.json`` and in the test id); checks in ``_survival_datasets.py``.
"""

from __future__ import annotations

import pytest
from _survival_datasets import cases, check_cox, check_km, check_logrank, cox_params

CASES = cases("colon")


@pytest.mark.parametrize("case, quantity", cox_params("colon"))
def test_cox(case, quantity):
    check_cox(case, quantity)


@pytest.mark.parametrize("case", CASES["km"])
def test_kaplan_meier(case):
    check_km(case)


@pytest.mark.parametrize("case", CASES["logrank"])
def test_logrank(case):
    check_logrank(case)
