"""What the command line writes: owner-only files, written whole or not at all, and a quiet
end when the reader of its output goes away (``rjtrial export | head -1``).

Criminal-record outputs (``followup -o``, ``export -o``, ``report -o``) were written 0644
under the usual umask; ``followup -o DIR`` failed with a temporary file's name in the message;
a broken pipe printed ``rjtrial: error: [Errno 32] Broken pipe`` because the handler for it
stood behind the broader ``OSError`` one.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from registry_fixtures import protocol_toml, rjtrial_script

from rjtrial.cli import main

PARTICIPANTS = "id,arm,randomised_on\nA,control,2024-01-10\nB,conference,2024-02-01\n"
OFFENCES = "id,offence_date,conviction_date\nA,2024-03-01,2024-06-01\nB,2024-02-03,\n"


@pytest.fixture(autouse=True)
def _usual_umask():
    old = os.umask(0o022)  # the usual umask: new files 0644 unless the writer says otherwise
    yield
    os.umask(old)


@pytest.fixture
def records(tmp_path):
    (tmp_path / "participants.csv").write_text(PARTICIPANTS)
    (tmp_path / "offences.csv").write_text(OFFENCES)
    return tmp_path


def followup_args(folder: Path, output) -> list[str]:
    return [
        "followup",
        "--participants",
        str(folder / "participants.csv"),
        "--offences",
        str(folder / "offences.csv"),
        "-o",
        str(output),
    ]


@pytest.fixture
def trial(tmp_path, capsys):
    protocol = tmp_path / "protocol.toml"
    protocol.write_text(protocol_toml(capacity=30))
    db, key = tmp_path / "trial.db", tmp_path / "trial.key"
    assert main(["init", str(protocol), "--db", str(db), "--key", str(key)]) == 0
    for i in range(3):
        assert (
            main(
                [
                    "enrol",
                    "--db",
                    str(db),
                    "--key",
                    str(key),
                    "--referral",
                    f"R-{i}",
                    "--stratum",
                    "site=north",
                    "--stratum",
                    "offence=property",
                    "--answer",
                    "admitted=yes",
                    "--answer",
                    "risk=suitable",
                ]
            )
            == 0
        )
    capsys.readouterr()
    return {"db": db, "key": key, "folder": tmp_path}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_followup_output_is_owner_only(records, capsys):
    out = records / "followup.csv"
    assert main(followup_args(records, out)) == 0
    assert mode(out) == 0o600


def test_followup_replacing_a_world_readable_file_leaves_it_owner_only(records, capsys):
    out = records / "followup.csv"
    out.write_text("old\n")
    out.chmod(0o644)
    assert main(followup_args(records, out)) == 0
    assert mode(out) == 0o600 and out.read_text().startswith("id,arm")


def test_export_output_is_owner_only(trial, capsys):
    out = trial["folder"] / "participants-export.csv"
    assert main(["export", "--db", str(trial["db"]), "-o", str(out)]) == 0
    assert mode(out) == 0o600 and len(pd.read_csv(out)) == 3


def test_followup_into_a_folder_is_one_clear_line_and_leaves_nothing(records, capsys):
    folder = records / "out"
    folder.mkdir()
    before = sorted(p.name for p in records.iterdir())
    assert main(followup_args(records, folder)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a folder" in err and ".tmp" not in err, err
    assert sorted(p.name for p in records.iterdir()) == before
    assert list(folder.iterdir()) == []


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(records, capsys, monkeypatch):
    out = records / "followup.csv"
    out.write_text("the previous table\n")
    before = sorted(p.name for p in records.iterdir())

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    assert main(followup_args(records, out)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"cannot write {out}" in err and "No space left" in err, err
    assert out.read_text() == "the previous table\n"
    assert sorted(p.name for p in records.iterdir()) == before


def test_an_unwritable_folder_is_named_without_a_temporary_file_name(records, capsys, monkeypatch):
    import tempfile

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(records / ".followup.csv.x1y2.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    assert main(followup_args(records, records / "followup.csv")) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"rjtrial: error: cannot write {records / 'followup.csv'}: Permission denied", err


def test_meta_plots_are_owner_only(tmp_path, capsys):
    studies = tmp_path / "studies.csv"
    studies.write_text("study,estimate,variance\nA,0.1,0.04\nB,-0.2,0.09\nC,0.3,0.02\n")
    forest = tmp_path / "forest.png"
    assert main(["meta", str(studies), "--measure", "other", "--forest", str(forest)]) == 0
    assert mode(forest) == 0o600 and forest.read_bytes().startswith(b"\x89PNG")


# ----------------------------------------------------------------------- broken pipes
def _into_a_closed_pipe(args: list[str]) -> subprocess.CompletedProcess:
    """Run the installed command with its standard output a pipe nobody reads any more (as
    after ``| head -1`` has exited): its first write fails with EPIPE, whatever its size."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [rjtrial_script(), *args],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            env={k: v for k, v in os.environ.items() if k not in ("RJTRIAL_KEY", "RJTRIAL_DEBUG")},
        )
    finally:
        os.close(write)


def _quiet(done: subprocess.CompletedProcess) -> None:
    assert done.stderr == "", done.stderr
    assert done.returncode in (0, 141), done.returncode


def test_export_into_a_closed_pipe_ends_quietly(trial):
    _quiet(_into_a_closed_pipe(["export", "--db", str(trial["db"])]))


def test_help_into_a_closed_pipe_ends_quietly():
    _quiet(_into_a_closed_pipe(["--help"]))


def test_meta_into_a_closed_pipe_ends_quietly(tmp_path):
    studies = tmp_path / "studies.csv"
    studies.write_text("study,estimate,variance\nA,0.1,0.04\nB,-0.2,0.09\nC,0.3,0.02\n")
    _quiet(_into_a_closed_pipe(["meta", str(studies), "--measure", "other", "--json"]))


def test_export_piped_into_head_prints_one_line_and_nothing_else(trial):
    done = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {rjtrial_script()} export --db {trial['db']} | head -1"],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k not in ("RJTRIAL_KEY", "RJTRIAL_DEBUG")},
    )
    assert done.stdout.startswith("id,arm,") and done.stdout.count("\n") == 1
    assert done.stderr == "" and done.returncode in (0, 141)


def test_a_library_warning_is_one_line_naming_the_command(tmp_path, capsys):
    # counts with no overdispersion: the negative binomial falls back to the Poisson fit, and the
    # CLI says so in one line (no Python file path, no "model='poisson'" argument), and the
    # printed table names the model actually fitted
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 300
    arm = rng.choice(["control", "conference"], n)
    days = rng.integers(100, 731, n)
    reoffences = rng.poisson(days / 365 * np.where(arm == "conference", 0.8, 1.2))
    table = pd.DataFrame(
        {
            "id": [f"P{i}" for i in range(n)],
            "arm": arm,
            "time_at_risk": days,
            "event": (reoffences > 0).astype(int),
            "reoffences": reoffences,
            "exposure_days": days,
        }
    )
    table.loc[table["event"] == 1, "time_at_risk"] = np.minimum(table["time_at_risk"], 50)
    path = tmp_path / "followup.csv"
    table.to_csv(path, index=False)
    assert main(["analyse", str(path)]) == 0
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "rjtrial analyse: warning: the negative binomial fit found no overdispersion"
    )
    assert ".py" not in captured.err and "model=" not in captured.err
    assert "Poisson (fallback from negative binomial: no overdispersion) regression" in captured.out
    assert main(["analyse", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["count_model"] == "poisson" and "no overdispersion" in data["notes"][0]
