"""rjtrial.monitor.spending: the spending functions and how their names are read."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from rjtrial.monitor import SpendingFunction, spending_function

NAMES = ["obrien-fleming", "pocock", "hsd:-4", "hsd:0", "hsd:1", "kim-demets:3"]


@pytest.mark.parametrize("name", NAMES)
def test_spends_nothing_at_the_start_and_the_whole_level_at_the_end(name):
    f = spending_function(name)
    t = np.linspace(0, 1, 101)
    spent = f.cumulative(t, 0.05)
    assert spent[0] == 0 and spent[-1] == pytest.approx(0.05, abs=1e-15)
    assert np.all(np.diff(spent) > 0)


@pytest.mark.parametrize(
    "name, t, expected",
    [
        ("obrien-fleming", 0.5, 2 * stats.norm.sf(stats.norm.isf(0.025 / 2) / np.sqrt(0.5))),
        ("pocock", 0.5, 0.025 * np.log(1 + (np.e - 1) * 0.5)),
        ("hsd:-4", 0.5, 0.025 * (1 - np.exp(2.0)) / (1 - np.exp(4.0))),
        ("hsd:0", 0.3, 0.025 * 0.3),
        ("kim-demets:3", 0.5, 0.025 * 0.125),
    ],
)
def test_formulas(name, t, expected):
    assert float(spending_function(name).cumulative(t, 0.025)) == pytest.approx(expected, rel=1e-12)


def test_two_sided_obrien_fleming_spends_each_side_half():
    f = spending_function("obrien-fleming")
    t = np.array([0.2, 0.5, 0.9])
    np.testing.assert_allclose(f.cumulative(t, 0.05, sides=2), 2 * f.cumulative(t, 0.025), rtol=1e-14)
    pocock = spending_function("pocock")
    np.testing.assert_allclose(pocock.cumulative(t, 0.05, sides=2), pocock.cumulative(t, 0.05), rtol=1e-14)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("OBRIEN-FLEMING", SpendingFunction("obrien-fleming")),
        ("of", SpendingFunction("obrien-fleming")),
        ("hsd:-2", SpendingFunction("hsd", -2.0)),
        ("kd:2", SpendingFunction("kim-demets", 2.0)),
    ],
)
def test_names(name, expected):
    assert spending_function(name) == expected
    assert spending_function(expected) is expected


@pytest.mark.parametrize(
    "name, message",
    [
        ("linear", "must be one of obrien-fleming, pocock, hsd:GAMMA"),
        ("", "must be one of"),
        (None, "must be one of"),
        ("hsd", "hsd needs its GAMMA, e.g. hsd:-4"),
        ("hsd:minus four", "hsd needs its GAMMA"),
        ("hsd:nan", "must be a number between -50 and 50"),
        ("kim-demets:0", "must be a positive number"),
        ("pocock:2", "pocock takes no parameter"),
    ],
)
def test_bad_names_are_one_clear_error(name, message):
    with pytest.raises(ValueError, match=message):
        spending_function(name, option="spending")


def test_the_option_is_named():
    with pytest.raises(ValueError, match="^futility: "):
        spending_function("hsd", option="futility")
