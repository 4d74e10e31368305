"""rjtrial.monitor.look: an interim look's statistic, boundary, decision and conditional power.

The numbers are held to R rpact in tests/validation/test_rpact_group_sequential.py; here: the
inputs a look refuses, each decision, the statistic's sign from a follow-up table, the final look,
and the boundaries of earlier looks being the ones that were used.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from rjtrial.errors import DataError
from rjtrial.monitor import InterimLook, design, look


@pytest.fixture(scope="module")
def two_sided():
    return design(3, spending="obrien-fleming", alpha=0.05, power=0.8, hazard_ratio=0.8)


@pytest.fixture(scope="module")
def one_sided():
    return design(3, spending="obrien-fleming", alpha=0.025, alternative="less", futility="obrien-fleming")


@pytest.fixture(scope="module")
def binding():
    return design(
        3, spending="obrien-fleming", alpha=0.025, alternative="less", futility="obrien-fleming", binding=True
    )


def _quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return look(*args, **kwargs)


# ------------------------------------------------------------------------------ refused inputs
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "give a follow-up table, or both events= and statistic="),
        ({"events": 200}, "give a follow-up table, or both"),
        ({"events": 0, "statistic": -1.0}, "events must be a whole number of at least 1"),
        ({"events": 20.5, "statistic": -1.0}, "events must be a whole number"),
        ({"events": 200, "statistic": float("nan")}, "statistic must be a finite number"),
        ({"events": 200, "statistic": "-2"}, "statistic must be a finite number"),
        ({"events": 200, "statistic": -1.0, "previous_events": [250]}, "events must increase from look to look"),
        (
            {"events": 500, "statistic": -1.0, "previous_events": [200, 300, 400]},
            "the design has 3 looks; this would be look 4",
        ),
        ({"events": 700, "statistic": -1.0, "previous_events": [650]}, "an earlier look reached the design's maximum"),
        (
            {"events": 600, "statistic": -1.0, "previous_events": [200, 400], "final": False},
            "look 3 is the design's last",
        ),
        ({"events": 640, "statistic": -1.0, "final": False}, "reached the design's maximum"),
    ],
)
def test_bad_inputs_are_one_clear_error(two_sided, kwargs, message):
    with pytest.raises(ValueError, match=message):
        look(two_sided, **kwargs)


def test_a_table_and_numbers_together_are_refused(two_sided):
    table = pd.DataFrame({"time_at_risk": [1, 2, 3, 4], "event": [1, 0, 1, 1], "arm": ["control", "rj"] * 2})
    with pytest.raises(ValueError, match="not both"):
        look(two_sided, table, events=3, statistic=-1.0)


def test_a_design_is_required():
    with pytest.raises(TypeError, match="design must be a SequentialDesign"):
        look({"looks": 3}, events=10, statistic=-1.0)


def test_a_table_without_events_is_refused(two_sided):
    table = pd.DataFrame({"time_at_risk": [5, 6, 7, 8], "event": [0, 0, 0, 0], "arm": ["control", "rj"] * 2})
    with pytest.raises(DataError):
        look(two_sided, table)


def test_three_arms_are_refused(two_sided):
    table = pd.DataFrame({"time_at_risk": [1, 2, 3, 4, 5, 6], "event": [1, 1, 0, 1, 1, 0], "arm": ["a", "b", "c"] * 2})
    with pytest.raises(DataError, match="compares two arms; found 3"):
        look(two_sided, table)


# ------------------------------------------------------------------------------ decisions
@pytest.mark.parametrize("statistic, decision", [(-4.0, "efficacy"), (4.0, "harm"), (-1.0, "continue")])
def test_two_sided_decisions(two_sided, statistic, decision):
    result = look(two_sided, events=220, statistic=statistic)
    assert result.decision == decision
    assert result.stop == (decision != "continue")


@pytest.mark.parametrize("statistic, decision", [(-4.0, "efficacy"), (1.0, "futility"), (-1.0, "continue")])
def test_one_sided_decisions(one_sided, statistic, decision):
    result = _quiet(one_sided, events=240, statistic=statistic)
    assert result.decision == decision
    assert not math.isnan(result.futility_bound) and math.isnan(result.harm_hazard_ratio)


def test_a_non_binding_futility_bound_does_not_stop_a_binding_one_does(one_sided, binding):
    loose = look(one_sided, events=240, statistic=1.0)
    firm = look(binding, events=240, statistic=1.0)
    assert loose.decision == firm.decision == "futility"
    assert not loose.stop and firm.stop
    assert "the committee may continue" in loose.format()


def test_the_final_look_spends_all_the_alpha_and_has_no_conditional_power(two_sided):
    result = look(two_sided, events=600, statistic=-1.5, previous_events=[210, 420])
    assert result.final and result.decision == "no_effect_shown" and result.stop
    assert result.alpha_spent == pytest.approx(0.05, abs=1e-15)
    assert math.isnan(result.conditional_power_design) and math.isnan(result.conditional_power_trend)
    assert "final analysis 3 of 3" in result.format()


def test_over_running_the_maximum_makes_the_final_analysis(two_sided):
    with pytest.warns(UserWarning, match="reached the design's maximum"):
        result = look(two_sided, events=650, statistic=-2.2, previous_events=[300])
    assert result.final and result.decision == "efficacy"
    assert result.information_fraction > 1
    assert len(result.boundaries_frame()) == 2


def test_earlier_boundaries_are_the_ones_used_then(one_sided):
    first = look(one_sided, events=240, statistic=-1.0)
    second = look(one_sided, events=450, statistic=-1.5, previous_events=[240])
    frame = second.boundaries_frame()
    assert frame["status"].tolist() == ["done", "this look", "planned"]
    assert frame["critical_value"].iloc[0] == pytest.approx(first.critical_value, abs=1e-12)
    assert frame["futility_bound"].iloc[0] == pytest.approx(first.futility_bound, abs=1e-12)
    assert frame["events"].tolist()[:2] == [240.0, 450.0]


def test_a_look_later_than_planned_spends_more(two_sided):
    early, late = look(two_sided, events=150, statistic=0.0), look(two_sided, events=300, statistic=0.0)
    assert early.alpha_spent < late.alpha_spent and early.critical_value > late.critical_value


def test_conditional_power_follows_the_trend(two_sided):
    weak, strong = look(two_sided, events=300, statistic=-0.5), look(two_sided, events=300, statistic=-2.0)
    assert weak.conditional_power_trend < strong.conditional_power_trend
    assert weak.conditional_power_trend < weak.conditional_power_design
    assert 0 < weak.conditional_power_trend < 1


def test_repeated_interval_covers_the_estimate_and_is_wider_than_fixed(two_sided):
    result = look(two_sided, events=300, statistic=-1.8)
    assert result.ci_lower < result.hazard_ratio < result.ci_upper
    fixed = math.exp(-1.8 / math.sqrt(75) + 1.96 / math.sqrt(75))
    assert result.ci_upper > fixed


# ------------------------------------------------------------------------------ from a table
def _table(rng, n, hazard_ratio):
    arm = np.where(np.arange(n) % 2 == 0, "control", "rj")
    rate = np.where(arm == "rj", hazard_ratio, 1.0) / 500
    time = rng.exponential(1 / rate)
    return pd.DataFrame(
        {"time_at_risk": np.minimum(time, 365).round() + 1, "event": (time < 365).astype(int), "arm": arm}
    )


def test_the_statistic_from_a_table_has_the_sign_of_the_log_hazard_ratio(two_sided):
    table = _table(np.random.default_rng(3), 800, 0.6)
    result = look(two_sided, table)
    assert result.method == "log-rank" and result.n == 800
    assert result.events == int(table["event"].sum())
    assert result.statistic < 0 and result.hazard_ratio < 1
    swapped = look(two_sided, table, control="rj")
    assert swapped.statistic == pytest.approx(-result.statistic)


def test_summary_and_dict(two_sided):
    result = look(two_sided, events=250, statistic=-2.0)
    frame = result.summary_frame()
    assert frame["estimate"].iloc[0] == pytest.approx(math.log(result.hazard_ratio))
    assert frame["std_error"].iloc[0] == pytest.approx(1 / math.sqrt(250 * 0.25))
    assert frame.attrs["ci"] == "repeated"
    data = result.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["look"] == 1 and data["decision"] == "continue" and data["design_fingerprint"] == two_sided.fingerprint
    assert isinstance(result, InterimLook) and len(data["boundaries"]) == 3


# ------------------------------------------------------------------------------ boundaries alone
def test_boundaries_at_are_the_looks_boundaries(one_sided):
    from rjtrial.monitor import boundaries_at

    result = look(one_sided, events=450, statistic=-1.5, previous_events=[240])
    frame = boundaries_at(one_sided, [240, 450])
    pd.testing.assert_frame_equal(frame, result.boundaries_frame(), check_like=False)


def test_boundaries_at_another_maximum_are_those_of_its_fractions(two_sided):
    from rjtrial.monitor import boundaries_at

    frame = boundaries_at(two_sided, [100, 200, 300], max_events=300)
    assert frame["information_fraction"].tolist() == pytest.approx([1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(frame["critical_value"], two_sided.critical_values, atol=1e-12)


@pytest.mark.parametrize(
    "events, message",
    [([], "one or more increasing"), ([20, 10], "increasing"), ([1, 2, 3, 4], "the design has 3 looks")],
)
def test_boundaries_at_bad_events(two_sided, events, message):
    from rjtrial.monitor import boundaries_at

    with pytest.raises(ValueError, match=message):
        boundaries_at(two_sided, events)
