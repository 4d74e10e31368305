"""R ``metafor::escalc`` reference numbers for every measure of rjtrial.effects beyond metafor_reference.R.

The numbers come from ``tests/reference/metafor_escalc.R`` (R 4.2.2, metafor 3.8-1, metadat
1.2-0), stored in ``tests/reference/metafor_escalc.json`` (15 significant digits; ``null`` is
R's ``NA``); the inputs are metadat's datasets, Morris (2008)'s Table 1 and boundary cases,
exported by the same script to ``tests/reference/*.csv``. They are held to the ``"escalc"``
tolerance of ``_metafor_reference.TOL`` (relative 1e-12, absolute 1e-13).
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pandas as pd
from _metafor_reference import REFERENCE_DIR, as_array, assert_close

__all__ = ["assert_escalc", "load_escalc", "read_csv"]


@lru_cache(maxsize=1)
def load_escalc() -> dict:
    with open(REFERENCE_DIR / "metafor_escalc.json") as handle:
        return json.load(handle)


@lru_cache(maxsize=None)
def read_csv(name: str) -> pd.DataFrame:
    """An input table exported by the R script (``tests/reference/<name>.csv``)."""
    return pd.read_csv(REFERENCE_DIR / f"{name}.csv")


def assert_escalc(es: pd.DataFrame, expected: dict, rows=None) -> None:
    """``estimate`` and ``variance`` of an effect-size frame against escalc's ``yi`` and ``vi``
    (optionally only the given row positions); NaN must match R's NA."""
    yi, vi = as_array(expected["yi"]), as_array(expected["vi"])
    if rows is not None:
        yi, vi = yi[rows], vi[rows]
    assert_close(es["estimate"].to_numpy(), yi.tolist(), "escalc")
    assert_close(es["variance"].to_numpy(), vi.tolist(), "escalc")


def defined_rows(expected: dict) -> np.ndarray:
    """Positions where escalc gives a finite estimate and a positive variance (a usable study)."""
    yi, vi = as_array(expected["yi"]), as_array(expected["vi"])
    return np.flatnonzero(np.isfinite(yi) & np.isfinite(vi) & (vi > 0))
