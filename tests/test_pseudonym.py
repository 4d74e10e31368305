"""Keyed pseudonyms (rjtrial/pseudonym.py): deterministic under one key, unlinkable without it, valid
referral ids; the CLI pseudonymises tables, enrols and links follow-up records by pseudonym only."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from registry_fixtures import protocol_toml, when

from rjtrial.cli import main
from rjtrial.errors import DataError, KeyFileError
from rjtrial.pseudonym import create_key_file, normalise_identifier, pseudonym, pseudonymise_column, read_key_file
from rjtrial.registry.core import is_referral_id

KEY = bytes(range(32))


@pytest.mark.parametrize(
    "a, b", [("2001/0012345A", " 2001/0012345a "), ("AB 12  CD", "ab 12 cd"), ("ＡＢ１２", "AB12")]
)
def test_one_person_one_pseudonym_however_the_identifier_is_typed(a, b):
    assert normalise_identifier(a) == normalise_identifier(b)
    assert pseudonym(a, KEY) == pseudonym(b, KEY)


def test_pseudonyms_are_referral_ids_and_differ_by_key_and_person():
    p = pseudonym("2001/0012345A", KEY)
    assert is_referral_id(p) and len(p) == 28
    assert pseudonym("2001/0012345A", bytes(32)) != p
    assert pseudonym("2001/0012346A", KEY) != p
    # the first 130 bits of HMAC-SHA-256 under the key, base32: fixed by the scheme, not by a library version
    assert (
        p
        == "P-"
        + __import__("base64")
        .b32encode(__import__("hmac").new(KEY, b"rjtrial-pseudonym-v1|2001/0012345A", "sha256").digest())
        .decode()[:26]
    )


def test_the_key_file_is_owner_only_never_overwritten_and_not_a_trial_key(tmp_path):
    create_key_file(tmp_path / "p.key")
    assert (tmp_path / "p.key").stat().st_mode & 0o777 == 0o600
    assert len(read_key_file(tmp_path / "p.key")) == 32
    with pytest.raises(KeyFileError, match="already exists"):
        create_key_file(tmp_path / "p.key")
    os.chmod(tmp_path / "p.key", 0o644)
    with pytest.raises(KeyFileError, match="accessible by other users"):
        read_key_file(tmp_path / "p.key")
    (tmp_path / "t.key").write_text("rjtrial-key-v1:" + "A" * 44 + "\n")
    os.chmod(tmp_path / "t.key", 0o600)
    with pytest.raises(KeyFileError, match="not a pseudonymisation key file"):
        read_key_file(tmp_path / "t.key")


def test_a_blank_identifier_is_named_by_row_and_column():
    frame = pd.DataFrame({"police_id": ["A1", " ", "C3"]}, index=[1, 2, 3])
    with pytest.raises(DataError, match=r"table x.csv, row 2, column 'police_id': the identifier is blank"):
        pseudonymise_column(frame, "police_id", KEY, table="x.csv")


def test_enrol_and_link_the_criminal_record_by_pseudonym_only(tmp_path, capsys):
    """The force's analyst enrols with PNC numbers and the pseudonymisation key; the records extract,
    still holding PNC numbers, is linked by `followup --pseudonym-key`: no raw identifier reaches the outputs."""
    (tmp_path / "p.toml").write_text(protocol_toml(capacity=10))
    db, key, pkey = str(tmp_path / "t.db"), str(tmp_path / "t.key"), str(tmp_path / "p.key")
    assert main(["init", str(tmp_path / "p.toml"), "--db", db, "--key", key]) == 0
    assert main(["pseudonym", "key", pkey]) == 0
    pnc = ["2001/0012345A", "1999/0054321B", "2003/0011111C"]
    for i, number in enumerate(pnc):
        assert (
            main(
                [
                    "enrol",
                    "--db",
                    db,
                    "--key",
                    key,
                    "--referral",
                    number,
                    "--pseudonym-key",
                    pkey,
                    "--at",
                    when(i).isoformat(),
                    "--stratum",
                    "site=north",
                    "--stratum",
                    "offence=property",
                    "--answer",
                    "admitted=yes",
                    "--answer",
                    "risk=suitable",
                    "--json",
                ]
            )
            == 0
        )
    capsys.readouterr()
    assert main(["export", "--db", db, "-o", str(tmp_path / "participants.csv")]) == 0
    participants = pd.read_csv(tmp_path / "participants.csv")
    expected = [pseudonym(n, read_key_file(pkey)) for n in pnc]
    assert list(participants["id"]) == expected
    offences = pd.DataFrame(
        {
            "id": [pnc[0].lower(), pnc[2], "2010/0099999Z"],
            "offence_date": ["2025-06-01", "2025-07-01", "2025-06-01"],
            "conviction_date": ["2025-08-01", "2025-09-01", "2025-08-01"],
            "offence_type": ["theft", "violence", "theft"],
        }
    )
    offences.to_csv(tmp_path / "offences.csv", index=False)
    assert (
        main(
            [
                "followup",
                "--participants",
                str(tmp_path / "participants.csv"),
                "--offences",
                str(tmp_path / "offences.csv"),
                "--extraction-date",
                "2026-06-30",
                "--pseudonym-key",
                pkey,
                "-o",
                str(tmp_path / "followup.csv"),
            ]
        )
        == 0
    )
    table = pd.read_csv(tmp_path / "followup.csv")
    assert dict(zip(table["id"], table["reoffences"])) == {expected[0]: 1, expected[1]: 0, expected[2]: 1}
    for name in ("participants.csv", "followup.csv"):
        text = (tmp_path / name).read_text()
        assert not any(n in text or n.lower() in text for n in pnc)
    # pseudonymise the extract itself, for the research team to keep
    assert (
        main(
            [
                "pseudonym",
                "apply",
                str(tmp_path / "offences.csv"),
                "--pseudonym-key",
                pkey,
                "-o",
                str(tmp_path / "offences-p.csv"),
            ]
        )
        == 0
    )
    kept = pd.read_csv(tmp_path / "offences-p.csv")
    assert list(kept["id"][:2]) == [expected[0], expected[2]] and kept["offence_date"][0] == "2025-06-01"
    assert (tmp_path / "offences-p.csv").stat().st_mode & 0o077 == 0


def test_cli_pseudonym_errors_are_one_line(tmp_path, capsys):
    assert (
        main(
            [
                "pseudonym",
                "apply",
                str(tmp_path / "x.csv"),
                "--pseudonym-key",
                str(tmp_path / "none.key"),
                "-o",
                str(tmp_path / "o.csv"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pseudonymisation key file" in err and "not found" in err
