"""rjtrial.effects.measures: every measure by name, and na_action on every effects function."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rjtrial import effects
from rjtrial.errors import DataError, RjtrialWarning

STUDIES = ["Canberra", "Leeds", "London"]
TWO_BY_TWO = dict(
    events_treatment=[12, 6, 30], n_treatment=[60, 40, 110], events_control=[18, 9, 41], n_control=[62, 41, 108]
)
MEANS = dict(
    mean_treatment=[3.1, 2.2, 5.0],
    sd_treatment=[2.5, 1.9, 3.3],
    n_treatment=[60, 40, 110],
    mean_control=[4.0, 2.8, 5.6],
    sd_control=[2.9, 2.0, 3.1],
    n_control=[62, 41, 108],
)
RATES = dict(
    events_treatment=[20, 11, 52],
    person_time_treatment=[55.0, 38.5, 101.0],
    events_control=[31, 15, 60],
    person_time_control=[57.0, 40.0, 99.5],
)
CHANGE = dict(
    mean_before=[4.1, 3.0, 6.2],
    mean_after=[3.0, 2.6, 5.1],
    sd_before=[2.6, 2.1, 3.0],
    sd_after=[2.4, 2.2, 3.1],
    correlation=[0.5, 0.6, 0.4],
    n=[60, 40, 110],
)
INPUTS = {
    **{
        name: TWO_BY_TWO
        for name in (
            "log_odds_ratio",
            "log_risk_ratio",
            "risk_difference",
            "peto_log_odds_ratio",
            "arcsine_risk_difference",
        )
    },
    **{name: MEANS for name in ("mean_difference", "hedges_g", "cohens_d", "log_ratio_of_means")},
    "standardised_mean_change_change_score": CHANGE,
    "standardised_mean_change_raw_score": {k: v for k, v in CHANGE.items() if k != "sd_after"},
    "correlation": dict(correlation=[0.2, -0.1, 0.35], n=[60, 40, 110]),
    "fisher_z": dict(correlation=[0.2, -0.1, 0.35], n=[60, 40, 110]),
    **{
        name: dict(events=[12, 6, 30], n=[60, 40, 110])
        for name in (
            "proportion",
            "log_proportion",
            "logit_proportion",
            "arcsine_proportion",
            "freeman_tukey_proportion",
        )
    },
    **{
        name: dict(events=[20, 11, 52], person_time=[55.0, 38.5, 101.0])
        for name in ("incidence_rate", "log_incidence_rate")
    },
    "log_incidence_rate_ratio": RATES,
    "incidence_rate_difference": RATES,
    "log_hazard_ratio": dict(hazard_ratio=[0.8, 0.7, 0.9], ci_lower=[0.6, 0.5, 0.75], ci_upper=[1.07, 0.98, 1.08]),
}
NAMES = sorted(effects.MEASURES)


def test_every_measure_has_example_inputs():
    assert set(INPUTS) == set(effects.MEASURES)


@pytest.mark.parametrize("measure", NAMES)
def test_each_measure_by_name_is_its_function(measure):
    entry = effects.MEASURES[measure]
    es = effects.effect_size(measure=measure, **INPUTS[measure], study=STUDIES)
    direct = entry.function(**INPUTS[measure], **entry.options, study=STUDIES)
    assert es.attrs["measure"] == measure
    assert list(es.index) == STUDIES and list(es.columns[:2]) == ["estimate", "variance"]
    pd.testing.assert_frame_equal(es, direct)
    assert (es["variance"] > 0).all() and es["estimate"].notna().all()


@pytest.mark.parametrize("measure", NAMES)
def test_a_missing_input_is_omitted_counted_and_named(measure):
    inputs = {key: list(value) for key, value in INPUTS[measure].items()}
    first = next(iter(inputs))
    inputs[first][1] = np.nan
    with pytest.warns(RjtrialWarning, match=rf"1 of 3 studies omitted .*Leeds \({first}\)"):
        es = effects.effect_size(measure=measure, **inputs, study=STUDIES)
    assert np.isnan(es.loc["Leeds", "estimate"]) and np.isnan(es.loc["Leeds", "variance"])
    assert es.drop(index="Leeds")[["estimate", "variance"]].notna().all().all()
    assert es.attrs["n_omitted"] == 1 and es.attrs["omitted"] == [{"study": "Leeds", "column": first}]


@pytest.mark.parametrize("measure", NAMES)
def test_a_missing_input_raises_naming_row_and_column_on_request(measure):
    inputs = {key: list(value) for key, value in INPUTS[measure].items()}
    last = list(inputs)[-1]
    inputs[last][2] = None
    with pytest.raises(DataError, match="missing value") as info:
        effects.effect_size(measure=measure, **inputs, study=STUDIES, na_action="raise")
    assert info.value.row == "London" and info.value.column == last and info.value.table == "effects"


def test_omitted_studies_leave_the_others_unchanged():
    full = effects.proportion(events=[12, 6, 30], n=[60, 40, 110], variance_type="AV")
    with pytest.warns(RjtrialWarning):
        part = effects.proportion(events=[12, np.nan, 30], n=[60, 40, 110], variance_type="AV")
    alone = effects.proportion(events=[12, 30], n=[60, 110], variance_type="AV")
    # the average proportion of "AV" is over the studies used, as escalc's .wmean(na.rm = TRUE)
    np.testing.assert_array_equal(part["variance"].dropna().to_numpy(), alone["variance"].to_numpy())
    assert not np.allclose(full["variance"].to_numpy()[[0, 2]], alone["variance"].to_numpy())


def test_an_escalc_code_names_the_measure_to_use():
    with pytest.raises(ValueError, match="R escalc's 'ROM' is measure='log_ratio_of_means'"):
        effects.effect_size(measure="ROM", **MEANS)
    with pytest.raises(ValueError, match="choose one of 'log_odds_ratio'"):
        effects.effect_size(measure="odds", **TWO_BY_TWO)


def test_an_input_the_measure_does_not_take_is_named():
    with pytest.raises(ValueError, match="measure='proportion' \\(proportion\\).*events_treatment"):
        effects.effect_size(measure="proportion", events=[1], events_treatment=[1], n=[10])


def test_a_fixed_option_cannot_be_overridden():
    with pytest.raises(ValueError, match="fixes standardiser"):
        effects.effect_size(measure="standardised_mean_change_raw_score", **CHANGE, standardiser="change_score")


def test_escalc_codes_are_unique():
    codes = [m.escalc for m in effects.MEASURES.values() if m.escalc]
    assert len(codes) == len(set(codes))
