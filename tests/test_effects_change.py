"""rjtrial.effects.change: standardised mean change (agreement with R is in tests/validation/)."""

from __future__ import annotations

import numpy as np
import pytest

from rjtrial import effects
from rjtrial.errors import DataError

STUDIES = ["Canberra", "Leeds"]
CHANGE = dict(
    mean_before=[4.1, 3.0],
    mean_after=[3.0, 2.6],
    sd_before=[2.6, 2.1],
    sd_after=[2.4, 2.2],
    correlation=[0.5, 0.6],
    n=[60, 40],
)


@pytest.mark.parametrize(
    "standardiser,absent,text",
    [
        ("raw_score", "correlation", "needs correlation"),
        ("raw_score", "sd_before", "needs sd_before"),
        ("change_score", "sd_after", "needs sd_after \\(or sd_change\\)"),
    ],
)
def test_what_the_standardiser_needs_is_named(standardiser, absent, text):
    inputs = {k: v for k, v in CHANGE.items() if k != absent}
    with pytest.raises(ValueError, match=text):
        effects.standardised_mean_change(**inputs, standardiser=standardiser)


@pytest.mark.parametrize(
    "options,text",
    [
        (dict(standardiser="pooled"), "'raw_score', 'change_score'"),
        (dict(variance_type="UB"), "choose one of 'LS', 'LS2'"),
    ],
)
def test_unknown_options_list_the_choices(options, text):
    with pytest.raises(ValueError, match=text):
        effects.standardised_mean_change(**CHANGE, **options)


@pytest.mark.parametrize(
    "changes,column,text",
    [
        (dict(correlation=[0.5, 1.5]), "correlation", "not in \\[-1, 1\\]"),
        (dict(n=[60, 2]), "n", "at least 3 participants"),
        (dict(sd_before=[2.6, -2.1]), "sd_before", "negative standard deviation"),
        (dict(sd_before=[2.6, 0.0]), "sd_before", "standardiser \\(an SD\\) is 0"),
    ],
)
def test_bad_inputs_name_the_study(changes, column, text):
    with pytest.raises(DataError, match=text) as info:
        effects.standardised_mean_change(**{**CHANGE, **changes}, study=STUDIES)
    assert info.value.row == "Leeds" and info.value.column == column


def test_identical_occasions_have_no_change_score_sd():
    with pytest.raises(DataError, match="standardiser \\(an SD\\) is 0") as info:
        effects.standardised_mean_change(
            **{**CHANGE, "sd_after": [2.4, 2.1], "correlation": [0.5, 1.0]}, standardiser="change_score", study=STUDIES
        )
    assert info.value.row == "Leeds"


def test_a_fall_in_offending_is_a_negative_change():
    es = effects.standardised_mean_change(**CHANGE)
    assert (es["estimate"] < 0).all()
    assert es.attrs["measure"] == "standardised_mean_change_raw_score"


def test_the_difference_names_the_arms_columns():
    arms = {f"{k}_{arm}": v for arm in ("treatment", "control") for k, v in CHANGE.items()}
    arms["correlation_control"] = [0.5, -1.2]
    with pytest.raises(DataError, match="not in \\[-1, 1\\]") as info:
        effects.standardised_mean_change_difference(**arms, study=STUDIES)
    assert info.value.column == "correlation_control" and info.value.row == "Leeds"
    del arms["sd_before_control"]
    with pytest.raises(ValueError, match="needs sd_before_control"):
        effects.standardised_mean_change_difference(**arms)


def test_the_difference_is_treatment_minus_control_with_summed_variances():
    arms = {f"{k}_{arm}": v for arm in ("treatment", "control") for k, v in CHANGE.items()}
    arms["mean_after_control"] = [4.3, 3.1]
    es = effects.standardised_mean_change_difference(**arms, standardiser="change_score")
    treatment = effects.standardised_mean_change(**CHANGE, standardiser="change_score")
    control = effects.standardised_mean_change(**{**CHANGE, "mean_after": [4.3, 3.1]}, standardiser="change_score")
    np.testing.assert_allclose(es["estimate"], treatment["estimate"] - control["estimate"], rtol=1e-15)
    np.testing.assert_allclose(es["variance"], treatment["variance"] + control["variance"], rtol=1e-15)
    assert es.attrs["measure"] == "standardised_mean_change_difference_change_score"
