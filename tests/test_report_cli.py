"""``rjtrial report``: the CLI writes the API's report; bad input is one line, exit 2, no file left."""

from __future__ import annotations

import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from test_report import COSTS, simulated_report, simulated_trial_folder

from rjtrial.cli import main


@pytest.fixture(scope="session")
def trial_folder(tmp_path_factory) -> Path:
    return simulated_trial_folder(tmp_path_factory.getbasetemp())


class _Numbers(HTMLParser):
    def __init__(self):
        super().__init__()
        self.values: dict[str, float] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "data-key" in attrs:
            self.values[attrs["data-key"]] = float(attrs["data-value"])


def shown_numbers(path: Path) -> dict[str, float]:
    parser = _Numbers()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.values


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def cli_report(trial_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "report.html"
    import contextlib
    import io

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = main(
            [
                "report",
                "--db",
                str(trial_folder / "trial.db"),
                "--followup",
                str(trial_folder / "followup.csv"),
                "--victims",
                str(trial_folder / "victims.csv"),
                "--costs",
                str(COSTS),
                "--key",
                str(trial_folder / "trial.key"),
                "-o",
                str(out),
            ]
        )
    return subprocess.CompletedProcess([], code, "", stderr.getvalue()), out


def test_cli_writes_the_report_the_api_builds(cli_report, tmp_path_factory):
    done, out = cli_report
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(f"wrote {out}: hazard ratio")
    _, api_numbers = simulated_report(tmp_path_factory.getbasetemp())  # build_report on the same files
    shown = shown_numbers(out)
    for key in (
        "hazard_ratio",
        "hr_ci_lower",
        "logrank_p",
        "rmst_difference",
        "rate_ratio",
        "risk_ratio",
        "cace",
        "benefit_cost_ratio",
        "bcr_ci_upper",
        "victims_satisfied_risk_ratio",
    ):
        assert shown[key] == api_numbers[key], key


def test_cli_report_records_its_command_and_the_key_check(cli_report):
    _, out = cli_report
    html = out.read_text(encoding="utf-8")
    assert "rjtrial report --db " in html and "--key KEYFILE" in html and "--seed 20240601" in html
    assert "checked with the trial key" in html


def _one_line_error(code: int, err: str) -> str:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rjtrial: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def bad_followups(trial_folder, tmp_path):
    followup = pd.read_csv(trial_folder / "followup.csv", dtype={"id": str})
    stranger = followup.copy()
    stranger.loc[11, "id"] = "X-1"
    stranger.to_csv(tmp_path / "stranger.csv", index=False)
    followup.drop(index=[0]).to_csv(tmp_path / "partial.csv", index=False)
    followup.assign(id="OTHER-" + followup["id"]).to_csv(tmp_path / "other-trial.csv", index=False)
    (tmp_path / "garbage.csv").write_bytes(b"\xff\xfe\x00garbage")
    return tmp_path


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (
            "stranger.csv",
            "table stranger.csv, row 12, column 'id': 'X-1' is not a participant of trial jrc-london-burglary",
        ),
        ("partial.csv", "1 randomised participant(s) of trial jrc-london-burglary have no row"),
        ("other-trial.csv", "row 1, column 'id': 'OTHER-R-"),
        ("missing.csv", "follow-up file"),
        ("garbage.csv", "not a readable CSV table"),
    ],
)
def test_bad_followup_is_one_line_and_leaves_nothing(capsys, trial_folder, bad_followups, case, expected):
    out_dir = bad_followups / "out"
    out_dir.mkdir()
    code, _, err = run(
        capsys,
        "report",
        "--db",
        str(trial_folder / "trial.db"),
        "--followup",
        str(bad_followups / case),
        "-o",
        str(out_dir / "report.html"),
    )
    assert expected in _one_line_error(code, err)
    assert list(out_dir.iterdir()) == []


def test_the_installed_command_prints_one_line_and_no_traceback(trial_folder, tmp_path):
    """The real entry point in its own process (the other tests call ``main`` in-process)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rjtrial.cli",
            "report",
            "--db",
            str(trial_folder / "trial.db"),
            "--followup",
            str(trial_folder / "participants.csv"),
            "-o",
            str(tmp_path / "r.html"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "RJTRIAL_DEBUG"},
    )
    line = _one_line_error(done.returncode, done.stderr)
    assert "table participants.csv: missing column(s) 'time_at_risk'" in line
    assert list(tmp_path.iterdir()) == []


def test_missing_registry_is_one_line(capsys, trial_folder, tmp_path):
    code, _, err = run(
        capsys,
        "report",
        "--db",
        str(tmp_path / "nope.db"),
        "--followup",
        str(trial_folder / "followup.csv"),
        "-o",
        str(tmp_path / "r.html"),
    )
    assert str(tmp_path / "nope.db") in _one_line_error(code, err)
    assert list(tmp_path.iterdir()) == []


def test_victims_of_another_trial_are_one_line(capsys, trial_folder, tmp_path):
    victims = pd.read_csv(trial_folder / "victims.csv", dtype={"id": str})
    victims.loc[0, "id"] = "Z-9"
    victims.to_csv(tmp_path / "victims.csv", index=False)
    code, _, err = run(
        capsys,
        "report",
        "--db",
        str(trial_folder / "trial.db"),
        "--followup",
        str(trial_folder / "followup.csv"),
        "--victims",
        str(tmp_path / "victims.csv"),
        "-o",
        str(tmp_path / "r.html"),
    )
    assert "table victims.csv, row 1, column 'id': 'Z-9'" in _one_line_error(code, err)
    assert not (tmp_path / "r.html").exists()


def test_output_folder_must_exist(capsys, trial_folder, tmp_path):
    code, _, err = run(
        capsys,
        "report",
        "--db",
        str(trial_folder / "trial.db"),
        "--followup",
        str(trial_folder / "followup.csv"),
        "-o",
        str(tmp_path / "no" / "r.html"),
    )
    assert "does not exist" in _one_line_error(code, err)


def test_a_failed_run_keeps_the_previous_report(capsys, trial_folder, bad_followups):
    previous = bad_followups / "report.html"
    previous.write_text("previous report")
    code, _, err = run(
        capsys,
        "report",
        "--db",
        str(trial_folder / "trial.db"),
        "--followup",
        str(bad_followups / "stranger.csv"),
        "-o",
        str(previous),
    )
    _one_line_error(code, err)
    assert previous.read_text() == "previous report"
    assert not [p for p in bad_followups.iterdir() if p.name.startswith(".report.html")]


def test_a_registry_that_does_not_verify_is_reported_and_exits_1(capsys, trial_folder, tmp_path, monkeypatch):
    import sqlite3

    monkeypatch.delenv("RJTRIAL_KEY", raising=False)
    db = tmp_path / "trial.db"
    with sqlite3.connect(trial_folder / "trial.db") as source, sqlite3.connect(db) as target:
        source.backup(target)  # with what is still in the -wal file
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE rj_audit SET actor = 'mallory' WHERE seq = 2")
    code, _, err = run(
        capsys,
        "report",
        "--db",
        str(db),
        "--followup",
        str(trial_folder / "followup.csv"),
        "-o",
        str(tmp_path / "report.html"),
    )
    assert code == 1 and "DID NOT VERIFY" in err
    assert "The registry did NOT verify" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_the_report_is_written_owner_only(cli_report):
    # a report of criminal records was written 0644 under the usual umask
    import stat

    _, out = cli_report
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
