"""rjtrial.effects.conversions between d, log odds ratios, correlations and Fisher's z."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rjtrial import effects
from rjtrial.errors import RjtrialWarning

MEANS = dict(
    mean_treatment=[3.1, 2.2],
    sd_treatment=[2.5, 1.9],
    n_treatment=[60, 14],
    mean_control=[4.0, 2.8],
    sd_control=[2.9, 2.0],
    n_control=[62, 30],
)


def _frame(measure, estimate, variance, **columns):
    frame = pd.DataFrame({"estimate": estimate, "variance": variance, **columns})
    frame.attrs["measure"] = measure
    return frame


def test_the_point_biserial_correlation_uses_the_group_sizes():
    d = effects.cohens_d(**MEANS)
    r = effects.d_to_correlation(d)
    n1, n2 = np.array(MEANS["n_treatment"]), np.array(MEANS["n_control"])
    h = (n1 + n2 - 2) * (1 / n1 + 1 / n2)
    np.testing.assert_allclose(r["estimate"], d["estimate"] / np.sqrt(d["estimate"] ** 2 + h), rtol=1e-15)
    assert "group sizes" in r.attrs["conversion"]
    equal = effects.d_to_correlation(d, n_treatment=[50, 50], n_control=[50, 50])
    assert not np.allclose(equal["estimate"], r["estimate"])


def test_hedges_g_without_group_sizes_cannot_be_converted():
    g = _frame("hedges_g", [0.3], [0.05])
    with pytest.raises(ValueError, match="needs the group sizes"):
        effects.d_to_correlation(g)
    with pytest.raises(ValueError, match="give both n_treatment and n_control"):
        effects.d_to_correlation(g, n_treatment=[20])


@pytest.mark.parametrize(
    "function,measure",
    [
        (effects.d_to_correlation, "correlation"),
        (effects.correlation_to_d, "hedges_g"),
        (effects.correlation_to_fisher_z, "fisher_z"),
        (effects.fisher_z_to_correlation, "correlation"),
        (effects.log_odds_ratio_to_correlation, "cohens_d"),
        (effects.correlation_to_log_odds_ratio, "fisher_z"),
    ],
)
def test_each_conversion_checks_the_measure_it_is_given(function, measure):
    with pytest.raises(ValueError, match=f"effects hold measure '{measure}'"):
        function(_frame(measure, [0.3], [0.05], n=[40]))


def test_fisher_z_needs_sample_sizes():
    with pytest.raises(ValueError, match="needs the sample sizes"):
        effects.correlation_to_fisher_z(_frame("correlation", [0.3], [0.02]))
    with pytest.raises(ValueError, match="above 3"):
        effects.correlation_to_fisher_z(_frame("correlation", [0.3], [0.02]), n=[3])
    z = effects.correlation_to_fisher_z(effects.d_to_correlation(effects.cohens_d(**MEANS)))
    np.testing.assert_allclose(z["variance"], 1 / (np.array([122, 44]) - 3), rtol=1e-15)


def test_a_perfect_correlation_has_no_d_or_z():
    with pytest.raises(ValueError, match="no finite d"):
        effects.correlation_to_d(_frame("correlation", [1.0], [0.0]))
    with pytest.raises(ValueError, match="infinite Fisher's z"):
        effects.correlation_to_fisher_z(_frame("correlation", [-1.0], [0.0], n=[20]))


def test_omitted_studies_stay_counted_through_a_conversion():
    with pytest.warns(RjtrialWarning):
        r = effects.correlation(correlation=[0.3, np.nan, 0.1], n=[40, 50, 60])
    z = effects.correlation_to_fisher_z(r)
    assert np.isnan(z["estimate"][1]) and np.isnan(z["variance"][1])
    assert z.attrs["n_omitted"] == 1 and z.attrs["omitted"] == r.attrs["omitted"]
    back = effects.fisher_z_to_correlation(z)
    np.testing.assert_allclose(back["estimate"], r["estimate"], rtol=1e-15)
    assert back.attrs["n_omitted"] == 1


def test_log_odds_ratios_to_correlations_and_back():
    lor = effects.log_odds_ratio(
        events_treatment=[12, 6], n_treatment=[60, 40], events_control=[18, 9], n_control=[62, 41]
    )
    r = effects.log_odds_ratio_to_correlation(lor)
    assert r.attrs["measure"] == "correlation" and r.attrs["converted_from"] == "log_odds_ratio"
    back = effects.correlation_to_log_odds_ratio(r)
    np.testing.assert_allclose(back["estimate"], lor["estimate"], rtol=1e-14)
    np.testing.assert_allclose(back["variance"], lor["variance"], rtol=1e-14)
