"""`rjtrial followup`: the CLI gives the API's table, and bad input is one clear line."""

from __future__ import annotations

import pandas as pd
import pytest

from rjtrial import followup
from rjtrial.cli import main

PARTICIPANTS = "id,arm,randomised_on\nA,control,2024-01-10\nB,conference,2024-02-01\n"
OFFENCES = (
    "id,offence_date,conviction_date,offence_type\n"
    "A,2024-03-01,2024-06-01,property\n"
    "A,2023-05-01,2023-07-01,property\n"
    "B,2024-02-01,,violence\n"
    "Z,2024-02-01,,violence\n"
)
CUSTODY = "id,start,end\nA,2024-01-20,2024-01-29\n"


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, text in (("participants", PARTICIPANTS), ("offences", OFFENCES), ("custody", CUSTODY)):
        paths[name] = tmp_path / f"{name}.csv"
        paths[name].write_text(text)
    return paths


def test_cli_followup_equals_api(files, tmp_path, capsys):
    out = tmp_path / "followup.csv"
    code = main(
        [
            "followup",
            "--participants",
            str(files["participants"]),
            "--offences",
            str(files["offences"]),
            "--custody",
            str(files["custody"]),
            "--window",
            "365",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "not participants" in err  # Z's offence is ignored, with a warning
    cli = pd.read_csv(out)
    with pytest.warns(followup.FollowupWarning):
        api = followup.build(
            pd.read_csv(files["participants"]),
            pd.read_csv(files["offences"]),
            custody=pd.read_csv(files["custody"]),
            window_days=365,
        )
    for column in ["time_at_risk", "reoffences", "prior_offences", "exposure_days", "days_in_custody"]:
        assert cli[column].tolist() == api[column].tolist()
    assert cli["event"].tolist() == api["event"].tolist()
    # A: assigned 2024-01-10, 10 custody days (Jan 20-29), reoffence on 2024-03-01 = day 51:
    # street days in [0, 51] = 52 - 10 = 42.
    assert cli.loc[cli["id"] == "A", "time_at_risk"].item() == 42


@pytest.mark.parametrize(
    "offences, message",
    [
        ("id,offence_date\nA,2024-13-01\n", "table offences, row 1, column 'offence_date'"),
        (None, "offences file"),
    ],
)
def test_cli_followup_bad_input_is_one_line_and_writes_nothing(files, tmp_path, capsys, offences, message):
    path = tmp_path / "missing.csv"
    if offences is not None:
        path.write_text(offences)
    out = tmp_path / "followup.csv"
    code = main(["followup", "--participants", str(files["participants"]), "--offences", str(path), "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    "participants, offences, extra, message",
    [
        ("id,arm,randomised_on\n", None, [], "table participants: the table has no rows"),
        (
            None,
            "id,offence_date\nA,2999-01-01\n",
            [],
            "table offences, row 1, column 'offence_date': offence date 2999-01-01 is in the future",
        ),
        (
            None,
            "id,offence_date\nA,2999-01-01\n",
            ["--extraction-date", "2025-01-01"],
            "offence date 2999-01-01 is after the extraction date 2025-01-01",
        ),
        (None, None, ["--extraction-date", "2023-12-31"], "extraction date 2023-12-31 is before every randomisation"),
        (
            "id,arm,randomised_on\nA,control,2024-01-10\nB,conference,2090-02-01\n",
            None,
            [],
            "table participants, row 2, column 'randomised_on': randomised on 2090-02-01 is in the future",
        ),
    ],
)
def test_cli_followup_dates_and_empty_tables_are_one_line(
    files, tmp_path, capsys, participants, offences, extra, message
):
    # an empty participants file and an extraction date before every randomisation exited 0;
    # 2999 was "unparsable"; 2090 was accepted
    for name, text in (("participants", participants), ("offences", offences)):
        if text is not None:
            files[name].write_text(text)
    out = tmp_path / "followup.csv"
    code = main(
        [
            "followup",
            "--participants",
            str(files["participants"]),
            "--offences",
            str(files["offences"]),
            *extra,
            "-o",
            str(out),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_the_outcome_definition_travels_with_the_table(tmp_path, capsys):
    # the follow-up's definition is written beside it and printed by followup and analyse
    import json

    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(2)
    n = 120
    participants = pd.DataFrame(
        {
            "id": [f"P{i}" for i in range(n)],
            "arm": rng.choice(["control", "conference"], n),
            "randomised_on": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 300, n), "D"),
        }
    )
    offences = pd.DataFrame(
        {
            "id": rng.choice(participants["id"], 150),
            "offence_date": pd.Timestamp("2020-03-01") + pd.to_timedelta(rng.integers(0, 900, 150), "D"),
        }
    )
    for name, frame in (("participants", participants), ("offences", offences)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False, date_format="%Y-%m-%d")
    out = tmp_path / "followup.csv"
    assert (
        main(
            [
                "followup",
                "--participants",
                str(tmp_path / "participants.csv"),
                "--offences",
                str(tmp_path / "offences.csv"),
                "--extraction-date",
                "2023-06-30",
                "--conviction-lag",
                "90",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "outcome: Any reoffence dated by the offence, within 730 days" in err and "90-day conviction lag" in err
    sidecar = tmp_path / "followup.outcome.json"
    assert json.loads(sidecar.read_text())["conviction_lag_days"] == 90
    assert (sidecar.stat().st_mode & 0o777) == 0o600
    assert main(["analyse", str(out)]) == 0
    assert "outcome: Any reoffence dated by the offence, within 730 days" in capsys.readouterr().out
    assert main(["analyse", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outcome"]["extraction_date"] == "2023-06-30"


def test_a_future_extraction_date_is_one_line(tmp_path, capsys):
    (tmp_path / "p.csv").write_text("id,randomised_on\nA,2020-01-01\n")
    (tmp_path / "o.csv").write_text("id,offence_date\nA,2020-02-01\n")
    code = main(
        [
            "followup",
            "--participants",
            str(tmp_path / "p.csv"),
            "--offences",
            str(tmp_path / "o.csv"),
            "--extraction-date",
            "2999-01-01",
            "-o",
            str(tmp_path / "f.csv"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "in the future" in err and not (tmp_path / "f.csv").exists()
