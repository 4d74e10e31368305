"""rjtrial.registry.monitoring: interim looks in the audit log (Registry.record_interim_look).

A look is logged with who and when, signed when the key is given and unsigned (allowed) without
it; looks are kept in order per design; the entries are part of the chain, so deleting or
editing one fails ``verify``; and a registry refuses a look that does not follow the last one.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from registry_fixtures import enrol_all, new_registry, referral_stream

from rjtrial._canonical import canonical_json
from rjtrial.errors import RegistryError
from rjtrial.registry import Registry

FINGERPRINT = "f" * 64


def summary(look: int, events: int, **extra) -> dict:
    return {
        "look": look,
        "events": events,
        "design_fingerprint": FINGERPRINT,
        "decision": "continue",
        "hazard_ratio": 0.81,
        **extra,
    }


@pytest.fixture
def trial(tmp_path):
    with new_registry(tmp_path) as reg:
        enrol_all(reg, referral_stream(6, seed=1))
    return tmp_path / "trial.db", tmp_path / "trial.key"


def test_looks_are_logged_and_read_back_in_order(trial):
    db, key = trial
    with Registry.open(db, key_path=key) as reg:
        first = reg.record_interim_look(summary(1, 40), by="dmc statistician")
    with Registry.open(db) as reg:  # the committee's statistician need not hold the key
        second = reg.record_interim_look(summary(2, 80), by="dmc statistician")
        looks = reg.interim_looks()
        assert reg.verify().ok
    assert second == first + 1
    assert [(x["look"], x["events"], x["by"], x["seq"]) for x in looks] == [
        (1, 40, "dmc statistician", first),
        (2, 80, "dmc statistician", second),
    ]
    assert looks[0]["hazard_ratio"] == 0.81 and looks[0]["at"]
    with Registry.open(db, key_path=key) as reg:
        assert reg.verify().ok
        log = reg.audit_log()
    signed = log.set_index("seq").loc[[first, second], "signature"].tolist()
    assert signed[0] != "" and signed[1] == ""


def test_looks_of_another_design_are_kept_apart(trial):
    db, key = trial
    with Registry.open(db, key_path=key) as reg:
        reg.record_interim_look(summary(1, 40), by="a")
        reg.record_interim_look({**summary(1, 45), "design_fingerprint": "e" * 64}, by="a")
        assert [x["events"] for x in reg.interim_looks(design_fingerprint=FINGERPRINT)] == [40]
        assert len(reg.interim_looks()) == 2


@pytest.mark.parametrize(
    "looks, message",
    [
        ([summary(2, 40)], "interim look 2 has no earlier look"),
        ([summary(1, 40), summary(3, 80)], "interim look 3 at 80 events does not follow look 1 at 40"),
        ([summary(1, 40), summary(2, 40)], "does not follow look 1 at 40 events"),
    ],
)
def test_a_look_out_of_order_is_refused_and_nothing_written(trial, looks, message):
    db, key = trial
    with Registry.open(db, key_path=key) as reg:
        for item in looks[:-1]:
            reg.record_interim_look(item, by="a")
        before = len(reg.audit_log())
        with pytest.raises(RegistryError, match=message):
            reg.record_interim_look(looks[-1], by="a")
        assert len(reg.audit_log()) == before


@pytest.mark.parametrize(
    "bad, message",
    [
        ("not a dict", "summary must be a JSON object"),
        ({"events": 40, "design_fingerprint": FINGERPRINT}, r"summary\['look'\] must be a whole number"),
        ({**summary(1, 40), "events": 40.5}, r"summary\['events'\] must be a whole number"),
        ({**summary(1, 40), "design_fingerprint": None}, r"summary\['design_fingerprint'\] must be text"),
        ({**summary(1, 40), "hazard_ratio": float("nan")}, "no NaN"),
        ({**summary(1, 40), "blob": "x" * 300_000}, "too large"),
    ],
)
def test_a_bad_summary_is_refused(trial, bad, message):
    db, key = trial
    with Registry.open(db, key_path=key) as reg:
        with pytest.raises(ValueError, match=message):
            reg.record_interim_look(bad, by="a")


def _tamper(db, sql, params=()):
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(sql, params)
    conn.close()


def test_editing_a_logged_look_fails_verify(trial):
    db, key = trial
    with Registry.open(db, key_path=key) as reg:
        seq = reg.record_interim_look(summary(1, 40), by="a")
    payload = json.loads(
        sqlite3.connect(db).execute("SELECT payload FROM rj_audit WHERE seq = ?", (seq,)).fetchone()[0]
    )
    payload["decision"] = "efficacy"
    _tamper(db, "UPDATE rj_audit SET payload = ? WHERE seq = ?", (canonical_json(payload), seq))
    with Registry.open(db) as reg:
        result = reg.verify()
    assert not result.ok
    assert any(f"audit log entry {seq} (interim_look): contents do not match its hash" in p for p in result.problems)


def test_deleting_a_logged_look_fails_verify(trial):
    db, key = trial
    with Registry.open(db, key_path=key) as reg:
        first = reg.record_interim_look(summary(1, 40), by="a")
        reg.record_interim_look(summary(2, 80), by="a")
    _tamper(db, "DELETE FROM rj_audit WHERE seq = ?", (first,))
    with Registry.open(db) as reg:
        result = reg.verify()
    assert not result.ok
    assert any(f"expected entry {first} here" in p for p in result.problems)
