"""negative_binomial_batch against R MASS 7.3 glm.nb on MASS::quine and MASS::Insurance.

Reference: tests/reference/batched_rmst_nb.R (data exported as mass_quine.csv and
mass_insurance.csv); ``glm.nb(..., control = glm.control(epsilon = 1e-12, maxit = 500))``.
quine has no exposure (offset 0); Insurance's offset is ``log(Holders)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rjtrial.survival.batched import negative_binomial_batch

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
CASES = json.loads((REFERENCE / "batched_rmst_nb.json").read_text())["negative_binomial"]
TOL = {"coef": 1e-6, "std_error": 1e-6, "p_value": 1e-6, "dispersion": 1e-6}


@pytest.fixture(scope="module")
def batch():
    frames, labels = [], []
    for k, case in enumerate(CASES):
        data = pd.read_csv(REFERENCE / case["data"])
        exposure = data[case["exposure"]] if case["exposure"] else pd.Series(1.0, index=data.index)
        frames.append(
            pd.DataFrame({"count": data[case["count"]], "exposure": exposure, "group": data[case["group"]], "trial": k})
        )
        labels.append(case["label"])
    stacked = pd.concat(frames, ignore_index=True)
    res = negative_binomial_batch(
        stacked["count"].to_numpy(float),
        stacked["exposure"].to_numpy(float),
        stacked["group"].to_numpy(),
        trial=stacked["trial"].to_numpy(),
    )
    return dict(zip(labels, res.to_frame().to_dict(orient="records")))


@pytest.mark.parametrize("case", CASES, ids=[c["label"] for c in CASES])
def test_negative_binomial_batch_equals_r_glm_nb(case, batch):
    got = batch[case["label"]]
    assert got["converged"]
    # R: coef(summary(glm.nb(...)))[2, "Estimate"]
    assert got["estimate"] == pytest.approx(case["estimate"], abs=TOL["coef"])
    # R: coef(summary(glm.nb(...)))[2, "Std. Error"]
    assert got["std_error"] == pytest.approx(case["std_error"], abs=TOL["std_error"])
    # R: coef(summary(glm.nb(...)))[2, "Pr(>|z|)"]
    assert got["p_value"] == pytest.approx(case["p_value"], abs=TOL["p_value"])
    # R: 1 / glm.nb(...)$theta
    assert got["dispersion"] == pytest.approx(case["dispersion"], rel=TOL["dispersion"])
    assert got["rate_ratio"] == pytest.approx(np.exp(case["estimate"]), rel=TOL["coef"])
