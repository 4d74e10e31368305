"""negative_binomial_batch against R MASS 7.3 glm.nb on MASS::quine, MASS::Insurance and
datasets::InsectSprays.

Reference: tests/reference/batched_rmst_nb.R (data exported as mass_quine.csv,
mass_insurance.csv and datasets_insectsprays.csv);
``glm.nb(..., control = glm.control(epsilon = 1e-12, maxit = 500))``. quine and InsectSprays
have no exposure (offset 0); Insurance's offset is ``log(Holders)``. InsectSprays is compared
two sprays at a time: E vs D has counts close to Poisson (theta 660), where the likelihood's
terms in theta nearly cancel.
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


def _stacked() -> pd.DataFrame:
    """Every case's rows, labelled by case (``trial``), its group coded 0/1."""
    frames = []
    for k, case in enumerate(CASES):
        data = pd.read_csv(REFERENCE / case["data"])
        if "control" in case:  # a column of labels: two of them compared
            data = data[data[case["group"]].isin([case["control"], case["treated"]])]
            group = (data[case["group"]] == case["treated"]).astype(int)
        else:
            group = data[case["group"]]
        exposure = data[case["exposure"]] if case["exposure"] else pd.Series(1, index=data.index)
        frames.append(pd.DataFrame({"count": data[case["count"]], "exposure": exposure, "group": group, "trial": k}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def batch():
    stacked = _stacked()
    res = negative_binomial_batch(
        stacked["count"].to_numpy(float),
        stacked["exposure"].to_numpy(float),
        stacked["group"].to_numpy(),
        trial=stacked["trial"].to_numpy(),
    )
    return dict(zip([case["label"] for case in CASES], res.to_frame().to_dict(orient="records")))


def test_negative_binomial_batch_whole_numbers_as_integers_or_floats_fit_alike():
    """Integer counts and exposures are merged by their integer key without a round trip
    through floats: the same fits, bit for bit, as the same numbers given as floats."""
    stacked = _stacked()
    assert stacked["count"].dtype.kind == "i" and stacked["exposure"].dtype.kind == "i"
    as_int = negative_binomial_batch(
        stacked["count"].to_numpy(), stacked["exposure"].to_numpy(), stacked["group"].to_numpy(), trial=stacked["trial"]
    ).to_frame()
    as_float = negative_binomial_batch(
        stacked["count"].to_numpy(float),
        stacked["exposure"].to_numpy(float),
        stacked["group"].to_numpy(),
        trial=stacked["trial"],
    ).to_frame()
    pd.testing.assert_frame_equal(as_int, as_float, check_exact=True)


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
