"""Protocol amendments (rjtrial/registry/amend.py, segments.py): appended sealed segments,
a chained commitment, refusals that leave the store as it was, and verify at every level."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from registry_fixtures import (
    ELIGIBLE,
    copy_db,
    dump_tables,
    make_protocol,
    new_registry,
    protocol_toml,
    rows,
    when,
)

from rjtrial._canonical import canonical_json
from rjtrial.cli import main
from rjtrial.errors import AmendmentError
from rjtrial.registry import Registry
from rjtrial.registry.amend import Amendment
from rjtrial.registry.audit import GENESIS, entry_hash

NP = {"site": "north", "offence": "property"}
EP = {"site": "east", "offence": "property"}
EAST = {"amendment": {"id": "east-joins", "title": "East joins"}, "strata": {"add": {"site": ["east"]}}}


def amendment(**sections) -> Amendment:
    data = {"amendment": {"id": "a1", "title": "an amendment"}}
    data.update(sections)
    return Amendment.from_dict(data)


@pytest.fixture
def reg(tmp_path):
    with new_registry(tmp_path, make_protocol(capacity=12), seed=21) as registry:
        for i in range(1, 5):
            registry.enrol(f"R-{i:03d}", strata=NP, answers=ELIGIBLE, at=when(i))
        yield registry


def _arms(registry):
    return dict(zip(registry.export()["id"], registry.export()["arm"]))


# ------------------------------------------------------------------ what amendments do
def test_a_site_joins_past_allocations_stand_and_every_level_of_verify_holds(reg, tmp_path):
    before = _arms(reg)
    published = reg.commitment
    result = reg.amend(Amendment.from_dict(EAST), by="manager", reason="east joins", at=when(5), seed=5)
    assert result.number == 1 and result.changes == ("adds site level(s) east",)
    assert result.slots_sealed == 2 * 12  # east x {property, violence}, 12 slots each
    assert reg.protocol.strata["site"] == ("north", "south", "east")
    assert reg.initial_protocol.strata["site"] == ("north", "south")
    assert reg.commitment == published and reg.current_commitment == result.commitment != published
    joined = reg.enrol("E-001", strata=EP, answers=ELIGIBLE, at=when(6))
    assert joined.status == "randomised"
    assert {k: v for k, v in _arms(reg).items() if k in before} == before
    for kwargs in ({}, {"expected_commitment": published}, {"expected_commitment": result.commitment}):
        check = reg.verify(**kwargs)
        assert check.ok, check.problems
        assert check.amendments == 1
    with Registry.open(reg.db, key_path=tmp_path / "trial.key") as keyed:
        assert keyed.verify().ok
        assert keyed.verify().key_checked


def test_the_published_commitment_of_no_amendment_fails(reg):
    reg.amend(Amendment.from_dict(EAST), by="manager", reason="r", at=when(5))
    result = reg.verify(expected_commitment="ab" * 32)
    assert not result.ok and "nor is it the commitment of any of the 1 amendments" in result.problems[0]


def test_the_commitment_chains_each_amendment_to_the_one_before(reg):
    first = reg.amend(Amendment.from_dict(EAST), by="m", reason="r", at=when(5), seed=1)
    second = reg.amend(amendment(randomisation={"capacity": 20}), by="m", reason="more", at=when(5), seed=2)
    assert first.previous_commitment == reg.commitment
    assert second.previous_commitment == first.commitment
    assert [a["commitment"] for a in reg.amendments()] == [first.commitment, second.commitment]
    assert reg.verify(expected_commitment=second.commitment).ok


@pytest.mark.parametrize("method", ["stratified_blocks", "blocks", "minimisation", "simple", "biased_coin"])
def test_raising_the_capacity_seals_more_slots_for_every_sequence(tmp_path, method):
    with new_registry(tmp_path, make_protocol(method, capacity=3), seed=8) as registry:
        stream = [(f"R-{i:03d}", NP, when(i)) for i in range(1, 4)]
        for rid, strata, at in stream:
            assert registry.enrol(rid, strata=strata, answers=ELIGIBLE, at=at).status == "randomised"
        assert registry.enrol("R-004", strata=NP, answers=ELIGIBLE, at=when(4)).status == "refused"  # exhausted
        result = registry.amend(amendment(randomisation={"capacity": 6}), by="m", reason="more referrals", at=when(5))
        keys = len(registry.protocol.sequence_keys())
        assert result.slots_sealed == 3 * keys
        for i in range(6, 9):
            assert registry.enrol(f"R-{i:03d}", strata=NP, answers=ELIGIBLE, at=when(i)).status == "randomised"
        assert registry.verify().ok, registry.verify().problems
        assert registry.enrol("R-010", strata=NP, answers=ELIGIBLE, at=when(10)).status == "refused"


def test_a_new_site_under_minimisation_is_minimised_with_the_others(tmp_path):
    with new_registry(tmp_path, make_protocol("minimisation", capacity=30), seed=3) as registry:
        for i in range(1, 8):
            registry.enrol(f"R-{i:03d}", strata=NP, answers=ELIGIBLE, at=when(i))
        result = registry.amend(Amendment.from_dict(EAST), by="m", reason="east joins", at=when(8))
        assert result.slots_sealed == 0  # one stream of draws serves every site
        for i in range(9, 15):
            assert registry.enrol(f"E-{i:03d}", strata=EP, answers=ELIGIBLE, at=when(i)).status == "randomised"
        assert registry.verify().ok, registry.verify().problems


def test_new_eligibility_questions_apply_from_the_amendment_on(reg):
    questions = [
        {"id": "admitted", "question": "Has the offender admitted the offence?", "eligible_if": "yes"},
        {
            "id": "risk",
            "question": "Outcome of the risk assessment",
            "answers": ["suitable", "unsuitable", "not_done"],
            "eligible_if": "suitable",
        },
        {"id": "hate_crime", "question": "Is the offence a hate crime?", "eligible_if": "no"},
    ]
    result = reg.amend(amendment(eligibility=questions), by="m", reason="hate crime excluded", at=when(5))
    assert result.changes == ("eligibility questions: adds hate_crime",)
    old_style = reg.enrol("R-010", strata=NP, answers=ELIGIBLE, at=when(6))
    assert old_style.status == "refused" and "missing answer to 'hate_crime'" in old_style.reasons[0]
    excluded = reg.enrol("R-011", strata=NP, answers={**ELIGIBLE, "hate_crime": "yes"}, at=when(7))
    assert excluded.status == "ineligible" and excluded.reasons == ("hate_crime=yes",)
    assert reg.enrol("R-012", strata=NP, answers={**ELIGIBLE, "hate_crime": "no"}, at=when(8)).status == "randomised"
    assert reg.verify().ok, reg.verify().problems


def test_a_closed_level_takes_no_more_referrals(reg):
    reg.amend(amendment(strata={"close": {"site": ["north"]}}), by="m", reason="north stops referring", at=when(5))
    refused = reg.enrol("R-010", strata=NP, answers=ELIGIBLE, at=when(6))
    assert refused.status == "refused"
    assert "site level 'north' was closed by amendment 1 (a1)" in refused.reasons[0]
    assert (
        reg.enrol("R-011", strata={"site": "south", "offence": "property"}, answers=ELIGIBLE, at=when(7)).status
        == "randomised"
    )
    assert reg.verify().ok
    assert reg.consort().randomised == 5


def test_a_registry_opened_before_the_amendment_enrols_under_it(reg, tmp_path):
    with Registry.open(reg.db, key_path=tmp_path / "trial.key") as stale:
        reg.amend(Amendment.from_dict(EAST), by="m", reason="r", at=when(5))
        assert stale.protocol.strata["site"] == ("north", "south")
        assert stale.enrol("E-001", strata=EP, answers=ELIGIBLE, at=when(6)).status == "randomised"
        assert stale.protocol.strata["site"] == ("north", "south", "east")
    assert reg.verify().ok


def test_a_randomisation_dated_before_the_amendment_took_effect_is_refused(reg):
    reg.amend(Amendment.from_dict(EAST), by="m", reason="r", at=when(10))
    result = reg.enrol("R-010", strata=NP, answers=ELIGIBLE, at=when(8))
    assert result.status == "refused" and "before the protocol amendment in force took effect" in result.reasons[0]


def test_unsealing_reveals_and_regenerates_every_segment(tmp_path):
    with new_registry(tmp_path, make_protocol(capacity=4), seed=2) as registry:
        registry.enrol("R-001", strata=NP, answers=ELIGIBLE, at=when(1))
        registry.amend(Amendment.from_dict(EAST), by="m", reason="r", at=when(2), seed=11)
        registry.amend(amendment(randomisation={"capacity": 6}), by="m", reason="r", at=when(2), seed=12)
        registry.enrol("E-001", strata=EP, answers=ELIGIBLE, at=when(3))
        result = registry.unseal(by="statistician")
    assert result.ok and result.regenerated is True and result.segment_seeds == (11, 12)
    assert set(result.sequences) == {
        f"site={s}|offence={o}" for s in ("north", "south", "east") for o in ("property", "violence")
    }
    assert all(len(v) == 6 for v in result.sequences.values())
    assert result.sequences["site=east|offence=property"][0] == registry.export()["arm"].iloc[-1]


# ------------------------------------------------------------------ refusals
REFUSED = {
    "remove an arm": ({"trial": {"arms": ["control"]}}, "removing arm(s) 'conference' is refused"),
    "add an arm": ({"trial": {"arms": ["control", "conference", "letter"]}}, "adding arm(s) 'letter' is refused"),
    "change the ratio": ({"trial": {"ratio": [1, 2]}}, "changing the allocation ratio of ongoing strata (1:1 to 1:2)"),
    "edit a past allocation": (
        {"allocations": [{"referral": "R-001", "arm": "control"}]},
        "never edits a past allocation",
    ),
    "remove a level": ({"strata": {"remove": {"site": ["south"]}}}, "removing stratum levels is refused"),
    "add a stratum": ({"strata": {"age_band": ["young", "old"]}}, "adding a stratum is refused"),
    "change the method": ({"randomisation": {"method": "simple"}}, "randomisation.method: the randomisation method"),
    "change block sizes": ({"randomisation": {"block_sizes": [2]}}, "randomisation.block_sizes"),
    "lower the capacity": ({"randomisation": {"capacity": 5}}, "capacity can only be raised"),
    "add an existing level": ({"strata": {"add": {"site": ["north"]}}}, "already in the protocol"),
    "add to an unknown stratum": ({"strata": {"add": {"region": ["x"]}}}, "strata.add.region: no such stratum"),
    "close every level": ({"strata": {"close": {"site": ["north", "south"]}}}, "would end enrolment"),
    "a bad level name": ({"strata": {"add": {"site": ["a|b"]}}}, "levels may not contain"),
    "change nothing": ({"trial": {"arms": ["control", "conference"]}}, "it changes nothing"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_refused_amendment_says_why_and_leaves_the_store_as_it_was(reg, case):
    sections, reason = REFUSED[case]
    before = dump_tables(Path(reg.db))
    with pytest.raises(AmendmentError, match="amendment refused") as caught:
        reg.amend(
            Amendment.from_dict({"amendment": {"id": "x", "title": "x"}, **sections}), by="m", reason="r", at=when(5)
        )
    assert reason in str(caught.value)
    assert dump_tables(Path(reg.db)) == before


@pytest.mark.parametrize(
    "at, reason", [(when(2), "before the last randomisation"), ("2999-01-01T00:00:00+00:00", "is in the future")]
)
def test_an_amendment_cannot_take_effect_before_allocations_made_or_in_the_future(reg, at, reason):
    with pytest.raises(AmendmentError, match=reason):
        reg.amend(Amendment.from_dict(EAST), by="m", reason="r", at=at)


def test_an_amendment_needs_a_reason_a_unique_id_and_an_open_trial(reg):
    with pytest.raises(AmendmentError, match="a reason is required"):
        reg.amend(Amendment.from_dict(EAST), by="m", reason=" ")
    reg.amend(Amendment.from_dict(EAST), by="m", reason="r", at=when(5))
    with pytest.raises(AmendmentError, match="'east-joins' was already applied"):
        reg.amend(Amendment.from_dict({**EAST, "strata": {"add": {"site": ["west"]}}}), by="m", reason="r")
    reg.unseal(by="statistician")
    with pytest.raises(AmendmentError, match="has been unsealed"):
        reg.amend(amendment(randomisation={"capacity": 99}), by="m", reason="r")


@pytest.mark.parametrize(
    "text, problem",
    [
        ("[amendment]\nid = 'x y'\ntitle = 't'\n", "amendment.id"),
        ("[strata.add]\nsite = ['east']\n", "missing section [amendment]"),
        ("[amendment]\nid = 'x'\ntitle = 't'\neffective = 'soon'\n", "amendment.effective: 'soon'"),
        (
            "[amendment]\nid = 'x'\ntitle = 't'\n[trial]\nname = 'new'\n",
            "trial.name: the trial's name cannot be amended",
        ),
        ("[amendment]\nid = 'x'\ntitle = 't'\n[sites]\n", "sites: unknown section"),
        ("[amendment\n", "not valid TOML"),
    ],
)
def test_an_amendment_file_that_cannot_be_read_names_the_key(text, problem):
    with pytest.raises(AmendmentError, match="amendment refused") as caught:
        Amendment.from_toml_string(text, source="a.toml")
    assert problem in str(caught.value) and str(caught.value).startswith("a.toml: ")


def test_the_example_amendment_applies_to_its_protocol(tmp_path):
    root = Path(__file__).resolve().parents[1]
    protocol = root / "synthetic" / "protocols" / "jrc-london-burglary.toml"
    example = root / "synthetic" / "protocols" / "amendments" / "jrc-london-burglary-west-yorkshire-joins.toml"
    with Registry.create(tmp_path / "t.db", protocol, key_path=tmp_path / "t.key", seed=1) as registry:
        result = registry.amend(example, by="m", reason="r")
        assert result.changes == (
            "adds site level(s) west_yorkshire",
            "raises capacity from 500 to 1000 slots per sequence",
        )
        assert registry.verify().ok


# ------------------------------------------------------------------ tampering
@pytest.fixture
def amended(tmp_path):
    """A registry with one amendment (east joins, entry 6) and enrolments before and after it."""
    folder = tmp_path / "pristine"
    folder.mkdir()
    with new_registry(folder, make_protocol(capacity=6), seed=31) as registry:
        for i in range(1, 5):
            registry.enrol(f"R-{i:03d}", strata=NP, answers=ELIGIBLE, at=when(i))
        registry.amend(Amendment.from_dict(EAST), by="manager", reason="east joins", at=when(5), seed=9)
        registry.enrol("E-001", strata=EP, answers=ELIGIBLE, at=when(6))
        registry.enrol("E-002", strata=EP, answers=ELIGIBLE, at=when(7))
        assert registry.verify().ok
    return folder


def _tamper(folder, tmp_path, sql, params=()):
    db = copy_db(folder / "trial.db", tmp_path / "t.db")
    shutil.copy2(folder / "trial.key", tmp_path / "t.key")
    with sqlite3.connect(db) as conn:
        conn.execute(sql, params)
    conn.close()
    return db


def _rehash(db: Path, edit) -> None:
    """Edit audit payloads with ``edit(seq, action, payload)`` and recompute every hash (no key)."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    with conn:
        entries = [dict(r) for r in conn.execute("SELECT * FROM rj_audit ORDER BY seq")]
        prev = GENESIS
        for e in entries:
            payload = json.loads(e["payload"])
            edit(e["seq"], e["action"], payload)
            e["payload"] = canonical_json(payload)
            e["prev_hash"], e["hash"] = prev, entry_hash(prev, e["seq"], e["at"], e["actor"], e["action"], e["payload"])
            conn.execute(
                "UPDATE rj_audit SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (e["payload"], e["prev_hash"], e["hash"], e["seq"]),
            )
            prev = e["hash"]
        conn.execute("UPDATE rj_head SET audit_hash = ?", (prev,))
    conn.close()


def _verify(db, key=None, **kwargs):
    with Registry.open(db, key_path=key) as registry:
        return registry.verify(**kwargs)


def test_the_amended_store_survives_verify_at_every_level(amended, tmp_path):
    commitment = json.loads(rows(amended / "trial.db", "SELECT payload FROM rj_audit WHERE seq = 6")[0][0])[
        "commitment"
    ]
    assert _verify(amended / "trial.db", amended / "trial.key", expected_commitment=commitment).ok


SEGMENT_EDITS = {
    "a segment slot commitment edited": (
        "UPDATE rj_slots SET commitment = '00' || substr(commitment, 3) WHERE sequence_key = "
        "'site=east|offence=violence' AND slot = 3",
        "slot commitments of its sealed segment",
    ),
    "a segment slot deleted": (
        "DELETE FROM rj_slots WHERE sequence_key = 'site=east|offence=violence' AND slot = 5",
        "slot commitments of its sealed segment",
    ),
    "a slot inserted beyond every segment": (
        "INSERT INTO rj_slots VALUES ('site=east|offence=violence', 6, 'ab')",
        "belongs to no sealed schedule",
    ),
    "the amendment's payload edited": (
        "UPDATE rj_audit SET payload = replace(payload, '\"east joins\"', '\"north leaves\"') WHERE seq = 6",
        "audit log entry 6 (amendment): contents do not match its hash",
    ),
    "the amendment entry deleted": ("DELETE FROM rj_audit WHERE seq = 6", "expected entry 6 here"),
}


@pytest.mark.parametrize("case", list(SEGMENT_EDITS))
def test_an_edited_amendment_or_segment_fails_keyless_verify(amended, tmp_path, case):
    sql, problem = SEGMENT_EDITS[case]
    result = _verify(_tamper(amended, tmp_path, sql))
    assert not result.ok
    assert any(problem in p for p in result.problems), result.problems


def _add_level(seq, action, payload):
    if action == "amendment":  # the amendment rewritten to add a further level, with its protocol
        payload["amendment"]["add_levels"]["site"] = ["east", "west"]
        protocol = json.loads(payload["protocol"])
        protocol["strata"]["site"].append("west")
        payload["protocol"] = json.dumps(protocol, separators=(",", ":"))


def _drop_amendment_reason(seq, action, payload):
    if action == "amendment":
        payload["reason"] = "because"


@pytest.mark.parametrize("edit", [_add_level, _drop_amendment_reason])
def test_an_amendment_rewritten_with_recomputed_hashes_fails_on_its_signature(amended, tmp_path, edit):
    db = copy_db(amended / "trial.db", tmp_path / "t.db")
    _rehash(db, edit)
    result = _verify(db)
    assert not result.ok
    assert any("audit log entry 6 (amendment): its signature does not verify" in p for p in result.problems)
    assert any(
        "commitment does not match its contents" in p or "not the protocol before it" in p for p in result.problems
    ), result.problems


def test_enrolments_at_a_new_site_without_their_amendment_fail_keyless_verify(amended, tmp_path):
    """The amendment deleted and the log renumbered: the new site's records break the protocol."""
    db = copy_db(amended / "trial.db", tmp_path / "t.db")
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DELETE FROM rj_audit WHERE seq = 6")
        conn.execute("UPDATE rj_audit SET seq = seq - 1 WHERE seq > 6")
        conn.execute("UPDATE rj_referrals SET audit_seq = audit_seq - 1 WHERE audit_seq > 6")
    conn.close()
    _rehash(db, lambda *a: None)
    result = _verify(db)
    assert not result.ok
    assert any("referral 'E-001'" in p and "strata not in the protocol" in p for p in result.problems), result.problems


def test_an_enrolment_at_a_closed_level_forged_into_the_log_is_named(tmp_path):
    with new_registry(tmp_path, make_protocol(capacity=6), seed=4) as registry:
        registry.enrol("R-001", strata=NP, answers=ELIGIBLE, at=when(1))
        registry.amend(amendment(strata={"close": {"site": ["south"]}}), by="m", reason="r", at=when(2))
        registry.enrol("R-002", strata=NP, answers=ELIGIBLE, at=when(3))
    db = tmp_path / "trial.db"
    south = {"site": "south", "offence": "property"}

    def move_to_south(seq, action, payload):
        if action == "enrolment" and payload["referral_id"] == "R-002":
            payload["strata"] = south
            payload["sequence_key"], payload["slot"] = "site=south|offence=property", 0

    _rehash(db, move_to_south)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE rj_referrals SET strata = ?, sequence_key = 'site=south|offence=property', slot = 0 "
            "WHERE referral_id = 'R-002'",
            (canonical_json(south),),
        )
    conn.close()
    result = _verify(db)
    assert any("enrolled at site=south, a level an amendment before it had closed" in p for p in result.problems)


def test_a_segment_not_drawn_from_its_seed_is_caught_by_keyed_verify_only(tmp_path, monkeypatch):
    """A key holder seals a segment whose allocations were chosen, not drawn: consistent and signed,
    so keyless verify passes; with the key the segment does not regenerate from its seed."""
    from rjtrial.registry import amend as amend_module
    from rjtrial.registry import segments

    def chosen(number, protocol, ranges, *, seed):
        drawn = segments.make_segment(number, protocol, ranges, seed=seed)
        return segments.OpenedSegment(
            drawn.number,
            drawn.seed,
            drawn.nonce_secret,
            drawn.ranges,
            {k: [1] * len(v) for k, v in drawn.sequences.items()},
            drawn.draws,
        )

    with new_registry(tmp_path, make_protocol(capacity=6), seed=4) as registry:
        registry.enrol("R-001", strata=NP, answers=ELIGIBLE, at=when(1))
        monkeypatch.setattr(amend_module, "make_segment", chosen)
        registry.amend(Amendment.from_dict(EAST), by="m", reason="r", at=when(2), seed=3)
        monkeypatch.undo()
        assert registry.enrol("E-001", strata=EP, answers=ELIGIBLE, at=when(3)).arm == "conference"
    with Registry.open(tmp_path / "trial.db") as keyless:
        assert keyless.verify().ok
    with Registry.open(tmp_path / "trial.db", key_path=tmp_path / "trial.key") as keyed:
        result = keyed.verify()
    assert not result.ok
    assert result.problems == ("audit log entry 3 (amendment 1): its sealed segment does not regenerate from its seed",)


def test_a_garbled_segment_breaks_the_chain_and_stops_enrolment(amended, tmp_path):
    """The amendment's ciphertext garbled, hashes recomputed: its commitment and signature fail, enrolment stops."""
    db = copy_db(amended / "trial.db", tmp_path / "t.db")
    shutil.copy2(amended / "trial.key", tmp_path / "t.key")

    def garble(seq, action, payload):
        if action == "amendment":
            payload["sealed"] = "AAAA" + payload["sealed"][4:]

    _rehash(db, garble)
    with Registry.open(db, key_path=tmp_path / "t.key") as registry:
        refused = registry.enrol("E-003", strata=EP, answers=ELIGIBLE, at=when(8))
        keyed = registry.verify()
    assert refused.status == "refused" and "the amendment chain is damaged" in refused.reasons[0]
    assert not keyed.ok
    assert any(
        "audit log entry 6 (amendment 1): its commitment does not match its contents" in p for p in keyed.problems
    )


# ------------------------------------------------------------------ the command line
def test_cli_amend_prints_the_new_commitment_and_consort_the_history(tmp_path, capsys):
    (tmp_path / "p.toml").write_text(protocol_toml(capacity=10))
    assert (
        main(["init", str(tmp_path / "p.toml"), "--db", str(tmp_path / "t.db"), "--key", str(tmp_path / "t.key")]) == 0
    )
    (tmp_path / "east.toml").write_text(
        '[amendment]\nid = "east-joins"\ntitle = "East joins"\n[strata.add]\nsite = ["east"]\n'
    )
    capsys.readouterr()
    code = main(
        [
            "amend",
            str(tmp_path / "east.toml"),
            "--db",
            str(tmp_path / "t.db"),
            "--key",
            str(tmp_path / "t.key"),
            "--by",
            "manager",
            "--reason",
            "east police join",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["number"] == 1 and len(out["commitment"]) == 64
    assert (
        main(
            [
                "enrol",
                "--db",
                str(tmp_path / "t.db"),
                "--key",
                str(tmp_path / "t.key"),
                "--referral",
                "E-1",
                "--stratum",
                "site=east",
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
    assert main(["consort", "--db", str(tmp_path / "t.db")]) == 0
    text = capsys.readouterr().out
    assert "amendment 1 (east-joins): adds site level(s) east" in text and "east police join" in text
    assert main(["verify", "--db", str(tmp_path / "t.db"), "--commitment", out["commitment"]]) == 0
    assert "1 protocol amendment" in capsys.readouterr().out


def test_cli_refuses_an_amendment_in_one_line_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "p.toml").write_text(protocol_toml(capacity=10))
    main(["init", str(tmp_path / "p.toml"), "--db", str(tmp_path / "t.db"), "--key", str(tmp_path / "t.key")])
    (tmp_path / "bad.toml").write_text('[amendment]\nid = "x"\ntitle = "x"\n[trial]\narms = ["control"]\n')
    before = dump_tables(tmp_path / "t.db")
    capsys.readouterr()
    code = main(
        [
            "amend",
            str(tmp_path / "bad.toml"),
            "--db",
            str(tmp_path / "t.db"),
            "--key",
            str(tmp_path / "t.key"),
            "--reason",
            "drop the programme",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("rjtrial: error: ") and "removing arm(s) 'conference'" in err
    assert dump_tables(tmp_path / "t.db") == before
