"""rjtrial.survival.logrank: agreement with lifelines, stratification, bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_rossi
from lifelines.statistics import logrank_test, multivariate_logrank_test

from rjtrial.errors import DataError
from rjtrial.survival import logrank


@pytest.fixture
def trial():
    rng = np.random.default_rng(7)
    n = 240
    arm = rng.choice(["control", "rj", "rj_plus"], size=n)
    site = rng.choice(["a", "b"], size=n)
    rate = np.where(arm == "control", 1.0, 0.7) * np.where(site == "a", 1.0, 1.8)
    time = np.ceil(rng.exponential(100 / rate)).clip(max=365)
    return pd.DataFrame({"time": time, "event": (time < 365).astype(int), "arm": arm, "site": site})


def test_two_groups_agree_with_lifelines():
    rossi = load_rossi()
    ours = logrank(rossi, time="week", event="arrest", group="fin")
    a, b = rossi[rossi["fin"] == 0], rossi[rossi["fin"] == 1]
    theirs = logrank_test(a["week"], b["week"], a["arrest"], b["arrest"])
    assert ours.statistic == pytest.approx(theirs.test_statistic, rel=1e-10)
    assert ours.p_value == pytest.approx(theirs.p_value, rel=1e-8)
    assert ours.df == 1
    assert ours.method == "log-rank"


def test_three_groups_agree_with_lifelines(trial):
    ours = logrank(trial, time="time", event="event", group="arm")
    theirs = multivariate_logrank_test(trial["time"], trial["arm"], trial["event"])
    assert ours.statistic == pytest.approx(theirs.test_statistic, rel=1e-10)
    assert ours.df == 2


def test_table(trial):
    res = logrank(trial, time="time", event="event", group="arm")
    assert list(res.table.columns) == ["group", "n", "observed", "expected"]
    assert res.table["n"].sum() == len(trial)
    # observed and expected totals agree (both count every event once)
    assert res.table["observed"].sum() == pytest.approx(res.table["expected"].sum(), rel=1e-12)


def test_single_stratum_equals_unstratified(trial):
    a = logrank(trial, time="time", event="event", group="arm")
    b = logrank(trial.assign(one="x"), time="time", event="event", group="arm", strata="one")
    assert a.statistic == pytest.approx(b.statistic, rel=1e-12)
    assert b.method == "stratified log-rank"


def test_stratified_differs_and_strata_list(trial):
    a = logrank(trial, time="time", event="event", group="arm", strata="site")
    b = logrank(trial, time="time", event="event", group="arm", strata=["site"])
    assert a.statistic == b.statistic
    assert a.statistic != pytest.approx(logrank(trial, time="time", event="event", group="arm").statistic)


def test_statistic_does_not_depend_on_group_labels_or_row_order(trial):
    a = logrank(trial, time="time", event="event", group="arm", strata="site")
    relabelled = trial.assign(arm=trial["arm"].map({"control": "z", "rj": "a", "rj_plus": "m"}))
    shuffled = relabelled.sample(frac=1, random_state=1)
    b = logrank(shuffled, time="time", event="event", group="arm", strata="site")
    assert a.statistic == pytest.approx(b.statistic, rel=1e-12)


def test_result_is_frozen(trial):
    res = logrank(trial, time="time", event="event", group="arm")
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.statistic = 0.0  # type: ignore[misc]


def test_single_group_is_an_error(trial):
    with pytest.raises(DataError, match="at least two groups") as info:
        logrank(trial.assign(arm="rj"), time="time", event="event", group="arm")
    assert info.value.column == "arm"


@pytest.mark.parametrize(
    "kwargs, column",
    [
        ({"time": "days", "event": "event", "group": "arm"}, "days"),
        ({"time": "time", "event": "reoffence", "group": "arm"}, "reoffence"),
        ({"time": "time", "event": "event", "group": "treatment"}, "treatment"),
        ({"time": "time", "event": "event", "group": "arm", "strata": "region"}, "region"),
    ],
)
def test_missing_column_is_named(trial, kwargs, column):
    with pytest.raises(DataError, match=f"no column '{column}'") as info:
        logrank(trial, **kwargs)
    assert info.value.column == column


@pytest.mark.parametrize(
    "column, value, message",
    [("time", -3.0, "negative"), ("event", 3, "0 \\(censored\\) or 1"), ("site", None, "missing value")],
)
def test_bad_values_are_named(trial, column, value, message):
    trial = trial.astype({"site": object})
    trial.loc[5, column] = value
    with pytest.raises(DataError, match=message) as info:
        logrank(trial, time="time", event="event", group="arm", strata="site", na_action="raise")
    assert info.value.column == column
    assert info.value.row == 5


def test_missing_values_are_omitted_and_counted(trial):
    # R: survdiff(Surv(time, event) ~ arm + strata(site)) leaves out rows with NA (na.omit)
    bad = trial.astype({"site": object, "time": float})
    bad.loc[[5, 9], "site"] = None
    bad.loc[11, "time"] = np.nan
    res = logrank(bad, time="time", event="event", group="arm", strata="site")
    clean = logrank(trial.drop(index=[5, 9, 11]), time="time", event="event", group="arm", strata="site")
    assert res.n_omitted == 3 and res.statistic == clean.statistic
    assert "3 rows omitted" in res.format()
    import json

    json.dumps(res.to_dict())
    assert res.summary_frame().loc[0, "statistic"] == res.statistic


def test_no_information_is_a_clear_error():
    # everyone has the event on day 0: the hypergeometric variance is 0 (numpy: "Singular matrix")
    data = pd.DataFrame({"time": [0.0] * 6, "event": [1] * 6, "arm": ["a", "b"] * 3})
    with pytest.raises(DataError, match="no information") as info:
        logrank(data, time="time", event="event", group="arm")
    assert info.value.column == "time"
