"""`rjtrial monitor design` and `rjtrial monitor look`: the CLI gives the API's numbers, records each
look in the registry's audit log, and bad input is one clear line with nothing written."""

from __future__ import annotations

import json
import os
import stat

import pandas as pd
import pytest

from rjtrial.cli import main
from rjtrial.monitor import design, look
from rjtrial.registry import Registry
from rjtrial.simulate import simulate_trial


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    """A synthetic trial of 240 enrolled through a registry; its follow-up at an interim (street day
    300) and in full."""
    folder = tmp_path_factory.mktemp("monitor")
    result = simulate_trial(
        "synthetic/jrc-london-burglary.toml",
        rng=11,
        registry=folder / "registry",
        truth=False,
        overrides={"referrals.randomised": 240},
    )
    full = result.followup()
    interim = full.assign(
        event=(full["event"] == 1) & (full["time_at_risk"] <= 300), time_at_risk=full["time_at_risk"].clip(upper=300)
    )
    interim["event"] = interim["event"].astype(int)
    paths = {
        "db": folder / "registry" / "trial.db",
        "key": folder / "registry" / "trial.key",
        "interim": folder / "interim.csv",
        "full": folder / "full.csv",
        "folder": folder,
    }
    interim.to_csv(paths["interim"], index=False)
    full.to_csv(paths["full"], index=False)
    return paths


@pytest.fixture
def registry_copy(trial, tmp_path):
    """A fresh copy of the trial's registry (each test logs its own looks)."""
    db = tmp_path / "trial.db"
    db.write_bytes(trial["db"].read_bytes())
    return db


DESIGN_ARGS = [
    "--looks",
    "3",
    "--spending",
    "obrien-fleming",
    "--alpha",
    "0.05",
    "--power",
    "0.8",
    "--hazard-ratio",
    "0.7",
]


@pytest.fixture
def design_file(tmp_path, capsys):
    path = tmp_path / "design.json"
    code, _, err = run(capsys, "monitor", "design", *DESIGN_ARGS, "-o", path)
    assert code == 0 and "wrote the design" in err
    return path


# --------------------------------------------------------------------------------- design
def test_design_prints_the_apis_design_and_writes_it_owner_only(design_file, capsys):
    api = design(3, spending="obrien-fleming", alpha=0.05, power=0.8, hazard_ratio=0.7)
    code, out, _ = run(capsys, "monitor", "design", *DESIGN_ARGS)
    assert code == 0 and out.strip() == api.format()
    assert json.loads(design_file.read_text()) == json.loads(json.dumps(api.to_dict()))
    assert stat.S_IMODE(os.stat(design_file).st_mode) == 0o600


def test_design_json_and_defaults_are_the_librarys(capsys):
    code, out, _ = run(capsys, "monitor", "design", "--json")
    assert code == 0 and json.loads(out) == json.loads(json.dumps(design().to_dict()))


def test_design_with_futility(capsys):
    code, out, _ = run(
        capsys,
        "monitor",
        "design",
        "--alternative",
        "less",
        "--alpha",
        "0.025",
        "--futility",
        "hsd:-2",
        "--binding",
        "--information",
        "0.4,0.7,1",
        "--json",
    )
    data = json.loads(out)
    assert code == 0 and data["settings"]["binding"] is True and data["settings"]["futility"] == "hsd:-2"
    assert data["settings"]["information"] == [0.4, 0.7, 1.0]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--futility", "pocock"], "a futility boundary needs a one-sided design"),
        (["--spending", "linear"], "spending must be one of"),
        (["--information", "0.5,x"], "--information: 'x' is not a number"),
        (["--information", "0.5,0.9"], "information must end at 1"),
        (["--looks", "0"], "looks must be a whole number from 1 to 20"),
        (["--alpha", "abc"], "argument --alpha: invalid float value"),
    ],
)
def test_design_bad_input_is_one_line(capsys, tmp_path, argv, message):
    out_file = tmp_path / "d.json"
    code, out, err = run(capsys, "monitor", "design", *argv, "-o", out_file)
    assert code == 2 and out == ""
    assert err.startswith("rjtrial: error: ") and message in err and err.count("\n") == 1
    assert not out_file.exists()


# ----------------------------------------------------------------------------------- look
def test_looks_are_computed_recorded_and_verified(trial, registry_copy, design_file, capsys):
    code, out, _ = run(
        capsys,
        "monitor",
        "look",
        "--db",
        registry_copy,
        "--followup",
        trial["interim"],
        "--design",
        design_file,
        "--by",
        "dmc statistician",
        "--json",
    )
    first = json.loads(out)
    assert code == 0 and first["look"] == 1 and first["signed"] is False
    table = pd.read_csv(trial["interim"])
    api = look(design(3, spending="obrien-fleming", alpha=0.05, power=0.8, hazard_ratio=0.7), table, control="control")
    assert first["statistic"] == pytest.approx(api.statistic, abs=1e-12)
    assert first["critical_value"] == pytest.approx(api.critical_value, abs=1e-12)
    assert first["decision"] == api.decision and first["events"] == api.events

    code, out, _ = run(
        capsys,
        "monitor",
        "look",
        "--db",
        registry_copy,
        "--followup",
        trial["full"],
        "--design",
        design_file,
        "--key",
        trial["key"],
        "--by",
        "dmc statistician",
    )
    assert code == 0
    assert "interim look 2 of 3" in out or "final analysis 2 of 3" in out
    assert "signed with the trial key" in out
    with Registry.open(registry_copy) as reg:
        looks = reg.interim_looks()
        assert reg.verify().ok
    assert [x["look"] for x in looks] == [1, 2] and looks[1]["previous_events"] == [first["events"]]
    assert looks[0]["by"] == "dmc statistician" and looks[0]["followup"]["file"] == "interim.csv"
    assert looks[0]["design"]["hazard_ratio"] == 0.7
    code, _, _ = run(capsys, "verify", "--db", registry_copy, "--key", trial["key"])
    assert code == 0


def _audit_length(db):
    with Registry.open(db) as reg:
        return len(reg.audit_log())


def test_the_same_look_twice_is_refused_and_nothing_logged(trial, registry_copy, design_file, capsys):
    assert (
        run(capsys, "monitor", "look", "--db", registry_copy, "--followup", trial["interim"], "--design", design_file)[
            0
        ]
        == 0
    )
    before = _audit_length(registry_copy)
    code, out, err = run(
        capsys, "monitor", "look", "--db", registry_copy, "--followup", trial["interim"], "--design", design_file
    )
    assert code == 2 and out == "" and "events must increase from look to look" in err
    assert _audit_length(registry_copy) == before


def test_a_follow_up_of_another_trial_is_refused(trial, registry_copy, design_file, capsys, tmp_path):
    other = pd.read_csv(trial["interim"])
    other.loc[4, "id"] = "NOT-OURS"
    path = tmp_path / "other.csv"
    other.to_csv(path, index=False)
    before = _audit_length(registry_copy)
    code, out, err = run(capsys, "monitor", "look", "--db", registry_copy, "--followup", path, "--design", design_file)
    assert code == 2 and out == "" and err.startswith("rjtrial: error: ") and "row 5" in err and "'id'" in err
    assert _audit_length(registry_copy) == before


def test_an_edited_design_file_is_refused(trial, registry_copy, design_file, capsys):
    data = json.loads(design_file.read_text())
    data["looks"][0]["critical_value"] = 2.0
    design_file.write_text(json.dumps(data))
    code, _, err = run(
        capsys, "monitor", "look", "--db", registry_copy, "--followup", trial["interim"], "--design", design_file
    )
    assert code == 2 and "its boundaries are not those of its settings (was the file edited?)" in err


@pytest.mark.parametrize("content, message", [(None, "not found"), ("{not json", "is not JSON")])
def test_a_missing_or_broken_design_file_is_one_line(trial, registry_copy, tmp_path, capsys, content, message):
    path = tmp_path / "design.json"
    if content is not None:
        path.write_text(content)
    code, _, err = run(
        capsys, "monitor", "look", "--db", registry_copy, "--followup", trial["interim"], "--design", path
    )
    assert code == 2 and f"design file {path} {message}" in err and err.count("\n") == 1


def test_the_report_shows_the_design_and_the_looks(trial, registry_copy, design_file, capsys, tmp_path):
    assert (
        run(capsys, "monitor", "look", "--db", registry_copy, "--followup", trial["interim"], "--design", design_file)[
            0
        ]
        == 0
    )
    output = tmp_path / "report.html"
    code, _, err = run(
        capsys, "report", "--db", registry_copy, "--followup", trial["full"], "--design", design_file, "-o", output
    )
    assert code == 0, err
    html = output.read_text(encoding="utf-8")
    assert 'id="monitoring-design"' in html and 'id="monitoring-looks"' in html
    assert f"--design {design_file}" in html
