"""rjtrial.survival.split_followup: R tmerge's rules, one at a time (row-for-row agreement with
tmerge itself is in tests/validation/test_*_tmerge.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rjtrial.errors import DataError, RjtrialWarning
from rjtrial.survival import (
    andersen_gill,
    covariate,
    cumulative_covariate,
    cumulative_event,
    event,
    split_followup,
)

FOLLOWUP = pd.DataFrame({"id": [1, 2], "arm": ["rj", "control"], "days": [100, 50]})


def _intervals(table, id_=1):
    rows = table[table["id"] == id_]
    return list(zip(rows["tstart"].tolist(), rows["tstop"].tolist()))


# ------------------------------------------------------------------ where an event falls
@pytest.mark.parametrize(
    "day, intervals, ends_in_event, kind",
    [
        (-5, [(0, 100)], [0], "early"),  # before follow-up: not recorded
        (0, [(0, 100)], [0], "leading"),  # on the day of assignment: not recorded (risk starts after it)
        (40, [(0, 40), (40, 100)], [1, 0], "within"),  # splits the interval
        (100, [(0, 100)], [1], "trailing"),  # on the last day: recorded
        (130, [(0, 100)], [0], "late"),  # after follow-up: not recorded
    ],
)
def test_an_event_counts_on_the_interval_ending_at_it(day, intervals, ends_in_event, kind):
    events = pd.DataFrame({"id": [1], "day": [day]})
    table = split_followup(FOLLOWUP, events, id="id", stop="days", variables={"reoffence": event("day")})
    assert _intervals(table) == intervals
    assert table.loc[table["id"] == 1, "reoffence"].tolist() == ends_in_event
    counts = table.attrs["counts"].loc["reoffence"]
    assert counts[kind] == 1 and counts.sum() == 1
    assert _intervals(table, 2) == [(0, 50)]  # the other person is untouched


def test_a_boundary_between_two_intervals_and_a_gap():
    table = pd.DataFrame({"id": [1, 1], "tstart": [0.0, 60.0], "tstop": [30.0, 100.0], "x": [0, 1]})
    events = pd.DataFrame({"id": [1, 1], "day": [30, 45]})
    out = split_followup(table, events, id="id", event_columns=[], variables={"e": event("day")})
    assert _intervals(out) == [(0, 30), (60, 100)]
    assert out["e"].tolist() == [1, 0]  # 30 ends the first interval; 45 falls in the gap
    counts = out.attrs["counts"].loc["e"]
    assert (counts["trailing"], counts["gap"]) == (1, 1)
    assert (
        split_followup(out, pd.DataFrame({"id": [1], "day": [60]}), id="id", variables={"f": event("day")})
        .attrs["counts"]
        .loc["f", "boundary"]
        == 0
    )


def test_two_events_at_one_time_the_last_wins_and_ties_are_counted():
    events = pd.DataFrame({"id": [1, 1, 1], "day": [40, 40, 70], "seriousness": [3, 1, 2]})
    table = split_followup(
        FOLLOWUP,
        events,
        id="id",
        stop="days",
        variables={"seriousness": event("day", "seriousness"), "n": cumulative_event("day")},
    )
    person = table[table["id"] == 1]
    assert person["seriousness"].tolist() == [1, 2, 0]
    assert person["n"].tolist() == [2, 3, 0]  # a running count: the second of day 40 is the 2nd event
    assert table.attrs["counts"].loc["n", "tied"] == 1


def test_cumulative_event_counts_events_before_follow_up():
    # R's cumevent counts every record of the person, including those before follow-up
    events = pd.DataFrame({"id": [1, 1], "day": [-10, 60]})
    table = split_followup(FOLLOWUP, events, id="id", stop="days", variables={"n": cumulative_event("day")})
    assert table.loc[table["id"] == 1, "n"].tolist() == [2, 0]


# ------------------------------------------------------------------ covariates
def test_a_covariate_without_values_is_zero_then_one():
    events = pd.DataFrame({"id": [1], "day": [30]})
    table = split_followup(FOLLOWUP, events, id="id", stop="days", variables={"programme": covariate("day")})
    assert _intervals(table) == [(0, 30), (30, 100)]
    assert table["programme"].tolist() == [0, 1, 0]


def test_a_covariate_takes_its_value_at_the_start_of_each_interval():
    custody = pd.DataFrame({"id": [1, 1, 1, 2], "day": [-20, 10, 60, 5], "in_custody": [1, 0, 1, 1]})
    table = split_followup(
        FOLLOWUP, custody, id="id", stop="days", variables={"custody": covariate("day", "in_custody", initial=0)}
    )
    assert _intervals(table) == [(0, 10), (10, 60), (60, 100)]
    assert table["custody"].tolist() == [1, 0, 1, 0, 1]  # a spell from before assignment holds from day 0
    plain = split_followup(
        FOLLOWUP, custody, id="id", stop="days", variables={"custody": covariate("day", "in_custody")}
    )
    assert plain.loc[plain["id"] == 2, "custody"].isna().tolist() == [True, False]  # R: NA before the first time


def test_a_missing_value_is_left_out_or_named():
    visits = pd.DataFrame({"id": [1, 1, 1], "day": [0, 30, 60], "bili": [1.0, np.nan, 2.5]})
    table = split_followup(FOLLOWUP, visits, id="id", stop="days", variables={"bili": covariate("day", "bili")})
    # the missing value is left out, so the earlier value is carried forward (R's na.rm = TRUE)
    assert _intervals(table) == [(0, 60), (60, 100)] and table["bili"].tolist()[:2] == [1.0, 2.5]
    with pytest.raises(DataError, match="missing value") as info:
        split_followup(
            FOLLOWUP, visits, id="id", stop="days", variables={"bili": covariate("day", "bili")}, na_action="raise"
        )
    assert (info.value.row, info.value.column) == (1, "bili")


def test_cumulative_covariates_add_up_to_the_start_of_each_interval():
    conferences = pd.DataFrame({"id": [1, 1, 1], "day": [-3, 20, 150]})
    table = split_followup(
        FOLLOWUP, conferences, id="id", stop="days", variables={"conferences": cumulative_covariate("day")}
    )
    assert table["conferences"].tolist() == [1, 2, 0]  # the record after follow-up does not count
    harm = pd.DataFrame({"id": [1, 1], "day": [20, 30], "cost": [5.0, 7.5]})
    table = split_followup(
        FOLLOWUP, harm, id="id", stop="days", variables={"harm": cumulative_covariate("day", "cost", initial=0)}
    )
    assert table["harm"].tolist() == [0, 5, 12.5, 0]


def test_delay_applies_to_covariates_after_the_start():
    events = pd.DataFrame({"id": [1, 1], "day": [0, 30]})
    table = split_followup(
        FOLLOWUP, events, id="id", stop="days", delay=7, variables={"programme": cumulative_covariate("day")}
    )
    assert _intervals(table) == [(0, 37), (37, 100)] and table["programme"].tolist()[:2] == [1, 2]


# ------------------------------------------------------------------ chaining and bookkeeping
def test_chained_calls_equal_one_call_and_splitting_keeps_the_event_on_the_last_piece():
    offences = pd.DataFrame({"id": [1, 2], "day": [60, 20]})
    custody = pd.DataFrame({"id": [1], "day": [30]})
    once = split_followup(FOLLOWUP, [offences, custody][0], id="id", stop="days", variables={"reoffence": event("day")})
    twice = split_followup(once, custody, id="id", variables={"custody": covariate("day")})
    person = twice[twice["id"] == 1]
    assert list(zip(person["tstart"], person["tstop"], person["reoffence"], person["custody"])) == [
        (0, 30, 0, 0),
        (30, 60, 1, 1),
        (60, 100, 0, 1),
    ]
    assert list(twice.attrs["counts"].index) == ["reoffence", "custody"]
    assert twice.attrs["split_followup"]["events"] == {"reoffence": 0}


def test_one_name_several_times_is_rs_wide_data():
    wide = pd.DataFrame({"id": [1, 2], "futime": [100, 80], "etime1": [10, np.nan], "etime2": [70, np.nan]})
    table = split_followup(
        wide, id="id", stop="futime", variables=[("infect", event("etime1")), ("infect", event("etime2"))]
    )
    assert table["infect"].tolist() == [1, 1, 0, 0]
    assert _intervals(table) == [(0, 10), (10, 70), (70, 100)]


def test_records_of_unknown_ids_are_counted_and_all_unknown_is_an_error():
    events = pd.DataFrame({"id": [1, 99], "day": [40, 40]})
    table = split_followup(FOLLOWUP, events, id="id", stop="days", variables={"e": event("day")})
    assert table.attrs["counts"].loc["e", "missid"] == 1
    with pytest.raises(DataError, match="compare their types"):
        split_followup(
            FOLLOWUP, events.assign(id=events["id"].astype(str)), id="id", stop="days", variables={"e": event("day")}
        )


def test_the_input_is_not_changed_and_rows_keep_the_tables_order():
    followup = FOLLOWUP.iloc[::-1].copy()
    before = followup.copy()
    table = split_followup(
        followup, pd.DataFrame({"id": [1], "day": [40]}), id="id", stop="days", variables={"e": event("day")}
    )
    pd.testing.assert_frame_equal(followup, before)
    assert table["id"].tolist() == [2, 1, 1] and list(table.index) == [0, 1, 2]


def test_the_table_feeds_andersen_gill():
    rng = np.random.default_rng(2)
    followup = pd.DataFrame({"id": range(1, 41), "arm": np.where(np.arange(40) % 2, "rj", "control"), "days": 365})
    offences = pd.DataFrame({"id": rng.integers(1, 41, 90), "day": rng.integers(1, 365, 90)})
    table = split_followup(followup, offences, id="id", stop="days", variables={"reoffence": event("day")})
    fit = andersen_gill(table, "arm", start="tstart", stop="tstop", event="reoffence", id="id")
    assert fit.n_events == offences.drop_duplicates().shape[0]


# ------------------------------------------------------------------ careless input
@pytest.mark.parametrize(
    "table, options, message, where",
    [
        (FOLLOWUP.assign(id=[1, 1]), {}, "appears twice", (1, "id")),
        (FOLLOWUP.assign(days=[100, 0]), {}, "must end after it starts", (1, "days")),
        (FOLLOWUP.assign(start=[0, 60]), {"start": "start"}, "found start 60 >= end 50", (1, "days")),
        (FOLLOWUP.assign(days=["100", "fifty"]), {}, "times must be numbers, found 'fifty'", (1, "days")),
        (FOLLOWUP.assign(days=pd.to_datetime(["2020-01-01", "2020-02-01"])), {}, "convert dates first", (None, "days")),
        (FOLLOWUP.assign(id=[1, None]), {}, "id is missing", (1, "id")),
    ],
)
def test_a_bad_follow_up_table_is_named(table, options, message, where):
    with pytest.raises(DataError, match=message) as info:
        split_followup(table, id="id", stop="days", **options)
    assert (info.value.row, info.value.column) == where


def test_a_bad_events_table_is_named():
    with pytest.raises(DataError, match="no column 'date'") as info:
        split_followup(
            FOLLOWUP, pd.DataFrame({"id": [1], "day": [3]}), id="id", stop="days", variables={"e": event("date")}
        )
    assert info.value.column == "date"


def test_a_later_call_needs_a_table_it_made():
    with pytest.raises(ValueError, match="attrs are gone"):
        split_followup(pd.DataFrame({"id": [1], "tstart": [0], "tstop": [5]}), id="id")
    table = split_followup(FOLLOWUP, id="id", stop="days")
    with pytest.raises(ValueError, match="first call only"):
        split_followup(table, id="id", start="days")
    overlapping = pd.DataFrame({"id": [1, 1], "tstart": [0, 5], "tstop": [10, 20]})
    with pytest.raises(DataError, match="overlaps") as info:
        split_followup(overlapping, id="id", event_columns=[])
    assert info.value.row == 1


@pytest.mark.parametrize(
    "variables, message",
    [
        ({"e": "day"}, "must be made by event"),
        ({"tstart": event("day")}, "name of the interval column"),
        ([("e",)], "a dict"),
    ],
)
def test_bad_variables(variables, message):
    with pytest.raises(ValueError, match=message):
        split_followup(FOLLOWUP, pd.DataFrame({"id": [1], "day": [3]}), id="id", stop="days", variables=variables)


def test_a_variable_names_its_columns():
    with pytest.raises(ValueError, match="time must be a column name"):
        event(3)


def test_an_event_cannot_become_a_covariate_and_a_replaced_column_is_warned_of():
    events = pd.DataFrame({"id": [1], "day": [30]})
    table = split_followup(FOLLOWUP, events, id="id", stop="days", variables={"e": event("day")})
    with pytest.raises(ValueError, match="is an event variable"):
        split_followup(table, events, id="id", variables={"e": covariate("day")})
    with pytest.warns(RjtrialWarning, match="column 'arm' of the table is replaced"):
        split_followup(FOLLOWUP, events, id="id", stop="days", variables={"arm": covariate("day")})


# ------------------------------------------------------------------ invariants
@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 6), st.integers(-30, 130)), max_size=30),
    st.lists(st.tuples(st.integers(1, 6), st.integers(-30, 130)), max_size=10),
)
def test_follow_up_time_and_events_are_conserved(offences, spells):
    followup = pd.DataFrame({"id": range(1, 7), "days": [100, 50, 1, 130, 7, 100]})
    events = pd.DataFrame(offences, columns=["id", "day"])
    custody = pd.DataFrame(spells, columns=["id", "day"])
    table = split_followup(followup, events, id="id", stop="days", variables={"e": event("day")})
    table = split_followup(table, custody, id="id", variables={"c": covariate("day")})
    # every person's follow-up is covered once, without gaps or overlaps
    for person, days in zip(followup["id"], followup["days"]):
        rows = table[table["id"] == person]
        assert rows["tstart"].iloc[0] == 0 and rows["tstop"].iloc[-1] == days
        assert (rows["tstart"].to_numpy()[1:] == rows["tstop"].to_numpy()[:-1]).all()
        assert (rows["tstop"] > rows["tstart"]).all()
    # one recorded event per distinct (person, day) inside (0, end]
    inside = events.merge(followup, on="id")
    inside = inside[(inside["day"] > 0) & (inside["day"] <= inside["days"])].drop_duplicates(["id", "day"])
    assert table["e"].sum() == len(inside)
    # the covariate is 1 exactly from the person's first spell on
    first = custody.groupby("id")["day"].min()
    expected = table["id"].map(first).le(table["tstart"]).astype(int)
    assert (table["c"] == expected).all()
