"""rjtrial.effects.rates: one-arm incidence rates and the rate difference (agreement with R in tests/validation/)."""

from __future__ import annotations

import numpy as np
import pytest

from rjtrial import effects
from rjtrial.errors import DataError

STUDIES = ["Canberra", "Leeds"]


@pytest.mark.parametrize("function", [effects.incidence_rate, effects.log_incidence_rate])
@pytest.mark.parametrize(
    "events,time,column,text",
    [
        (-1, 40.0, "events", "negative count"),
        (2.5, 40.0, "events", "whole number"),
        (3, 0.0, "person_time", "person-time must be positive"),
    ],
)
def test_bad_inputs_name_the_study(function, events, time, column, text):
    with pytest.raises(DataError, match=text) as info:
        function(events=[4, events], person_time=[55.0, time], study=STUDIES)
    assert info.value.row == "Leeds" and info.value.column == column


def test_no_events_are_corrected_by_default_and_an_error_without():
    es = effects.log_incidence_rate(events=[4, 0], person_time=[55.0, 40.0])
    np.testing.assert_allclose(es["estimate"], np.log([4 / 55, 0.5 / 40]), rtol=1e-15)
    with pytest.raises(DataError, match="leave the log rate undefined") as info:
        effects.log_incidence_rate(events=[4, 0], person_time=[55.0, 40.0], to="none", study=STUDIES)
    assert info.value.row == "Leeds"
    with pytest.raises(DataError, match="sampling variance is 0"):
        effects.incidence_rate(events=[4, 0], person_time=[55.0, 40.0], to="none", study=STUDIES)


def test_rate_difference_corrections_and_double_zero():
    es = effects.incidence_rate_difference(
        events_treatment=[0, 0],
        person_time_treatment=[50.0, 60.0],
        events_control=[3, 0],
        person_time_control=[45.0, 62.0],
        drop_double_zero=True,
    )
    assert es.loc[0, "estimate"] == pytest.approx(0.5 / 50 - 3.5 / 45, rel=1e-15)
    assert np.isnan(es.loc[1, "estimate"]) and np.isnan(es.loc[1, "variance"])
    with pytest.raises(DataError, match="sampling variance is 0"):
        effects.incidence_rate_difference(
            events_treatment=[0],
            person_time_treatment=[50.0],
            events_control=[0],
            person_time_control=[45.0],
            to="none",
        )
