"""rjtrial.survival.andersen_gill: counting-process Cox model clustered on the person."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rjtrial.errors import DataError
from rjtrial.survival import andersen_gill, cox, event_number, pwp


def _recurrent(seed: int = 1, n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for person in range(1, n + 1):
        arm = "rj" if person % 2 else "control"
        frailty = rng.gamma(2.0, 0.5)
        rate = frailty * (0.004 if arm == "rj" else 0.006)
        days = np.unique(np.ceil(rng.uniform(0, 365, rng.poisson(rate * 365))).astype(int))
        start = 0
        for day in days[days >= 1]:
            rows.append((person, start, int(day), 1, arm))
            start = int(day)
        if start < 365:
            rows.append((person, start, 365, 0, arm))
    return pd.DataFrame(rows, columns=["person", "begin", "end", "reoffence", "arm"])


@pytest.fixture(scope="module")
def data():
    return _recurrent()


def test_equals_cox_with_start_and_cluster(data):
    ag = andersen_gill(data, "arm", start="begin", stop="end", event="reoffence", id="person")
    same = cox(data, "arm", time="end", event="reoffence", start="begin", cluster="person")
    pd.testing.assert_frame_equal(ag.summary_frame(), same.summary_frame())
    assert ag.summary_frame().attrs["variance"] == "cluster-robust (person)"
    assert ag.robust_score_test_ is not None


def test_robust_variance_exceeds_naive_with_frailty(data):
    ag = andersen_gill(data, "arm", start="begin", stop="end", event="reoffence", id="person")
    assert ag.variance_.iloc[0, 0] > ag.naive_variance_.iloc[0, 0]


def test_one_interval_per_person_is_an_ordinary_cox_model():
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"id": range(80), "x": rng.normal(size=80)})
    df["stop"] = np.ceil(rng.exponential(100, 80))
    df["event"] = (rng.random(80) < 0.6).astype(int)
    df["start"] = 0
    ag = andersen_gill(df, "x", start="start", stop="stop", event="event", id="id")
    plain = cox(df, "x", time="stop", event="event", cluster="id")
    np.testing.assert_allclose(ag.params_, plain.params_, atol=1e-12)
    np.testing.assert_allclose(ag.variance_, plain.variance_, rtol=1e-10)


def test_start_times_define_the_risk_sets():
    # (start, stop] risk sets: treating every interval as starting at 0 is a different model
    data = _recurrent(3, 60)
    a = andersen_gill(data, "arm", start="begin", stop="end", event="reoffence", id="person")
    b = cox(data.assign(begin=0), "arm", time="end", event="reoffence", start="begin")
    assert not np.allclose(a.params_, b.params_)


def test_overlapping_intervals_are_rejected(data):
    bad = data.copy()
    counts = bad["person"].value_counts()
    person = counts[counts >= 2].index[0]
    second = bad.index[bad["person"] == person][1]
    bad.loc[second, "begin"] = bad.loc[second, "begin"] - 1
    with pytest.raises(DataError, match="overlaps") as info:
        andersen_gill(bad, "arm", start="begin", stop="end", event="reoffence", id="person")
    assert (info.value.row, info.value.column) == (second, "begin")


@pytest.mark.parametrize("missing", ["begin", "end", "reoffence", "person"])
def test_missing_column_is_named(data, missing):
    with pytest.raises(DataError, match=f"no column '{missing}'") as info:
        andersen_gill(data.drop(columns=missing), "arm", start="begin", stop="end", event="reoffence", id="person")
    assert info.value.column == missing


def test_missing_id_value(data):
    bad = data.astype({"person": float})
    bad.loc[7, "person"] = np.nan
    with pytest.raises(DataError, match="missing value") as info:
        andersen_gill(bad, "arm", start="begin", stop="end", event="reoffence", id="person", na_action="raise")
    assert (info.value.row, info.value.column) == (7, "person")
    # R's default (na.omit) drops the row, and we say so
    fit = andersen_gill(bad, "arm", start="begin", stop="end", event="reoffence", id="person")
    assert fit.n_omitted == 1 and fit.n == len(bad) - 1


# ------------------------------------------------------------------ Prentice-Williams-Peterson


def test_event_number_counts_the_persons_earlier_events_in_any_row_order():
    rows = pd.DataFrame(
        {
            "id": [2, 1, 1, 1, 1, 2],
            "start": [0, 90, 0, 40, 60, 10],
            "stop": [10, 200, 40, 60, 90, 30],
            "event": [0, 1, 1, 0, 1, 1],
        }
    )
    # person 1: (0,40] event, (40,60] a split without an event, (60,90] event, (90,200] event
    assert event_number(rows, start="start", event="event", id="id").tolist() == [1, 3, 1, 2, 2, 1]


def test_pwp_total_time_is_cox_stratified_by_event_number(data):
    fit = pwp(data, "arm", start="begin", stop="end", event="reoffence", id="person")
    enum = event_number(data, start="begin", event="reoffence", id="person")
    same = cox(
        data.assign(enum=enum), "arm", time="end", event="reoffence", start="begin", strata="enum", cluster="person"
    )
    pd.testing.assert_frame_equal(fit.summary_frame(), same.summary_frame())
    assert (fit.model, fit.timescale, fit.strata) == ("pwp", "total", ("enum",))


def test_pwp_gap_time_is_cox_on_the_gaps(data):
    fit = pwp(data, "arm", start="begin", stop="end", event="reoffence", id="person", timescale="gap")
    enum = event_number(data, start="begin", event="reoffence", id="person")
    same = cox(
        data.assign(enum=enum, gap=data["end"] - data["begin"]),
        "arm",
        time="gap",
        event="reoffence",
        strata="enum",
        cluster="person",
    )
    np.testing.assert_allclose(fit.params_, same.params_, atol=1e-14)
    np.testing.assert_allclose(fit.variance_, same.variance_, rtol=1e-12)
    total = pwp(data, "arm", start="begin", stop="end", event="reoffence", id="person")
    assert not np.allclose(fit.params_, total.params_)


def test_pwp_caps_the_event_number(data):
    capped = pwp(data, "arm", start="begin", stop="end", event="reoffence", id="person", max_event_number=2)
    enum = event_number(data, start="begin", event="reoffence", id="person").clip(upper=2)
    same = cox(
        data.assign(enum=enum), "arm", time="end", event="reoffence", start="begin", strata="enum", cluster="person"
    )
    np.testing.assert_allclose(capped.params_, same.params_, atol=1e-14)
    assert capped.max_event_number == 2 and "numbers 2 and above pooled" in capped.format()
    assert capped.to_dict()["max_event_number"] == 2 and capped.to_dict()["timescale"] == "total"


def test_pwp_crosses_further_strata_with_the_event_number(data):
    sited = data.assign(site=np.where(data["person"] % 3 == 0, "north", "south"))
    fit = pwp(sited, "arm", start="begin", stop="end", event="reoffence", id="person", strata="site")
    assert fit.strata == ("enum", "site")
    plain = pwp(sited, "arm", start="begin", stop="end", event="reoffence", id="person")
    assert not np.allclose(fit.params_, plain.params_)


def test_pwp_keeps_a_users_enum_column_apart(data):
    fit = pwp(data.assign(enum="not a number"), "arm", start="begin", stop="end", event="reoffence", id="person")
    assert fit.strata == ("enum_",)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"timescale": "calendar"}, "timescale must be one of"),
        ({"max_event_number": 0}, "max_event_number must be a whole number"),
        ({"max_event_number": 2.5}, "max_event_number must be a whole number"),
    ],
)
def test_pwp_bad_options(data, options, message):
    with pytest.raises(ValueError, match=message):
        pwp(data, "arm", start="begin", stop="end", event="reoffence", id="person", **options)


def test_pwp_counts_omitted_rows_and_rejects_overlaps(data):
    bad = data.astype({"begin": float})
    bad.loc[3, "begin"] = np.nan
    fit = pwp(bad, "arm", start="begin", stop="end", event="reoffence", id="person", timescale="gap")
    assert fit.n_omitted == 1 and "1 rows omitted" in fit.format()
    overlapping = data.copy()
    counts = overlapping["person"].value_counts()
    second = overlapping.index[overlapping["person"] == counts[counts >= 2].index[0]][1]
    overlapping.loc[second, "begin"] -= 1
    with pytest.raises(DataError, match="overlaps"):
        pwp(overlapping, "arm", start="begin", stop="end", event="reoffence", id="person")
