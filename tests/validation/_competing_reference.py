"""R reference numbers for rjtrial's competing-risks verbs, and the checks shared by the
validation tests of each dataset.

The numbers come from ``tests/reference/competing_risks.R`` (R 4.2, survival 3.5-3, cmprsk
2.2-11), stored in ``tests/reference/competing_risks.json`` with 17 significant digits.
Tolerances are ``_survival_reference.TOL``, by kind of quantity, plus the kinds below.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
from _survival_reference import REFERENCE_DIR, TOL, as_array, assert_close, read_csv  # noqa: F401

TOL = {
    **TOL,
    "incidence": {"abs": 1e-6, "rel": 0},  # cumulative incidence and its confidence limits
    "variance": {"abs": 1e-10, "rel": 1e-6},  # variances of F (cuminc's var, down to 0)
    "hazard": {"rel": 1e-6, "abs": 0},  # baseline subdistribution hazard jumps (crr bfitj)
}


@lru_cache(maxsize=1)
def load_reference() -> dict:
    with open(REFERENCE_DIR / "competing_risks.json") as handle:
        return json.load(handle)


def close(actual, expected, kind: str) -> None:
    """Element-wise agreement within ``TOL[kind]``; NaN must match NaN (R's NA)."""
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float),
        np.asarray(expected, dtype=float),
        equal_nan=True,
        err_msg=kind,
        atol=TOL[kind]["abs"],
        rtol=TOL[kind]["rel"],
    )


def matrix(values) -> np.ndarray:
    """A JSON matrix (list of rows) from R, null -> NaN."""
    return np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)


def aalen_johansen_curve(aj_ref: dict, group: str, state: str, quantity: str) -> np.ndarray:
    """One column of R's multi-state survfit output for one group: ``pstate``, ``std_err``,
    ``lower_<conf.type>`` or ``upper_<conf.type>``; ``state`` is the cause's label."""
    rows = np.array(aj_ref["group"]) == group
    column = aj_ref["states"].index(state)
    return matrix(aj_ref[quantity])[rows][:, column]


def our_curve(result, group, cause: int, column: str) -> np.ndarray:
    table = result.summary_frame()
    return table.loc[(table["group"] == group) & (table["cause"] == cause), column].to_numpy(dtype=float)


def cuminc_values(cuminc_ref: dict, curve: str, quantity: str) -> np.ndarray:
    """``timepoints(cuminc(...), times)$est`` or ``$var`` for one curve ("<group> <cause>")."""
    return matrix(cuminc_ref[quantity])[cuminc_ref["curves"].index(curve)]
