"""Retention with audited erasure (rjtrial/registry/retention.py): personal fields kept out of the hash
chain, erased after the retention date with the chain still verifying, and every way of erasing or
editing them outside an erasure detected."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from registry_fixtures import ELIGIBLE, copy_db, dump_tables, make_protocol, new_registry, protocol_toml, rows, when

from rjtrial._canonical import canonical_json
from rjtrial.cli import main
from rjtrial.errors import KeyFileError
from rjtrial.registry import Registry
from rjtrial.registry.audit import GENESIS, entry_hash
from rjtrial.registry.retention import apply_retention, personal_data

NP = {"site": "north", "offence": "property"}


@pytest.fixture
def folder(tmp_path):
    """R-001..R-003 enrolled with personal fields on day 0, R-004 on day 3 (after the retention date 2025-03-05),
    R-005 without personal fields; an event with personal fields for R-001 on day 1."""
    with new_registry(tmp_path, make_protocol(capacity=20), seed=6) as registry:
        for i in range(1, 4):
            registry.enrol(
                f"R-{i:03d}",
                strata=NP,
                answers=ELIGIBLE,
                at=when(i),
                personal={"name": f"Person {i}", "notes": "lives with victim's cousin"},
            )
        registry.record_event(
            "R-001", "treatment_received", at=when(24), personal={"facilitator_notes": "J. Smith came"}
        )
        registry.enrol("R-004", strata=NP, answers=ELIGIBLE, at=when(72), personal={"name": "Person 4"})
        registry.enrol("R-005", strata=NP, answers=ELIGIBLE, at=when(73))
        assert registry.verify().ok
    return tmp_path


RETENTION_DATE = "2025-03-05"  # after when(24) (2025-03-04), before when(72) (2025-03-06)


def test_personal_fields_stay_out_of_the_audit_chain(folder):
    payloads = [json.loads(r["payload"]) for r in rows(folder / "trial.db", "SELECT payload FROM rj_audit")]
    text = json.dumps(payloads)
    assert "Person 1" not in text and "J. Smith" not in text
    first = next(p for p in payloads if p.get("referral_id") == "R-001" and "status" in p)
    assert set(first["personal"]) == {"digest", "fields"} and first["personal"]["fields"] == ["name", "notes"]


def test_erasure_after_the_retention_date_keeps_the_chain_verifiable(folder):
    with Registry.open(folder / "trial.db", key_path=folder / "trial.key") as registry:
        allocations = registry.export()[["id", "arm"]]
        result = apply_retention(registry, before=RETENTION_DATE, by="data manager")
        assert result.erased == 4 and result.referrals == ("R-001", "R-002", "R-003", "R-001")
        assert registry.verify().ok
        kept = personal_data(registry, by="dpo").set_index("audit_seq")
        assert kept["erased"].tolist() == [True, True, True, True, False]
        assert kept.loc[kept["referral_id"] == "R-004", "name"].item() == "Person 4"
        assert registry.export()[["id", "arm"]].equals(allocations)  # the allocation record is kept
        # nothing left to erase before that date
        assert apply_retention(registry, before=RETENTION_DATE, by="data manager").erased == 0
    with Registry.open(folder / "trial.db") as keyless:
        assert keyless.verify().ok
    salts = rows(folder / "trial.db", "SELECT referral_id, fields, salt FROM rj_personal WHERE erased_by IS NOT NULL")
    assert len(salts) == 4 and all(r["fields"] is None and r["salt"] is None for r in salts)


def test_an_erasure_needs_the_key_and_a_date_not_in_the_future(folder):
    before = dump_tables(folder / "trial.db")
    with Registry.open(folder / "trial.db") as keyless:
        with pytest.raises(KeyFileError, match="erasing personal data"):
            apply_retention(keyless, before=RETENTION_DATE, by="x")
    with Registry.open(folder / "trial.db", key_path=folder / "trial.key") as registry:
        with pytest.raises(ValueError, match="is in the future"):
            apply_retention(registry, before="2999-01-01", by="x")
        with pytest.raises(ValueError, match="is not a date"):
            apply_retention(registry, before="last year", by="x")
        assert apply_retention(registry, before=RETENTION_DATE, by="x", dry_run=True).erased == 4
    assert dump_tables(folder / "trial.db") == before


def test_a_failed_erasure_erases_nothing(folder, monkeypatch):
    from rjtrial.registry import audit

    before = rows(folder / "trial.db", "SELECT * FROM rj_personal")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(audit, "append", fail)
    with Registry.open(folder / "trial.db", key_path=folder / "trial.key") as registry:
        with pytest.raises(OSError):
            apply_retention(registry, before=RETENTION_DATE, by="x")
    assert [tuple(r) for r in rows(folder / "trial.db", "SELECT * FROM rj_personal")] == [tuple(r) for r in before]


def test_a_store_made_before_personal_fields_existed_gets_the_table_on_first_use(tmp_path):
    with new_registry(tmp_path, make_protocol(capacity=5), seed=1) as registry:
        registry.enrol("R-001", strata=NP, answers=ELIGIBLE, at=when(1))
    with sqlite3.connect(tmp_path / "trial.db") as conn:
        conn.execute("DROP TABLE rj_personal")
    conn.close()
    with Registry.open(tmp_path / "trial.db", key_path=tmp_path / "trial.key") as registry:
        assert registry.verify().ok
        registry.enrol("R-002", strata=NP, answers=ELIGIBLE, at=when(2), personal={"name": "X"})
        assert registry.verify().ok


@pytest.mark.parametrize(
    "personal, message",
    [
        ({"name": 3}, "personal fields must be text"),
        ({"first name": "x"}, "personal field names must be identifiers"),
        ({"notes": "x" * 10_001}, "at most 10,000 characters"),
    ],
)
def test_personal_fields_are_checked_before_anything_is_written(folder, personal, message):
    before = dump_tables(folder / "trial.db")
    with Registry.open(folder / "trial.db", key_path=folder / "trial.key") as registry:
        with pytest.raises(ValueError, match=message):
            registry.enrol("R-009", strata=NP, answers=ELIGIBLE, personal=personal)
    assert dump_tables(folder / "trial.db") == before


# ------------------------------------------------------------------ tampering
@pytest.fixture
def erased(folder):
    with Registry.open(folder / "trial.db", key_path=folder / "trial.key") as registry:
        apply_retention(registry, before=RETENTION_DATE, by="data manager")
    return folder


def _copy(folder, tmp_path):
    target = tmp_path / "copy"
    target.mkdir()
    shutil.copy2(folder / "trial.key", target / "trial.key")
    return copy_db(folder / "trial.db", target / "trial.db")


def _sql(db, sql, params=()):
    with sqlite3.connect(db) as conn:
        conn.execute(sql, params)
    conn.close()


def _verify(db):
    with Registry.open(db) as registry:
        return registry.verify()


@pytest.mark.parametrize(
    "sql, problem",
    [
        (
            "UPDATE rj_personal SET fields = NULL, salt = NULL WHERE referral_id = 'R-004'",
            "referral 'R-004' (audit log entry 6): personal fields missing from table rj_personal with no audited erasure",
        ),
        ("DELETE FROM rj_personal WHERE referral_id = 'R-004'", "personal fields missing from table rj_personal"),
        (
            "UPDATE rj_personal SET fields = '{\"name\":\"Someone Else\"}' WHERE referral_id = 'R-004'",
            "do not match the digest logged (edited)",
        ),
        (
            "INSERT INTO rj_personal VALUES (8, 'R-005', '{\"name\":\"x\"}', 'aa', NULL)",
            "that no record logged (inserted)",
        ),
    ],
)
def test_personal_data_erased_or_edited_outside_an_erasure_fails_keyless_verify(erased, tmp_path, sql, problem):
    db = _copy(erased, tmp_path)
    _sql(db, sql)
    result = _verify(db)
    assert not result.ok and any(problem in p for p in result.problems), result.problems


def test_erased_fields_put_back_from_an_old_copy_are_detected(folder, tmp_path):
    old = rows(folder / "trial.db", "SELECT audit_seq, fields, salt FROM rj_personal WHERE referral_id = 'R-002'")[0]
    with Registry.open(folder / "trial.db", key_path=folder / "trial.key") as registry:
        apply_retention(registry, before=RETENTION_DATE, by="data manager")
    _sql(
        folder / "trial.db",
        "UPDATE rj_personal SET fields = ?, salt = ? WHERE audit_seq = ?",
        (old["fields"], old["salt"], old["audit_seq"]),
    )
    result = _verify(folder / "trial.db")
    assert any(
        "referral 'R-002'" in p and "personal fields present again after their erasure" in p for p in result.problems
    ), result.problems


def _rehash(db: Path, edit) -> None:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    with conn:
        prev = GENESIS
        for e in [dict(r) for r in conn.execute("SELECT * FROM rj_audit ORDER BY seq")]:
            payload = json.loads(e["payload"])
            edit(e["action"], payload)
            text = canonical_json(payload)
            digest = entry_hash(prev, e["seq"], e["at"], e["actor"], e["action"], text)
            conn.execute(
                "UPDATE rj_audit SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?", (text, prev, digest, e["seq"])
            )
            prev = digest
        conn.execute("UPDATE rj_head SET audit_hash = ?", (prev,))
    conn.close()


def test_an_erasure_rewritten_to_reach_past_its_date_fails_on_signature_and_date(erased, tmp_path):
    db = _copy(erased, tmp_path)
    digest = json.loads(rows(db, "SELECT payload FROM rj_audit WHERE seq = 6")[0][0])["personal"]["digest"]

    def reach(action, payload):
        if action == "erasure":
            payload["erased"].append([6, digest])

    _rehash(db, reach)
    _sql(db, "UPDATE rj_personal SET fields = NULL, salt = NULL, erased_by = 8 WHERE audit_seq = 6")
    result = _verify(db)
    assert any("(erasure): its signature does not verify" in p for p in result.problems)
    assert any(
        "erased referral 'R-004' (audit log entry 6)" in p and "not before its retention date 2025-03-05" in p
        for p in result.problems
    ), result.problems


def test_an_erasure_entry_cut_off_the_log_leaves_erased_records_unexplained(erased, tmp_path):
    """Deleting the erasure entry and rewinding the head (a truncation) cannot hide an erasure."""
    db = _copy(erased, tmp_path)
    last = rows(db, "SELECT seq, prev_hash FROM rj_audit ORDER BY seq DESC LIMIT 1")[0]
    _sql(db, "DELETE FROM rj_audit WHERE seq = ?", (last["seq"],))
    _sql(db, "UPDATE rj_head SET audit_seq = ?, audit_hash = ?", (last["seq"] - 1, last["prev_hash"]))
    result = _verify(db)
    assert not result.ok
    assert sum("with no audited erasure" in p for p in result.problems) == 4


# ------------------------------------------------------------------ the command line
def test_cli_enrol_with_personal_fields_then_retention_apply(tmp_path, capsys):
    (tmp_path / "p.toml").write_text(protocol_toml(capacity=10))
    db, key = str(tmp_path / "t.db"), str(tmp_path / "t.key")
    assert main(["init", str(tmp_path / "p.toml"), "--db", db, "--key", key]) == 0
    assert (
        main(
            [
                "enrol",
                "--db",
                db,
                "--key",
                key,
                "--referral",
                "R-1",
                "--at",
                when(1).isoformat(),
                "--stratum",
                "site=north",
                "--stratum",
                "offence=property",
                "--answer",
                "admitted=yes",
                "--answer",
                "risk=suitable",
                "--personal",
                "name=Ann Example",
                "--personal",
                "notes=see file",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "event",
                "--db",
                db,
                "--key",
                key,
                "--referral",
                "R-1",
                "--kind",
                "note",
                "--at",
                when(2).isoformat(),
                "--personal",
                "notes=victim's brother called",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["retention", "apply", "--db", db, "--key", key, "--before", "2025-04-01", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("would erase the personal fields of 2 record(s) dated before 2025-04-01")
    assert (
        main(
            [
                "retention",
                "apply",
                "--db",
                db,
                "--key",
                key,
                "--before",
                "2025-04-01",
                "--reason",
                "2 years after follow-up",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["erased"] == 2
    assert main(["verify", "--db", db]) == 0
    assert main(["retention", "apply", "--db", db, "--before", "2025-04-01"]) == 2
    assert "needs the trial's key file" in capsys.readouterr().err
