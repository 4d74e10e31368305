"""Tests of rjtrial.followup: hand-checked cases, errors, warnings, and agreement with a
slow per-person, day-by-day reference implementation (hypothesis).

Day arithmetic in the comments: day k is ``randomised_on + k`` days; 2020 is a leap year.
"""

from __future__ import annotations

import doctest
import warnings
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rjtrial import followup
from rjtrial.errors import DataError
from rjtrial.followup import FollowupWarning, build, proven_reoffending


def people(*assigned: str, **extra) -> pd.DataFrame:
    """Participants p1, p2, ... assigned on the given dates."""
    n = len(assigned)
    frame = pd.DataFrame(
        {
            "id": [f"p{i + 1}" for i in range(n)],
            "arm": ["rj" if i % 2 == 0 else "control" for i in range(n)],
            "randomised_on": pd.to_datetime(list(assigned)),
        }
    )
    for name, values in extra.items():
        frame[name] = values
    return frame


def records(*rows) -> pd.DataFrame:
    """Offences from (id, offence_date, conviction_date[, offence_type]) tuples."""
    rows = [tuple(r) + ("theft",) * (4 - len(r)) for r in rows]
    return pd.DataFrame(rows, columns=["id", "offence_date", "conviction_date", "offence_type"])


def spells(*rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=["id", "start", "end"])


NO_OFFENCES = records()


def row(table: pd.DataFrame, pid: str) -> dict:
    return table.set_index("id").loc[pid].to_dict()


# ---- hand-checked cases --------------------------------------------------------------


def test_custody_in_the_middle_of_the_window():
    # A = 2021-03-01, window 100 days: days 0..99.
    # custody 2021-03-11..2021-03-20 = days 10..19 (inclusive) = 10 days.
    # p1 reoffends on 2021-04-10 = day 31 (March) + 9 = 40:
    #   days 0..40 = 41 days, less 10 in custody -> time_at_risk 31.
    # p2 does not reoffend: exposure = 100 - 10 = 90 = time_at_risk.
    # end_on = 2021-03-01 + 100 days = 2021-06-09 (June 1 is day 31+30+31 = 92).
    table = build(
        people("2021-03-01", "2021-03-01"),
        records(("p1", "2021-04-10", "2021-05-01")),
        custody=spells(("p1", "2021-03-11", "2021-03-20"), ("p2", "2021-03-11", "2021-03-20")),
        window_days=100,
    )
    p1, p2 = row(table, "p1"), row(table, "p2")
    assert (p1["time_at_risk"], p1["event"], p1["reoffences"]) == (31, True, 1)
    assert (p1["exposure_days"], p1["days_in_custody"], p1["followup_days"]) == (90, 10, 100)
    assert p1["first_reoffence_on"] == pd.Timestamp("2021-04-10")
    assert p1["end_on"] == pd.Timestamp("2021-06-09") and p1["end_reason"] == "window_end"
    assert (p2["time_at_risk"], p2["event"], p2["reoffences"], p2["exposure_days"]) == (90, False, 0, 90)
    assert pd.isna(p2["first_reoffence_on"])


def test_reoffence_on_the_assignment_day_and_at_the_window_edges():
    # p1: offence on day 0 -> a reoffence; days 0..0 at risk -> time 1.
    # p2: offence on day 29 = last day of a 30-day window -> time 30, event.
    # p3: offence on day 30 = first day after the window -> not counted; time 30.
    table = build(
        people("2020-01-01", "2020-01-01", "2020-01-01"),
        records(("p1", "2020-01-01", None), ("p2", "2020-01-30", None), ("p3", "2020-01-31", None)),
        window_days=30,
    )
    assert (row(table, "p1")["time_at_risk"], row(table, "p1")["event"]) == (1, True)
    assert row(table, "p1")["prior_offences"] == 0
    assert row(table, "p1")["first_reoffence_on"] == pd.Timestamp("2020-01-01")
    assert (row(table, "p2")["time_at_risk"], row(table, "p2")["event"]) == (30, True)
    assert (row(table, "p3")["time_at_risk"], row(table, "p3")["event"], row(table, "p3")["reoffences"]) == (
        30,
        False,
        0,
    )


def test_offences_before_assignment_are_priors_not_reoffences():
    # A = 2022-01-01, prior window 730 days = days -730..-1.
    # 2021-12-31 is day -1 (prior). 2022-01-01 - 365 = 2021-01-01 (day -365), 2020 has 366 days,
    # so 2020-01-01 is day -731 (outside) and 2020-01-02 is day -730 (inside).
    table = build(
        people("2022-01-01"),
        records(("p1", "2021-12-31", "2022-03-01"), ("p1", "2020-01-02", None), ("p1", "2020-01-01", None)),
    )
    p1 = row(table, "p1")
    assert (p1["prior_offences"], p1["reoffences"], p1["event"], p1["time_at_risk"]) == (2, 0, False, 730)
    # a shorter prior window: only day -1 is in days -1..-1
    assert (
        row(
            build(
                people("2022-01-01"),
                records(("p1", "2021-12-31", None), ("p1", "2021-12-30", None)),
                prior_window_days=1,
            ),
            "p1",
        )["prior_offences"]
        == 1
    )


def test_lagged_convictions_censor_follow_up_at_extraction_less_the_lag():
    # extraction 2021-07-01, lag 183: 2021-07-01 - 181 days (Jan..Jun 2021) = 2021-01-01,
    # -183 = 2020-12-30 = the cut-off. From A = 2020-01-01 that is day 364 (2020-12-31 is day 365),
    # so days 0..363 are observed: followup_days 364, end_on 2020-12-30.
    # p1: offence on the cut-off day (day 364) -> not observed.
    # p2: offence 2020-12-29 (day 363) -> observed: time 364.
    # p3: offence convicted 2021-08-01, after the extraction -> not known, ignored.
    # p4: offence 2020-03-01 (day 31 + 29 = 60), not convicted -> counts with date_basis="offence": time 61.
    # p5: assigned 2021-01-01, after the cut-off -> 0 days observed.
    table = build(
        people("2020-01-01", "2020-01-01", "2020-01-01", "2020-01-01", "2021-01-01"),
        records(
            ("p1", "2020-12-30", "2021-03-01"),
            ("p2", "2020-12-29", "2021-02-01"),
            ("p3", "2020-06-01", "2021-08-01"),
            ("p4", "2020-03-01", None),
        ),
        extraction_date="2021-07-01",
        conviction_lag_days=183,
    )
    expected = {  # time_at_risk, event, reoffences, followup_days
        "p1": (364, False, 0, 364),
        "p2": (364, True, 1, 364),
        "p3": (364, False, 0, 364),
        "p4": (61, True, 1, 364),
        "p5": (0, False, 0, 0),
    }
    for pid, values in expected.items():
        r = row(table, pid)
        assert (r["time_at_risk"], r["event"], r["reoffences"], r["followup_days"]) == values, pid
        assert r["end_reason"] == "extraction"
    assert row(table, "p1")["end_on"] == pd.Timestamp("2020-12-30")
    assert table.attrs["followup_cutoff"] == "2020-12-30"
    assert table.attrs["records_ignored"]["offences"] == {"not_participant": 0, "convicted_after_extraction": 1}


def test_conviction_basis_dates_reoffences_by_conviction():
    # A = 2020-01-01, window 365.
    # committed 2020-01-10, convicted 2020-03-01 (day 60) -> reoffence on day 60: time 61.
    # committed 2019-12-31 (day -1, before A), convicted after A -> neither reoffence nor prior.
    # committed 2019-06-01, convicted 2019-08-01 (day -153) -> prior.
    # committed 2020-05-01, never convicted -> not a conviction.
    table = build(
        people("2020-01-01"),
        records(
            ("p1", "2020-01-10", "2020-03-01"),
            ("p1", "2019-12-31", "2020-02-01"),
            ("p1", "2019-06-01", "2019-08-01"),
            ("p1", "2020-05-01", None),
        ),
        window_days=365,
        date_basis="conviction",
    )
    p1 = row(table, "p1")
    assert (p1["time_at_risk"], p1["event"], p1["reoffences"], p1["prior_offences"]) == (61, True, 1, 1)
    assert p1["first_reoffence_on"] == pd.Timestamp("2020-03-01")


PROVEN_CASES = records(
    ("p1", "2020-06-01", "2021-07-01"),  # day 152, proven on day 547 (< 365 + 183 = 548): counts
    ("p2", "2020-06-01", "2021-07-02"),  # proven on day 548: too late
    ("p3", "2020-12-31", "2021-01-15"),  # committed on day 365: after the one-year follow-up
    ("p4", "2020-12-30", "2021-01-15"),  # committed on day 364, the last day: counts
    ("p5", "2020-03-01", None),  # never proven
)


def test_proven_reoffending_preset():
    # A = 2020-01-01. Follow-up days 0..364 = 2020-01-01..2020-12-30 (2020 has 366 days).
    # Proven before day 548: 2021-01-01 is day 366, + 181 days (Jan..Jun) = 2021-07-01 is day 547.
    # p1: 2020-06-01 = day 31+29+31+30+31 = 152 -> time 153.  p4: day 364 -> time 365.
    table = proven_reoffending(people(*["2020-01-01"] * 5), PROVEN_CASES)
    expected = {"p1": (153, True), "p2": (365, False), "p3": (365, False), "p4": (365, True), "p5": (365, False)}
    for pid, values in expected.items():
        r = row(table, pid)
        assert (r["time_at_risk"], r["event"]) == values, pid
        assert r["followup_days"] == 365
    assert table.attrs["preset"] == "proven_reoffending"
    assert (table.attrs["window_days"], table.attrs["proven_within_days"], table.attrs["conviction_lag_days"]) == (
        365,
        183,
        0,
    )


def test_proven_reoffending_with_extraction_waits_for_the_six_months():
    # Extraction on 2021-07-02 = day 548: cut-off 2021-07-02 - 183 = 2020-12-31 = day 365, the
    # end of the year, so everyone is fully observed and every conviction up to day 547 is known:
    # the same answer as without an extraction date.
    p = people(*["2020-01-01"] * 5)
    full = proven_reoffending(p, PROVEN_CASES)
    on_time = proven_reoffending(p, PROVEN_CASES, extraction_date="2021-07-02")
    cols = ["time_at_risk", "event", "reoffences", "followup_days", "end_reason"]
    pd.testing.assert_frame_equal(full[cols], on_time[cols])
    # One day earlier: cut-off 2020-12-30 = day 364 (followup 364, censored by extraction), and
    # p1's conviction on 2021-07-01 is on the extraction day, so not yet known.
    early = proven_reoffending(p, PROVEN_CASES, extraction_date="2021-07-01")
    assert list(early["followup_days"]) == [364] * 5
    assert list(early["end_reason"]) == ["extraction"] * 5
    assert list(early["event"]) == [False, False, False, False, False]  # p4's day 364 is not observed
    assert early.attrs["conviction_lag_days"] == 183


def test_offence_in_custody_counts_but_its_day_is_not_at_risk():
    # p1: custody days 0..9, offence on day 5 -> a reoffence with no street day before it: time 0.
    # p2: custody days 3..7, offence on day 5 -> street days 0, 1, 2 -> time 3.
    table = build(
        people("2020-01-01", "2020-01-01"),
        records(("p1", "2020-01-06", None), ("p2", "2020-01-06", None)),
        custody=spells(("p1", "2020-01-01", "2020-01-10"), ("p2", "2020-01-04", "2020-01-08")),
        window_days=50,
    )
    assert (row(table, "p1")["time_at_risk"], row(table, "p1")["event"], row(table, "p1")["reoffences"]) == (0, True, 1)
    assert (row(table, "p2")["time_at_risk"], row(table, "p2")["event"]) == (3, True)
    assert (row(table, "p1")["exposure_days"], row(table, "p2")["exposure_days"]) == (40, 45)


def test_overlapping_and_adjacent_custody_spells_are_merged_and_clipped():
    # p1 (window 100): spells 10..19, 15..24, 25..29 (adjacent), 27..28 (inside) -> days 10..29 = 20.
    # p2: a spell from day -30 to 4 -> days 0..4 (5); one from day 95 to 200 -> days 95..99 (5): 10.
    # p3: 10..29 holds 12..13 and 16..17 (nested; 16 is more than a day after 13, but inside 10..29): 20.
    a = date(2020, 1, 1)
    day = lambda k: (a + timedelta(days=k)).isoformat()  # noqa: E731
    table = build(
        people("2020-01-01", "2020-01-01", "2020-01-01"),
        NO_OFFENCES,
        custody=spells(
            ("p1", day(15), day(24)),
            ("p1", day(10), day(19)),
            ("p1", day(25), day(29)),
            ("p1", day(27), day(28)),
            ("p2", day(-30), day(4)),
            ("p2", day(95), day(200)),
            ("p3", day(10), day(29)),
            ("p3", day(12), day(13)),
            ("p3", day(16), day(17)),
        ),
        window_days=100,
    )
    assert (
        row(table, "p1")["days_in_custody"],
        row(table, "p1")["exposure_days"],
        row(table, "p1")["time_at_risk"],
    ) == (20, 80, 80)
    assert (row(table, "p2")["days_in_custody"], row(table, "p2")["exposure_days"]) == (10, 90)
    assert (row(table, "p3")["days_in_custody"], row(table, "p3")["exposure_days"]) == (20, 80)


def test_censor_date_ends_follow_up_on_the_day_after():
    # p1 died on day 49: days 0..49 observed (followup 50). Custody days 40..60 -> 40..49 = 10 observed.
    # An offence recorded on day 49 counts (time 50 - 10 = 40); one on day 50 would not.
    # p2: died_on missing -> the full window.
    participants = people("2020-01-01", "2020-01-01", died_on=pd.to_datetime(["2020-02-19", None]))
    table = build(
        participants,
        records(("p1", "2020-02-19", None), ("p1", "2020-02-20", None)),
        custody=spells(("p1", "2020-02-10", "2020-03-01")),
        window_days=100,
    )
    p1 = row(table, "p1")
    assert (p1["followup_days"], p1["days_in_custody"], p1["exposure_days"]) == (50, 10, 40)
    assert (p1["time_at_risk"], p1["event"], p1["reoffences"], p1["end_reason"]) == (40, True, 1, "censor_date")
    assert (row(table, "p2")["followup_days"], row(table, "p2")["end_reason"]) == (100, "window_end")
    assert table.attrs["censor_column"] == "died_on"
    # the same column under another name; or switched off
    renamed = participants.rename(columns={"died_on": "left_country_on"})
    assert (
        row(build(renamed, NO_OFFENCES, window_days=100, censor_column="left_country_on"), "p1")["followup_days"] == 50
    )
    assert row(build(participants, NO_OFFENCES, window_days=100, censor_column=None), "p1")["followup_days"] == 100


def test_offence_types_filter_reoffences_and_priors():
    offences = records(
        ("p1", "2019-12-01", None, "assault"),
        ("p1", "2019-12-02", None, "theft"),
        ("p1", "2020-02-01", None, "theft"),
        ("p1", "2020-03-01", None, "assault"),  # days 31 and 60
    )
    table = build(people("2020-01-01"), offences, offence_types=["assault"])
    p1 = row(table, "p1")
    assert (p1["prior_offences"], p1["reoffences"], p1["time_at_risk"]) == (1, 1, 61)
    assert row(build(people("2020-01-01"), offences, offence_types="theft"), "p1")["time_at_risk"] == 32


def test_registry_export_is_accepted_directly(tmp_path):
    from registry_fixtures import enrol_all, new_registry, referral_stream

    registry = new_registry(tmp_path)
    enrol_all(registry, referral_stream(6, seed=3))
    participants = registry.export(by="analyst")
    first = participants["id"].iloc[0]
    assigned = participants["randomised_on"].iloc[0]
    offences = pd.DataFrame(
        {
            "id": [first],
            "offence_date": [assigned + pd.Timedelta(days=9)],
            "conviction_date": [pd.NaT],
            "offence_type": ["theft"],
        }
    )
    table = build(participants, offences)
    assert list(table.columns[: len(participants.columns)]) == list(participants.columns)
    assert list(table.columns[len(participants.columns) :]) == list(followup.OUTPUT_COLUMNS)
    pd.testing.assert_frame_equal(table[participants.columns], participants)
    assert table["time_at_risk"].iloc[0] == 10 and table["event"].iloc[0]
    assert table.attrs["trial_id"] == participants.attrs["trial_id"]


def test_output_keeps_order_and_index_and_records_parameters():
    participants = people("2020-01-01", "2020-01-05").set_index(pd.Index(["x", "x"]))
    table = build(participants, records(("p2", "2020-01-05", None)), window_days=10, prior_window_days=5)
    assert list(table.index) == ["x", "x"] and list(table["id"]) == ["p1", "p2"]
    assert list(table["time_at_risk"]) == [10, 1]
    assert table["event"].dtype == bool and table["time_at_risk"].dtype == np.int64
    assert list(table["end_reason"].cat.categories) == ["window_end", "censor_date", "extraction"]
    attrs = table.attrs
    assert (attrs["window_days"], attrs["prior_window_days"], attrs["date_basis"]) == (10, 5, "offence")
    # no extraction date given: today, said so
    assert attrs["extraction_date_source"] == "today" and attrs["preset"] is None and attrs["time_unit"] == "days"
    assert attrs["extraction_date"] == pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d")


def test_string_dates_datetime_objects_and_times_of_day_agree():
    # a time of day is dropped; timezone-aware values are taken at their own wall-clock date
    base = build(people("2020-01-01"), records(("p1", "2020-01-03", None)), window_days=10)
    participants = people("2020-01-01")
    participants["randomised_on"] = pd.to_datetime(["2020-01-01 23:30"]).tz_localize("Europe/London")
    mixed = build(participants, records(("p1", date(2020, 1, 3), None)), window_days=10)
    assert mixed["time_at_risk"].iloc[0] == base["time_at_risk"].iloc[0] == 3


# ---- errors ------------------------------------------------------------------------------


def _error_cases():
    ok_people = people("2020-01-01", "2020-01-01", "2020-01-01")
    ok_offences = records(("p1", "2020-02-01", "2020-03-01"), ("p2", "2020-02-01", None))
    cases = {
        "participants missing column": (
            people("2020-01-01").drop(columns="randomised_on"),
            ok_offences,
            None,
            {},
            ("participants", None, "randomised_on"),
        ),
        "duplicate participant id": (
            ok_people.assign(id=["p1", "p2", "p1"]),
            ok_offences,
            None,
            {},
            ("participants", 3, "id"),
        ),
        "missing participant id": (
            ok_people.assign(id=["p1", None, "p3"]),
            ok_offences,
            None,
            {},
            ("participants", 2, "id"),
        ),
        "no assignment date": (
            ok_people.assign(randomised_on=pd.to_datetime(["2020-01-01", None, "2020-01-01"])),
            ok_offences,
            None,
            {},
            ("participants", 2, "randomised_on"),
        ),
        "unparsable assignment date": (
            ok_people.assign(randomised_on=["2020-01-01", "2020-01-01", "soon"]),
            ok_offences,
            None,
            {},
            ("participants", 3, "randomised_on"),
        ),
        "censor date before assignment": (
            ok_people.assign(died_on=[None, "2019-12-31", None]),
            ok_offences,
            None,
            {},
            ("participants", 2, "died_on"),
        ),
        "output column clash": (ok_people.assign(event=1), ok_offences, None, {}, ("participants", None, "event")),
        "unparsable offence date": (
            ok_people,
            records(("p1", "2020-02-01", None), ("p2", "31/02/2020", None)),
            None,
            {},
            ("offences", 2, "offence_date"),
        ),
        "missing offence date": (
            ok_people,
            records(("p1", "2020-02-01", None), ("p2", "2020-02-01", None), ("p3", None, None)),
            None,
            {},
            ("offences", 3, "offence_date"),
        ),
        "numeric offence date": (
            ok_people,
            pd.DataFrame({"id": ["p1"], "offence_date": [20200201]}),
            None,
            {},
            ("offences", 1, "offence_date"),
        ),
        "unparsable conviction date": (
            ok_people,
            records(("p1", "2020-02-01", "later")),
            None,
            {},
            ("offences", 1, "conviction_date"),
        ),
        "conviction before offence": (
            ok_people,
            records(("p1", "2020-02-01", None), ("p3", "2020-02-01", "2020-01-31")),
            None,
            {},
            ("offences", 2, "conviction_date"),
        ),
        "missing person id in offences": (
            ok_people,
            records(("p1", "2020-02-01", None), (None, "2020-02-01", None)),
            None,
            {},
            ("offences", 2, "id"),
        ),
        "conviction column needed": (
            ok_people,
            ok_offences.drop(columns="conviction_date"),
            None,
            {"date_basis": "conviction"},
            ("offences", None, "conviction_date"),
        ),
        "custody ends before it starts": (
            ok_people,
            ok_offences,
            spells(("p1", "2020-01-05", "2020-01-09"), ("p2", "2020-01-05", "2020-01-04")),
            {},
            ("custody", 2, "end"),
        ),
        "custody without start": (
            ok_people,
            ok_offences,
            spells(("p1", None, "2020-01-09")),
            {},
            ("custody", 1, "start"),
        ),
        "custody without end": (
            ok_people,
            ok_offences,
            spells(("p1", "2020-01-05", "2020-01-09"), ("p3", "2020-01-05", None)),
            {},
            ("custody", 2, "end"),
        ),
        "custody unparsable start": (
            ok_people,
            ok_offences,
            spells(("p2", "Jan 5th", "2020-01-09")),
            {},
            ("custody", 1, "start"),
        ),
        # dates after the records were extracted (or, without an extraction date, after today)
        "randomised after the extraction date": (
            ok_people.assign(randomised_on=["2020-01-01", "2021-09-01", "2020-01-01"]),
            ok_offences,
            None,
            {"extraction_date": "2021-07-01"},
            ("participants", 2, "randomised_on"),
        ),
        "randomised in 2090": (
            ok_people.assign(randomised_on=["2020-01-01", "2020-01-01", "2090-01-01"]),
            ok_offences,
            None,
            {},
            ("participants", 3, "randomised_on"),
        ),
        "offence after the extraction date": (
            ok_people,
            records(("p1", "2020-02-01", None), ("p2", "2021-08-01", None)),
            None,
            {"extraction_date": "2021-07-01"},
            ("offences", 2, "offence_date"),
        ),
        "offence in 2999": (
            ok_people,
            records(("p1", "2020-02-01", None), ("p2", "2999-02-01", None)),
            None,
            {},
            ("offences", 2, "offence_date"),
        ),
        "conviction in 2999": (
            ok_people,
            records(("p1", "2020-02-01", "2999-03-01")),
            None,
            {},
            ("offences", 1, "conviction_date"),
        ),
        "custody starting after the extraction date": (
            ok_people,
            ok_offences,
            spells(("p1", "2022-01-05", "2022-01-09")),
            {"extraction_date": "2021-07-01"},
            ("custody", 1, "start"),
        ),
        "death in the future": (
            ok_people.assign(died_on=[None, "2090-12-31", None]),
            ok_offences,
            None,
            {},
            ("participants", 2, "died_on"),
        ),
        "no participants": (ok_people.iloc[:0], ok_offences, None, {}, ("participants", None, None)),
    }
    return [pytest.param(*case, id=name) for name, case in cases.items()]


@pytest.mark.parametrize("participants, offences, custody, options, where", _error_cases())
def test_bad_input_raises_one_error_naming_table_row_and_column(participants, offences, custody, options, where):
    table, row_number, column = where
    with pytest.raises(DataError) as caught:
        build(participants, offences, custody=custody, **options)
    error = caught.value
    assert (error.table, error.row, error.column) == (table, row_number, column)
    prefix = (
        f"table {table}"
        + (f", row {row_number}" if row_number is not None else "")
        + (f", column {column!r}" if column is not None else "")
        + ": "
    )
    assert str(error).startswith(prefix)
    assert "\n" not in str(error)


def test_duplicate_id_error_names_the_first_occurrence_and_the_id():
    with pytest.raises(DataError, match=r"row 3, column 'id': duplicate participant id 'p1' \(first on row 1\)"):
        build(people("2020-01-01", "2020-01-01", "2020-01-01").assign(id=["p1", "p2", "p1"]), NO_OFFENCES)


@pytest.mark.parametrize(
    "options, message",
    [
        pytest.param(
            {},
            r"offence date 2999-01-01 is in the future \(after today, \d{4}-\d\d-\d\d\) \(id 'p2'\)",
            id="no-extraction-date",
        ),
        pytest.param(
            {"extraction_date": "2021-07-01"},
            r"offence date 2999-01-01 is after the extraction date 2021-07-01 \(id 'p2'\)",
            id="extraction",
        ),
    ],
)
def test_an_offence_dated_2999_is_said_to_be_late_not_unparsable(options, message):
    # 2999 is beyond pandas' dates (2262): it was reported as "unparsable date"
    with pytest.raises(DataError, match=message):
        build(people("2020-01-01", "2020-01-01"), records(("p2", "2999-01-01", None)), **options)


def test_an_extraction_date_before_every_randomisation_is_refused():
    # it gave exit 0 and a table of zero follow-up
    with pytest.raises(DataError, match="extraction date 2019-06-30 is before every randomisation") as caught:
        build(people("2020-01-01", "2020-02-01"), NO_OFFENCES, extraction_date="2019-06-30")
    assert (caught.value.table, caught.value.column) == ("participants", "randomised_on")


def test_randomised_on_the_extraction_day_is_followed_for_no_day():
    table = build(people("2020-01-01", "2021-07-01"), NO_OFFENCES, extraction_date="2021-07-01")
    assert table["followup_days"].tolist() == [547, 0]


def test_a_conviction_after_the_extraction_date_is_still_ignored_and_counted():
    table = build(people("2020-01-01"), records(("p1", "2020-02-01", "2022-01-01")), extraction_date="2021-07-01")
    assert table["reoffences"].tolist() == [0]
    assert table.attrs["records_ignored"]["offences"]["convicted_after_extraction"] == 1


def test_unparsable_date_error_quotes_the_value_and_the_person():
    with pytest.raises(DataError, match=r"unparsable date '31/02/2020' \(id 'p2'\)"):
        build(people("2020-01-01", "2020-01-01"), records(("p2", "31/02/2020", None)))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"window_days": 0}, "window_days must be an integer >= 1"),
        ({"window_days": 365.5}, "window_days must be an integer >= 1"),
        ({"window_days": True}, "window_days must be an integer >= 1"),
        ({"prior_window_days": -1}, "prior_window_days must be an integer >= 0"),
        ({"date_basis": "arrest"}, r"date_basis must be one of \('offence', 'conviction'\)"),
        ({"extraction_date": "2999-01-01"}, "in the future"),
        ({"date_basis": "conviction", "proven_within_days": 183}, "proven_within_days needs date_basis"),
        ({"extraction_date": "not a date"}, "extraction_date is not a date"),
    ],
)
def test_bad_parameters_raise_value_error(options, message):
    with pytest.raises(ValueError, match=message):
        build(people("2020-01-01"), NO_OFFENCES, **options)


def test_preset_parameters_cannot_be_overridden():
    with pytest.raises(ValueError, match="proven_reoffending fixes window_days"):
        proven_reoffending(people("2020-01-01"), NO_OFFENCES, window_days=730)


def test_an_explicit_censor_column_must_exist():
    with pytest.raises(DataError, match="column 'died'"):
        build(people("2020-01-01"), NO_OFFENCES, censor_column="died")


# ---- warnings ------------------------------------------------------------------------------


def test_records_of_non_participants_are_ignored_and_counted_in_a_warning():
    # rows of non-participants are not even checked (x2's date is junk)
    offences = records(
        ("p1", "2020-01-05", None), ("x1", "2020-01-05", None), ("x1", "2020-01-06", None), ("x2", "junk", None)
    )
    custody = spells(("x3", "2020-01-01", "2020-01-02"))
    with pytest.warns(FollowupWarning) as caught:
        table = build(people("2020-01-01"), offences, custody=custody, window_days=10)
    messages = [str(w.message) for w in caught]
    assert "3 offences record(s) of 2 people who are not participants were ignored" in messages
    assert "1 custody record(s) of 1 people who are not participants were ignored" in messages
    assert all(w.filename == __file__ for w in caught)  # the warning points at the caller's line
    assert table["reoffences"].tolist() == [1]
    assert table.attrs["records_ignored"] == {
        "offences": {"not_participant": 3, "convicted_after_extraction": 0},
        "custody": {"not_participant": 1},
    }


def test_no_warning_when_every_record_belongs_to_a_participant():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build(
            people("2020-01-01"),
            records(("p1", "2020-01-05", None)),
            custody=spells(("p1", "2020-01-01", "2020-01-02")),
        )


def test_warning_explains_ids_of_different_types():
    participants = pd.DataFrame({"id": [1, 2], "randomised_on": pd.to_datetime(["2020-01-01"] * 2)})
    with pytest.warns(FollowupWarning, match="the ids are object here but int64 in participants"):
        build(participants, records(("1", "2020-01-05", None)))


def test_preset_warnings_also_point_at_the_caller():
    with pytest.warns(FollowupWarning) as caught:
        proven_reoffending(people("2020-01-01"), records(("x1", "2020-01-05", None)))
    assert [w.filename for w in caught] == [__file__]


def test_docstring_examples_run():
    result = doctest.testmod(followup, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# ---- agreement with a slow, obviously correct reference ------------------------------------


def reference(
    participants,
    offences,
    custody,
    *,
    window_days,
    date_basis,
    conviction_lag_days,
    extraction_date,
    prior_window_days,
    proven_within_days,
    offence_types,
    censor_column,
):
    """Day by day, person by person, from the rules in the module docstring."""
    out = []
    for person in participants.itertuples(index=False):
        pid, a = person.id, person.randomised_on.date()
        # the observed days: a, a+1, ..., stopping at the first bound
        bounds = [(window_days, "window_end")]
        died = getattr(person, censor_column) if censor_column else None
        if died is not None and not pd.isna(died):
            bounds.append(((died.date() - a).days + 1, "censor_date"))
        if extraction_date is not None:
            cutoff = extraction_date - timedelta(days=conviction_lag_days)
            bounds.append((max((cutoff - a).days, 0), "extraction"))
        followup_days, end_reason = min(bounds, key=lambda b: b[0])  # min keeps the first of ties
        observed = [a + timedelta(days=k) for k in range(followup_days)]
        in_custody = set()
        if custody is not None:
            for spell in custody[custody["id"] == pid].itertuples(index=False):
                d = spell.start.date()
                while d <= spell.end.date():
                    in_custody.add(d)
                    d += timedelta(days=1)
        street = [d for d in observed if d not in in_custody]
        reoffence_days, prior = [], 0
        for o in offences[offences["id"] == pid].itertuples(index=False):
            committed = o.offence_date.date()
            convicted = None if pd.isna(o.conviction_date) else o.conviction_date.date()
            if extraction_date is not None and convicted is not None and convicted >= extraction_date:
                continue  # not known at extraction
            if offence_types is not None and o.offence_type not in offence_types:
                continue
            if date_basis == "offence":
                when = committed
            elif convicted is None:
                continue
            else:
                when = convicted
            if a - timedelta(days=prior_window_days) <= when < a:
                prior += 1
            if when in observed:
                if date_basis == "conviction" and committed < a:
                    continue
                if proven_within_days is not None and (
                    convicted is None or (convicted - a).days >= window_days + proven_within_days
                ):
                    continue
                reoffence_days.append(when)
        event = bool(reoffence_days)
        first = min(reoffence_days) if event else None
        time = sum(1 for d in street if d <= first) if event else len(street)
        out.append(
            {
                "time_at_risk": time,
                "event": event,
                "first_reoffence_on": pd.Timestamp(first) if event else pd.NaT,
                "reoffences": len(reoffence_days),
                "prior_offences": prior,
                "exposure_days": len(street),
                "days_in_custody": followup_days - len(street),
                "followup_days": followup_days,
                "end_on": pd.Timestamp(a + timedelta(days=followup_days)),
                "end_reason": end_reason,
            }
        )
    return pd.DataFrame(out)


BASE = date(2020, 1, 1)


def _no_later(day: date, extraction: date | None) -> date:
    return day if extraction is None else min(day, extraction)


@st.composite
def trials(draw):
    """Small random trials whose dates cluster on the boundaries that matter.

    The parameters are drawn first; every date is then drawn relative to its person's
    assignment day over a range just wider than the window, the prior window and the
    waiting period, and a conviction may fall exactly on the extraction day or on the
    last (or first excluded) day of the proven period, so off-by-one errors show.
    """
    window = draw(st.integers(1, 10))
    date_basis = draw(st.sampled_from(["offence", "conviction"]))
    proven = None if date_basis == "conviction" else draw(st.one_of(st.none(), st.integers(0, 4)))
    prior = draw(st.integers(0, 5))
    lag = draw(st.integers(0, 4))
    # no record is dated after the extraction (build refuses one): it falls on or after the last
    # assignment day (2), and a lag still puts some cut-offs on or before assignment
    extraction_offset = draw(st.one_of(st.none(), st.integers(2, window + lag + (proven or 0) + 3)))
    extraction = None if extraction_offset is None else BASE + timedelta(days=extraction_offset)
    options = {
        "window_days": window,
        "date_basis": date_basis,
        "extraction_date": extraction,
        "conviction_lag_days": 0 if extraction is None else lag,
        "prior_window_days": prior,
        "proven_within_days": proven,
        "offence_types": draw(st.one_of(st.none(), st.just(["assault"]))),
        "censor_column": draw(st.sampled_from(["died_on", None])),
    }

    n = draw(st.integers(1, 4))
    ids = [f"p{i}" for i in range(n)]
    assigned = [BASE + timedelta(days=draw(st.integers(0, 2))) for _ in ids]
    died = [draw(st.one_of(st.none(), st.integers(0, window + 1))) for _ in ids]
    if extraction is not None:
        died = [None if k is None else min(k, (extraction - a).days) for a, k in zip(assigned, died)]
    participants = pd.DataFrame(
        {
            "id": ids,
            "arm": ["rj"] * n,
            "randomised_on": pd.to_datetime(assigned),
            "died_on": pd.to_datetime([None if k is None else a + timedelta(days=k) for a, k in zip(assigned, died)]),
        }
    )
    origin = dict(zip(ids, assigned)) | {"outsider": BASE}
    who = st.sampled_from(ids + ["outsider"])
    horizon = window + (proven or 0) + 2
    conviction = st.one_of(st.none(), st.integers(0, 5), st.sampled_from(["extraction", "proven_last", "proven_after"]))
    offence_rows = []
    for person, offset, convicted, kind in draw(
        st.lists(
            st.tuples(who, st.integers(-prior - 2, horizon), conviction, st.sampled_from(["theft", "assault"])),
            max_size=12,
        )
    ):
        committed = origin[person] + timedelta(days=offset)
        if extraction is not None:
            committed = min(committed, extraction)
        if isinstance(convicted, int):
            convicted = committed + timedelta(days=convicted)
        elif convicted == "extraction":
            convicted = extraction
        elif convicted is not None:  # the last day of the proven period, or the day after it
            convicted = origin[person] + timedelta(days=window + (proven or 0) - (convicted == "proven_last"))
        if convicted is not None and convicted < committed:
            convicted = committed
        offence_rows.append((person, committed, convicted, kind))
    offences = pd.DataFrame(
        {
            "id": [r[0] for r in offence_rows],
            "offence_date": pd.to_datetime([r[1] for r in offence_rows]),
            "conviction_date": pd.to_datetime([r[2] for r in offence_rows]),
            "offence_type": [r[3] for r in offence_rows],
        }
    )
    custody = None
    if draw(st.integers(0, 3)):  # custody in three draws out of four
        spell_rows = draw(st.lists(st.tuples(who, st.integers(-3, window + 1), st.integers(0, window)), max_size=8))
        custody = pd.DataFrame(
            {
                "id": [r[0] for r in spell_rows],
                "start": pd.to_datetime(
                    [_no_later(origin[r[0]] + timedelta(days=r[1]), extraction) for r in spell_rows]
                ),
                "end": pd.to_datetime(
                    [
                        _no_later(origin[r[0]] + timedelta(days=r[1]), extraction) + timedelta(days=r[2])
                        for r in spell_rows
                    ]
                ),
            }
        )
    return participants, offences, custody, options


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trials())
def test_vectorised_builder_agrees_with_the_day_by_day_reference(trial):
    participants, offences, custody, options = trial
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FollowupWarning)
        table = build(participants, offences, custody=custody, **options)
    expected = reference(participants, offences, custody, **options)
    got = table[list(followup.OUTPUT_COLUMNS)].reset_index(drop=True)
    got["end_reason"] = got["end_reason"].astype(str)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_follow_up_never_runs_into_the_future():
    # issue: with enrolments made today and no extraction_date, every end_on was two years ahead
    today = pd.Timestamp.now(tz="UTC").normalize().tz_localize(None)
    participants = pd.DataFrame({"id": ["a", "b"], "randomised_on": [today - pd.Timedelta(days=10), today]})
    offences = pd.DataFrame({"id": ["a"], "offence_date": [today - pd.Timedelta(days=3)]})
    table = build(participants, offences)
    assert (table["end_on"] <= today).all()
    assert list(table["end_reason"]) == ["extraction", "extraction"]
    assert table["followup_days"].tolist() == [10, 0]
    assert table.attrs["extraction_date_source"] == "today"


def test_a_future_extraction_date_is_refused_unless_simulated():
    participants = pd.DataFrame({"id": ["a"], "randomised_on": ["2020-01-01"]})
    offences = pd.DataFrame({"id": ["a"], "offence_date": ["2020-03-01"]})
    with pytest.raises(ValueError, match="in the future .*allow_future_extraction"):
        build(participants, offences, extraction_date="2999-01-01")
    table = build(participants, offences, extraction_date="2999-01-01", allow_future_extraction=True)
    assert table.attrs["extraction_date"] == "2999-01-01"
