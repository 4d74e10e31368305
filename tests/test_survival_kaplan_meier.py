"""rjtrial.survival.kaplan_meier: table, Greenwood SE, log-log interval, medians, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.datasets import load_rossi

from rjtrial.errors import DataError
from rjtrial.survival import kaplan_meier

COLUMNS = ["group", "time", "at_risk", "events", "censored", "survival", "std_error", "ci_lower", "ci_upper"]


@pytest.fixture
def tiny():
    # times 1,2,2,3+,4,5+ in one arm; 2,3,3+,6 in the other
    return pd.DataFrame(
        {
            "days": [1, 2, 2, 3, 4, 5, 2, 3, 3, 6],
            "reoffended": [1, 1, 1, 0, 1, 0, 1, 1, 0, 1],
            "arm": ["rj"] * 6 + ["control"] * 4,
        }
    )


def test_table_columns_and_attrs(tiny):
    km = kaplan_meier(tiny, time="days", event="reoffended", group="arm", alpha=0.1)
    assert list(km.table.columns) == COLUMNS
    assert km.table.attrs["alpha"] == 0.1
    assert km.table.attrs["conf_type"] == "log-log"
    assert km.groups == ["control", "rj"]
    assert km.n == {"control": 4, "rj": 6}


def test_hand_computed_curve(tiny):
    km = kaplan_meier(tiny, time="days", event="reoffended", group="arm")
    rj = km.table[km.table["group"] == "rj"].reset_index(drop=True)
    assert rj["time"].tolist() == [1, 2, 3, 4, 5]
    assert rj["at_risk"].tolist() == [6, 5, 3, 2, 1]
    assert rj["events"].tolist() == [1, 2, 0, 1, 0]
    assert rj["censored"].tolist() == [0, 0, 1, 0, 1]
    s = np.cumprod([5 / 6, 3 / 5, 1, 1 / 2, 1])
    np.testing.assert_allclose(rj["survival"], s, rtol=1e-14)
    # Greenwood: Var(S) = S^2 sum d / (n (n - d))
    greenwood = np.cumsum([1 / (6 * 5), 2 / (5 * 3), 0, 1 / (2 * 1), 0])
    np.testing.assert_allclose(rj["std_error"], s * np.sqrt(greenwood), rtol=1e-14)


def test_interval_is_nan_where_survival_is_zero_or_one():
    df = pd.DataFrame({"t": [1, 2, 3], "e": [0, 1, 1]})
    table = kaplan_meier(df, time="t", event="e").table
    assert table["survival"].tolist() == [1.0, 0.5, 0.0]
    assert table[["ci_lower", "ci_upper"]].iloc[[0, 2]].isna().all().all()
    assert np.isnan(table["std_error"].iloc[2])  # R: std.err Inf at S = 0, SE of S undefined


def test_agrees_with_lifelines_interval_where_defined():
    # two routes: our log-log interval from the Greenwood variance vs lifelines' own
    rossi = load_rossi()
    km = kaplan_meier(rossi, time="week", event="arrest")
    fitter = KaplanMeierFitter().fit(rossi["week"], rossi["arrest"])
    ci = fitter.confidence_interval_.loc[km.table["time"]]
    defined = km.table["ci_lower"].notna().to_numpy()
    np.testing.assert_allclose(km.table["ci_lower"][defined], ci.iloc[:, 0].to_numpy()[defined], rtol=1e-10)
    np.testing.assert_allclose(km.table["ci_upper"][defined], ci.iloc[:, 1].to_numpy()[defined], rtol=1e-10)


def test_single_curve_without_group(tiny):
    km = kaplan_meier(tiny, time="days", event="reoffended")
    assert km.groups == ["all"]
    assert set(km.table["group"]) == {"all"}


def test_categorical_group_order_is_kept(tiny):
    tiny["arm"] = pd.Categorical(tiny["arm"], categories=["rj", "control"])
    assert kaplan_meier(tiny, time="days", event="reoffended", group="arm").groups == ["rj", "control"]


def test_boolean_events(tiny):
    a = kaplan_meier(tiny, time="days", event="reoffended", group="arm").table
    b = kaplan_meier(
        tiny.assign(reoffended=tiny["reoffended"] == 1), time="days", event="reoffended", group="arm"
    ).table
    pd.testing.assert_frame_equal(a, b)


def test_survival_at(tiny):
    km = kaplan_meier(tiny, time="days", event="reoffended", group="arm")
    at = km.survival_at([0, 2.5, 100])
    assert list(at.columns) == ["group", "time", "at_risk", "survival", "std_error", "ci_lower", "ci_upper"]
    rj = at[at["group"] == "rj"].reset_index(drop=True)
    assert rj.loc[0, ["survival", "ci_lower", "ci_upper"]].tolist() == [1.0, 1.0, 1.0]  # before first time
    assert rj.loc[1, "survival"] == pytest.approx(0.5)
    assert rj.loc[1, "at_risk"] == 3
    assert np.isnan(rj.loc[2, "survival"])  # after the last follow-up time
    with pytest.raises(ValueError, match="non-negative"):
        km.survival_at([-1])


def test_median_midpoint_of_flat_stretch():
    # S = 0.5 exactly on [3, 5): median is (3 + 5) / 2, as R quantile.survfit
    df = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6], "e": [1, 1, 1, 0, 1, 0]})
    assert kaplan_meier(df, time="t", event="e").median()["estimate"].iloc[0] == 4.0


@pytest.mark.parametrize("probability", [-0.1, 1.5, "half"])
def test_quantile_rejects_bad_probability(tiny, probability):
    with pytest.raises(ValueError, match="probability"):
        kaplan_meier(tiny, time="days", event="reoffended").quantile(probability)


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "change, column, message",
    [
        (lambda d: d.drop(columns="days"), "days", "no column 'days'"),
        (lambda d: d.drop(columns="arm"), "arm", "no column 'arm'"),
        (lambda d: d.assign(days=d["days"].astype(str)), "days", "must be numeric"),
        (lambda d: d.assign(days=[1, -2, 2, 3, 4, 5, 2, 3, 3, 6]), "days", "negative"),
        (lambda d: d.assign(days=[1, np.nan, 2, 3, 4, 5, 2, 3, 3, 6]), "days", "missing value"),
        (lambda d: d.assign(reoffended=[1, 2, 1, 0, 1, 0, 1, 1, 0, 1]), "reoffended", "0 \\(censored\\) or 1"),
        (lambda d: d.assign(reoffended=["yes"] * 10), "reoffended", "coded 0/1"),
        (lambda d: d.assign(arm=["rj", None] + ["rj"] * 8), "arm", "missing value"),
    ],
)
def test_bad_input_names_the_column(tiny, change, column, message):
    with pytest.raises(DataError, match=message) as info:
        kaplan_meier(change(tiny), time="days", event="reoffended", group="arm", na_action="raise")
    assert info.value.column == column
    assert isinstance(info.value, ValueError)


def test_bad_value_names_the_row(tiny):
    tiny.index = [f"p{k}" for k in range(10)]
    tiny.loc["p3", "days"] = -1
    with pytest.raises(DataError, match="row p3"):
        kaplan_meier(tiny, time="days", event="reoffended")


@pytest.mark.parametrize("alpha", [0, 1, -0.5, "0.05"])
def test_bad_alpha(tiny, alpha):
    with pytest.raises(ValueError, match="alpha"):
        kaplan_meier(tiny, time="days", event="reoffended", alpha=alpha)


def test_empty_frame_and_non_frame():
    with pytest.raises(DataError, match="no rows"):
        kaplan_meier(pd.DataFrame({"t": [], "e": []}), time="t", event="e")
    with pytest.raises(TypeError):
        kaplan_meier({"t": [1]}, time="t", event="e")


def test_arguments_after_data_are_keyword_only(tiny):
    with pytest.raises(TypeError):
        kaplan_meier(tiny, "days", "reoffended")  # type: ignore[misc]


def test_no_warnings_on_clean_data(tiny):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kaplan_meier(tiny, time="days", event="reoffended", group="arm")


def test_missing_values_are_omitted_and_counted(tiny):
    # R: survfit(Surv(days, reoffended) ~ arm, data) drops rows with NA (na.omit)
    bad = tiny.assign(days=[1, np.nan, 2, 3, 4, 5, 2, 3, 3, 6], arm=["rj", "rj", None] + list(tiny["arm"][3:]))
    km = kaplan_meier(bad, time="days", event="reoffended", group="arm")
    clean = kaplan_meier(tiny.drop(index=[1, 2]), time="days", event="reoffended", group="arm")
    assert km.n_omitted == 2
    pd.testing.assert_frame_equal(km.table, clean.table)
    assert "2 rows omitted" in km.format()


@pytest.mark.parametrize("conf_type", ["log", "log-log", "plain", "logit", "arcsin"])
def test_conf_types_as_r_survfit(conf_type):
    # R 4.2.2, survival 3.5-3:
    # d <- data.frame(t = 1:6, e = c(0, 0, 1, 1, 0, 1))
    # f <- survfit(Surv(t, e) ~ 1, d, conf.type = ct); cbind(f$lower, f$upper)
    expected = {
        "log": [(1, 1), (1, 1), (0.4259323, 1), (0.1876589, 1), (0.1876589, 1), (np.nan, np.nan)],
        "log-log": [(np.nan, np.nan)] * 2
        + [(0.12794692, 0.9605486), (0.05784708, 0.8448613), (0.05784708, 0.8448613), (np.nan, np.nan)],
        "plain": [(1, 1), (1, 1), (0.3256553, 1), (0.0100090, 0.989991), (0.0100090, 0.989991), (np.nan, np.nan)],
        "logit": [(np.nan, np.nan)] * 2
        + [(0.2378398, 0.9664886), (0.1234709, 0.8765291), (0.1234709, 0.8765291), (np.nan, np.nan)],
        "arcsin": [(np.nan, np.nan)] * 2
        + [(0.27964781, 0.9988709), (0.08475633, 0.9152437), (0.08475633, 0.9152437), (np.nan, np.nan)],
    }[conf_type]
    data = pd.DataFrame({"t": np.arange(1.0, 7.0), "e": [0, 0, 1, 1, 0, 1]})
    km = kaplan_meier(data, time="t", event="e", conf_type=conf_type)
    got = km.table[["ci_lower", "ci_upper"]].to_numpy()
    np.testing.assert_allclose(got, np.array(expected, dtype=float), rtol=1e-6, equal_nan=True)
    assert km.table.attrs["conf_type"] == conf_type


def test_conf_type_is_checked(tiny):
    with pytest.raises(ValueError, match="conf_type must be one of 'log-log', 'log'"):
        kaplan_meier(tiny, time="days", event="reoffended", conf_type="loglog")


def test_result_convention(tiny):
    km = kaplan_meier(tiny, time="days", event="reoffended", group="arm")
    pd.testing.assert_frame_equal(km.summary_frame(), km.table)
    d = km.to_dict()
    assert d["conf_type"] == "log-log" and set(d["n"]) == set(km.groups)
    import json

    json.dumps(d)  # JSON-ready
    assert "median" in km.format()
