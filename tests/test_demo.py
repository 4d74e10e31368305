"""`rjtrial demo`: the whole trial end to end, its report, and its numbers against the API."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from rjtrial import survival
from rjtrial.cli import main
from rjtrial.primary import primary_results
from rjtrial.registry import Registry

SECTIONS = (
    "Design and the sealed sequence",
    "Participant flow (CONSORT)",
    "Baseline characteristics by arm",
    "Primary outcome: reoffending, by intention to treat (ITT)",
    "Pre-specified subgroups",
    "Victims",
    "Benefit and cost",
    "How this report was made",
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One run of the command as a user types it (smaller than the default, same path)."""
    out = tmp_path_factory.mktemp("demo") / "rjtrial-demo"
    code = main(["demo", "-o", str(out), "--participants", "400", "--seed", "11"])  # long enough for a site to join
    assert code == 0
    return out


def test_the_demo_writes_the_registry_the_tables_and_the_report(demo):
    assert {p.name for p in demo.iterdir()} == {"registry", "data", "report.html", "summary.json"}
    assert {p.name for p in (demo / "data").iterdir()} >= {
        "referrals.csv",
        "participants.csv",
        "offences.csv",
        "custody.csv",
        "victims.csv",
        "costs.csv",
        "followup.csv",
        "truth.json",
        "participants-blinded.csv",
        "analysis-plan.md",
    }
    summary = json.loads((demo / "summary.json").read_text())
    assert summary["verified"] is True and summary["seed"] == 11
    assert sum(summary["randomised_by_arm"].values()) == 400
    # the store verifies on its own, from the command line, without the key
    assert main(["verify", "--db", str(demo / "registry" / "trial.db")]) == 0


def test_the_report_has_every_section_and_embeds_its_figures(demo):
    html = (demo / "report.html").read_text(encoding="utf-8")
    headings = re.findall(r"<h2[^>]*>\s*\d+\.\s*([^<]+?)\s*</h2>", html)
    assert tuple(headings) == SECTIONS
    images = re.findall(r"<img[^>]+src=\"([^\"]+)\"", html)
    assert len(images) >= 3 and all(src.startswith("data:image/") for src in images)
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # readable offline
    with Registry.open(demo / "registry" / "trial.db") as registry:
        assert registry.commitment in html


def test_the_headline_numbers_are_the_apis(demo):
    summary = json.loads((demo / "summary.json").read_text())
    table = pd.read_csv(demo / "data" / "followup.csv", dtype={"id": str})
    api = primary_results(table, control="control")
    frame = api.summary_frame().set_index("measure")
    reported = summary["results"]
    for measure, key, lower, upper in (
        ("log_hazard_ratio", "hazard_ratio", "hr_ci_lower", "hr_ci_upper"),
        ("log_rate_ratio", "rate_ratio", "rate_ci_lower", "rate_ci_upper"),
        ("log_risk_ratio", "risk_ratio", "risk_ci_lower", "risk_ci_upper"),
        ("rmst_difference", "rmst_difference", "rmst_ci_lower", "rmst_ci_upper"),
    ):
        row = frame.loc[measure]
        shown = row["estimate"] if measure == "rmst_difference" else row["ratio"]
        assert reported[key] == pytest.approx(shown, rel=1e-9), measure
        assert reported[lower] == pytest.approx(row["ci_lower"], rel=1e-9), measure
        assert reported[upper] == pytest.approx(row["ci_upper"], rel=1e-9), measure
    logrank = survival.logrank(table, time="time_at_risk", event="event", group="arm")
    assert reported["logrank_p"] == pytest.approx(logrank.p_value, rel=1e-9)
    # the report shows the same numbers: each is tagged with its key and full value
    html = (demo / "report.html").read_text(encoding="utf-8")
    shown = {key: float(value) for key, value in re.findall(r'data-key="([^"]+)" data-value="([^"]+)"', html)}
    for key in ("hazard_ratio", "hr_ci_lower", "hr_ci_upper", "logrank_p", "rate_ratio", "rmst_difference"):
        assert shown[key] == pytest.approx(reported[key], rel=1e-12), key
    span = re.search(r'data-key="hazard_ratio" data-value="[^"]+">([^<]+)<', html).group(1)
    assert span == f"{reported['hazard_ratio']:.2f}"


def test_the_truth_is_known_and_near_the_estimate(demo):
    summary = json.loads((demo / "summary.json").read_text())
    truth = json.loads((demo / "data" / "truth.json").read_text())
    assert summary["truth"]["hazard_ratio"] == pytest.approx(truth["itt"]["hazard_ratio"])
    # one trial of 240: the truth lies within a generous band of the estimate (log HR SE ~0.15)
    assert abs(np.log(summary["results"]["hazard_ratio"]) - np.log(summary["truth"]["hazard_ratio"])) < 0.8


def test_the_demo_prints_its_steps_and_what_to_open(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["demo", "-o", str(out), "--participants", "40", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "[1/7]" in printed and "[7/7]" in printed
    assert "hazard ratio of reoffending" in printed and str(out / "report.html") in printed
    # a rerun replaces its own folder
    assert main(["demo", "-o", str(out), "--participants", "30", "--seed", "4", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert sum(json.loads((out / "summary.json").read_text())["randomised_by_arm"].values()) == 30


def test_the_demo_refuses_a_folder_that_is_not_its_own(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("precious")
    assert main(["demo", "-o", str(folder), "--quiet"]) == 2
    assert "not an rjtrial demo folder" in capsys.readouterr().err
    assert (folder / "thesis.tex").read_text() == "precious"


def test_too_few_participants_is_one_error(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "d"), "--participants", "5", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "participants must be at least 20" in err


def test_the_demo_takes_one_interim_look_and_the_report_shows_it(demo):
    summary = json.loads((demo / "summary.json").read_text())
    interim = summary["interim_look"]
    assert interim["look"] == 1 and 0 < interim["information_fraction"] < 1
    assert {"design.json", "followup-interim.csv"} <= {p.name for p in (demo / "data").iterdir()}
    table = pd.read_csv(demo / "data" / "followup-interim.csv", dtype={"id": str})
    assert interim["events"] == int(table["event"].sum())
    with Registry.open(demo / "registry" / "trial.db") as registry:
        looks = registry.interim_looks()
        assert registry.verify().ok
    assert [x["look"] for x in looks] == [1] and looks[0]["seq"] == interim["audit_seq"]
    html = (demo / "report.html").read_text(encoding="utf-8")
    assert 'id="monitoring-looks"' in html and "DMC statistician (demo)" in html
    assert "--design" in summary["report_command"]


def test_a_site_joins_by_amendment_after_month_six_and_the_report_shows_it(demo):
    summary = json.loads((demo / "summary.json").read_text())
    (amendment,) = summary["amendments"]
    assert amendment["changes"] == ["adds site level(s) thames_valley"]
    participants = pd.read_csv(demo / "data" / "participants.csv", parse_dates=["randomised_at"])
    joined = participants.loc[participants["site"] == "thames_valley", "randomised_at"].min()
    assert joined >= pd.Timestamp(amendment["effective_at"])
    first = pd.read_csv(demo / "data" / "referrals.csv", parse_dates=["referred_at"])["referred_at"].min()
    gap = (pd.Timestamp(amendment["effective_at"]) - first).total_seconds() / 86400
    # at the first referral after six months on the arrival clock (referral times keep to working hours)
    assert 6 * 365.25 / 12 - 1 <= gap <= 6 * 365.25 / 12 + 3
    html = (demo / "report.html").read_text(encoding="utf-8")
    assert 'id="amendments"' in html and "Thames Valley joins the trial" in html
    with Registry.open(demo / "registry" / "trial.db") as registry:
        result = registry.verify(expected_commitment=amendment["commitment"])
    assert result.ok and result.amendments == 1


def test_the_demo_analyses_blind_then_unblinds_after_freezing_the_plan(demo):
    summary = json.loads((demo / "summary.json").read_text())
    blinded = pd.read_csv(demo / "data" / "participants-blinded.csv")
    plain = pd.read_csv(demo / "data" / "participants.csv")
    assert set(blinded["arm"]) == {"A", "B"} and "treatment_received" not in blinded.columns
    mapping = summary["blinding"]["mapping"]
    assert list(blinded["arm"]) == [mapping[arm] for arm in plain["arm"]]
    assert summary["blinding"]["sap_audit_seq"] < summary["blinding"]["unblind_audit_seq"]
    html = (demo / "report.html").read_text(encoding="utf-8")
    assert summary["blinding"]["sap_sha256"] in html and "Unblinded" in html and "BLINDED" not in html
