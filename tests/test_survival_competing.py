"""Competing-risks input: one function checks the data every competing-risks verb reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rjtrial.errors import DataError
from rjtrial.survival import cumulative_incidence, fine_gray, gray_test
from rjtrial.survival.competing import competing_data, confidence_limits, event_codes


def trial() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "days": [5, 8, 12, 20, 30, 31, 40, 41, 50, 60, 9, 70],
            "outcome": [1, 2, 1, 0, 1, 1, 2, 0, 1, 0, 2, 1],
            "arm": ["rj"] * 6 + ["control"] * 6,
            "site": ["a", "b"] * 6,
            "age": [20, 31, 25, 40, 22, 35, 28, 19, 45, 33, 26, 30],
        }
    )


VERBS = {
    "cumulative_incidence": lambda df, **kw: cumulative_incidence(df, time="days", event="outcome", group="arm", **kw),
    "gray_test": lambda df, **kw: gray_test(df, time="days", event="outcome", group="arm", **kw),
    "fine_gray": lambda df, **kw: fine_gray(df, "arm + age", time="days", event="outcome", **kw),
}


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize(
    "value, message",
    [
        (np.nan, r"row 3, column 'outcome': event is missing"),
        (-1, r"row 3, column 'outcome': event must be 0 \(censored\) or a cause 1, 2, \.\.\., found -1"),
        (1.5, r"row 3, column 'outcome': event must be 0 \(censored\) or a cause 1, 2, \.\.\., found 1\.5"),
    ],
)
def test_bad_event_code_names_row_and_column(verb, value, message):
    df = trial()
    df["outcome"] = df["outcome"].astype(float)
    df.loc[3, "outcome"] = value
    with pytest.raises(DataError, match=message):
        VERBS[verb](df)


@pytest.mark.parametrize("verb", VERBS)
def test_text_event_codes_are_refused(verb):
    df = trial().assign(outcome=lambda d: d["outcome"].map({0: "censored", 1: "reoffence", 2: "death"}))
    with pytest.raises(DataError, match=r"column 'outcome': event must be coded 0 \(censored\) and 1, 2"):
        VERBS[verb](df)


@pytest.mark.parametrize("verb", VERBS)
def test_a_cause_that_never_occurs_is_an_error_naming_the_column(verb):
    with pytest.raises(DataError, match=r"column 'outcome': cause 3 never occurs; the causes present are 1, 2"):
        VERBS[verb](trial(), cause=3)


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize(
    "column, value, message",
    [
        ("days", np.nan, r"row 4, column 'days': time is missing"),
        ("days", -2.0, r"row 4, column 'days': time is negative"),
        ("arm", None, r"row 4, column 'arm': (group|covariate) is missing"),
    ],
)
def test_missing_or_bad_values_name_row_and_column(verb, column, value, message):
    df = trial()
    if column == "days":
        df["days"] = df["days"].astype(float)
    df.loc[4, column] = value
    with pytest.raises(DataError, match=message):
        VERBS[verb](df)


def test_missing_covariate_names_row_and_column():
    df = trial().astype({"age": float})
    df.loc[7, "age"] = np.nan
    with pytest.raises(DataError, match=r"row 7, column 'age': covariate is missing"):
        VERBS["fine_gray"](df)


@pytest.mark.parametrize("verb", VERBS)
def test_missing_column_is_named(verb):
    with pytest.raises(DataError, match=r"no column 'outcome'"):
        VERBS[verb](trial().drop(columns="outcome"))


@pytest.mark.parametrize("cause", [0, -1, "1", 1.0, True, [], [1, "2"]])
def test_cause_must_be_positive_whole_numbers(cause):
    with pytest.raises(ValueError, match="cause"):
        competing_data(trial(), time="days", event="outcome", cause=cause)


def test_every_row_censored_is_an_error():
    with pytest.raises(DataError, match=r"column 'outcome': no event of any cause occurs"):
        competing_data(trial().assign(outcome=0), time="days", event="outcome", cause=None)


@pytest.mark.parametrize(
    "values, expected",
    [
        (pd.Series([0, 1, 2, 3]), [0, 1, 2, 3]),
        (pd.Series([0.0, 1.0, 2.0]), [0, 1, 2]),
        (pd.Series([False, True]), [0, 1]),
        (pd.Series([0, 1, None], dtype="Int64").fillna(0), [0, 1, 0]),
    ],
)
def test_event_codes_read_numbers_and_booleans(values, expected):
    assert event_codes(pd.DataFrame({"e": values}), "e").tolist() == expected


def test_nullable_integer_missing_is_named():
    df = pd.DataFrame({"e": pd.Series([0, 1, None], dtype="Int64")})
    with pytest.raises(DataError, match=r"row 2, column 'e': event is missing"):
        event_codes(df, "e")


def test_causes_default_and_all():
    data = competing_data(trial(), time="days", event="outcome", cause=None)
    assert data.causes == (1, 2) and data.all_causes == (1, 2)
    assert competing_data(trial(), time="days", event="outcome", cause=[2, 1]).causes == (2, 1)
    assert competing_data(trial(), time="days", event="outcome").causes == (1,)


def test_times_within_floating_point_noise_tie():
    df = trial().astype({"days": float})
    df.loc[1, "days"] = 0.1 + 0.2
    df.loc[2, "days"] = 0.3
    data = competing_data(df, time="days", event="outcome")
    assert data.time[1] == data.time[2]


@pytest.mark.parametrize("conf_type", ["log", "log-log", "plain", "logit", "arcsin"])
def test_confidence_limits_bracket_the_estimate_and_stay_in_the_unit_interval(conf_type):
    p = np.array([0.01, 0.2, 0.5, 0.9, 0.99])
    lower, upper = confidence_limits(p, np.full(5, 0.05), 1.96, conf_type)
    assert np.all(lower <= p) and np.all(p <= upper)
    assert np.all(lower >= 0) and np.all(upper <= 1)


def test_confidence_limits_undefined_at_zero_as_r():
    lower, upper = confidence_limits(np.array([0.0, 0.3]), np.array([0.0, 0.1]), 1.96, "log-log")
    assert np.isnan(lower[0]) and np.isnan(upper[0]) and np.isfinite(lower[1])


def test_unknown_conf_type_names_the_options():
    with pytest.raises(ValueError, match="conf_type must be one of"):
        confidence_limits(np.array([0.3]), np.array([0.1]), 1.96, "probit")
