"""Backup, restore and disaster recovery (rjtrial/registry/backup.py), mostly through the CLI as an
operator runs them: enrol, back up, enrol more, lose the store, restore, and find what is missing."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import threading
from pathlib import Path

import pytest
from registry_fixtures import (
    ALL_STRATA,
    ELIGIBLE,
    dump_tables,
    fresh_postgres_database,
    make_protocol,
    new_registry,
    postgres_url_or_skip,
    protocol_toml,
    rows,
    when,
)

from rjtrial.cli import main
from rjtrial.errors import RegistryError, TamperError
from rjtrial.registry import Registry
from rjtrial.registry.backup import backup, read_manifest, restore


def _enrol_cli(db, key, rid, i, capsys):
    strata = ALL_STRATA[i % 4]
    code = main(
        [
            "enrol",
            "--db",
            str(db),
            "--key",
            str(key),
            "--referral",
            rid,
            "--at",
            when(i).isoformat(),
            "--stratum",
            f"site={strata['site']}",
            "--stratum",
            f"offence={strata['offence']}",
            "--answer",
            "admitted=yes",
            "--answer",
            "risk=suitable",
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    return f"{out['receipt']} {rid} {out['arm']}"  # a receipt as a coordinator keeps it


@pytest.fixture
def trial(tmp_path, capsys):
    (tmp_path / "p.toml").write_text(protocol_toml(capacity=30))
    db, key = tmp_path / "live" / "trial.db", tmp_path / "trial.key"
    db.parent.mkdir()
    assert main(["init", str(tmp_path / "p.toml"), "--db", str(db), "--key", str(key)]) == 0
    capsys.readouterr()
    return db, key


def test_enrol_back_up_enrol_more_lose_the_store_restore_and_find_exactly_what_is_missing(trial, tmp_path, capsys):
    db, key = trial
    before = [_enrol_cli(db, key, f"R-{i:03d}", i, capsys) for i in range(1, 6)]
    assert main(["backup", "--db", str(db), "-o", str(tmp_path / "nightly.rjbackup"), "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    after = [_enrol_cli(db, key, f"R-{i:03d}", i, capsys) for i in range(6, 9)]
    receipts = tmp_path / "receipts.txt"
    receipts.write_text("\n".join(before + after) + "\n")

    shutil.rmtree(db.parent)  # the disk fails
    new = tmp_path / "new" / "trial.db"
    new.parent.mkdir()
    # a backup older than receipts held is refused, and nothing is written
    assert main(["restore", str(tmp_path / "nightly.rjbackup"), "--db", str(new), "--receipts", str(receipts)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is older than 3 receipt(s) you hold" in err and after[0] in err
    assert list(new.parent.iterdir()) == []
    # accepted knowingly: restored, and the missing allocations are listed
    assert (
        main(
            [
                "restore",
                str(tmp_path / "nightly.rjbackup"),
                "--db",
                str(new),
                "--receipts",
                str(receipts),
                "--accept-missing",
                "--key",
                str(key),
                "--json",
            ]
        )
        == 0
    )
    restored = json.loads(capsys.readouterr().out)
    assert restored["missing_receipts"] == after and restored["head_seq"] == made["head_seq"]
    assert new.stat().st_mode & 0o077 == 0
    # verify with every receipt names exactly the allocations made after the backup
    assert main(["verify", "--db", str(new), "--receipts", str(receipts), "--json"]) == 1
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert len(problems) == 3
    for problem, line in zip(problems, after):
        receipt, rid, arm = line.split()
        assert problem.startswith(
            f"receipt {receipt} ({rid} {arm}): not in the log: an allocation made after the "
            "backup this store was restored from"
        )
    # re-entered in their original order at their original times, each gets the arm it was given
    again = [_enrol_cli(new, key, f"R-{i:03d}", i, capsys) for i in range(6, 9)]
    assert [line.split()[1:] for line in again] == [line.split()[1:] for line in after]
    (tmp_path / "receipts-new.txt").write_text("\n".join(before + again) + "\n")
    assert main(["verify", "--db", str(new), "--key", str(key), "--receipts", str(tmp_path / "receipts-new.txt")]) == 0


def test_a_backup_carries_its_sha256_and_the_head_it_covers(trial, tmp_path, capsys):
    db, key = trial
    lines = [_enrol_cli(db, key, f"R-{i:03d}", i, capsys) for i in range(1, 4)]
    result = backup(db, tmp_path / "b.rjbackup", by="operator")
    assert result.sha256 == hashlib.sha256((tmp_path / "b.rjbackup").read_bytes()).hexdigest()
    assert (tmp_path / "b.rjbackup").stat().st_mode & 0o077 == 0
    manifest = read_manifest(tmp_path / "b.rjbackup")
    head = rows(db, "SELECT seq, hash FROM rj_audit WHERE action = 'enrolment' ORDER BY seq DESC LIMIT 1")[0]
    assert manifest["head"]["audit_seq"] == head["seq"] and manifest["head"]["audit_hash"] == head["hash"]
    assert manifest["last_receipt"] == lines[-1].split()[0] and manifest["randomised"] == 3
    # the backup itself is logged for the data-protection officer, after the head it covers
    logged = rows(db, "SELECT seq, actor, payload FROM rj_audit WHERE action = 'data_access'")
    assert len(logged) == 1 and logged[0]["seq"] == head["seq"] + 1 and logged[0]["actor"] == "operator"
    assert json.loads(logged[0]["payload"])["what"] == "backup"
    with Registry.open(db) as registry:
        assert registry.verify().ok


def _rewrite_backup(src: Path, dst: Path, change, *, fix_manifest: bool) -> None:
    with tarfile.open(src, "r:gz") as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
        payload = bytearray(tar.extractfile(manifest["payload"]["name"]).read())
    payload = change(payload)
    if fix_manifest:
        manifest["payload"]["sha256"] = hashlib.sha256(payload).hexdigest()
    with tarfile.open(dst, "w:gz") as tar:
        for name, data in (
            ("manifest.json", json.dumps(manifest).encode()),
            (manifest["payload"]["name"], bytes(payload)),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _edit_arm(payload: bytearray) -> bytearray:
    """The copy's rj_referrals edited: one arm changed (what an attacker with the backup would do)."""
    import sqlite3
    import tempfile

    folder = Path(tempfile.mkdtemp())
    (folder / "r.db").write_bytes(payload)
    with sqlite3.connect(folder / "r.db") as conn:
        conn.execute(
            "UPDATE rj_referrals SET arm = CASE arm WHEN 'control' THEN 'conference' ELSE 'control' END "
            "WHERE referral_id = 'R-002'"
        )
    conn.close()
    data = bytearray((folder / "r.db").read_bytes())
    shutil.rmtree(folder)
    return data


@pytest.mark.parametrize(
    "change, fix_manifest, error, message",
    [
        (lambda p: p[:-4096] + bytes(4096), False, RegistryError, "is corrupt: its copy's SHA-256"),
        (_edit_arm, True, TamperError, "does not verify, not restored: referral 'R-002'"),
    ],
)
def test_a_backup_that_is_corrupt_or_does_not_verify_is_refused_and_nothing_is_written(
    trial, tmp_path, capsys, change, fix_manifest, error, message
):
    db, key = trial
    for i in range(1, 4):
        _enrol_cli(db, key, f"R-{i:03d}", i, capsys)
    backup(db, tmp_path / "b.rjbackup")
    _rewrite_backup(tmp_path / "b.rjbackup", tmp_path / "bad.rjbackup", change, fix_manifest=fix_manifest)
    target = tmp_path / "new"
    target.mkdir()
    with pytest.raises(error, match=message):
        restore(tmp_path / "bad.rjbackup", target / "trial.db")
    assert list(target.iterdir()) == []


def test_restore_never_writes_over_a_store_and_checks_the_published_commitment(trial, tmp_path, capsys):
    db, key = trial
    _enrol_cli(db, key, "R-001", 1, capsys)
    backup(db, tmp_path / "b.rjbackup")
    before = dump_tables(db)
    with pytest.raises(RegistryError, match="exists: restore into a new file"):
        restore(tmp_path / "b.rjbackup", db)
    assert dump_tables(db) == before
    with pytest.raises(TamperError, match="differs from the published"):
        restore(tmp_path / "b.rjbackup", tmp_path / "x.db", expected_commitment="ab" * 32)
    assert not (tmp_path / "x.db").exists()
    with pytest.raises(RegistryError, match="not an rjtrial backup"):
        restore(tmp_path / "p.toml", tmp_path / "y.db")
    with pytest.raises(RegistryError, match="no registry at .*missing.db"):
        backup(tmp_path / "missing.db", tmp_path / "m.rjbackup")
    assert not (tmp_path / "missing.db").exists() and not (tmp_path / "m.rjbackup").exists()


def test_a_recovery_drill_checks_a_backup_without_restoring_it(trial, tmp_path, capsys):
    db, key = trial
    lines = [_enrol_cli(db, key, f"R-{i:03d}", i, capsys) for i in range(1, 3)]
    backup(db, tmp_path / "b.rjbackup")
    assert (
        main(["restore", str(tmp_path / "b.rjbackup"), "--check", "--key", str(key), "--receipt", lines[0].split()[0]])
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("backup verifies; restorable: audit entries 1-3, 2 randomised") and "keyed" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.rjbackup", "live", "p.toml", "trial.key"]


def test_a_backup_taken_while_referrals_are_enrolled_is_consistent(tmp_path):
    with new_registry(tmp_path, make_protocol(capacity=200), seed=3) as registry:
        stop = threading.Event()

        def enrol():
            i = 0
            while not stop.is_set() and i < 150:
                registry.enrol(f"W-{i:04d}", strata=ALL_STRATA[i % 4], answers=ELIGIBLE, by="w")
                i += 1

        worker = threading.Thread(target=enrol)
        worker.start()
        try:
            results = [backup(registry.db, tmp_path / f"b{k}.rjbackup") for k in range(3)]
        finally:
            stop.set()
            worker.join()
    for k, made in enumerate(results):
        restored = restore(tmp_path / f"b{k}.rjbackup", tmp_path / f"r{k}.db")
        assert restored.head_seq == made.head_seq and restored.randomised == made.randomised


@pytest.mark.postgres
def test_postgres_backup_and_restore_with_pg_dump(tmp_path):
    url = postgres_url_or_skip()
    with fresh_postgres_database(url) as source, fresh_postgres_database(url) as target:
        with Registry.create(source, make_protocol(capacity=20), key_path=tmp_path / "t.key", seed=4) as registry:
            receipts = [
                registry.enrol(f"R-{i}", strata=ALL_STRATA[i % 4], answers=ELIGIBLE, at=when(i)).receipt
                for i in range(1, 6)
            ]
        made = backup(source, tmp_path / "pg.rjbackup")
        assert read_manifest(tmp_path / "pg.rjbackup")["backend"] == "postgresql"
        with Registry.open(source, key_path=tmp_path / "t.key") as registry:
            late = registry.enrol("R-9", strata=ALL_STRATA[0], answers=ELIGIBLE, at=when(9)).receipt
        with pytest.raises(RegistryError, match="older than 1 receipt"):
            restore(tmp_path / "pg.rjbackup", target, receipts=receipts + [late])
        result = restore(tmp_path / "pg.rjbackup", target, key_path=tmp_path / "t.key", receipts=receipts)
        assert result.head_seq == made.head_seq and result.level == "keyed"
        with Registry.open(target) as restored:
            assert restored.verify(receipts=receipts).ok
            assert list(restored.export()["id"]) == [f"R-{i}" for i in range(1, 6)]
        with pytest.raises(RegistryError, match="already holds a trial registry"):
            restore(tmp_path / "pg.rjbackup", target)


def test_restore_into_an_in_memory_sqlite_database_is_refused_with_one_line(trial, tmp_path, capsys):
    # an in-memory SQLite URL names no file to restore into (found by mypy: a None path dereferenced)
    db, key = trial
    _enrol_cli(db, key, "R-001", 1, capsys)
    backup(db, tmp_path / "b.rjbackup")
    with pytest.raises(RegistryError, match="restores into a file"):
        restore(tmp_path / "b.rjbackup", "sqlite://")
    assert main(["restore", str(tmp_path / "b.rjbackup"), "--db", "sqlite://"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rjtrial: error: ") and "restores into a file" in err and "Traceback" not in err


def test_a_backup_whose_copy_is_not_a_file_is_refused(trial, tmp_path):
    db, _ = trial
    backup(db, tmp_path / "b.rjbackup")
    with tarfile.open(tmp_path / "b.rjbackup", mode="r:gz") as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    bad = tmp_path / "bad.rjbackup"
    with tarfile.open(bad, mode="w:gz") as tar:
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        folder = tarfile.TarInfo(manifest["payload"]["name"])
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
    with pytest.raises(RegistryError, match=r"bad.rjbackup is not an rjtrial backup, or it is damaged"):
        read_manifest(bad)
