"""rjtrial.survival on the heart data, held to R survival 3.5-3.

Stanford heart transplant programme: Crowley, J., & Hu, M. (1977). Covariance analysis of
heart transplant survival data. JASA, 72(357), 27-36. doi:10.1080/01621459.1977.10479903. R:
survival::heart (jasa1; transplant a time-dependent covariate in counting-process rows,
fractional times).

Reference numbers: ``tests/reference/survival_datasets.R`` (the R call of each case is its
``r_call`` in ``survival_datasets.json`` and in the test id); checks in ``_survival_datasets.py``.
"""

from __future__ import annotations

import pytest
from _survival_datasets import cases, check_cox, cox_params

CASES = cases("heart")


@pytest.mark.parametrize("case, quantity", cox_params("heart"))
def test_cox(case, quantity):
    check_cox(case, quantity)
