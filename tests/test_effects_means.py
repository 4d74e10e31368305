"""rjtrial.effects.means: mean differences and log ratios of means (agreement with R is in tests/validation/)."""

from __future__ import annotations

import numpy as np
import pytest

from rjtrial import effects
from rjtrial.errors import DataError

FUNCTIONS = [effects.mean_difference, effects.log_ratio_of_means]
STUDIES = ["Canberra", "Leeds"]
MEANS = dict(
    mean_treatment=[3.1, 2.2],
    sd_treatment=[2.5, 1.9],
    n_treatment=[60, 40],
    mean_control=[4.0, 2.8],
    sd_control=[2.9, 2.0],
    n_control=[62, 41],
)


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize(
    "changes,column,text",
    [
        (dict(sd_control=[2.9, -1.0]), "sd_control", "negative standard deviation"),
        (dict(n_treatment=[60, 0]), "n_treatment", "group size must be positive"),
        (dict(mean_treatment=[3.1, np.inf]), "mean_treatment", "not finite"),
        (dict(sd_treatment=[2.5, 0.0], sd_control=[2.9, 0.0]), None, "sampling variance is 0"),
    ],
)
def test_bad_inputs_name_the_study(function, changes, column, text):
    with pytest.raises(DataError, match=text) as info:
        function(**{**MEANS, **changes}, study=STUDIES)
    assert info.value.row == "Leeds" and info.value.column == column


@pytest.mark.parametrize("means", [(2.2, -2.8), (0.0, 2.8), (2.2, 0.0)])
def test_a_ratio_of_means_needs_non_zero_means_of_one_sign(means):
    with pytest.raises(DataError, match="same sign") as info:
        effects.log_ratio_of_means(
            **{**MEANS, "mean_treatment": [3.1, means[0]], "mean_control": [4.0, means[1]]}, study=STUDIES
        )
    assert info.value.row == "Leeds"


def test_two_negative_means_give_the_log_of_their_ratio_as_escalc():
    es = effects.log_ratio_of_means(**{**MEANS, "mean_treatment": [-3.1, -2.2], "mean_control": [-4.0, -2.8]})
    np.testing.assert_allclose(es["estimate"], np.log([3.1 / 4.0, 2.2 / 2.8]), rtol=1e-15)


@pytest.mark.parametrize(
    "function,variance_type", [(effects.mean_difference, "AV"), (effects.log_ratio_of_means, "UB")]
)
def test_unknown_variance_type_lists_the_options(function, variance_type):
    with pytest.raises(ValueError, match="choose one of 'LS', 'HO'"):
        function(**MEANS, variance_type=variance_type)


def test_homoscedastic_variance_uses_the_pooled_sd():
    es = effects.mean_difference(**MEANS, variance_type="HO")
    n1, n2 = np.array(MEANS["n_treatment"]), np.array(MEANS["n_control"])
    s1, s2 = np.array(MEANS["sd_treatment"]), np.array(MEANS["sd_control"])
    pooled = ((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (n1 + n2 - 2)
    np.testing.assert_allclose(es["variance"], pooled * (1 / n1 + 1 / n2), rtol=1e-15)
    assert es.attrs == {**es.attrs, "measure": "mean_difference", "variance_type": "HO"}


def test_a_group_of_one_on_each_side_has_no_pooled_variance():
    with pytest.raises(DataError, match="more than two participants"):
        effects.mean_difference(
            **{**MEANS, "n_treatment": [60, 1], "n_control": [62, 1]}, variance_type="HO", study=STUDIES
        )


def test_hedges_g_variance_types_and_cohens_d():
    ls = effects.hedges_g(**MEANS)
    for variance_type in ("LS2", "UB", "AV"):
        other = effects.hedges_g(**MEANS, variance_type=variance_type)
        np.testing.assert_array_equal(other["estimate"], ls["estimate"])
        assert not np.allclose(other["variance"], ls["variance"], rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="Cohen's d has the large-sample variance only"):
        effects.smd_from_t(
            t_statistic=[2.0], n_treatment=[20], n_control=[20], small_sample_correction=False, variance_type="UB"
        )
