"""rjtrial.victims: binary victim outcomes, ANCOVA of stress scores, clinical thresholds.

Agreement with R (lm, the 2x2 formulas and metafor::escalc) is in
tests/validation/test_frequency_compliance_r.py.
"""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rjtrial.victims as victims
from rjtrial.errors import DataError
from rjtrial.frequency import risk_difference, risk_ratio
from rjtrial.victims import above_threshold, ancova, binary_outcome

TRIAL = pd.read_csv(Path(__file__).resolve().parent / "reference" / "frequency_trial.csv")


def test_docstring_examples_run():
    result = doctest.testmod(victims, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_binary_outcome_matches_the_frequency_measures():
    res = binary_outcome(TRIAL, outcome="victim_satisfied", group="arm")
    assert res.risk_difference == risk_difference(TRIAL, outcome="victim_satisfied", group="arm")
    assert res.risk_ratio == risk_ratio(TRIAL, outcome="victim_satisfied", group="arm")
    table = res.summary_frame()
    assert table.index.tolist() == ["risk_difference", "risk_ratio"]
    assert list(table.columns) == ["estimate", "std_error", "ci_lower", "ci_upper", "statistic", "p_value"]
    assert table.attrs["alpha"] == 0.05
    props = res.proportions_frame()
    assert props["group"].tolist() == ["control", "rj"]
    assert props["proportion"].tolist() == pytest.approx(TRIAL.groupby("arm")["victim_satisfied"].mean().tolist())
    assert "victim_satisfied by arm" in str(res)


def test_above_threshold_counts_scores_equal_to_the_threshold():
    df = pd.DataFrame({"arm": ["c", "c", "t", "t"], "ies": [25, 24.9, 25.0, 10]})
    res = above_threshold(df, score="ies", group="arm")
    assert res.proportions_frame()["events"].tolist() == [1, 1]
    assert res.outcome == "ies >= 25"
    higher = above_threshold(df, score="ies", group="arm", threshold=30)
    assert higher.proportions_frame()["events"].tolist() == [0, 0]
    assert higher.risk_ratio.correction == 0.5


def test_above_threshold_equals_binary_outcome_on_the_dichotomised_score():
    direct = above_threshold(TRIAL, score="ies_followup", group="arm")
    by_hand = binary_outcome(TRIAL.assign(high=TRIAL["ies_followup"] >= 25), outcome="high", group="arm")
    assert direct.risk_difference == by_hand.risk_difference


def test_ancova_agrees_with_statsmodels_formula():
    import statsmodels.formula.api as smf

    res = ancova(TRIAL, outcome="ies_followup", baseline="ies_baseline", group="arm", covariates=["site"])
    ref = smf.ols("ies_followup ~ arm + ies_baseline + site", data=TRIAL).fit()
    names = res.params_.index  # patsy puts categorical terms first; the names are the same
    np.testing.assert_allclose(res.params_.to_numpy(), ref.params[names].to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(res.summary_frame()["std_error"], ref.bse[names].to_numpy(), rtol=1e-10)
    assert res.estimate == pytest.approx(ref.params["arm[T.rj]"])
    assert res.df_resid_ == int(ref.df_resid) and res.r_squared_ == pytest.approx(ref.rsquared)
    assert res.summary_frame().attrs == {"alpha": 0.05, "df_resid": 495}


def test_ancova_with_baseline_identical_across_arms_is_the_difference_in_means():
    df = pd.DataFrame({"arm": ["c"] * 3 + ["t"] * 3, "before": [10, 20, 30] * 2, "after": [12, 21, 33, 8, 18, 28]})
    res = ancova(df, outcome="after", baseline="before", group="arm")
    means = res.means_frame().set_index("group")["outcome_mean"]
    assert res.estimate == pytest.approx(means["t"] - means["c"])


def test_ancova_three_arms_has_no_scalar_effect():
    df = TRIAL.assign(arm=np.where(TRIAL["id"] % 3 == 0, "indirect", TRIAL["arm"]))
    res = ancova(df, outcome="ies_followup", baseline="ies_baseline", group="arm")
    assert res.summary_frame()["term"].tolist()[:3] == ["Intercept", "arm[T.indirect]", "arm[T.rj]"]
    with pytest.raises(ValueError, match="summary_frame"):
        res.estimate


def test_ancova_result_follows_the_result_convention():
    # A frozen dataclass with format() and a JSON-ready to_dict() (CONTRIBUTING.md, "Result objects").
    import dataclasses
    import json

    res = ancova(TRIAL, outcome="ies_followup", baseline="ies_baseline", group="arm")
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.n = 0
    assert str(res) == res.format() and res.format().startswith("ANCOVA of ies_followup")
    data = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert data["n"] == len(TRIAL) and data["df_resid_"] == res.df_resid_
    assert [row["term"] for row in data["summary"]] == ["Intercept", "arm[T.rj]", "ies_baseline"]
    assert [row["group"] for row in data["means"]] == ["control", "rj"]


@pytest.mark.parametrize(
    "call, column, message",
    [
        (
            lambda d: binary_outcome(
                d.assign(victim_satisfied=d["victim_satisfied"].where(d["id"] != 9)),
                outcome="victim_satisfied",
                group="arm",
            ),
            "victim_satisfied",
            "missing",
        ),
        (
            lambda d: binary_outcome(d.assign(victim_fearful="yes"), outcome="victim_fearful", group="arm"),
            "victim_fearful",
            "0/1",
        ),
        (lambda d: binary_outcome(d.assign(arm="control"), outcome="victim_fearful", group="arm"), "arm", "two groups"),
        (
            lambda d: ancova(
                d.assign(ies_baseline=d["ies_baseline"].astype(str)),
                outcome="ies_followup",
                baseline="ies_baseline",
                group="arm",
            ),
            "ies_baseline",
            "numeric",
        ),
        (lambda d: ancova(d, outcome="ies", baseline="ies_baseline", group="arm"), "ies", "no column"),
        (
            lambda d: above_threshold(d.assign(ies_followup=np.nan), score="ies_followup", group="arm"),
            "ies_followup",
            "missing",
        ),
    ],
)
def test_bad_input_names_the_column(call, column, message):
    with pytest.raises(DataError, match=message) as info:
        call(TRIAL)
    assert info.value.column == column


def test_bad_threshold():
    with pytest.raises(ValueError, match="threshold"):
        above_threshold(TRIAL, score="ies_followup", group="arm", threshold="25")


def test_a_yes_no_coding_is_read_only_when_stated():
    as_words = TRIAL.assign(victim_satisfied=TRIAL["victim_satisfied"].map({1: "yes", 0: "no"}))
    with pytest.raises(DataError, match="coding="):
        binary_outcome(as_words, outcome="victim_satisfied", group="arm")
    stated = binary_outcome(as_words, outcome="victim_satisfied", group="arm", coding={"yes": True, "no": False})
    expected = binary_outcome(TRIAL, outcome="victim_satisfied", group="arm")
    pd.testing.assert_frame_equal(stated.summary_frame(), expected.summary_frame())


def test_answers_read_from_a_csv_with_a_blank_are_read_after_the_blank_is_dropped(tmp_path):
    # a blank makes pandas read a True/False column as objects; the rows answered are still booleans
    path = tmp_path / "victims.csv"
    TRIAL.assign(victim_satisfied=TRIAL["victim_satisfied"].astype(bool)).to_csv(path, index=False)
    text = path.read_text().splitlines()
    header = text[0].split(",")
    at = header.index("victim_satisfied")
    cells = text[3].split(",")
    cells[at] = ""
    text[3] = ",".join(cells)
    path.write_text("\n".join(text) + "\n")
    read = pd.read_csv(path)
    assert read["victim_satisfied"].dtype == object
    answered = read.dropna(subset=["victim_satisfied"])
    res = binary_outcome(answered, outcome="victim_satisfied", group="arm")
    expected = binary_outcome(TRIAL.drop(index=2), outcome="victim_satisfied", group="arm")
    pd.testing.assert_frame_equal(res.summary_frame(), expected.summary_frame())
