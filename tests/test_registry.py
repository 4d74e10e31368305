"""The registry's contract (rjtrial/registry/core.py, store.py, seal.py, reports.py).

Create, open, enrol (randomised / ineligible / refused), record events, export,
CONSORT counts, unseal, reproducibility from a seed, and every randomisation method
end to end. Tamper detection is in test_registry_verify.py, concealment in
test_registry_concealment.py, concurrent writers in test_registry_concurrency.py.
"""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from registry_fixtures import (
    ALL_STRATA,
    ELIGIBLE,
    METHODS,
    dump_tables,
    enrol_all,
    make_protocol,
    new_registry,
    protocol_dict,
    referral_stream,
    rows,
    when,
)

from rjtrial import Protocol
from rjtrial.errors import KeyFileError, RegistryError
from rjtrial.registry import Registry
from rjtrial.registry import audit as audit_module

NORTH_PROPERTY = {"site": "north", "offence": "property"}
SOUTH_PROPERTY = {"site": "south", "offence": "property"}
RECEIPT = re.compile(r"^RJ-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}$")
EXAMPLE_PROTOCOLS = sorted((Path(__file__).resolve().parents[1] / "synthetic" / "protocols").glob("*.toml"))


@pytest.fixture
def reg(tmp_path):
    registry = new_registry(tmp_path)
    yield registry
    registry.close()


def _db(registry: Registry) -> Path:
    return Path(registry.db)


# ------------------------------------------------------------------- create / open
def test_create_gives_a_64_hex_commitment_logged_in_the_init_entry(reg):
    assert re.fullmatch(r"[0-9a-f]{64}", reg.commitment)
    (init,) = rows(_db(reg), "SELECT * FROM rj_audit")
    assert init["action"] == "init"
    assert json.loads(init["payload"])["commitment"] == reg.commitment
    assert reg.has_key
    assert reg.verify().ok


def test_create_seals_one_slot_commitment_per_slot_of_every_sequence(tmp_path):
    protocol = make_protocol(capacity=12)
    with new_registry(tmp_path, protocol) as registry:
        slots = rows(_db(registry), "SELECT sequence_key, slot, commitment FROM rj_slots")
    assert len(slots) == len(protocol.sequence_keys()) * 12
    assert {r["sequence_key"] for r in slots} == set(protocol.sequence_keys())
    assert len({r["commitment"] for r in slots}) == len(slots)


def test_open_without_key_reads_but_cannot_enrol_record_or_unseal(reg):
    reg.enrol("R-0001", strata=NORTH_PROPERTY, answers=ELIGIBLE, at=when(0))
    with Registry.open(reg.db) as keyless:
        assert not keyless.has_key
        assert keyless.commitment == reg.commitment
        result = keyless.verify()
        assert result.ok and not result.key_checked
        assert keyless.consort().randomised == 1
        assert len(keyless.export(by="auditor")) == 1
        with pytest.raises(KeyFileError, match="key"):
            keyless.enrol("R-0002", strata=NORTH_PROPERTY, answers=ELIGIBLE)
        with pytest.raises(KeyFileError, match="key"):
            keyless.record_event("R-0001", "note")
        with pytest.raises(KeyFileError, match="key"):
            keyless.unseal()
    # an export logged without the key is an allowed unsigned entry
    keyed = reg.verify()
    assert keyed.ok and keyed.key_checked, keyed.problems


def test_open_with_key_enrols(reg, tmp_path):
    with Registry.open(reg.db, key_path=tmp_path / "trial.key") as again:
        assert again.has_key and again.commitment == reg.commitment
        assert again.enrol("R-0001", strata=NORTH_PROPERTY, answers=ELIGIBLE).status == "randomised"


@pytest.mark.parametrize("what", ["missing_file", "not_a_registry"])
def test_open_refuses_what_is_not_a_registry(tmp_path, what):
    db = tmp_path / "other.db"
    if what == "not_a_registry":
        import sqlite3

        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE t (x)")
        conn.close()
    with pytest.raises(RegistryError):
        Registry.open(db)


def _write_key(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize("which", ["another_trials_key", "missing", "group_readable", "not_a_key_file", "wrong_length"])
def test_open_with_a_bad_key_file_raises_key_file_error(reg, tmp_path, which):
    other = tmp_path / "other"
    other.mkdir()
    if which == "another_trials_key":
        new_registry(other).close()
        key = other / "trial.key"
    elif which == "missing":
        key = other / "nothing.key"
    elif which == "group_readable":
        key = other / "trial.key"
        key.write_bytes((tmp_path / "trial.key").read_bytes())
        os.chmod(key, 0o640)
    elif which == "not_a_key_file":
        key = _write_key(other / "k", "hello\n")
    else:
        key = _write_key(other / "k", "rjtrial-key-v1:" + "QUJD" + "\n")
    with pytest.raises(KeyFileError):
        Registry.open(reg.db, key_path=key)


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_key_file_is_owner_only(tmp_path, umask):
    old = os.umask(umask)
    try:
        new_registry(tmp_path).close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "trial.key").stat().st_mode) == 0o600


def test_create_refuses_to_overwrite_an_existing_key_file(tmp_path):
    key = tmp_path / "trial.key"
    key.write_text("precious\n")
    with pytest.raises(KeyFileError, match="already exists"):
        new_registry(tmp_path)
    assert key.read_text() == "precious\n"
    assert not (tmp_path / "trial.db").exists()


def test_create_on_a_database_holding_a_trial_is_refused_and_leaves_it_untouched(reg, tmp_path):
    reg.enrol("R-0001", strata=NORTH_PROPERTY, answers=ELIGIBLE, at=when(0))
    before = dump_tables(_db(reg))
    with pytest.raises(RegistryError, match="already holds a trial"):
        Registry.create(reg.db, make_protocol("simple"), key_path=tmp_path / "second.key", seed=1)
    assert not (tmp_path / "second.key").exists()
    assert dump_tables(_db(reg)) == before
    with Registry.open(reg.db, key_path=tmp_path / "trial.key") as again:
        assert again.verify().ok


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_create_with_the_key_in_a_missing_folder_leaves_nothing_behind(tmp_path):
    with pytest.raises(KeyFileError):
        Registry.create(tmp_path / "t.db", make_protocol(), key_path=tmp_path / "no" / "such" / "t.key", seed=1)
    assert _leftovers(tmp_path) == []


def test_create_with_the_database_in_a_missing_folder_leaves_nothing_behind(tmp_path):
    with pytest.raises(RegistryError, match="does not exist"):
        Registry.create(tmp_path / "no" / "t.db", make_protocol(), key_path=tmp_path / "t.key", seed=1)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("failing", ["make_schedule", "audit.append"])
def test_create_failing_after_the_key_was_written_removes_key_and_database(tmp_path, monkeypatch, failing):
    from rjtrial.registry import core

    def boom(*args, **kwargs):
        raise RuntimeError("simulated failure")

    if failing == "make_schedule":
        monkeypatch.setattr(core, "make_schedule", boom)
    else:
        monkeypatch.setattr(core.audit, "append", boom)
    with pytest.raises(RuntimeError, match="simulated failure"):
        Registry.create(tmp_path / "t.db", make_protocol(), key_path=tmp_path / "t.key", seed=1)
    assert _leftovers(tmp_path) == []


def test_failed_create_in_an_existing_empty_database_leaves_it_reusable(tmp_path, monkeypatch):
    """A create that fails must not leave empty registry tables that block the next create."""
    import sqlite3

    from rjtrial.registry import core

    db = tmp_path / "t.db"
    sqlite3.connect(db).close()  # an existing, empty SQLite file (or an empty PostgreSQL database)

    def boom(*args, **kwargs):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(core.audit, "append", boom)
    with pytest.raises(RuntimeError):
        Registry.create(db, make_protocol(), key_path=tmp_path / "t.key", seed=1)
    monkeypatch.undo()
    assert not (tmp_path / "t.key").exists()
    with Registry.create(db, make_protocol(), key_path=tmp_path / "t.key", seed=1) as registry:
        assert registry.verify().ok


def test_a_create_losing_a_race_for_the_same_new_file_never_deletes_the_winners_registry(tmp_path, monkeypatch):
    """Two `rjtrial init` on one new path at once: the loser must fail without removing the winner's trial.

    Simulated in one process: while the first create is generating its schedule (after
    it has found that the file does not exist), a second create completes on the path.
    """
    from rjtrial.registry import core

    db = tmp_path / "t.db"
    real_make_schedule = core.make_schedule
    winner = {}

    def make_schedule_while_another_create_runs(*args, **kwargs):
        if not winner:
            monkeypatch.setattr(core, "make_schedule", real_make_schedule)
            winner["registry"] = Registry.create(db, make_protocol(), key_path=tmp_path / "winner.key", seed=2)
            winner["commitment"] = winner["registry"].commitment
            winner["registry"].close()
        return real_make_schedule(*args, **kwargs)

    monkeypatch.setattr(core, "make_schedule", make_schedule_while_another_create_runs)
    with pytest.raises(Exception) as raised:
        Registry.create(db, make_protocol(), key_path=tmp_path / "loser.key", seed=1)
    assert db.exists(), "the losing create deleted the winner's database"
    with Registry.open(db, key_path=tmp_path / "winner.key") as survivor:
        assert survivor.commitment == winner["commitment"]
        assert survivor.verify().ok
    assert not (tmp_path / "loser.key").exists()
    assert isinstance(raised.value, RegistryError), repr(raised.value)  # a clean error, not a raw IntegrityError


# ------------------------------------------------------------------------ enrolment
def test_randomised_enrolment_returns_arm_sequence_number_and_receipt(reg):
    result = reg.enrol("R-0001", strata=NORTH_PROPERTY, answers=ELIGIBLE, at=when(0), by="coordinator")
    assert result.status == "randomised"
    assert result.arm in reg.protocol.arms
    assert result.sequence_number == 1
    assert RECEIPT.match(result.receipt)
    assert result.reasons == ()
    assert result.randomised_on == when(0).isoformat(timespec="microseconds")
    (row,) = rows(_db(reg), "SELECT * FROM rj_referrals")
    entry = rows(_db(reg), "SELECT * FROM rj_audit WHERE seq = ?", (row["audit_seq"],))[0]
    assert (row["arm"], row["sequence_number"], row["receipt"], row["by"]) == (
        result.arm,
        1,
        result.receipt,
        "coordinator",
    )
    assert result.receipt == audit_module.receipt_for(entry["hash"])
    assert entry["action"] == "enrolment"
    assert result.to_dict()["status"] == "randomised"


@pytest.mark.parametrize(
    "answers, reasons",
    [
        ({"admitted": "no", "risk": "suitable"}, ("admitted=no",)),
        ({"admitted": "yes", "risk": "not_done"}, ("risk=not_done",)),
        ({"admitted": "no", "risk": "unsuitable"}, ("admitted=no", "risk=unsuitable")),
    ],
    ids=["one_reason", "other_question", "two_reasons"],
)
def test_ineligible_referral_is_recorded_with_its_reasons_and_no_allocation(reg, answers, reasons):
    result = reg.enrol("R-0001", strata=NORTH_PROPERTY, answers=answers, at=when(0))
    assert result.status == "ineligible"
    assert result.reasons == reasons
    assert result.arm is None and result.sequence_number is None and result.randomised_on is None
    assert RECEIPT.match(result.receipt)
    (row,) = rows(_db(reg), "SELECT * FROM rj_referrals")
    assert row["status"] == "ineligible"
    assert json.loads(row["reasons"]) == list(reasons)
    assert (row["arm"], row["sequence_number"], row["slot"], row["value"], row["reveal"]) == (None,) * 5
    assert rows(_db(reg), "SELECT sequence_number FROM rj_head")[0][0] == 0
    assert reg.verify().ok


def test_ineligible_referral_consumes_no_slot(tmp_path):
    """With screen-outs interleaved, the eligible referrals get exactly the allocations of a twin without them."""
    eligible = referral_stream(16, seed=3)
    mixed = []
    for i, (rid, strata, answers, at) in enumerate(eligible):
        mixed.append((f"X-{i:04d}", strata, {"admitted": "no", "risk": "suitable"}, at))
        mixed.append((rid, strata, answers, at))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with new_registry(tmp_path / "a", seed=99) as a, new_registry(tmp_path / "b", seed=99) as b:
        mixed_results = {r.referral_id: r for r in enrol_all(a, mixed)}
        plain_results = enrol_all(b, eligible)
        assert [mixed_results[r.referral_id].arm for r in plain_results] == [r.arm for r in plain_results]
        assert [mixed_results[r.referral_id].sequence_number for r in plain_results] == list(range(1, 17))
        slots = {r["referral_id"]: r["slot"] for r in rows(_db(a), "SELECT referral_id, slot FROM rj_referrals")}
        # the first eligible referral of each stratum takes slot 0, right after a screen-out in that stratum
        first_by_stratum = {}
        for rid, strata, _, _ in eligible:
            first_by_stratum.setdefault(a.protocol.sequence_key(strata), rid)
        assert all(slots[rid] == 0 for rid in first_by_stratum.values())
        assert a.verify().ok


def _refusal_cases():
    dup = lambda r: r.enrol("R-0001", strata=NORTH_PROPERTY, answers=ELIGIBLE, at=when(0))  # noqa: E731

    def dup_ineligible(r):
        return r.enrol("R-0001", strata=NORTH_PROPERTY, answers={"admitted": "no", "risk": "suitable"}, at=when(0))

    later = lambda r: r.enrol("R-0001", strata=SOUTH_PROPERTY, answers=ELIGIBLE, at=when(10))  # noqa: E731

    def exhaust(r):
        for i in range(4):  # the protocol here has capacity 4
            assert r.enrol(f"F-{i}", strata=NORTH_PROPERTY, answers=ELIGIBLE, at=when(i)).status == "randomised"

    def unseal(r):
        r.enrol("R-0001", strata=NORTH_PROPERTY, answers=ELIGIBLE, at=when(0))
        r.unseal(by="statistician")

    ok = dict(referral_id="R-0009", strata=NORTH_PROPERTY, answers=ELIGIBLE, at=when(20), setup=None)
    cases = {
        "unknown_strata_level": dict(strata={"site": "east", "offence": "property"}, match="unknown level 'east'"),
        "unknown_stratum": dict(strata={**NORTH_PROPERTY, "age": "young"}, match="unknown stratum 'age'"),
        "missing_stratum": dict(strata={"site": "north"}, match="missing stratum 'offence'"),
        "missing_answer": dict(answers={"admitted": "yes"}, match="missing answer to 'risk'"),
        "answer_not_allowed": dict(
            answers={"admitted": "maybe", "risk": "suitable"}, match="answer 'maybe' to 'admitted'"
        ),
        "unknown_question": dict(answers={**ELIGIBLE, "age": "30"}, match="unknown question 'age'"),
        "answer_not_text": dict(answers={"admitted": True, "risk": "suitable"}, match="must be text"),
        "stratum_not_text": dict(strata={"site": "north", "offence": 3}, match="must be text"),
        "duplicate_referral": dict(referral_id="R-0001", setup=dup, match="already enrolled"),
        "duplicate_of_ineligible": dict(referral_id="R-0001", setup=dup_ineligible, match="already enrolled"),
        "id_empty": dict(referral_id="", match="referral id"),
        "id_with_space": dict(referral_id="R 1", match="referral id"),
        "id_leading_dash": dict(referral_id="-R1", match="referral id"),
        "id_too_long": dict(referral_id="R" * 101, match="referral id"),
        "id_not_text": dict(referral_id=101, match="referral id"),
        "at_before_last_randomisation": dict(setup=later, at=when(5), match="earlier than the last randomisation"),
        "screened_out_before_last_randomisation": dict(  # the same rule for a referral screened out (issue 16)
            setup=later,
            at=when(5),
            answers={"admitted": "no", "risk": "suitable"},
            match="earlier than the last randomisation",
        ),
        "capacity_exhausted": dict(setup=exhaust, match="exhausted"),
        "closed_after_unseal": dict(setup=unseal, match="closed"),
    }
    return {name: {**ok, **case} for name, case in cases.items()}


REFUSALS = _refusal_cases()


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_refusal_changes_nothing_but_one_audit_entry(tmp_path, case):
    spec = REFUSALS[case]
    with new_registry(tmp_path, make_protocol(capacity=4)) as registry:
        if spec["setup"] is not None:
            spec["setup"](registry)
        before = dump_tables(_db(registry))
        result = registry.enrol(
            spec["referral_id"], strata=spec["strata"], answers=spec["answers"], at=spec["at"], by="clerk"
        )
        after = dump_tables(_db(registry))

        assert result.status == "refused"
        assert (result.arm, result.sequence_number, result.receipt) == (None, None, None)
        assert any(spec["match"] in reason for reason in result.reasons), result.reasons
        for table in ("rj_trial", "rj_slots", "rj_referrals", "rj_events"):
            assert after[table] == before[table], table
        new_entries = [r for r in after["rj_audit"] if r not in before["rj_audit"]]
        assert len(after["rj_audit"]) == len(before["rj_audit"]) + 1 and len(new_entries) == 1
        seq, _, actor, action, payload, _, digest, _, _ = new_entries[0]
        assert (action, actor) == ("refusal", "clerk")
        assert json.loads(payload) == {"referral_id": str(spec["referral_id"])[:100], "reasons": list(result.reasons)}
        (head_before,), (head_after,) = before["rj_head"], after["rj_head"]
        assert head_after == (1, seq, digest, *head_before[3:])
        assert seq == head_before[1] + 1
        assert registry.verify().ok, registry.verify().problems


def test_exhausting_one_stratum_leaves_the_others_open(tmp_path):
    with new_registry(tmp_path, make_protocol(capacity=4)) as registry:
        results = enrol_all(registry, [(f"R-{i}", NORTH_PROPERTY, ELIGIBLE, when(i)) for i in range(5)])
        assert [r.status for r in results] == ["randomised"] * 4 + ["refused"]
        assert registry.enrol("S-1", strata=SOUTH_PROPERTY, answers=ELIGIBLE, at=when(6)).status == "randomised"
        # a balanced 1:1 block design fills each stratum's 4 slots two and two
        assert sorted(r.arm for r in results[:4]) == ["conference", "conference", "control", "control"]


def test_enrolment_dated_in_the_future_is_refused(reg):
    """A mistyped year (2062 for 2026) must not be accepted: it would refuse every later enrolment until then."""
    typo = reg.enrol("R-1", strata=NORTH_PROPERTY, answers=ELIGIBLE, at="2062-01-05T10:00:00Z")
    assert typo.status == "refused"
    assert any("future" in reason for reason in typo.reasons), typo.reasons
    assert reg.enrol("R-2", strata=NORTH_PROPERTY, answers=ELIGIBLE).status == "randomised"


def test_enrol_with_an_unreadable_time_raises_and_writes_nothing(reg):
    before = dump_tables(_db(reg))
    with pytest.raises(ValueError, match="ISO-8601"):
        reg.enrol("R-0001", strata=NORTH_PROPERTY, answers=ELIGIBLE, at="yesterday")
    assert dump_tables(_db(reg)) == before


def test_times_are_compared_in_utc_whatever_the_offset_given(reg):
    first = reg.enrol("R-1", strata=NORTH_PROPERTY, answers=ELIGIBLE, at="2025-03-03T10:00:00+01:00")
    assert first.randomised_on == "2025-03-03T09:00:00.000000+00:00"
    assert reg.enrol("R-2", strata=NORTH_PROPERTY, answers=ELIGIBLE, at="2025-03-03T09:30:00Z").status == "randomised"
    naive = datetime(2025, 3, 3, 9, 45)  # naive: taken as UTC
    assert reg.enrol("R-3", strata=NORTH_PROPERTY, answers=ELIGIBLE, at=naive).status == "randomised"
    late = reg.enrol("R-4", strata=NORTH_PROPERTY, answers=ELIGIBLE, at="2025-03-03T10:15:00+02:00")  # 08:15Z
    assert late.status == "refused"
    same = reg.enrol(
        "R-5", strata=NORTH_PROPERTY, answers=ELIGIBLE, at=datetime(2025, 3, 3, 9, 45, tzinfo=timezone.utc)
    )
    assert same.status == "randomised"  # equal to the last randomisation is not earlier


# -------------------------------------------------------------------------- events
@pytest.mark.parametrize("kind", ["treatment_received", "treatment_not_received", "withdrawal", "crossover", "note"])
def test_record_event_never_changes_the_allocation(reg, kind):
    enrol_all(reg, referral_stream(6, seed=1))
    before = dump_tables(_db(reg))
    exported_before = reg.export()[["id", "arm", "sequence_number"]]
    seq = reg.record_event("R-0003", kind, by="facilitator", detail={"note": "x", "n": 2}, at=when(30))
    after = dump_tables(_db(reg))
    assert after["rj_referrals"] == before["rj_referrals"]
    assert after["rj_slots"] == before["rj_slots"] and after["rj_trial"] == before["rj_trial"]
    (event,) = rows(_db(reg), "SELECT * FROM rj_events")
    assert (event["audit_seq"], event["referral_id"], event["kind"], event["by"]) == (
        seq,
        "R-0003",
        kind,
        "facilitator",
    )
    assert json.loads(event["detail"]) == {"note": "x", "n": 2}
    pd.testing.assert_frame_equal(reg.export()[["id", "arm", "sequence_number"]], exported_before)
    assert reg.verify().ok


@pytest.mark.parametrize(
    "events, treatment_received, withdrawn",
    [
        ([], pd.NA, False),
        (["treatment_received"], True, False),
        (["treatment_not_received"], False, False),
        (["treatment_received", "treatment_not_received"], False, False),  # the latest wins
        (["treatment_not_received", "treatment_received"], True, False),
        (["withdrawal"], pd.NA, True),
        (["treatment_received", "withdrawal", "crossover", "note"], True, True),
    ],
    ids=["none", "received", "not_received", "received_then_not", "not_then_received", "withdrawal", "mixed"],
)
def test_events_appear_in_export_and_consort(reg, events, treatment_received, withdrawn):
    (result,) = enrol_all(reg, referral_stream(1, seed=2))
    for i, kind in enumerate(events):
        reg.record_event(result.referral_id, kind, at=when(40 + i))
    row = reg.export().iloc[0]
    if treatment_received is pd.NA:
        assert row["treatment_received"] is pd.NA
    else:
        assert row["treatment_received"] == treatment_received
    assert bool(row["withdrawn"]) is withdrawn
    counts = reg.consort()
    arm = result.arm
    assert counts.treatment_received_by_arm[arm] == (treatment_received is True)
    assert counts.treatment_not_received_by_arm[arm] == (treatment_received is False)
    assert counts.treatment_unknown_by_arm[arm] == (treatment_received is pd.NA)
    assert counts.withdrawn_by_arm[arm] == int(withdrawn)


@pytest.mark.parametrize("referral", ["R-9999", "R-0002"], ids=["not_enrolled", "ineligible"])
def test_record_event_for_a_referral_not_randomised_raises_and_writes_nothing(reg, referral):
    reg.enrol("R-0001", strata=NORTH_PROPERTY, answers=ELIGIBLE, at=when(0))
    reg.enrol("R-0002", strata=NORTH_PROPERTY, answers={"admitted": "no", "risk": "suitable"}, at=when(1))
    before = dump_tables(_db(reg))
    with pytest.raises(RegistryError, match=referral):
        reg.record_event(referral, "treatment_received")
    assert dump_tables(_db(reg)) == before


@pytest.mark.parametrize(
    "kind, detail, match",
    [
        ("conference", None, "kind must be one of"),
        ("note", {"x": object()}, "JSON"),
        ("note", {"x": float("nan")}, "JSON"),
    ],
    ids=["unknown_kind", "detail_not_json", "detail_nan"],
)
def test_record_event_rejects_bad_kind_or_detail(reg, kind, detail, match):
    reg.enrol("R-0001", strata=NORTH_PROPERTY, answers=ELIGIBLE, at=when(0))
    before = dump_tables(_db(reg))
    with pytest.raises(ValueError, match=match):
        reg.record_event("R-0001", kind, detail=detail)
    assert dump_tables(_db(reg)) == before


# -------------------------------------------------------------------------- export
EXPORT_COLUMNS = [
    "id",
    "arm",
    "sequence_number",
    "randomised_at",
    "randomised_on",
    "site",
    "offence",
    "treatment_received",
    "conference_held",
    "withdrawn",
    "receipt",
]


def test_export_columns_types_order_and_audit_entry(reg):
    results = enrol_all(reg, referral_stream(12, seed=4, p_ineligible=0.3))
    randomised = [r for r in results if r.status == "randomised"]
    frame = reg.export(by="analyst")
    assert list(frame.columns) == EXPORT_COLUMNS
    assert list(frame["id"]) == [r.referral_id for r in randomised]
    assert list(frame["arm"]) == [r.arm for r in randomised]
    assert list(frame["sequence_number"]) == list(range(1, len(randomised) + 1))
    assert list(frame["receipt"]) == [r.receipt for r in randomised]
    assert list(frame[["site", "offence"]].itertuples(index=False, name=None)) == [
        (r.strata["site"], r.strata["offence"]) for r in randomised
    ]
    assert str(frame["sequence_number"].dtype) == "int64"
    assert str(frame["randomised_at"].dtype) == "datetime64[ns, UTC]"
    assert str(frame["randomised_on"].dtype) == "datetime64[ns]"
    assert str(frame["treatment_received"].dtype) == "boolean"
    assert frame["withdrawn"].dtype == bool
    first = frame.iloc[0]
    assert first["randomised_at"] == pd.Timestamp(randomised[0].randomised_on)
    assert first["randomised_on"] == pd.Timestamp(randomised[0].randomised_on[:10])
    assert frame.attrs == {"trial_id": "test-trial", "commitment": reg.commitment}
    last = rows(_db(reg), "SELECT * FROM rj_audit ORDER BY seq DESC LIMIT 1")[0]
    assert (last["action"], last["actor"]) == ("export", "analyst")
    assert json.loads(last["payload"]) == {"rows": len(randomised), "columns": EXPORT_COLUMNS}
    assert reg.verify().ok


def test_export_of_an_empty_trial_has_the_columns_and_no_rows(reg):
    frame = reg.export()
    assert list(frame.columns) == EXPORT_COLUMNS
    assert len(frame) == 0


# ------------------------------------------------------------------------- consort
def test_consort_counts_a_known_sequence_of_enrolments(reg):
    unsuitable = {"admitted": "yes", "risk": "unsuitable"}
    steps = [
        ("R-1", NORTH_PROPERTY, ELIGIBLE),
        ("R-2", SOUTH_PROPERTY, ELIGIBLE),
        ("R-3", NORTH_PROPERTY, {"admitted": "no", "risk": "suitable"}),
        ("R-4", NORTH_PROPERTY, {"admitted": "no", "risk": "unsuitable"}),
        ("R-5", SOUTH_PROPERTY, {"admitted": "yes", "risk": "not_done"}),
        ("X-1", {"site": "east", "offence": "property"}, ELIGIBLE),  # refused
        ("R-1", NORTH_PROPERTY, ELIGIBLE),  # refused: duplicate
        ("R-6", ALL_STRATA[1], ELIGIBLE),
        ("R-7", ALL_STRATA[3], ELIGIBLE),
        ("R-8", ALL_STRATA[3], unsuitable),
    ]
    arm = {}
    for i, (rid, strata, answers) in enumerate(steps):
        result = reg.enrol(rid, strata=strata, answers=answers, at=when(i))
        if result.status == "randomised":
            arm[rid] = result.arm
    reg.record_event("R-1", "treatment_received")
    reg.record_event("R-2", "treatment_not_received")
    reg.record_event("R-6", "withdrawal")
    reg.record_event("R-6", "treatment_received")
    reg.record_event("R-7", "note")

    def by_arm(ids):
        return {a: sum(arm[r] == a for r in ids) for a in reg.protocol.arms}

    counts = reg.consort()
    assert counts.referred == 8
    assert counts.screened_out == 4
    assert dict(counts.screened_out_by_reason) == {"admitted=no": 2, "risk=unsuitable": 2, "risk=not_done": 1}
    assert counts.refusals == 2
    assert counts.randomised == 4
    assert dict(counts.randomised_by_arm) == by_arm(["R-1", "R-2", "R-6", "R-7"])
    assert dict(counts.treatment_received_by_arm) == by_arm(["R-1", "R-6"])
    assert dict(counts.treatment_not_received_by_arm) == by_arm(["R-2"])
    assert dict(counts.treatment_unknown_by_arm) == by_arm(["R-7"])
    assert dict(counts.withdrawn_by_arm) == by_arm(["R-6"])
    assert counts.to_dict()["referred"] == 8 and json.dumps(counts.to_dict())
    text = counts.format()
    assert "referred                 8" in text and "refused for invalid input: 2" in text


# -------------------------------------------------------------------------- unseal
@pytest.mark.parametrize("method", ["stratified_blocks", "biased_coin", "minimisation"])
def test_unseal_reveals_sequences_consistent_with_every_allocation_and_closes(tmp_path, method):
    protocol = make_protocol(method, capacity=30)
    with new_registry(tmp_path, protocol, seed=1234) as registry:
        enrol_all(registry, referral_stream(20, seed=5, p_ineligible=0.2))
        result = registry.unseal(by="statistician")
        assert result.commitment_ok and result.regenerated is True and result.ok and result.problems == ()
        assert result.seed == 1234
        used = rows(_db(registry), "SELECT * FROM rj_referrals WHERE status = 'randomised' ORDER BY sequence_number")
        assert len(used) > 10
        if method == "minimisation":
            assert result.draws is not None and len(result.draws) == 30
            assert all(r["value"] == float(result.draws[r["slot"]]).hex() for r in used)
            assert [r["slot"] for r in used] == list(range(len(used)))
        else:
            assert set(result.sequences) == set(protocol.sequence_keys())
            assert all(len(seq) == 30 for seq in result.sequences.values())
            assert all(result.sequences[r["sequence_key"]][r["slot"]] == r["arm"] for r in used)
        (entry,) = rows(_db(registry), "SELECT * FROM rj_audit WHERE action = 'unseal'")
        assert json.loads(entry["payload"])["seed"] == "1234"
        assert rows(_db(registry), "SELECT closed FROM rj_head")[0][0] == 1
        late = registry.enrol("R-9999", strata=NORTH_PROPERTY, answers=ELIGIBLE, at=when(100))
        assert late.status == "refused"
        assert registry.verify().ok
    with Registry.open(tmp_path / "trial.db") as keyless:
        assert keyless.verify().ok


# ----------------------------------------------------------------- reproducibility
def _run(folder: Path, seed: int, method: str = "stratified_blocks"):
    folder.mkdir()
    with new_registry(folder, make_protocol(method, capacity=30), seed=seed) as registry:
        results = enrol_all(registry, referral_stream(24, seed=11, p_ineligible=0.2))
        allocations = [(r.referral_id, r.status, r.arm, r.sequence_number) for r in results]
        unsealed = registry.unseal()
        return allocations, dict(unsealed.sequences), unsealed.draws


@pytest.mark.parametrize("method", ["stratified_blocks", "minimisation"])
def test_same_seed_gives_the_same_sequences_and_allocations(tmp_path, method):
    first = _run(tmp_path / "a", 2024, method)
    second = _run(tmp_path / "b", 2024, method)
    assert first == second


@pytest.mark.parametrize("method", ["stratified_blocks", "minimisation"])
def test_different_seeds_give_different_sequences(tmp_path, method):
    a_alloc, a_seq, a_draws = _run(tmp_path / "a", 2024, method)
    b_alloc, b_seq, b_draws = _run(tmp_path / "b", 2025, method)
    assert (a_seq, a_draws) != (b_seq, b_draws)
    assert [x[2] for x in a_alloc] != [x[2] for x in b_alloc]


# ------------------------------------------------------------------ every method
@pytest.mark.parametrize("method", METHODS)
def test_each_method_enrols_and_verifies(tmp_path, method):
    protocol = make_protocol(method, capacity=60)
    with new_registry(tmp_path, protocol, seed=31) as registry:
        results = enrol_all(registry, referral_stream(40, seed=8, p_ineligible=0.15))
        randomised = [r for r in results if r.status == "randomised"]
        assert {r.status for r in results} == {"randomised", "ineligible"}
        assert [r.sequence_number for r in randomised] == list(range(1, len(randomised) + 1))
        assert {r.arm for r in randomised} == set(protocol.arms)
        check = registry.verify()
        assert check.ok and check.key_checked and check.randomised == len(randomised), check.problems
        if method in ("blocks", "stratified_blocks"):
            # permuted blocks of 2 and 4 keep each sequence within 2 of balance at every point
            by_key = {}
            for r in randomised:
                by_key.setdefault(protocol.sequence_key(r.strata), []).append(r.arm)
            for arms in by_key.values():
                diffs = [abs(arms[:n].count("control") - arms[:n].count("conference")) for n in range(1, len(arms) + 1)]
                assert max(diffs) <= 2


def _example_referral(protocol: Protocol, i: int):
    strata = {name: levels[i % len(levels)] for name, levels in protocol.strata.items()}
    answers = {q.id: q.eligible_if[0] for q in protocol.eligibility}
    return f"EX-{i:03d}", strata, answers, when(i)


@pytest.mark.parametrize("path", EXAMPLE_PROTOCOLS, ids=[p.stem for p in EXAMPLE_PROTOCOLS])
def test_example_protocols_enrol_and_verify(tmp_path, path):
    protocol = Protocol.from_toml(path)
    with Registry.create(tmp_path / "t.db", path, key_path=tmp_path / "t.key", seed=5) as registry:
        results = enrol_all(registry, [_example_referral(protocol, i) for i in range(12)])
        assert all(r.status == "randomised" for r in results)
        assert registry.verify().ok
        assert registry.unseal().ok


def test_protocol_given_as_dict_round_trips_through_the_store(reg):
    assert reg.protocol == Protocol.from_dict(protocol_dict())


# ------------------------------------------------------------------ invariants
OPERATIONS = ("eligible", "ineligible", "unknown_level", "duplicate", "event")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["stratified_blocks", "minimisation", "biased_coin"]),
    steps=st.lists(
        st.tuples(st.sampled_from(OPERATIONS), st.integers(0, len(ALL_STRATA) - 1)), min_size=1, max_size=25
    ),
)
def test_any_sequence_of_operations_keeps_the_registry_consistent(method, steps):
    """Whatever is asked, in whatever order: no duplicate allocation, no gap, slots in order, verify ok."""
    import tempfile

    with (
        tempfile.TemporaryDirectory() as folder,
        new_registry(Path(folder), make_protocol(method, capacity=30), seed=3) as registry,
    ):
        enrolled: list[str] = []
        expected_status = []
        for i, (operation, stratum) in enumerate(steps):
            strata = dict(ALL_STRATA[stratum])
            if operation == "event" and enrolled:
                registry.record_event(enrolled[-1], "treatment_received")
                continue
            rid = enrolled[0] if operation == "duplicate" and enrolled else f"P-{i:03d}"
            if operation == "unknown_level":
                strata["site"] = "east"
            answers = {"admitted": "no", "risk": "suitable"} if operation == "ineligible" else ELIGIBLE
            result = registry.enrol(rid, strata=strata, answers=answers, at=when(i))
            expected = {
                "eligible": "randomised",
                "ineligible": "ineligible",
                "unknown_level": "refused",
                "duplicate": "refused" if rid != f"P-{i:03d}" else "randomised",
                "event": "randomised",
            }[operation]
            expected_status.append((rid, result.status, expected))
            if result.status == "randomised":
                enrolled.append(rid)
        assert all(got == want for _, got, want in expected_status), expected_status
        used = rows(_db(registry), "SELECT * FROM rj_referrals WHERE status = 'randomised' ORDER BY sequence_number")
        assert [r["sequence_number"] for r in used] == list(range(1, len(used) + 1))
        assert [r["referral_id"] for r in used] == enrolled
        slots: dict[str, list[int]] = {}
        for r in used:
            slots.setdefault(r["sequence_key"], []).append(r["slot"])
        assert all(s == list(range(len(s))) for s in slots.values())
        result = registry.verify()
        assert result.ok and result.randomised == len(used), result.problems
        unsealed = registry.unseal()
        assert unsealed.ok
        if unsealed.draws is None:
            assert all(unsealed.sequences[r["sequence_key"]][r["slot"]] == r["arm"] for r in used)


# ------------------------------------------------------------ careless and hostile ids
@pytest.mark.parametrize(
    "twin",
    ["R-0002\n", "r-0002", "R-0002 ", " R-0002", "R\u20110002", "R-0002\r\n"],
    ids=["trailing_newline", "lower_case", "trailing_space", "leading_space", "unicode_hyphen", "crlf"],
)
def test_a_referral_cannot_be_randomised_twice_under_a_variant_of_its_id(reg, twin):
    first = reg.enrol("R-0002", strata=NORTH_PROPERTY, answers=ELIGIBLE, at=when(1))
    assert first.status == "randomised"
    again = reg.enrol(twin, strata=NORTH_PROPERTY, answers=ELIGIBLE, at=when(2))
    assert again.status == "refused", again
    assert len(rows(_db(reg), "SELECT * FROM rj_referrals")) == 1
    assert reg.verify().ok


def test_a_case_variant_id_is_refused_naming_the_referral_enrolled(reg):
    reg.enrol("R-0002", strata=NORTH_PROPERTY, answers=ELIGIBLE, at=when(1))
    again = reg.enrol("r-0002", strata=NORTH_PROPERTY, answers=ELIGIBLE, at=when(2))
    assert again.reasons == (
        f"referral 'r-0002' was already enrolled as 'R-0002' (randomised, {when(1).isoformat(timespec='microseconds')})",
    )


# ------------------------------------------------------------------------------ times
def test_a_2099_time_planted_in_the_head_does_not_block_enrolment(reg):
    reg.enrol("R-0001", strata=NORTH_PROPERTY, answers=ELIGIBLE, at=when(1))
    import sqlite3

    with sqlite3.connect(_db(reg)) as conn:
        conn.execute("UPDATE rj_head SET last_randomised_at = '2099-01-01T00:00:00.000000+00:00'")
    assert not reg.verify().ok  # the planted time is reported...
    later = reg.enrol("R-0002", strata=NORTH_PROPERTY, answers=ELIGIBLE)
    assert later.status == "randomised", later.reasons  # ...and does not stop the trial
    early = reg.enrol("R-0003", strata=NORTH_PROPERTY, answers=ELIGIBLE, at=when(0))
    assert early.status == "refused" and "earlier than the last randomisation" in early.reasons[0]  # order still holds
    assert reg.verify().ok


@pytest.mark.parametrize(
    "at, match",
    [
        (datetime(2099, 1, 1, tzinfo=timezone.utc), "in the future"),
        (when(0), "before its random assignment"),
    ],
    ids=["in_2099", "before_randomisation"],
)
def test_an_event_dated_outside_the_referrals_trial_is_refused(reg, at, match):
    reg.enrol("R-0001", strata=NORTH_PROPERTY, answers=ELIGIBLE, at=when(1))
    before = dump_tables(_db(reg))
    with pytest.raises((ValueError, RegistryError), match=match):
        reg.record_event("R-0001", "withdrawal", at=at)
    assert dump_tables(_db(reg)) == before


def test_a_store_of_another_schema_version_is_refused_at_open(reg):
    import sqlite3

    with sqlite3.connect(_db(reg)) as conn:
        conn.execute("UPDATE rj_trial SET schema_version = 1")
    with pytest.raises(RegistryError, match=r"schema version 1; this rjtrial reads version 2 only"):
        Registry.open(_db(reg))


def test_export_suits_arithmetic_conference_held_is_0_or_1(reg):
    # issue: the README's `table.treatment_received.eq(True).astype(int)` crashed on the
    # nullable boolean ("cannot convert NA to integer"); the export now carries 0/1
    results = enrol_all(reg, referral_stream(12, seed=4, p_ineligible=0.0))
    first, second = [r.referral_id for r in results if r.status == "randomised"][:2]
    reg.record_event(first, "treatment_received", by="facilitator")
    reg.record_event(second, "treatment_not_received", by="facilitator")
    frame = reg.export(by="analyst").set_index("id")
    assert str(frame["conference_held"].dtype) == "int64"
    assert frame.loc[first, "conference_held"] == 1 and frame.loc[second, "conference_held"] == 0
    assert int(frame["conference_held"].sum()) == 1  # none recorded counts as not held
