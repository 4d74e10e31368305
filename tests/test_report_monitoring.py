"""rjtrial.report.monitoring: the report's interim-monitoring section, from the design and the
looks logged in the registry."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from registry_fixtures import copy_db
from test_report import simulated_trial_folder

from rjtrial.errors import RjtrialError
from rjtrial.monitor import design, look
from rjtrial.registry import Registry
from rjtrial.report import build_report
from rjtrial.report.monitoring import monitoring_section

PLAN = dict(looks=3, spending="obrien-fleming", alpha=0.05, power=0.8, hazard_ratio=0.7)


@pytest.fixture
def trial(tmp_path_factory, tmp_path):
    """A copy of the report tests' trial (its registry gets looks of its own here)."""
    source = simulated_trial_folder(tmp_path_factory.getbasetemp())
    copy_db(source / "trial.db", tmp_path / "trial.db")  # the backup API: the write-ahead log's pages too
    for name in ("trial.key", "followup.csv"):
        shutil.copy(source / name, tmp_path / name)
    return tmp_path


def _section(html: str) -> str:
    match = re.search(r'<section id="monitoring">(.*?)</section>', html, re.S)
    return "" if match is None else match.group(1)


def _log(folder, plan, events, statistic, previous=()):
    result = look(plan, events=events, statistic=statistic, previous_events=list(previous))
    with Registry.open(folder / "trial.db", key_path=folder / "trial.key") as reg:
        reg.record_interim_look({**result.to_dict(), "design": plan.settings}, by="dmc")
    return result


def test_no_design_and_no_look_no_section(trial):
    report = build_report(trial / "trial.db", trial / "followup.csv")
    assert _section(report.html) == "" and report.sections["monitoring"] is None


def test_a_design_alone_shows_its_boundaries(trial, tmp_path):
    plan = design(**PLAN)
    path = tmp_path / "design.json"
    path.write_text(json.dumps(plan.to_dict()))
    section = _section(build_report(trial / "trial.db", trial / "followup.csv", sequential_design=path).html)
    assert "3 looks, obrien-fleming alpha spending" in section
    assert section.count("<tr>") == 4 and "2.511" in section and "No interim look has been recorded" in section


def test_logged_looks_are_shown_with_the_design_recorded_with_them(trial):
    plan = design(**PLAN)
    first = _log(trial, plan, 90, -1.2)
    second = _log(trial, plan, 180, -2.7, previous=[90])
    report = build_report(trial / "trial.db", trial / "followup.csv")
    section = _section(report.html)
    rows = report.sections["monitoring"]["looks"]
    assert [r["events"] for r in rows] == [90, 180] and [r["by"] for r in rows] == ["dmc", "dmc"]
    assert rows[1]["decision"] == "stop for efficacy" and second.decision == "efficacy"
    assert rows[0]["hazard_ratio"] == pytest.approx(first.hazard_ratio)
    assert f"{first.hazard_ratio:.2f} ({first.ci_lower:.2f} to {first.ci_upper:.2f})" in section
    assert "stop for efficacy" in section and "3 looks, obrien-fleming" in section
    assert report.sections["design"]["verification"]["ok"]


def test_looks_of_another_design_are_counted_not_shown(trial):
    _log(trial, design(**{**PLAN, "hazard_ratio": 0.8}), 90, -1.2)
    content = monitoring_section(design(**PLAN), Registry.open(trial / "trial.db").interim_looks())
    assert content["looks"] == [] and content["other_designs"] == 1


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "design file .* not found"),
        ("[", "is not JSON"),
        ('{"settings": {"looks": 0}}', "looks must be a whole number"),
    ],
)
def test_a_bad_design_file_is_one_error(trial, tmp_path, content, message):
    path = tmp_path / "design.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(RjtrialError, match=message):
        build_report(trial / "trial.db", trial / "followup.csv", sequential_design=path)


@pytest.mark.parametrize("statistic", [-1.2, -3.5])  # continue; stop for efficacy
def test_a_blinded_report_shows_when_looks_were_taken_but_not_which_way_they_pointed(trial, statistic):
    import pandas as pd

    plan = design(**PLAN)
    result = _log(trial, plan, 90, statistic)
    with Registry.open(trial / "trial.db", key_path=trial / "trial.key") as reg:
        codes = reg.export(blinded=True, by="analyst").set_index("id")["arm"]
    followup = pd.read_csv(trial / "followup.csv", dtype={"id": str})
    blinded = followup.assign(arm=followup["id"].map(codes))
    report = build_report(trial / "trial.db", blinded, sequential_design=plan)
    section = _section(report.html)
    assert "blinded: groups A, B" in section and "3 looks, obrien-fleming" in section
    (row,) = report.sections["monitoring"]["looks"]
    assert row["events"] == 90 and row["by"] == "dmc"
    assert set(row) & {"statistic", "hazard_ratio", "ci_lower", "ci_upper", "cp_design", "cp_trend"} == set()
    for shown in (f"{result.hazard_ratio:.2f}", f"{abs(result.statistic):.2f}", "stop for", "favour"):
        assert shown not in section, shown
    assert ("continue" in section) == (result.decision == "continue")
    assert "withheld while the analysis is blinded" in section
