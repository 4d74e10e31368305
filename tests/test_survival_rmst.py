"""rjtrial.survival.rmst: hand-computed values, lifelines' variance (issue #1682), bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.datasets import load_rossi
from lifelines.utils import restricted_mean_survival_time

from rjtrial.errors import DataError
from rjtrial.survival import rmst


@pytest.fixture
def uncensored():
    # arm a: 2, 4, 6, 8; arm b: 1, 3, 5, 7, 9 -- no censoring
    return pd.DataFrame({"t": [2, 4, 6, 8, 1, 3, 5, 7, 9], "e": [1] * 9, "arm": ["a"] * 4 + ["b"] * 5})


def test_hand_computed(uncensored):
    res = rmst(uncensored, tau=5, time="t", event="e", group="arm")
    a = res.table.set_index("group").loc["a"]
    # min(T, 5) = 2, 4, 5, 5: mean 4; Greenwood-type variance = sum A_i^2 d_i / (n_i (n_i - d_i))
    # A(2) = 0.75 * 2 + 0.5 * 1 = 2, A(4) = 0.5 * 1 -> 4/12 + 0.25/6 = 0.375
    assert a["estimate"] == pytest.approx(4.0)
    assert a["std_error"] == pytest.approx(np.sqrt(0.375))
    # without censoring this is the variance of the sample mean of min(T, tau): 1.5 / 4
    assert a["std_error"] ** 2 == pytest.approx(np.var([2, 4, 5, 5]) / 4)


def test_difference(uncensored):
    res = rmst(uncensored, tau=5, time="t", event="e", group="arm", alpha=0.1)
    table = res.table.set_index("group")
    diff = res.difference.iloc[0]
    assert (diff["group"], diff["control"]) == ("b", "a")
    assert diff["estimate"] == pytest.approx(table.loc["b", "estimate"] - table.loc["a", "estimate"])
    assert diff["std_error"] == pytest.approx(np.hypot(table.loc["a", "std_error"], table.loc["b", "std_error"]))
    assert diff["ci_upper"] - diff["estimate"] == pytest.approx(1.6448536269514722 * diff["std_error"])
    assert res.difference.attrs == {"alpha": 0.1, "tau": 5.0}
    assert list(res.difference.columns) == [
        "group",
        "control",
        "estimate",
        "std_error",
        "ci_lower",
        "ci_upper",
        "statistic",
        "p_value",
    ]


def test_control_option(uncensored):
    res = rmst(uncensored, tau=5, time="t", event="e", group="arm", control="b")
    assert res.difference.iloc[0]["group"] == "a"
    with pytest.raises(ValueError, match="control must be one of 'a', 'b'"):
        rmst(uncensored, tau=5, time="t", event="e", group="arm", control="c")


def test_reference_is_a_deprecated_alias_of_control(uncensored):
    with pytest.warns(DeprecationWarning, match="control="):
        old = rmst(uncensored, tau=5, time="t", event="e", group="arm", reference="b")
    new = rmst(uncensored, tau=5, time="t", event="e", group="arm", control="b")
    pd.testing.assert_frame_equal(old.difference, new.difference)


def test_result_convention(uncensored):
    import json

    res = rmst(uncensored, tau=5, time="t", event="e", group="arm")
    frame = res.summary_frame()
    assert list(frame["term"]) == ["a", "b", "b - a"]
    assert frame.loc[2, "estimate"] == res.difference.loc[0, "estimate"]
    json.dumps(res.to_dict())
    assert "b - a" in res.format()


def test_estimate_agrees_with_lifelines():
    rossi = load_rossi()
    res = rmst(rossi, tau=40, time="week", event="arrest", group="fin").table.set_index("group")
    for g in (0, 1):
        part = rossi[rossi["fin"] == g]
        kmf = KaplanMeierFitter().fit(part["week"], part["arrest"])
        assert res.loc[g, "estimate"] == pytest.approx(restricted_mean_survival_time(kmf, t=40), rel=1e-12)


def test_lifelines_variance_is_not_the_variance_of_the_estimate(uncensored):
    # lifelines issue #1682: restricted_mean_survival_time(return_variance=True) returns the
    # variance of min(T, tau) (1.5 here), not of the estimated mean (1.5 / n); replicating the
    # data four times leaves lifelines' value unchanged while the estimator's variance falls 4x
    part = uncensored[uncensored["arm"] == "a"]
    for copies in (1, 4):
        data = pd.concat([part] * copies)
        kmf = KaplanMeierFitter().fit(data["t"], data["e"])
        _, lifelines_variance = restricted_mean_survival_time(kmf, t=5, return_variance=True)
        ours = rmst(pd.concat([data, uncensored[uncensored["arm"] == "b"]]), tau=5, time="t", event="e", group="arm")
        se = ours.table.set_index("group").loc["a", "std_error"]
        assert lifelines_variance == pytest.approx(1.5)
        assert se**2 == pytest.approx(1.5 / (4 * copies))


def test_result_is_frozen(uncensored):
    res = rmst(uncensored, tau=5, time="t", event="e", group="arm")
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.tau = 3  # type: ignore[misc]


@pytest.mark.parametrize("tau", [0, -1, np.nan, "365"])
def test_bad_tau(uncensored, tau):
    with pytest.raises(ValueError, match="tau must be a positive number"):
        rmst(uncensored, tau=tau, time="t", event="e", group="arm")


def test_tau_beyond_follow_up(uncensored):
    with pytest.raises(DataError, match="beyond the last follow-up time \\(8\\) of group 'a'"):
        rmst(uncensored, tau=8.5, time="t", event="e", group="arm")


def test_single_group(uncensored):
    with pytest.raises(DataError, match="at least two groups") as info:
        rmst(uncensored.assign(arm="a"), tau=5, time="t", event="e", group="arm")
    assert info.value.column == "arm"


@pytest.mark.parametrize(
    "change, column",
    [
        (lambda d: d.drop(columns="t"), "t"),
        (lambda d: d.assign(t=d["t"].astype(str)), "t"),
        (lambda d: d.assign(e=[1, 1, 0, 5, 1, 1, 1, 1, 1]), "e"),
        (lambda d: d.assign(t=[2, 4, 6, -8, 1, 3, 5, 7, 9]), "t"),
    ],
)
def test_bad_input_names_column(uncensored, change, column):
    with pytest.raises(DataError) as info:
        rmst(change(uncensored), tau=5, time="t", event="e", group="arm")
    assert info.value.column == column
