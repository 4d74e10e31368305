"""rmst_batch against R survival 3.5-3 on survival::veteran and survival::lung.

Reference: tests/reference/batched_rmst_nb.R (data exported beside it as survival_veteran.csv
and survival_lung.csv); ``summary(survfit(Surv(time, status) ~ treated), rmean = tau)$table``
gives each arm's restricted mean and ``se(rmean)`` (survival:::survmean). Both datasets
have tied times; lung's treated arm (women) ends before 1022 days.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rjtrial.survival.batched import rmst_batch

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
CASES = json.loads((REFERENCE / "batched_rmst_nb.json").read_text())["rmst"]
TOL = {"rmst": 1e-9, "std_error": 1e-9}


@pytest.fixture(scope="module")
def batch():
    """Every case of the reference as one trial of a batch (trial labels), per tau."""
    frames = {name: pd.read_csv(REFERENCE / f"survival_{name}.csv") for name in ("veteran", "lung")}
    out = {}
    for tau in sorted({case["tau"] for case in CASES}):
        names = [case["label"] for case in CASES if case["tau"] == tau]
        stacked = pd.concat([frames[name].assign(trial=k) for k, name in enumerate(names)], ignore_index=True)
        res = rmst_batch(
            stacked["time"].to_numpy(float),
            stacked["status"].to_numpy(),
            stacked["treated"].to_numpy(),
            tau=float(tau),
            trial=stacked["trial"].to_numpy(),
        )
        for k, name in enumerate(names):
            out[(name, tau)] = {
                field: getattr(res, field)[k]
                for field in (
                    "rmst_control",
                    "std_error_control",
                    "rmst_treated",
                    "std_error_treated",
                    "estimate",
                    "std_error",
                )
            }
    return out


@pytest.mark.parametrize("case", CASES, ids=[f"{c['label']}-tau{c['tau']}" for c in CASES])
def test_rmst_batch_equals_r_survmean(case, batch):
    got = batch[(case["label"], case["tau"])]
    # R: summary(survfit(Surv(time, status) ~ treated, data = <label>), rmean = tau)$table[, "rmean"]
    assert got["rmst_control"] == pytest.approx(case["rmst_control"], abs=TOL["rmst"])
    assert got["rmst_treated"] == pytest.approx(case["rmst_treated"], abs=TOL["rmst"])
    # R: ...$table[, "se(rmean)"]
    assert got["std_error_control"] == pytest.approx(case["std_error_control"], abs=TOL["std_error"])
    assert got["std_error_treated"] == pytest.approx(case["std_error_treated"], abs=TOL["std_error"])
    assert got["estimate"] == pytest.approx(case["rmst_treated"] - case["rmst_control"], abs=TOL["rmst"])
    assert got["std_error"] == pytest.approx(
        np.hypot(case["std_error_control"], case["std_error_treated"]), abs=TOL["std_error"]
    )
