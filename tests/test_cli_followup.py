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
    code = main(["followup", "--participants", str(files["participants"]), "--offences", str(files["offences"]),
                 "--custody", str(files["custody"]), "--window", "365", "-o", str(out)])
    assert code == 0
    err = capsys.readouterr().err
    assert "not participants" in err  # Z's offence is ignored, with a warning
    cli = pd.read_csv(out)
    with pytest.warns(followup.FollowupWarning):
        api = followup.build(pd.read_csv(files["participants"]), pd.read_csv(files["offences"]),
                             custody=pd.read_csv(files["custody"]), window_days=365)
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
        (None, "id,offence_date\nA,2999-01-01\n", [],
         "table offences, row 1, column 'offence_date': offence date 2999-01-01 is in the future"),
        (None, "id,offence_date\nA,2999-01-01\n", ["--extraction-date", "2025-01-01"],
         "offence date 2999-01-01 is after the extraction date 2025-01-01"),
        (None, None, ["--extraction-date", "2023-12-31"], "extraction date 2023-12-31 is before every randomisation"),
        ("id,arm,randomised_on\nA,control,2024-01-10\nB,conference,2090-02-01\n", None, [],
         "table participants, row 2, column 'randomised_on': randomised on 2090-02-01 is in the future"),
    ],
)
def test_cli_followup_dates_and_empty_tables_are_one_line(files, tmp_path, capsys, participants, offences, extra, message):
    # an empty participants file and an extraction date before every randomisation exited 0;
    # 2999 was "unparsable"; 2090 was accepted
    for name, text in (("participants", participants), ("offences", offences)):
        if text is not None:
            files[name].write_text(text)
    out = tmp_path / "followup.csv"
    code = main(["followup", "--participants", str(files["participants"]), "--offences", str(files["offences"]),
                 *extra, "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()
