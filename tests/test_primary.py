"""rjtrial.primary and `rjtrial analyse`: the same numbers as the modules they call."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rjtrial import frequency, survival
from rjtrial.cli import main
from rjtrial.errors import DataError
from rjtrial.primary import primary_results


@pytest.fixture
def followup():
    rng = np.random.default_rng(20261122)
    n = 300
    arm = rng.choice(["control", "conference"], n)
    rate = np.where(arm == "conference", 0.8, 1.0) / 365
    time = np.minimum(rng.exponential(1 / rate), 730).round().clip(1)
    event = time < 730
    return pd.DataFrame(
        {
            "id": [f"P{i}" for i in range(n)],
            "arm": arm,
            "time_at_risk": time,
            "event": event,
            "reoffences": np.where(event, 1 + rng.poisson(1.5, n), 0),
            "exposure_days": 730,
        }
    )


def test_primary_results_equal_the_module_functions(followup):
    res = primary_results(followup, tau=700)
    frame = res.summary_frame().set_index("measure")
    data = followup.assign(
        arm=pd.Categorical(followup["arm"], categories=["control", "conference"]), e=followup["event"].astype(int)
    )
    cox = survival.cox(data, "arm", time="time_at_risk", event="e").summary_frame().iloc[0]
    # estimate on the model's scale, the ratio in its own column (CONTRIBUTING.md)
    assert frame.loc["log_hazard_ratio", "estimate"] == pytest.approx(cox["estimate"], rel=1e-12)
    assert frame.loc["log_hazard_ratio", "ratio"] == pytest.approx(cox["hazard_ratio"], rel=1e-12)
    assert frame.loc["log_hazard_ratio", "ci_lower"] == pytest.approx(cox["ci_lower"], rel=1e-12)
    assert frame.loc["logrank", "statistic"] == pytest.approx(
        survival.logrank(data, time="time_at_risk", event="e", group="arm").statistic, rel=1e-12
    )
    assert np.isnan(frame.loc["logrank", "estimate"])
    rmst = survival.rmst(data, tau=700, time="time_at_risk", event="e", group="arm", control="control")
    assert frame.loc["rmst_difference", "estimate"] == pytest.approx(rmst.difference["estimate"].iloc[0], rel=1e-12)
    rate = frequency.rate_ratio(data, count="reoffences", exposure="exposure_days", group="arm", control="control")
    assert frame.loc["log_rate_ratio", "ratio"] == pytest.approx(rate.rate_ratio, rel=1e-9)
    assert frame.loc["log_rate_ratio", "estimate"] == pytest.approx(np.log(rate.rate_ratio), rel=1e-9)
    risk = frequency.risk_ratio(data, outcome="e", group="arm", control="control")
    assert frame.loc["log_risk_ratio", "ratio"] == pytest.approx(risk.estimate, rel=1e-12)
    # treatment vs control: the simulated conference arm reoffends less
    assert res.treatment == "conference" and frame.loc["log_hazard_ratio", "ratio"] < 1


def test_default_tau_is_the_longest_time_both_arms_are_followed(followup):
    short = followup.copy()
    short.loc[short["arm"] == "control", "time_at_risk"] = short.loc[short["arm"] == "control", "time_at_risk"].clip(
        upper=500
    )
    assert primary_results(short).tau == 500


def test_cli_analyse_json_equals_api(followup, tmp_path, capsys):
    path = tmp_path / "followup.csv"
    followup.to_csv(path, index=False)
    assert main(["analyse", str(path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    api = primary_results(pd.read_csv(path)).summary_frame()
    for row, expected in zip(printed["results"], api.itertuples()):
        assert row["measure"] == expected.measure
        if np.isnan(expected.estimate):  # JSON has no NaN: null
            assert row["estimate"] is None
        else:
            assert row["estimate"] == pytest.approx(expected.estimate, rel=1e-12)
    assert main(["analyse", str(path)]) == 0
    assert "Hazard ratio" in capsys.readouterr().out


def test_not_a_followup_table_is_one_clear_error(tmp_path, capsys):
    path = tmp_path / "participants.csv"
    pd.DataFrame({"id": ["a"], "arm": ["control"]}).to_csv(path, index=False)
    assert main(["analyse", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "time_at_risk" in err


def test_three_arms_are_refused(followup):
    followup.loc[0, "arm"] = "third"
    with pytest.raises(DataError, match="exactly two arms"):
        primary_results(followup)


# ------------------------------------------------ careless codes: no silent wrong answer
@pytest.mark.parametrize(
    "cell",
    [
        pytest.param("2", id="two"),
        pytest.param("maybe", id="maybe"),
        pytest.param("", id="blank"),
        pytest.param("yes", id="yes"),
    ],
)
def test_one_bad_event_cell_is_an_error_naming_its_row_not_a_reoffence(followup, tmp_path, capsys, cell):
    # The adversarial review: one `2` made pandas read the column as text, and every
    # non-empty value counted as a reoffence (83/83 reoffended, exit 0).
    table = followup.assign(event=followup["event"].astype(int).astype(str))
    table.loc[5, "event"] = cell
    path = tmp_path / "followup.csv"
    table.to_csv(path, index=False)
    assert main(["analyse", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "table followup, row 6, column 'event'" in err  # row 6: the sixth row under the header


def test_event_read_as_text_false_is_false(followup):
    # "False" as text is a non-empty string, so astype(bool) made it True.
    as_text = followup.assign(event=followup["event"].map({True: "True", False: "False"}))
    assert primary_results(as_text, tau=700).events == primary_results(followup, tau=700).events
    as_digits = followup.assign(event=followup["event"].astype(int).astype(str))
    assert primary_results(as_digits, tau=700).events == primary_results(followup, tau=700).events


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("event", 2, r"0 or 1 \(or False/True\)"),
        ("time_at_risk", -3, "negative"),
        ("time_at_risk", "soon", "numeric"),
        ("reoffences", 1.5, "whole number"),
        ("reoffences", -1, "negative"),
        ("exposure_days", np.nan, "missing"),
        ("arm", np.nan, "missing"),
        ("id", "P3", "duplicate"),
    ],
)
def test_bad_cells_of_the_followup_table_name_table_row_and_column(followup, column, value, message):
    bad = followup.astype({column: object})
    bad.loc[7, column] = value
    with pytest.raises(DataError, match=message) as info:
        primary_results(bad)
    assert (info.value.table, info.value.row, info.value.column) == ("followup", 7, column)


def test_a_misspelt_arm_names_its_row(followup):
    followup.loc[9, "arm"] = "confrence"
    with pytest.raises(DataError, match="confrence") as info:
        primary_results(followup)
    assert (info.value.row, info.value.column) == (9, "arm")


def test_duplicate_ids_are_refused_by_analyse(followup, tmp_path, capsys):
    followup.loc[4, "id"] = followup.loc[3, "id"]
    path = tmp_path / "followup.csv"
    followup.to_csv(path, index=False)
    assert main(["analyse", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "row 5, column 'id'" in err and "first on row 4" in err


def test_an_empty_followup_table_is_refused(tmp_path, capsys):
    path = tmp_path / "followup.csv"
    path.write_text("id,arm,time_at_risk,event,reoffences,exposure_days\n")
    assert main(["analyse", str(path)]) == 2
    assert "no rows" in capsys.readouterr().err


def test_nobody_followed_up_says_which_column_and_why(followup, tmp_path, capsys):
    # Every time at risk 0 (e.g. records extracted before anyone was randomised): the
    # log-rank variance is 0 and numpy said only "Singular matrix".
    path = tmp_path / "followup.csv"
    followup.assign(time_at_risk=0, event=True).to_csv(path, index=False)
    assert main(["analyse", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "Singular" not in err and "column 'time_at_risk'" in err and "0 for every participant" in err


def test_a_logrank_test_without_information_says_why(followup):
    # everyone reoffends on the same day: at that day all at risk reoffend, the variance is 0
    with pytest.raises(DataError, match="log-rank") as info:
        primary_results(followup.assign(time_at_risk=5, event=True, exposure_days=730), tau=5)
    assert info.value.column == "time_at_risk"


def test_an_arm_followed_for_no_time_is_named(followup):
    zero = followup.copy()
    zero.loc[zero["arm"] == "control", "time_at_risk"] = 0
    with pytest.raises(DataError, match="control") as info:
        primary_results(zero)
    assert info.value.column == "time_at_risk"


def test_no_reoffences_at_all_is_a_clear_error_not_a_statsmodels_message(followup):
    with pytest.raises(DataError, match="0 in every row") as info:
        primary_results(followup.assign(reoffences=0))
    assert info.value.column == "reoffences"
