"""rjtrial.effects.correlations: correlations and Fisher's z (agreement with R is in tests/validation/)."""

from __future__ import annotations

import numpy as np
import pytest

from rjtrial import effects
from rjtrial.errors import DataError

FUNCTIONS = [effects.correlation, effects.fisher_z]
STUDIES = ["Canberra", "Leeds"]


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize(
    "r,n,column,text",
    [
        (1.2, 50, "correlation", "not in \\[-1, 1\\]"),
        (0.3, 3, "n", "at least 4 participants"),
        (0.3, -10, "n", "at least 4 participants"),
        (np.nan, 50, "correlation", "missing value"),
    ],
)
def test_bad_inputs_name_the_study(function, r, n, column, text):
    with pytest.raises(DataError, match=text) as info:
        function(correlation=[0.2, r], n=[40, n], study=STUDIES, na_action="raise")
    assert info.value.row == "Leeds" and info.value.column == column


@pytest.mark.parametrize(
    "function,text", [(effects.correlation, "sampling variance is 0"), (effects.fisher_z, "infinite Fisher's z")]
)
def test_a_perfect_correlation_cannot_be_pooled(function, text):
    with pytest.raises(DataError, match=text) as info:
        function(correlation=[0.2, -1.0], n=[40, 30], study=STUDIES)
    assert info.value.row == "Leeds"


def test_fisher_z_back_transforms_with_tanh():
    es = effects.fisher_z(correlation=[0.2, -0.45], n=[40, 30])
    np.testing.assert_allclose(np.tanh(es["estimate"]), [0.2, -0.45], rtol=1e-15)
    np.testing.assert_allclose(es["variance"], [1 / 37, 1 / 27], rtol=1e-15)


def test_average_variance_type_uses_the_weighted_mean_correlation():
    es = effects.correlation(correlation=[0.2, -0.4], n=[40, 60], variance_type="AV")
    mean = (0.2 * 40 - 0.4 * 60) / 100
    np.testing.assert_allclose(es["variance"], (1 - mean**2) ** 2 / np.array([39, 59]), rtol=1e-15)
    with pytest.raises(ValueError, match="choose one of 'LS', 'AV'"):
        effects.correlation(correlation=[0.2], n=[40], variance_type="UB")
