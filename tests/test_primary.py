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
    data = followup.assign(arm=pd.Categorical(followup["arm"], categories=["control", "conference"]),
                           e=followup["event"].astype(int))
    cox = survival.cox(data, "arm", time="time_at_risk", event="e").summary_frame().iloc[0]
    assert frame.loc["hazard_ratio", "estimate"] == pytest.approx(cox["hazard_ratio"], rel=1e-12)
    assert frame.loc["logrank", "estimate"] == pytest.approx(
        survival.logrank(data, time="time_at_risk", event="e", group="arm").statistic, rel=1e-12
    )
    rmst = survival.rmst(data, tau=700, time="time_at_risk", event="e", group="arm", control="control")
    assert frame.loc["rmst_difference", "estimate"] == pytest.approx(rmst.difference["estimate"].iloc[0], rel=1e-12)
    rate = frequency.rate_ratio(data, count="reoffences", exposure="exposure_days", group="arm", control="control")
    assert frame.loc["rate_ratio", "estimate"] == pytest.approx(rate.rate_ratio, rel=1e-9)
    risk = frequency.risk_ratio(data, outcome="e", group="arm", control="control")
    assert frame.loc["risk_ratio", "estimate"] == pytest.approx(risk.estimate, rel=1e-12)
    # treatment vs control: the simulated conference arm reoffends less
    assert res.treatment == "conference" and frame.loc["hazard_ratio", "estimate"] < 1


def test_default_tau_is_the_longest_time_both_arms_are_followed(followup):
    short = followup.copy()
    short.loc[short["arm"] == "control", "time_at_risk"] = short.loc[short["arm"] == "control", "time_at_risk"].clip(upper=500)
    assert primary_results(short).tau == 500


def test_cli_analyse_json_equals_api(followup, tmp_path, capsys):
    path = tmp_path / "followup.csv"
    followup.to_csv(path, index=False)
    assert main(["analyse", str(path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    api = primary_results(pd.read_csv(path)).summary_frame()
    for row, expected in zip(printed["results"], api.itertuples()):
        assert row["measure"] == expected.measure
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
