"""rjtrial.effects.proportions: single proportions (agreement with R is in tests/validation/)."""

from __future__ import annotations

import numpy as np
import pytest

from rjtrial import effects
from rjtrial.errors import DataError

FUNCTIONS = [
    effects.proportion,
    effects.log_proportion,
    effects.logit_proportion,
    effects.arcsine_proportion,
    effects.freeman_tukey_proportion,
]
STUDIES = ["Canberra", "Leeds", "London"]


def _inputs(**changes):
    base = dict(events=[12, 6, 30], n=[60, 40, 110])
    for key, (position, value) in changes.items():
        base[key] = list(base[key])
        base[key][position] = value
    return base


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize(
    "changes,column,text",
    [
        (dict(events=(1, -1)), "events", "negative count"),
        (dict(events=(2, 111)), "events", "111 events exceed n = 110"),
        (dict(events=(0, 2.5)), "events", "whole number"),
        (dict(n=(1, 0), events=(1, 0)), "n", "sample size must be positive"),
        (dict(n=(2, 110.5)), "n", "whole number"),
        (dict(events=(1, "six")), "events", "must be numeric, found 'six'"),
        (dict(n=(2, np.inf)), "n", "not finite"),
    ],
)
def test_bad_counts_name_the_study_row_and_column(function, changes, column, text):
    with pytest.raises(DataError, match=text) as info:
        function(**_inputs(**changes), study=STUDIES)
    assert info.value.row == STUDIES[next(iter(changes.values()))[0]] and info.value.column == column


@pytest.mark.parametrize(
    "function,variance_type",
    [(effects.proportion, "HO"), (effects.log_proportion, "UB"), (effects.logit_proportion, "LS2")],
)
def test_unknown_variance_type_lists_the_options(function, variance_type):
    with pytest.raises(ValueError, match="choose one of 'LS'"):
        function(**_inputs(), variance_type=variance_type)


@pytest.mark.parametrize(
    "options,text",
    [
        (dict(to="only0"), "'only_zero', 'all'"),
        (dict(add=-0.5), "non-negative"),
        (dict(add=float("nan")), "non-negative"),
        (dict(add=True), "non-negative"),
    ],
)
def test_bad_correction_options(options, text):
    with pytest.raises(ValueError, match=text):
        effects.proportion(**_inputs(), **options)


@pytest.mark.parametrize(
    "function,text",
    [
        (effects.log_proportion, "log proportion is undefined"),
        (effects.logit_proportion, "logit of the proportion is undefined"),
        (effects.proportion, "sampling variance is 0"),
    ],
)
def test_a_zero_count_left_uncorrected_names_the_study(function, text):
    with pytest.raises(DataError, match=text) as info:
        function(**_inputs(events=(1, 0)), study=STUDIES, to="none")
    assert info.value.row == "Leeds"


def test_only_events_left_uncorrected_has_no_variance():
    with pytest.raises(DataError, match="sampling variance is 0") as info:
        effects.log_proportion(events=[40], n=[40], to="none", study=["Leeds"])
    assert info.value.row == "Leeds"


@pytest.mark.parametrize("function", [effects.arcsine_proportion, effects.freeman_tukey_proportion])
def test_the_arcsine_transformations_need_no_correction(function):
    es = function(events=[0, 40], n=[40, 40])
    assert es.attrs["zero_cell_correction"] == {"add": 0.0, "to": "only_zero"}
    assert np.isfinite(es["estimate"]).all() and (es["variance"] == es["variance"].iloc[0]).all()


def test_if_any_zero_corrects_every_study():
    es = effects.proportion(events=[0, 10], n=[20, 20], to="if_any_zero")
    np.testing.assert_allclose(es["estimate"], [0.5 / 21, 10.5 / 21], rtol=1e-15)
    untouched = effects.proportion(events=[5, 10], n=[20, 20], to="if_any_zero")
    np.testing.assert_allclose(untouched["estimate"], [0.25, 0.5], rtol=1e-15)


def test_inputs_come_back_as_given():
    es = effects.logit_proportion(**_inputs(events=(0, 0)))
    assert es["events"].tolist() == [0, 6, 30] and es["n"].tolist() == [60, 40, 110]
    assert es.attrs["variance_type"] == "LS"
