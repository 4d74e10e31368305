"""rjtrial.survival.andersen_gill: counting-process Cox model clustered on the person."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rjtrial.errors import DataError
from rjtrial.survival import andersen_gill, cox


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
