"""Unsealing is irreversible (rjtrial/registry/core.py unseal, seal.py key-file mark, verify.py).

After ``unseal`` has printed the whole sequence, the trial must never enrol again:
someone with write access to the database deletes the unseal entry, rewinds the head
and sets ``closed = 0`` (a truncation no chain can see by itself). The key file that
unsealed records it, so ``verify --key`` fails and enrolment with that key is refused;
an unseal entry left in the log refuses enrolment whatever ``closed`` says.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess

import pytest
from registry_fixtures import ELIGIBLE, make_protocol, new_registry, rjtrial_script, rows, when

from rjtrial.errors import KeyFileError
from rjtrial.registry import Registry, seal

NP = {"site": "north", "offence": "property"}


@pytest.fixture
def unsealed(tmp_path):
    """A trial with three randomisations, then unsealed; a spare copy of its key taken before."""
    with new_registry(tmp_path, make_protocol(capacity=20), seed=99) as reg:
        for i in range(1, 4):
            reg.enrol(f"R-{i:03d}", strata=NP, answers=ELIGIBLE, at=when(i))
        shutil.copy2(tmp_path / "trial.key", tmp_path / "spare.key")
        assert reg.unseal(by="statistician").ok
    return tmp_path


def reopen(db):
    """Delete the unseal entry, rewind the head to the entry before it and clear ``closed``."""
    with sqlite3.connect(db) as conn:
        seq, prev = conn.execute("SELECT seq, prev_hash FROM rj_audit WHERE action = 'unseal'").fetchone()
        conn.execute("DELETE FROM rj_audit WHERE seq = ?", (seq,))
        conn.execute("UPDATE rj_head SET audit_seq = ?, audit_hash = ?, closed = 0", (seq - 1, prev))


def test_the_key_file_records_the_unseal_entry(unsealed):
    (entry,) = rows(unsealed / "trial.db", "SELECT seq, hash FROM rj_audit WHERE action = 'unseal'")
    mark = seal.read_unseal_mark(unsealed / "trial.key")
    assert (mark.trial_id, mark.seq, mark.hash) == ("test-trial", entry["seq"], entry["hash"])
    assert seal.read_key_file(unsealed / "trial.key") == seal.read_key_file(unsealed / "spare.key")  # key intact
    assert stat.S_IMODE(os.stat(unsealed / "trial.key").st_mode) == 0o600
    assert seal.read_unseal_mark(unsealed / "spare.key") is None


def test_a_trial_reopened_after_unseal_fails_keyed_verify(unsealed):
    reopen(unsealed / "trial.db")
    with Registry.open(unsealed / "trial.db") as keyless:
        assert keyless.verify().ok  # a truncation: invisible to the chain alone (SECURITY.md)
    with Registry.open(unsealed / "trial.db", key_path=unsealed / "trial.key") as keyed:
        result = keyed.verify()
    assert not result.ok
    assert any(
        "the key file records that it unsealed the trial at audit log entry" in p and "reopened" in p
        for p in result.problems
    ), result.problems
    done = subprocess.run(
        [rjtrial_script(), "verify", "--db", str(unsealed / "trial.db"), "--key", str(unsealed / "trial.key")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "reopened" in done.stdout


def test_the_key_that_unsealed_never_enrols_again(unsealed):
    reopen(unsealed / "trial.db")
    with Registry.open(unsealed / "trial.db", key_path=unsealed / "trial.key") as reg:
        result = reg.enrol("R-004", strata=NP, answers=ELIGIBLE, at=when(4))
    assert result.status == "refused"
    assert "this key file unsealed the trial's sequence" in result.reasons[0]
    assert rows(unsealed / "trial.db", "SELECT COUNT(*) FROM rj_referrals")[0][0] == 3


def test_an_unseal_entry_in_the_log_refuses_enrolment_whatever_closed_says(unsealed):
    with sqlite3.connect(unsealed / "trial.db") as conn:
        conn.execute("UPDATE rj_head SET closed = 0")
    with Registry.open(unsealed / "trial.db", key_path=unsealed / "spare.key") as reg:  # a copy that did not unseal
        result = reg.enrol("R-004", strata=NP, answers=ELIGIBLE, at=when(4))
        assert result.status == "refused" and "unsealed" in result.reasons[0]
        assert not reg.verify().ok  # closed cleared: reported


def test_a_mark_cut_short_by_a_crash_still_closes_enrolment(tmp_path):
    with new_registry(tmp_path, make_protocol(capacity=20)) as reg:
        reg.enrol("R-001", strata=NP, answers=ELIGIBLE, at=when(1))
    with open(tmp_path / "trial.key", "a", encoding="ascii") as handle:
        handle.write("unsealed test-tri")
    mark = seal.read_unseal_mark(tmp_path / "trial.key")
    assert mark is not None and mark.seq is None
    with Registry.open(tmp_path / "trial.db", key_path=tmp_path / "trial.key") as reg:
        assert reg.enrol("R-002", strata=NP, answers=ELIGIBLE, at=when(2)).status == "refused"
        problems = reg.verify().problems
    assert any("but the log has no such unseal entry" in p for p in problems), problems


def test_unseal_writes_nothing_when_it_cannot_record_itself_in_the_key_file(tmp_path, monkeypatch):
    def full_disk(path, *args):
        raise KeyFileError(f"cannot record the unsealing in key file {path}: No space left on device")

    with new_registry(tmp_path, make_protocol(capacity=20)) as reg:
        reg.enrol("R-001", strata=NP, answers=ELIGIBLE, at=when(1))
        before = rows(tmp_path / "trial.db", "SELECT COUNT(*) FROM rj_audit")[0][0]
        monkeypatch.setattr(seal, "mark_unsealed", full_disk)
        with pytest.raises(KeyFileError, match="cannot record the unsealing in key file"):
            reg.unseal()
        assert reg.verify().ok
    assert rows(tmp_path / "trial.db", "SELECT COUNT(*) FROM rj_audit")[0][0] == before  # nothing written
    assert rows(tmp_path / "trial.db", "SELECT closed FROM rj_head")[0][0] == 0


def test_mark_unsealed_on_a_missing_key_file_is_one_clear_error(tmp_path):
    with pytest.raises(KeyFileError, match=r"cannot record the unsealing in key file .*gone\.key"):
        seal.mark_unsealed(tmp_path / "gone.key", "t", 5, "ab" * 32)


def test_a_key_file_with_a_foreign_line_is_refused(tmp_path):
    with new_registry(tmp_path, make_protocol(capacity=20)):
        pass
    with open(tmp_path / "trial.key", "a", encoding="ascii") as handle:
        handle.write("something else\n")
    with pytest.raises(KeyFileError, match="unexpected line after the key"):
        seal.read_key_file(tmp_path / "trial.key")
