"""Tamper detection (rjtrial/registry/verify.py, audit.py).

A registry is built once; each case copies it, changes the SQLite file directly with
the ``sqlite3`` module (as someone with write access to the file would, not through
rjtrial), and checks that ``verify()`` fails with the first problem naming the
record that was changed.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from registry_fixtures import ELIGIBLE, copy_db, make_protocol, new_registry, rjtrial_script, rows, when

from rjtrial._canonical import canonical_json
from rjtrial.registry import Registry
from rjtrial.registry.audit import GENESIS, entry_hash, receipt_for

NP = {"site": "north", "offence": "property"}
SV = {"site": "south", "offence": "violence"}
NV = {"site": "north", "offence": "violence"}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A registry with randomised, ineligible and refused enrolments, events and an export.

    Audit log: 1 init, 2 R-001, 3 R-002, 4 R-003 (ineligible), 5 refusal, 6 R-005,
    7 event R-001, 8 R-006, 9 event R-005, 10 R-007, 11 export, 12 event R-002.
    """
    folder = tmp_path_factory.mktemp("pristine")
    with new_registry(folder, make_protocol(capacity=20), seed=404) as reg:
        reg.enrol("R-001", strata=NP, answers=ELIGIBLE, at=when(1))
        reg.enrol("R-002", strata=SV, answers=ELIGIBLE, at=when(2))
        reg.enrol("R-003", strata=NP, answers={"admitted": "no", "risk": "suitable"}, at=when(3))
        assert reg.enrol("R-004", strata={"site": "east", "offence": "property"}, answers=ELIGIBLE).status == "refused"
        reg.enrol("R-005", strata=NP, answers=ELIGIBLE, at=when(5))
        reg.record_event("R-001", "treatment_received", at=when(6), detail={"where": "court"})
        reg.enrol("R-006", strata=NV, answers=ELIGIBLE, at=when(7))
        reg.record_event("R-005", "withdrawal", at=when(8))
        reg.enrol("R-007", strata=NP, answers=ELIGIBLE, at=when(9))
        reg.export(by="analyst")
        reg.record_event("R-002", "note", at=when(10), detail={"text": "called"})
        assert reg.verify().ok
    actions = [r["action"] for r in rows(folder / "trial.db", "SELECT action FROM rj_audit ORDER BY seq")]
    assert actions == [
        "init",
        "enrolment",
        "enrolment",
        "enrolment",
        "refusal",
        "enrolment",
        "event",
        "enrolment",
        "event",
        "enrolment",
        "export",
        "event",
    ]
    return folder


@pytest.fixture
def tampered(pristine, tmp_path):
    """A fresh copy of the pristine registry and its key, and a function that opens and verifies it."""
    db = copy_db(pristine / "trial.db", tmp_path / "trial.db")
    shutil.copy2(pristine / "trial.key", tmp_path / "trial.key")

    def check(*, key: bool = False, **kwargs):
        with Registry.open(db, key_path=tmp_path / "trial.key" if key else None) as reg:
            return reg.verify(**kwargs)

    return db, check


def _audit_seq(conn, rid):
    return conn.execute("SELECT audit_seq FROM rj_referrals WHERE referral_id = ?", (rid,)).fetchone()[0]


def _other_arm(arm):
    return "control" if arm == "conference" else "conference"


# Each tamper function changes the database and returns a regular expression that
# the first problem must match (naming the record changed).
def edit_arm(conn):
    (arm,) = conn.execute("SELECT arm FROM rj_referrals WHERE referral_id = 'R-005'").fetchone()
    conn.execute("UPDATE rj_referrals SET arm = ? WHERE referral_id = 'R-005'", (_other_arm(arm),))
    return r"referral 'R-005' \(audit log entry 6\).*column\(s\) arm\b"


def edit_strata(conn):
    conn.execute("UPDATE rj_referrals SET strata = ? WHERE referral_id = 'R-002'", (canonical_json(NP),))
    return r"referral 'R-002' \(audit log entry 3\).*strata"


def edit_answers(conn):
    conn.execute(
        "UPDATE rj_referrals SET answers = ? WHERE referral_id = 'R-003'",
        (canonical_json({"admitted": "yes", "risk": "suitable"}),),
    )
    return r"referral 'R-003' \(audit log entry 4\).*answers"


def edit_at(conn):
    conn.execute(
        "UPDATE rj_referrals SET at = ? WHERE referral_id = 'R-006'", (when(4).isoformat(timespec="microseconds"),)
    )
    return r"referral 'R-006' \(audit log entry 8\).*\bat\b"


def edit_status(conn):
    conn.execute("UPDATE rj_referrals SET status = 'randomised' WHERE referral_id = 'R-003'")
    return r"referral 'R-003' \(audit log entry 4\).*status"


def edit_receipt(conn):
    conn.execute("UPDATE rj_referrals SET receipt = 'RJ-0000-0000-0000' WHERE referral_id = 'R-007'")
    return r"referral 'R-007' \(audit log entry 10\).*receipt"


def swap_arms_of_two_referrals(conn):
    a = conn.execute("SELECT arm FROM rj_referrals WHERE referral_id = 'R-001'").fetchone()[0]
    conn.execute("UPDATE rj_referrals SET arm = ? WHERE referral_id = 'R-001'", (_other_arm(a),))
    conn.execute("UPDATE rj_referrals SET arm = ? WHERE referral_id = 'R-007'", (a,))
    return r"referral 'R-001' \(audit log entry 2\)"


def delete_referral(conn):
    conn.execute("DELETE FROM rj_referrals WHERE referral_id = 'R-002'")
    return r"referral 'R-002' \(audit log entry 3\): missing from table rj_referrals"


def insert_referral(conn):
    row = dict(
        zip(
            [d[0] for d in conn.execute("SELECT * FROM rj_referrals").description],
            conn.execute("SELECT * FROM rj_referrals WHERE referral_id = 'R-007'").fetchone(),
        )
    )
    row.update(
        referral_id="R-999",
        referral_key="r-999",
        sequence_number=99,
        slot=row["slot"] + 1,
        audit_seq=99,
        at=when(20).isoformat(),
    )
    conn.execute(
        f"INSERT INTO rj_referrals ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
    )
    return r"referral 'R-999' \(table rj_referrals\): has no enrolment entry"


def edit_audit_payload(conn):
    (payload,) = conn.execute("SELECT payload FROM rj_audit WHERE seq = 6").fetchone()
    record = json.loads(payload)
    record["arm"] = _other_arm(record["arm"])
    conn.execute("UPDATE rj_audit SET payload = ? WHERE seq = 6", (canonical_json(record),))
    return r"^audit log entry 6 \(enrolment\): contents do not match its hash"


def edit_audit_actor(conn):
    conn.execute("UPDATE rj_audit SET actor = 'someone else' WHERE seq = 5")
    return r"^audit log entry 5 \(refusal\): contents do not match its hash"


def delete_audit_middle(conn):
    conn.execute("DELETE FROM rj_audit WHERE seq = 7")
    return r"^audit log entry 8 \(enrolment\): expected entry 7 here"


def delete_audit_last(conn):
    conn.execute("DELETE FROM rj_audit WHERE seq = 12")
    return r"^table rj_head: points at audit entry 12, but the log ends at entry 11"


def delete_audit_first(conn):
    conn.execute("DELETE FROM rj_audit WHERE seq = 1")
    return r"^audit log entry 2 \(enrolment\): expected entry 1 here"


def _append_forged(conn, seq, prev_hash, action="note", payload=None):
    payload_json = canonical_json(payload or {"forged": True})
    at = when(50).isoformat()
    digest = entry_hash(prev_hash, seq, at, "intruder", action, payload_json)
    conn.execute(
        "INSERT INTO rj_audit (seq, at, actor, action, payload, prev_hash, hash, mac, signature) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, '', '')",
        (seq, at, "intruder", action, payload_json, prev_hash, digest),
    )
    return digest


def insert_audit_at_end(conn):
    (last_hash,) = conn.execute("SELECT hash FROM rj_audit WHERE seq = 12").fetchone()
    _append_forged(conn, 13, last_hash)
    return r"^audit log entry 13 \(note\): has no signature \(written without the trial key\)"


def insert_audit_in_middle(conn):
    conn.execute("UPDATE rj_audit SET seq = seq + 100 WHERE seq >= 7")
    conn.execute("UPDATE rj_audit SET seq = seq - 99 WHERE seq >= 100")
    (prev,) = conn.execute("SELECT hash FROM rj_audit WHERE seq = 6").fetchone()
    _append_forged(conn, 7, prev)
    return r"^audit log entry 7 \(note\): has no signature"


def swap_audit_entries(conn):
    cols = "at, actor, action, payload, prev_hash, hash, mac, signature"
    a = conn.execute(f"SELECT {cols} FROM rj_audit WHERE seq = 7").fetchone()
    b = conn.execute(f"SELECT {cols} FROM rj_audit WHERE seq = 9").fetchone()
    setter = ", ".join(f"{c.strip()} = ?" for c in cols.split(","))
    conn.execute(f"UPDATE rj_audit SET {setter} WHERE seq = 7", b)
    conn.execute(f"UPDATE rj_audit SET {setter} WHERE seq = 9", a)
    return r"^audit log entry 7 \(event\): does not link to the entry before it"


def edit_unused_slot_commitment(conn):
    conn.execute(
        "UPDATE rj_slots SET commitment = ? WHERE sequence_key = 'site=south|offence=property' AND slot = 5",
        ("0" * 64,),
    )
    return r"^table rj_trial: the commitment does not match .*rj_slots edited"


def edit_used_slot_commitment(conn):
    conn.execute(
        "UPDATE rj_slots SET commitment = ? WHERE sequence_key = 'site=north|offence=property' AND slot = 0",
        ("f" * 64,),
    )
    return r"^table rj_trial: the commitment does not match .*rj_slots edited"


def delete_slot(conn):
    conn.execute("DELETE FROM rj_slots WHERE sequence_key = 'site=north|offence=violence' AND slot = 19")
    return r"^table rj_trial: the commitment does not match .*rj_slots"


def edit_trial_commitment(conn):
    conn.execute("UPDATE rj_trial SET commitment = ?", ("ab" * 32,))
    return r"^table rj_trial: the commitment does not match"


def edit_trial_protocol(conn):
    (text,) = conn.execute("SELECT protocol FROM rj_trial").fetchone()
    protocol = json.loads(text)
    protocol["eligibility"][1]["eligible_if"] = ["suitable", "not_done"]
    conn.execute("UPDATE rj_trial SET protocol = ?", (json.dumps(protocol, separators=(",", ":")),))
    return r"^table rj_trial: the commitment does not match"


def edit_trial_schedule(conn):
    (text,) = conn.execute("SELECT schedule FROM rj_trial").fetchone()
    record = json.loads(text)
    record["method"] = "simple"
    conn.execute("UPDATE rj_trial SET schedule = ?", (canonical_json(record),))
    return r"^table rj_trial: the commitment does not match"


def edit_trial_sealed(conn):
    (text,) = conn.execute("SELECT sealed FROM rj_trial").fetchone()
    flipped = text[:20] + ("A" if text[20] != "A" else "B") + text[21:]
    conn.execute("UPDATE rj_trial SET sealed = ?", (flipped,))
    return r"^table rj_trial: the commitment does not match"


def insert_second_trial(conn):
    conn.execute(
        "INSERT INTO rj_trial SELECT 'other-trial', schema_version, protocol, schedule, sealed, commitment, "
        "created_at, audit_public_key FROM rj_trial"
    )
    return None  # Registry.open refuses a store with two trial rows (checked below)


def edit_head_audit_seq(conn):
    conn.execute("UPDATE rj_head SET audit_seq = 11")
    return r"^table rj_head: points at audit entry 11"


def edit_head_audit_hash(conn):
    conn.execute("UPDATE rj_head SET audit_hash = ?", ("1" * 64,))
    return r"^table rj_head: points at audit entry 12"


def edit_head_sequence_number(conn):
    conn.execute("UPDATE rj_head SET sequence_number = 3")
    return r"^table rj_head: next sequence number follows 3"


def edit_head_last_randomised_at_future(conn):
    # pushing it into the future stops all enrolment (every new time is "earlier")
    conn.execute("UPDATE rj_head SET last_randomised_at = '2099-01-01T00:00:00.000000+00:00'")
    return r"^table rj_head\b.*(last_randomised_at|last randomis)"


def edit_head_last_randomised_at_past(conn):
    # pulling it back lets the next enrolment be back-dated before R-007's
    conn.execute("UPDATE rj_head SET last_randomised_at = ?", (when(0).isoformat(timespec="microseconds"),))
    return r"^table rj_head\b.*(last_randomised_at|last randomis)"


def edit_head_closed(conn):
    # closing a trial that was never unsealed (stops all enrolment)
    conn.execute("UPDATE rj_head SET closed = 1")
    return r"^table rj_head\b.*closed"


def edit_event(conn):
    conn.execute("UPDATE rj_events SET kind = 'treatment_not_received' WHERE audit_seq = 7")
    return r"^event \(audit log entry 7\): table rj_events row differs in column\(s\) kind"


def edit_event_referral(conn):
    conn.execute("UPDATE rj_events SET referral_id = 'R-006' WHERE audit_seq = 9")
    return r"^event \(audit log entry 9\): table rj_events row differs in column\(s\) referral_id"


def delete_event(conn):
    conn.execute("DELETE FROM rj_events WHERE audit_seq = 9")
    return r"^event \(audit log entry 9\): missing from table rj_events"


def insert_event(conn):
    conn.execute(
        "INSERT INTO rj_events (audit_seq, referral_id, kind, detail, at, by) VALUES (50, 'R-006', 'withdrawal', '{}', ?, 'x')",
        (when(30).isoformat(),),
    )
    return r"^event with audit_seq 50 \(table rj_events\): has no audit log entry"


TAMPERS = [
    edit_arm,
    edit_strata,
    edit_answers,
    edit_at,
    edit_status,
    edit_receipt,
    swap_arms_of_two_referrals,
    delete_referral,
    insert_referral,
    edit_audit_payload,
    edit_audit_actor,
    delete_audit_middle,
    delete_audit_last,
    delete_audit_first,
    insert_audit_at_end,
    insert_audit_in_middle,
    swap_audit_entries,
    edit_unused_slot_commitment,
    edit_used_slot_commitment,
    delete_slot,
    edit_trial_commitment,
    edit_trial_protocol,
    edit_trial_schedule,
    edit_trial_sealed,
    edit_head_audit_seq,
    edit_head_audit_hash,
    edit_head_sequence_number,
    edit_head_last_randomised_at_future,
    edit_head_last_randomised_at_past,
    edit_head_closed,
    edit_event,
    edit_event_referral,
    delete_event,
    insert_event,
]


def _tamper(db: Path, change):
    conn = sqlite3.connect(db)
    try:
        with conn:
            return change(conn)
    finally:
        conn.close()


def test_the_pristine_registry_verifies_with_and_without_the_key(tampered):
    _, check = tampered
    assert check().ok
    assert check(key=True).ok


@pytest.mark.parametrize("change", TAMPERS, ids=[t.__name__ for t in TAMPERS])
@pytest.mark.parametrize("with_key", [False, True], ids=["keyless", "with_key"])
def test_tampering_fails_verify_and_names_the_changed_record(tampered, change, with_key):
    db, check = tampered
    expected = _tamper(db, change)
    if with_key and change is edit_trial_sealed:
        from rjtrial.errors import KeyFileError

        with pytest.raises(KeyFileError, match="altered"):
            check(key=True)
        return
    if isinstance(expected, dict):
        expected = expected["with_key" if with_key else "keyless"]
    result = check(key=with_key)
    assert not result.ok
    assert result.problems, "verify failed without saying why"
    assert re.search(expected, result.problems[0]), result.problems


def test_reopening_enrolment_after_unseal_is_detected(tampered, tmp_path):
    db, check = tampered
    with Registry.open(db, key_path=tmp_path / "trial.key") as reg:
        assert reg.unseal().ok
    assert check().ok
    _tamper(db, lambda conn: conn.execute("UPDATE rj_head SET closed = 0"))
    result = check()
    assert not result.ok
    assert re.match(r"table rj_head: enrolment is marked open, but the log has unseal entry", result.problems[0]), (
        result.problems
    )


def test_a_second_trial_row_is_refused_at_open(tampered):
    from rjtrial.errors import RegistryError

    db, check = tampered
    _tamper(db, insert_second_trial)
    with pytest.raises(RegistryError, match="expected one trial"):
        check()


def _rewrite_chain(conn, *, mac_mode: str):
    """Rewrite the whole log consistently without the key: back-date R-006 and re-hash every entry.

    The referrals' receipts and the head are brought into line too, so that only the
    signatures and the HMACs (which need the key) can tell. ``mac_mode``: "stale"
    leaves the old signatures and HMACs in place, "blank" empties them.
    """
    entries = conn.execute(
        "SELECT seq, at, actor, action, payload, mac, signature FROM rj_audit ORDER BY seq"
    ).fetchall()
    prev = GENESIS
    for seq, at, actor, action, payload, old_mac, old_signature in entries:
        record = json.loads(payload)
        if action == "enrolment" and record["referral_id"] == "R-006":
            record["at"] = when(6).isoformat(timespec="microseconds")
            record["by"] = "intruder"
            payload = canonical_json(record)
            conn.execute(
                "UPDATE rj_referrals SET at = ?, by = ? WHERE referral_id = 'R-006'", (record["at"], record["by"])
            )
        digest = entry_hash(prev, seq, at, actor, action, payload)
        stale = mac_mode == "stale"
        conn.execute(
            "UPDATE rj_audit SET payload = ?, prev_hash = ?, hash = ?, mac = ?, signature = ? WHERE seq = ?",
            (payload, prev, digest, old_mac if stale else "", old_signature if stale else "", seq),
        )
        if action == "enrolment":
            conn.execute("UPDATE rj_referrals SET receipt = ? WHERE audit_seq = ?", (receipt_for(digest), seq))
        prev = digest
    conn.execute("UPDATE rj_head SET audit_hash = ?", (prev,))


@pytest.mark.parametrize(
    "mac_mode, keyless_first, keyed_first",
    [
        (
            "stale",
            r"audit log entry 8 \(enrolment\): its signature does not verify",
            r"audit log entry 8 \(enrolment\): its signature does not verify",
        ),
        ("blank", r"audit log entry 1 \(init\): has no signature", r"audit log entry 1 \(init\): has no signature"),
    ],
    ids=["signatures_left_as_they_were", "signatures_blanked"],
)
def test_a_log_rewritten_without_the_key_fails_verify_even_without_the_key(
    tampered, mac_mode, keyless_first, keyed_first
):
    db, check = tampered
    _tamper(db, lambda conn: _rewrite_chain(conn, mac_mode=mac_mode))
    keyless = check()
    assert not keyless.ok  # the signatures need the key: a rewrite without it is visible to anyone
    assert re.match(keyless_first, keyless.problems[0]), keyless.problems
    keyed = check(key=True)
    assert not keyed.ok
    assert re.match(keyed_first, keyed.problems[0]), keyed.problems
    assert any("not signed with the trial key" in p for p in keyed.problems)  # and the HMACs


@pytest.mark.parametrize(
    "given, ok",
    [("0" * 64, False), ("published", True), ("PUBLISHED-UPPER", True), ("published-spaced", True), ("", False)],
    ids=["wrong", "right", "right_upper_case", "right_with_spaces", "empty"],
)
def test_expected_commitment(tampered, pristine, given, ok):
    _, check = tampered
    with Registry.open(pristine / "trial.db") as reg:
        commitment = reg.commitment
    value = {
        "published": commitment,
        "PUBLISHED-UPPER": commitment.upper(),
        "published-spaced": f"  {commitment}\n",
    }.get(given, given)
    result = check(expected_commitment=value)
    assert result.ok is ok
    if not ok:
        assert re.match(
            r"table rj_trial: stored commitment [0-9a-f]{64} differs from the published", result.problems[0]
        )


@pytest.mark.parametrize("change", [None, delete_audit_middle], ids=["intact", "delete_audit"])
def test_cli_verify_exit_code(tampered, change):
    db, _ = tampered
    if change is not None:
        _tamper(db, change)
    done = subprocess.run([rjtrial_script(), "verify", "--db", str(db)], capture_output=True, text=True, timeout=60)
    assert done.returncode == (0 if change is None else 1), done.stderr
    assert ("INTACT" if change is None else "FAILED") in done.stdout
    assert "Traceback" not in done.stderr


def test_receipts_anchor_the_log_against_tail_truncation(tmp_path):
    """Deleting the last enrolment and rewinding the head escapes the hash chain, not a receipt."""
    import sqlite3

    from rjtrial import Protocol, Registry
    from rjtrial.registry import audit

    protocol = Protocol.from_toml_string(
        '[trial]\nid = "t"\nname = "t"\narms = ["a", "b"]\n[randomisation]\nmethod = "simple"\n'
    )
    db = tmp_path / "t.db"
    reg = Registry.create(db, protocol, key_path=tmp_path / "t.key", seed=1)
    receipts = [reg.enrol(f"R{i}", strata={}, answers={}).receipt for i in range(3)]
    reg.close()
    con = sqlite3.connect(db)
    last = con.execute("SELECT seq, prev_hash FROM rj_audit ORDER BY seq DESC LIMIT 1").fetchone()
    previous_at = con.execute("SELECT at FROM rj_referrals WHERE referral_id = 'R1'").fetchone()[0]
    con.execute("DELETE FROM rj_referrals WHERE referral_id = 'R2'")
    con.execute("DELETE FROM rj_audit WHERE seq = ?", (last[0],))
    con.execute(
        "UPDATE rj_head SET audit_seq = ?, audit_hash = ?, sequence_number = 2, last_randomised_at = ?",
        (last[0] - 1, last[1], previous_at),
    )
    con.commit()
    con.close()
    reopened = Registry.open(db)
    assert reopened.verify().ok  # the chain alone cannot tell
    result = reopened.verify(receipts=receipts)
    assert not result.ok
    assert receipts[2] in result.problems[0]
    assert reopened.verify(receipts=receipts[:2]).ok
    assert audit.receipt_for("ab" * 32) == "RJ-ABAB-ABAB-ABAB"


# ------------------------------------------------------------------ rewrite attacks
# Someone with write access to the database but not the key edits audit entries and the
# tables together and recomputes every hash ("rehash"); or goes further ("forge"):
# re-signs every entry under a signing key of their own and recomputes the trial's
# commitment. Which level of verify catches which attack is stated in SECURITY.md and
# `rjtrial verify --help`; this matrix holds the code to it.
LATE = when(40)  # the time of the last randomisation of the rewrite trial


@pytest.fixture(scope="module")
def rewrite_pristine(tmp_path_factory):
    """Stratified blocks; referrals at north/property (P-*), one at south/violence, a withdrawal.

    Returns the folder and the ids: two referrals of one stratum with different arms
    (``a``, ``b``), the one withdrawn (``withdrawn``) and the last randomised (``last``).
    """
    folder = tmp_path_factory.mktemp("rewrite")
    with new_registry(folder, make_protocol(capacity=20), seed=808) as reg:
        results = [reg.enrol(f"P-{i:03d}", strata=NP, answers=ELIGIBLE, at=when(i)) for i in range(1, 9)]
        reg.enrol("S-001", strata=SV, answers=ELIGIBLE, at=when(20))
        reg.record_event("P-008", "withdrawal", at=when(21))
        reg.enrol("P-009", strata=NP, answers=ELIGIBLE, at=LATE)
        commitment = reg.commitment
        assert reg.verify().ok
    first = results[0]
    other = next(r for r in results[1:7] if r.arm != first.arm)
    ids = {"a": first.referral_id, "b": other.referral_id, "withdrawn": "P-008", "last": "P-009"}
    return folder, ids, commitment


def _rewrite(db: Path, edit, *, forge: bool) -> None:
    """Apply ``edit(conn, entries) -> entries`` and rebuild the chain consistently.

    Entries are dicts (payload parsed); ``edit`` also changes the tables to match. The
    chain is renumbered and re-hashed, receipts, audit_seq references and the head
    follow. Signatures and HMACs are left as they were (stale where an entry changed),
    unless ``forge``: then every entry is signed under a new key whose public half
    replaces the trial's, and the trial commitment (and the init entry) are recomputed.
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from rjtrial.registry import seal
    from rjtrial.registry.verify import _slot_order

    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        with conn:
            entries = [dict(r) for r in conn.execute("SELECT * FROM rj_audit ORDER BY seq")]
            for e in entries:
                e["payload"] = json.loads(e["payload"])
            entries = edit(conn, entries)
            renumber = {e["seq"]: i for i, e in enumerate(entries, 1)}
            for table in ("rj_referrals", "rj_events"):
                conn.execute(f"UPDATE {table} SET audit_seq = -audit_seq")
                for old, new in renumber.items():
                    conn.execute(f"UPDATE {table} SET audit_seq = ? WHERE audit_seq = ?", (new, -old))
            signer = Ed25519PrivateKey.generate() if forge else None
            if forge:
                public = signer.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
                trial = conn.execute("SELECT * FROM rj_trial").fetchone()
                slots = [tuple(r) for r in conn.execute("SELECT sequence_key, slot, commitment FROM rj_slots")]
                protocol = make_protocol(capacity=20)
                commitment = seal.trial_commitment(
                    trial["protocol"],
                    trial["schedule"],
                    trial["sealed"],
                    seal.slots_digest(_slot_order(protocol, slots)),
                    public,
                )
                conn.execute("UPDATE rj_trial SET audit_public_key = ?, commitment = ?", (public, commitment))
                entries[0]["payload"].update(commitment=commitment, audit_public_key=public)
            conn.execute("DELETE FROM rj_audit")
            prev, last_at = GENESIS, ""
            for seq, e in enumerate(entries, 1):
                payload = canonical_json(e["payload"])
                digest = entry_hash(prev, seq, e["at"], e["actor"], e["action"], payload)
                signature = signer.sign(b"rjtrial-audit-entry-v1|" + digest.encode()).hex() if forge else e["signature"]
                conn.execute(
                    "INSERT INTO rj_audit (seq, at, actor, action, payload, prev_hash, hash, mac, signature) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (seq, e["at"], e["actor"], e["action"], payload, prev, digest, e["mac"], signature),
                )
                if e["action"] == "enrolment":
                    conn.execute("UPDATE rj_referrals SET receipt = ? WHERE audit_seq = ?", (receipt_for(digest), seq))
                    if e["payload"]["status"] == "randomised":
                        last_at = e["payload"]["at"]
                prev = digest
            conn.execute(
                "UPDATE rj_head SET audit_seq = ?, audit_hash = ?, last_randomised_at = ?",
                (len(entries), prev, last_at),
            )
    finally:
        conn.close()


def _enrolment(entries, rid):
    return next(e for e in entries if e["action"] == "enrolment" and e["payload"]["referral_id"] == rid)


def swap_arms_within_a_stratum(ids):
    """Two referrals of one stratum exchange their allocations (each takes the other's slot record)."""

    def edit(conn, entries):
        a, b = _enrolment(entries, ids["a"])["payload"], _enrolment(entries, ids["b"])["payload"]
        for column in ("referral_id", "by"):
            a[column], b[column] = b[column], a[column]
        conn.execute(
            "UPDATE rj_referrals SET referral_id = 'tmp', referral_key = 'tmp' WHERE referral_id = ?", (ids["a"],)
        )
        conn.execute(
            "UPDATE rj_referrals SET referral_id = ?, referral_key = ? WHERE referral_id = ?",
            (ids["a"], ids["a"].lower(), ids["b"]),
        )
        conn.execute(
            "UPDATE rj_referrals SET referral_id = ?, referral_key = ? WHERE referral_id = 'tmp'",
            (ids["b"], ids["b"].lower()),
        )
        return entries

    return edit


def change_strata(ids):
    """One referral's strata rewritten (north -> south), its slot left as it was."""

    def edit(conn, entries):
        record = _enrolment(entries, ids["a"])["payload"]
        record["strata"] = {**record["strata"], "site": "south"}
        conn.execute(
            "UPDATE rj_referrals SET strata = ? WHERE referral_id = ?", (canonical_json(record["strata"]), ids["a"])
        )
        return entries

    return edit


def _backdate(ids, to):
    def edit(conn, entries):
        record = _enrolment(entries, ids["last"])["payload"]
        record["at"] = to.isoformat(timespec="microseconds")
        conn.execute("UPDATE rj_referrals SET at = ? WHERE referral_id = ?", (record["at"], ids["last"]))
        return entries

    return edit


def backdate_within_order(ids):
    """The last randomisation moved a week earlier, still after the one before it."""
    return _backdate(ids, LATE - (LATE - when(21)) / 2)


def backdate_before_the_previous(ids):
    """The last randomisation moved before the randomisation logged before it."""
    return _backdate(ids, when(3))


def date_in_2099(ids):
    """The last randomisation dated 2099 (which would otherwise block every later enrolment)."""
    from datetime import datetime, timezone

    return _backdate(ids, datetime(2099, 1, 1, tzinfo=timezone.utc))


def delete_a_withdrawal(ids):
    """The withdrawal event and its audit entry removed, later entries renumbered."""

    def edit(conn, entries):
        event = next(e for e in entries if e["action"] == "event" and e["payload"]["kind"] == "withdrawal")
        conn.execute("DELETE FROM rj_events WHERE audit_seq = ?", (event["seq"],))
        return [e for e in entries if e is not event]

    return edit


# attack -> does keyless verify catch its forged (re-signed) form? (every level catches the rehashed form)
FORGED_CAUGHT_KEYLESS = {
    swap_arms_within_a_stratum: False,
    change_strata: True,  # its strata belong to another sequence than its slot
    backdate_within_order: False,
    backdate_before_the_previous: True,  # out of time order
    date_in_2099: True,  # dated after it was logged, in the future
    delete_a_withdrawal: False,
}
LEVELS = ("keyless", "commitment", "keyed")


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("strength", ["rehash", "forge"])
@pytest.mark.parametrize("attack", list(FORGED_CAUGHT_KEYLESS), ids=[a.__name__ for a in FORGED_CAUGHT_KEYLESS])
def test_which_level_of_verify_catches_each_rewrite(rewrite_pristine, tmp_path, attack, strength, level):
    folder, ids, published = rewrite_pristine
    db = copy_db(folder / "trial.db", tmp_path / "trial.db")
    shutil.copy2(folder / "trial.key", tmp_path / "trial.key")
    _rewrite(db, attack(ids), forge=strength == "forge")
    with Registry.open(db, key_path=tmp_path / "trial.key" if level == "keyed" else None) as reg:
        result = reg.verify(expected_commitment=published if level == "commitment" else None)
    caught = strength == "rehash" or level != "keyless" or FORGED_CAUGHT_KEYLESS[attack]
    assert result.ok is not caught, result.problems
    if strength == "rehash" and level == "keyless":
        assert any("signature does not verify" in p for p in result.problems), result.problems


def test_the_rewrite_helper_leaves_an_untouched_store_intact(rewrite_pristine, tmp_path):
    """Control for the matrix: rebuilding the chain without any edit (and re-signing it)
    changes nothing keyless verify can see, so each attack is caught for its edit alone."""
    folder, _, published = rewrite_pristine
    db = copy_db(folder / "trial.db", tmp_path / "trial.db")
    _rewrite(db, lambda conn, entries: entries, forge=False)
    with Registry.open(db) as reg:
        assert reg.verify(expected_commitment=published).ok
    _rewrite(db, lambda conn, entries: entries, forge=True)
    with Registry.open(db) as reg:
        assert reg.verify().ok  # a forgery that breaks no rule of the protocol...
        assert not reg.verify(expected_commitment=published).ok  # ...fails against the published commitment


@pytest.mark.parametrize(
    "attack, problem",
    [
        (
            change_strata,
            r"drew slot \d+ of sequence 'site=north\|offence=property', but its strata belong to sequence "
            r"'site=south\|offence=property'",
        ),
        (backdate_before_the_previous, r"randomised at .*, before the randomisation logged before it"),
        (date_in_2099, r"dated 2099-01-01T00:00:00\.000000\+00:00, after it was logged .*future-dated"),
    ],
    ids=["change_strata", "backdate_before_the_previous", "date_in_2099"],
)
def test_a_forged_record_that_breaks_the_protocol_is_named(rewrite_pristine, tmp_path, attack, problem):
    folder, ids, _ = rewrite_pristine
    db = copy_db(folder / "trial.db", tmp_path / "trial.db")
    _rewrite(db, attack(ids), forge=True)
    with Registry.open(db) as reg:
        problems = reg.verify().problems
    assert any(re.search(problem, p) for p in problems), problems


def _forge_record(change):
    """A forgery (re-signed) that changes one enrolment record of the rewrite trial with ``change(record)``."""

    def edit(conn, entries):
        entry = _enrolment(entries, "P-002")
        change(entry["payload"])
        from rjtrial.registry.core import referral_row

        row = referral_row(entry["payload"])
        taken = conn.execute(
            "SELECT 1 FROM rj_referrals WHERE referral_key = ? AND referral_id != 'P-002'", (row["referral_key"],)
        ).fetchone()
        if taken:  # the table's unique constraint holds: the forger stores another key there
            row["referral_key"] += "#"
        conn.execute(
            f"UPDATE rj_referrals SET {', '.join(f'{c} = ?' for c in row)} WHERE referral_id = 'P-002'", [*row.values()]
        )
        return entries

    return edit


@pytest.mark.parametrize(
    "change, problem",
    [
        (
            lambda r: r.update(strata={"site": "east", "offence": "property"}),
            r"strata not in the protocol: unknown level 'east'",
        ),
        (lambda r: r.update(strata={"site": "north"}), r"strata not in the protocol: missing stratum 'offence'"),
        (
            lambda r: r.update(answers={"admitted": "no", "risk": "suitable"}),
            r"randomised, but its answers make it ineligible \(admitted=no\)",
        ),
        (lambda r: r.update(answers={"admitted": "yes"}), r"answers not in the protocol: missing answer to 'risk'"),
        (lambda r: r.update(referral_id="P-002\n"), r"not a canonical referral id"),
        (lambda r: r.update(referral_id="p-001"), r"the same referral as 'P-001' once normalised"),
    ],
    ids=[
        "unknown_stratum_level",
        "missing_stratum",
        "ineligible_but_randomised",
        "missing_answer",
        "id_with_newline",
        "duplicate_once_normalised",
    ],
)
def test_keyless_verify_checks_every_record_against_the_protocol(rewrite_pristine, tmp_path, change, problem):
    folder, _, _ = rewrite_pristine
    db = copy_db(folder / "trial.db", tmp_path / "trial.db")
    _rewrite(db, _forge_record(change), forge=True)
    with Registry.open(db) as reg:
        problems = reg.verify().problems
    assert any(re.search(problem, p) for p in problems), problems


def test_a_referral_row_inserted_with_a_trailing_newline_is_reported(tampered):
    db, check = tampered

    def insert(conn):
        row = dict(
            zip(
                [d[0] for d in conn.execute("SELECT * FROM rj_referrals").description],
                conn.execute("SELECT * FROM rj_referrals WHERE referral_id = 'R-005'").fetchone(),
            )
        )
        row.update(referral_id="R-005\n", referral_key="r-005\n", sequence_number=None, slot=None, audit_seq=77)
        conn.execute(
            f"INSERT INTO rj_referrals ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
        )

    _tamper(db, insert)
    problems = check().problems
    assert "referral 'R-005\\n' (table rj_referrals): not a canonical referral id" in problems, problems
    assert any(p.startswith("referral 'R-005\\n' (table rj_referrals): has no enrolment entry") for p in problems)


@pytest.mark.parametrize("payload", ["[1, 2]", '"text"', "42", "null"], ids=["list", "string", "number", "null"])
def test_an_audit_payload_that_is_json_but_not_an_object_fails_verify_with_exit_1(tampered, payload):
    db, check = tampered
    _tamper(db, lambda conn: conn.execute("UPDATE rj_audit SET payload = ? WHERE seq = 7", (payload,)))
    problems = check().problems
    assert any(re.match(r"audit log entry 7 \(event\): payload is not a JSON object", p) for p in problems), problems
    done = subprocess.run([rjtrial_script(), "verify", "--db", str(db)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "options, level",
    [
        ([], "keyless"),
        (["--commitment", "PUBLISHED"], "keyless + published commitment"),
        (["--receipt", "RECEIPT"], "keyless + 1 receipt"),
        (["--key", "KEY"], "keyed"),
    ],
    ids=["keyless", "commitment", "receipt", "keyed"],
)
def test_cli_verify_says_which_level_of_check_ran(tampered, pristine, options, level):
    db, _ = tampered
    with Registry.open(db) as reg:
        commitment = reg.commitment
    receipt = rows(db, "SELECT receipt FROM rj_referrals WHERE referral_id = 'R-001'")[0]["receipt"]
    values = {"PUBLISHED": commitment, "RECEIPT": receipt, "KEY": str(db.with_name("trial.key"))}
    argv = [values.get(o, o) for o in options]
    done = subprocess.run(
        [rjtrial_script(), "verify", "--db", str(db), *argv], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"checks run: {level};" in done.stdout
    data = json.loads(
        subprocess.run(
            [rjtrial_script(), "verify", "--db", str(db), *argv, "--json"], capture_output=True, text=True, timeout=60
        ).stdout
    )
    assert data["level"] == level


def test_cli_verify_help_states_what_each_level_detects():
    done = subprocess.run([rjtrial_script(), "verify", "--help"], capture_output=True, text=True, timeout=60)
    text = " ".join(done.stdout.split())
    for phrase in (
        "keyless",
        "--commitment",
        "--receipt",
        "--key",
        "truncation",
        "signature",
        "forged under a new signing key",
        "reopened",
    ):
        assert phrase in text, phrase
