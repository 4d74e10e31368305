"""rjtrial.compliance: ITT and the complier average causal effect.

Agreement with R (AER::ivreg, the 2SLS variance written out) is in
tests/validation/test_frequency_compliance_r.py.
"""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rjtrial.compliance as compliance
from rjtrial.compliance import cace
from rjtrial.errors import DataError

TRIAL = pd.read_csv(Path(__file__).resolve().parent / "reference" / "frequency_trial.csv")
ARGS = dict(outcome="reoffences", assigned="arm", treated="treatment_received")


def test_docstring_examples_run():
    result = doctest.testmod(compliance, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_itt_uptake_is_the_difference_in_uptake_and_cace_the_wald_ratio():
    res = cace(TRIAL, **ARGS)
    uptake = res.uptake_frame().set_index("group")
    assert uptake.loc["control", "uptake"] == 0  # one-sided non-compliance
    assert res.itt_uptake_ == pytest.approx(uptake.loc["rj", "uptake"] - uptake.loc["control", "uptake"])
    means = uptake["outcome_mean"]
    assert res.itt_outcome_ == pytest.approx(means["rj"] - means["control"])
    assert res.estimate == pytest.approx(res.itt_outcome_ / res.itt_uptake_, rel=1e-12)


@pytest.mark.parametrize("cov_type", ["unadjusted", "robust"])
def test_with_covariates_2sls_equals_the_ratio_of_adjusted_itts(cov_type):
    res = cace(TRIAL, covariates=["prior_offences", "age", "site"], cov_type=cov_type, **ARGS)
    assert res.estimate == pytest.approx(res.wald_ratio_, rel=1e-10)
    table = res.summary_frame()
    assert table.index.tolist() == ["itt_outcome", "itt_uptake", "cace"]
    assert list(table.columns) == ["estimate", "std_error", "ci_lower", "ci_upper", "statistic", "p_value", "df"]
    assert table.attrs == {"alpha": 0.05, "cov_type": cov_type}
    assert (table["df"] == len(TRIAL) - 6).all()
    assert res.first_stage_f_ == pytest.approx(table.loc["itt_uptake", "statistic"] ** 2)


def test_first_stage_f_agrees_with_linearmodels_diagnostics():
    # Two routes: t^2 of assignment in the uptake regression, and linearmodels' partial F
    # (unadjusted, debiased) on the first stage of the 2SLS fit.
    res = cace(TRIAL, covariates=["prior_offences", "age"], **ARGS)
    diagnostics = res.iv_result_.first_stage.diagnostics
    assert res.first_stage_f_ == pytest.approx(float(diagnostics["f.stat"].iloc[0]), rel=1e-8)


def test_full_compliance_makes_cace_equal_to_itt():
    df = TRIAL.assign(treatment_received=(TRIAL["arm"] == "rj").astype(int))
    res = cace(df, **ARGS)
    assert res.itt_uptake_ == pytest.approx(1.0)
    assert res.estimate == pytest.approx(res.itt_outcome_)
    assert res.std_error == pytest.approx(res.summary_frame().loc["itt_outcome", "std_error"])


def test_cace_is_larger_in_magnitude_than_itt_under_partial_compliance():
    res = cace(TRIAL, **ARGS)
    assert abs(res.estimate) > abs(res.itt_outcome_)
    assert res.ci_lower < res.estimate < res.ci_upper
    assert "CACE" in str(res) and repr(res).startswith("<CACEResult")


def test_alpha_widens_interval():
    narrow = cace(TRIAL, alpha=0.2, **ARGS)
    wide = cace(TRIAL, alpha=0.01, **ARGS)
    assert wide.ci_upper - wide.ci_lower > narrow.ci_upper - narrow.ci_lower


def test_boolean_treated_column():
    res = cace(TRIAL.assign(treatment_received=TRIAL["treatment_received"] == 1), **ARGS)
    assert res.estimate == pytest.approx(cace(TRIAL, **ARGS).estimate)


@pytest.mark.parametrize(
    "change, column, message",
    [
        (lambda d: d.drop(columns="treatment_received"), "treatment_received", "no column"),
        (lambda d: d.assign(treatment_received=d["treatment_received"] * 2), "treatment_received", "0 or 1"),
        (lambda d: d.assign(treatment_received=0), "treatment_received", "not identified"),
        (lambda d: d.assign(reoffences=d["reoffences"].astype(str)), "reoffences", "numeric"),
        (lambda d: d.assign(arm="rj"), "arm", "two groups"),
        (lambda d: d.assign(arm=np.where(d["id"] % 3 == 0, "indirect", d["arm"])), "arm", "two arms"),
    ],
)
def test_bad_input_names_the_column(change, column, message):
    with pytest.raises(DataError, match=message) as info:
        cace(change(TRIAL), **ARGS)
    assert info.value.column == column


def test_bad_cov_type_lists_the_options():
    with pytest.raises(ValueError, match="'unadjusted', 'robust'"):
        cace(TRIAL, cov_type="HC3", **ARGS)


def test_row_labels_and_order_do_not_matter():
    shuffled = TRIAL.sample(frac=1.0, random_state=3).set_index(TRIAL["id"].to_numpy() * 10)
    a = cace(TRIAL, covariates=["age", "site"], **ARGS).summary_frame()
    b = cace(shuffled, covariates=["age", "site"], **ARGS).summary_frame()
    pd.testing.assert_frame_equal(a, b, rtol=1e-10)


@pytest.mark.parametrize("value", [0, 3])
def test_an_outcome_without_variation_is_named_not_a_zero_division(value):
    # every participant with the same outcome: linearmodels divided by its zero total sum of squares
    with pytest.raises(DataError, match="the same") as info:
        cace(TRIAL.assign(reoffences=value), **ARGS)
    assert info.value.column == "reoffences"


def test_a_text_treated_column_is_read_strictly():
    as_text = TRIAL.assign(treatment_received=TRIAL["treatment_received"].map({0: "False", 1: "True"}))
    assert cace(as_text, **ARGS).estimate == pytest.approx(cace(TRIAL, **ARGS).estimate, rel=1e-12)
    careless = TRIAL.astype({"treatment_received": object})
    careless.loc[4, "treatment_received"] = "y"
    with pytest.raises(DataError, match="'y'") as info:
        cace(careless, **ARGS)
    assert (info.value.row, info.value.column) == (4, "treatment_received")


def test_result_follows_the_result_convention():
    # A frozen dataclass with format() and a JSON-ready to_dict() (CONTRIBUTING.md, "Result objects").
    import dataclasses
    import json

    res = cace(TRIAL, **ARGS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.estimate = 0.0
    assert str(res) == res.format() == res.format_summary() and res.format().startswith("ITT and CACE")
    data = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert data["estimate"] == pytest.approx(res.estimate) and data["cov_type"] == "unadjusted"
    assert [row["effect"] for row in data["summary"]] == ["itt_outcome", "itt_uptake", "cace"]
    assert [row["group"] for row in data["uptake"]] == ["control", "rj"]
    assert "iv_result_" not in data
