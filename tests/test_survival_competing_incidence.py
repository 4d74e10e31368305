"""cumulative_incidence: Aalen–Johansen curves, their variances, the result object."""

from __future__ import annotations

import dataclasses
import json

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rjtrial.survival import CumulativeIncidenceResult, cumulative_incidence, kaplan_meier
from rjtrial.survival import _aalen_johansen as aj

COLUMNS = ["group", "cause", "time", "at_risk", "events", "censored", "estimate", "std_error", "ci_lower", "ci_upper"]


def trial(seed: int = 1, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = rng.choice(["control", "rj"], n)
    latent = np.column_stack(
        [rng.exponential(600, n) * np.where(arm == "rj", 1.3, 1.0), rng.exponential(3000, n), rng.exponential(5000, n)]
    )
    censor = np.where(rng.random(n) < 0.2, rng.uniform(0, 730, n), 730)
    first = latent.min(axis=1)
    return pd.DataFrame(
        {
            "days": np.floor(np.minimum(first, censor)),
            "outcome": np.where(first <= censor, latent.argmin(axis=1) + 1, 0),
            "arm": arm,
            "site": rng.choice(["north", "south"], n),
        }
    )


@pytest.fixture(scope="module")
def result() -> CumulativeIncidenceResult:
    return cumulative_incidence(trial(), time="days", event="outcome", group="arm", cause=None)


def test_summary_frame_columns_and_attrs(result):
    table = result.summary_frame()
    assert list(table.columns) == COLUMNS
    assert table.attrs == {
        "alpha": 0.05,
        "conf_type": "log-log",
        "variance": "influence",
        "time": "days",
        "event": "outcome",
        "group": "arm",
    }
    assert set(table["cause"]) == {1, 2, 3} and set(table["group"]) == {"control", "rj"}


def test_incidences_and_event_free_survival_add_to_one():
    df = trial()
    res = cumulative_incidence(df, time="days", event="outcome", cause=None)
    total = res.summary_frame().groupby("time")["estimate"].sum()
    km = kaplan_meier(df.assign(any=(df["outcome"] > 0).astype(int)), time="days", event="any").table
    np.testing.assert_allclose(total.to_numpy() + km["survival"].to_numpy(), 1.0, atol=1e-14)


@pytest.mark.parametrize("variance", ["influence", "delta"])
def test_one_cause_is_one_minus_kaplan_meier(variance):
    rng = np.random.default_rng(7)
    df = pd.DataFrame({"t": rng.integers(1, 60, 200).astype(float), "e": rng.integers(0, 2, 200)})
    res = cumulative_incidence(df, time="t", event="e", variance=variance).summary_frame()
    km = kaplan_meier(df, time="t", event="e").table
    np.testing.assert_allclose(res["estimate"], 1 - km["survival"], atol=1e-14)
    np.testing.assert_array_equal(res["at_risk"], km["at_risk"])


def test_delta_variance_by_hand():
    # cmprsk's cinc, worked by hand. Day 1: 1 of 3 fails, F = 1/3; t6 = 1/9, t3 = 1/S = 3/2,
    # t4 = 1 + t3 F = 3/2, so v1 = v2 = v3 = 1/4 and var = v1 + F^2 v3 - 2 F v2 = 1/9.
    # Day 2: 1 of 2, F = 2/3; t6 = (2/3)^2 / 4 = 1/9, t3 = 3, t4 = 3: v1 = v2 = v3 = 5/4 and
    # var = 5/4 (1 + 4/9 - 4/3) = 5/36 (R: cuminc(c(1, 2, 3), c(1, 1, 0))[[1]]$var).
    df = pd.DataFrame({"t": [1.0, 2.0, 3.0], "e": [1, 1, 0]})
    res = cumulative_incidence(df, time="t", event="e", variance="delta").summary_frame()
    np.testing.assert_allclose(res["estimate"], [1 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(res["std_error"] ** 2, [1 / 9, 5 / 36, 5 / 36])


def test_the_curve_is_zero_for_a_cause_absent_from_a_group():
    df = trial()
    df.loc[(df["arm"] == "rj") & (df["outcome"] == 3), "outcome"] = 0
    res = cumulative_incidence(df, time="days", event="outcome", group="arm", cause=3)
    rj = res.summary_frame().query("group == 'rj'")
    assert (rj["estimate"] == 0).all() and (rj["std_error"] == 0).all()


def test_at_chosen_times(result):
    at = result.at([0.5, 365, 730, 5000])
    assert list(at.columns) == ["group", "cause", "time", "at_risk", "estimate", "std_error", "ci_lower", "ci_upper"]
    table = result.summary_frame()
    for (g, k), rows in at.groupby(["group", "cause"]):
        curve = table[(table["group"] == g) & (table["cause"] == k)]
        in_force = curve[curve["time"] <= 365].iloc[-1]
        row = rows[rows["time"] == 365].iloc[0]
        assert row["estimate"] == in_force["estimate"] and row["std_error"] == in_force["std_error"]
        assert row["at_risk"] == curve.loc[curve["time"] >= 365, "at_risk"].iloc[0]
        assert rows[rows["time"] == 5000][["estimate", "std_error"]].isna().all(axis=None)  # after the last time


def test_at_before_the_first_time_is_zero_with_an_undefined_interval():
    df = pd.DataFrame({"t": [3.0, 5.0, 8.0], "e": [1, 2, 0]})
    at = cumulative_incidence(df, time="t", event="e").at([1.0])
    assert at[["estimate", "std_error"]].iloc[0].tolist() == [0.0, 0.0]
    assert at[["ci_lower", "ci_upper"]].isna().all(axis=None) and at["at_risk"].iloc[0] == 3


@pytest.mark.parametrize("times", [[-1], [np.nan]])
def test_at_rejects_bad_times(result, times):
    with pytest.raises(ValueError, match="non-negative"):
        result.at(times)


def test_gray_test_comes_with_groups(result):
    tests = result.tests_frame()
    assert list(tests.columns) == ["cause", "statistic", "df", "p_value"] and tests["cause"].tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="group="):
        cumulative_incidence(trial(), time="days", event="outcome").tests_frame()


def test_strata_need_a_group():
    with pytest.raises(ValueError, match="give group= too"):
        cumulative_incidence(trial(), time="days", event="outcome", strata="site")


@pytest.mark.parametrize(
    "argument, value, message",
    [
        ("conf_type", "probit", "conf_type must be one of"),
        ("variance", "greenwood", "variance must be one of"),
        ("alpha", 1.5, "alpha must be"),
        ("rho", "one", "rho must be a finite number"),
    ],
)
def test_bad_arguments_name_the_options(argument, value, message):
    with pytest.raises(ValueError, match=message):
        cumulative_incidence(trial(), time="days", event="outcome", group="arm", **{argument: value})


def test_format_and_to_dict(result):
    text = result.format()
    assert "Cumulative incidence (Aalen-Johansen)" in text and "Gray's test" in text and "log-log" in text
    data = result.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["tests"]["summary"][0]["cause"] == 1
    assert data["n"] == {"control": result.n["control"], "rj": result.n["rj"]}
    assert str(result) == text


def test_result_is_frozen(result):
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.alpha = 0.1


def test_plot_curves_and_stacked(result):
    import matplotlib.pyplot as plt

    ax = result.plot()
    assert len(ax.get_lines()) == 6  # two arms x three causes
    plt.close(ax.figure)
    ax = result.plot(kind="stacked", group="rj")
    assert len(ax.collections) == 3 and ax.get_title() == "arm = rj"
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="pass group= to stack one"):
        result.plot(kind="stacked")
    with pytest.raises(ValueError, match="kind must be one of"):
        result.plot(kind="pie")


# --------------------------------------------------------------------------- the closed form
def influence_by_recursion(time, code, causes):
    """R survfitci's per-subject recursion (survival 3.5), written out: O(n x times)."""
    order = np.argsort(time, kind="stable")
    time, code = time[order], code[order]
    n = len(time)
    K = len(causes)
    U = np.zeros((n, K + 1))  # influence on (event free, cause 1, ..., cause K)
    p = np.zeros(K + 1)
    p[0] = 1.0
    at_risk = np.ones(n, dtype=bool)
    variances = []
    for t in np.unique(time):
        here = time == t
        ns = at_risk.sum()
        H = np.eye(K + 1)
        dstate = np.zeros(n, dtype=int)
        for j, k in enumerate(causes):
            moved = here & (code == k)
            H[0, j + 1] = moved.sum() / ns
            dstate[moved] = j + 1
        H[0, 0] = 1 - H[0, 1:].sum() - (here & (code > 0) & ~np.isin(code, causes)).sum() / ns
        if (here & (code > 0)).any():
            U = U @ H
            share = p[0] / ns
            U[at_risk] -= H[0] * share
            U[at_risk, dstate[at_risk]] += share
            p = p @ H
        variances.append((U[:, 1:] ** 2).sum(axis=0))
        at_risk &= ~here
    return np.array(variances)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 3)), min_size=1, max_size=40))
def test_closed_form_influence_variance_equals_the_recursion(rows):
    # ties across causes and with censorings, day 0, everyone failing, a cause absent
    time = np.array([r[0] for r in rows], dtype=float)
    code = np.array([r[1] for r in rows])
    causes = (1, 2, 3)
    curves = aj.curves(time, code, causes)
    np.testing.assert_allclose(
        aj.influence_variance(curves), influence_by_recursion(time, code, causes), atol=1e-13, rtol=1e-9
    )
