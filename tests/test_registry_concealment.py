"""Allocation concealment (rjtrial/registry/seal.py, core.py): the database alone reveals no future allocation.

Registry ``A`` is created and partly enrolled; its twin ``B`` is created with the
same seed and unsealed, so the test knows A's whole schedule. Someone holding A's
database files but not A's key must not find that schedule in them: not as text,
not by opening slot commitments, not by decrypting the sealed record.
Each search is first shown to find its target where the target is (the decrypted
plaintext, the used slots), so a search that could never succeed cannot pass.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sqlite3
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from registry_fixtures import TABLES, enrol_all, make_protocol, new_registry, referral_stream, rows

from rjtrial.errors import KeyFileError
from rjtrial.registry import seal

SEED = 0x5EED_CAFE_F00D_1234_5678_9ABC  # distinctive: its digits cannot occur by chance
CAPACITY = 48


class Trial:
    """Registry A (open, partly enrolled) and what its twin B's unseal revealed."""

    def __init__(self, folder: Path, method: str):
        (folder / "a").mkdir()
        (folder / "b").mkdir()
        protocol = make_protocol(method, capacity=CAPACITY)
        self.method = method
        self.protocol = protocol
        self.a = new_registry(folder / "a", protocol, seed=SEED)
        enrol_all(self.a, referral_stream(14, seed=21, p_ineligible=0.2))
        self.folder = folder / "a"
        self.db = folder / "a" / "trial.db"
        self.key = seal.read_key_file(folder / "a" / "trial.key")
        with new_registry(folder / "b", protocol, seed=SEED) as b:
            self.b_commitment = b.commitment
            enrol_all(b, referral_stream(14, seed=21, p_ineligible=0.2))
            self.b_reveals = {
                (r["sequence_key"], r["slot"]): r["reveal"]
                for r in rows(
                    folder / "b" / "trial.db",
                    "SELECT sequence_key, slot, reveal FROM rj_referrals WHERE reveal IS NOT NULL",
                )
            }
            self.b_key = seal.read_key_file(folder / "b" / "trial.key")
            revealed = b.unseal()
        self.sequences = revealed.sequences  # arm names, per sequence key
        self.draws = revealed.draws
        used = rows(self.db, "SELECT sequence_key, slot, value, reveal FROM rj_referrals WHERE reveal IS NOT NULL")
        self.used = {(r["sequence_key"], r["slot"]): (r["value"], r["reveal"]) for r in used}
        self.slot_commitments = {
            (r["sequence_key"], r["slot"]): r["commitment"] for r in rows(self.db, "SELECT * FROM rj_slots")
        }
        self.plaintext = self._decrypt()

    def _decrypt(self) -> bytes:
        (sealed,) = rows(self.db, "SELECT sealed FROM rj_trial")[0]
        raw = base64.b64decode(sealed)
        return AESGCM(self.key).decrypt(raw[:12], raw[12:], f"rjtrial-seal-v1|{self.protocol.id}".encode())

    def next_slot(self, key: str) -> int:
        if self.protocol.randomisation.is_adaptive:
            return len(self.used)
        return 1 + max((s for k, s in self.used if k == key), default=-1)

    def future_needles(self) -> dict[str, bytes]:
        """Text forms of the not-yet-used part of the schedule, each long enough not to occur by chance."""
        needles = {}
        if self.draws is not None:
            nxt = self.next_slot("all")
            for slot in range(nxt, nxt + 6):
                needles[f"draw {slot} (float.hex)"] = float(self.draws[slot]).hex().encode()
                needles[f"draw {slot} (repr)"] = repr(float(self.draws[slot])).encode()
            return needles
        index = {arm: i for i, arm in enumerate(self.protocol.arms)}
        for key, arms in self.sequences.items():
            future = arms[self.next_slot(key) :][:20]
            ints = [index[a] for a in future]
            needles[f"{key}: indices as JSON"] = json.dumps(ints, separators=(",", ":"))[1:-1].encode()
            needles[f"{key}: indices spaced"] = json.dumps(ints)[1:-1].encode()
            needles[f"{key}: indices as digits"] = "".join(map(str, ints)).encode()
            needles[f"{key}: names as JSON"] = json.dumps(future, separators=(",", ":"))[1:-1].encode()
            needles[f"{key}: names spaced"] = " ".join(future).encode()
        return needles

    def seed_needles(self) -> dict[str, bytes]:
        return {"seed (decimal)": str(SEED).encode(), "seed (hex)": format(SEED, "x").encode()}

    def file_bytes(self) -> dict[str, bytes]:
        """Every file of the store (database, WAL, shared memory), not the key file."""
        return {p.name: p.read_bytes() for p in self.folder.iterdir() if p.name.startswith("trial.db")}


@pytest.fixture(scope="module", params=["stratified_blocks", "minimisation"])
def trial(request, tmp_path_factory):
    t = Trial(tmp_path_factory.mktemp(request.param), request.param)
    yield t
    t.a.close()


def test_the_searches_find_the_schedule_in_the_decrypted_plaintext(trial):
    plaintext_forms = ("indices as JSON", "(float.hex)", "seed (decimal)")  # how the seal writes them
    checked = 0
    for name, needle in {**trial.future_needles(), **trial.seed_needles()}.items():
        if name.endswith(plaintext_forms):
            assert needle in trial.plaintext, name
            checked += 1
    assert checked >= 5


def test_the_store_files_hold_no_future_allocation_or_seed_while_open(trial):
    files = trial.file_bytes()
    assert {"trial.db", "trial.db-wal"} <= files.keys()  # the WAL still holds recent pages
    for fname, data in files.items():
        for name, needle in {**trial.future_needles(), **trial.seed_needles()}.items():
            assert needle not in data, f"{name} found in {fname}"


def test_every_table_cell_holds_no_future_allocation_or_seed(trial):
    needles = {**trial.future_needles(), **trial.seed_needles()}
    with sqlite3.connect(trial.db) as conn:
        for table in TABLES:
            for row in conn.execute(f"SELECT * FROM {table}"):
                for cell in row:
                    text = str(cell).encode()
                    for name, needle in needles.items():
                        assert needle not in text, f"{name} in table {table}"
    conn.close()


def test_used_slots_open_with_their_revealed_value_and_nonce(trial):
    assert len(trial.used) >= 8
    for (key, slot), (value, reveal) in trial.used.items():
        assert seal.slot_commitment(trial.protocol.id, key, slot, value, reveal) == trial.slot_commitments[(key, slot)]


def test_future_slots_cannot_be_opened_even_knowing_their_true_value(trial):
    """Try every arm and the true value (known from the twin) with every nonce an intruder could try."""
    nonces = {reveal for _, reveal in trial.used.values()} | set(trial.b_reveals.values()) | {"", "0" * 64}
    tried = 0
    for (key, slot), stored in trial.slot_commitments.items():
        if (key, slot) in trial.used:
            continue
        if trial.draws is not None:
            values = {float(trial.draws[slot]).hex()} | set(trial.protocol.arms)
        else:
            values = set(trial.protocol.arms) | {trial.sequences[key][slot]}
        for value in values:
            for nonce in nonces:
                tried += 1
                assert seal.slot_commitment(trial.protocol.id, key, slot, value, nonce) != stored, (key, slot, value)
    assert tried > 1000


@pytest.mark.parametrize("which", ["random_key", "twin_with_the_same_seed", "right_key_other_trial_id"])
def test_the_sealed_record_does_not_decrypt_without_its_key(trial, which):
    (sealed,) = rows(trial.db, "SELECT sealed FROM rj_trial")[0]
    key = {"random_key": os.urandom(32), "twin_with_the_same_seed": trial.b_key, "right_key_other_trial_id": trial.key}[
        which
    ]
    trial_id = "other-trial" if which == "right_key_other_trial_id" else trial.protocol.id
    with pytest.raises(KeyFileError):
        seal.unseal_schedule(sealed, key, trial_id)
    raw = base64.b64decode(sealed)
    with pytest.raises(InvalidTag):
        AESGCM(key).decrypt(raw[:12], raw[12:], f"rjtrial-seal-v1|{trial_id}".encode())
    # the right key does open it (so the failures above are the key's doing)
    assert seal.unseal_schedule(sealed, trial.key, trial.protocol.id).seed == SEED


def test_the_key_never_appears_in_the_store(trial):
    audit_key = hmac.new(trial.key, b"rjtrial-audit-mac-v1", hashlib.sha256).digest()
    forms = {
        "raw": trial.key,
        "base64": base64.b64encode(trial.key),
        "hex": trial.key.hex().encode(),
        "HEX": trial.key.hex().upper().encode(),
        "audit MAC key": audit_key,
        "audit MAC key hex": audit_key.hex().encode(),
    }
    trial.a.close()  # after closing, the WAL is folded into the database file: scan that too
    for fname, data in {**trial.file_bytes(), "key file": b""}.items():
        for name, form in forms.items():
            assert form not in data, f"key ({name}) found in {fname}"
    for fname, data in trial.file_bytes().items():
        for name, needle in {**trial.future_needles(), **trial.seed_needles()}.items():
            assert needle not in data, f"{name} found in {fname} after close"


def test_the_stored_schedule_record_has_no_seed(trial):
    (row,) = rows(trial.db, "SELECT schedule FROM rj_trial")
    record = json.loads(row["schedule"])
    assert "seed" not in record
    assert record["method"] == trial.method and record["arms"] == list(trial.protocol.arms)
    (init,) = rows(trial.db, "SELECT payload FROM rj_audit WHERE action = 'init'")
    assert "seed" not in json.loads(init["payload"])["schedule"]


def test_the_same_seed_gives_unrelated_commitments(trial):
    """Guessing the seed cannot be confirmed from the published commitment or the slot commitments."""
    assert trial.a.commitment != trial.b_commitment
    with sqlite3.connect(trial.folder.parent / "b" / "trial.db") as conn:
        b_slots = dict(((k, s), c) for k, s, c in conn.execute("SELECT sequence_key, slot, commitment FROM rj_slots"))
    conn.close()
    assert b_slots.keys() == trial.slot_commitments.keys()
    assert all(b_slots[k] != c for k, c in trial.slot_commitments.items())


# ------------------------------------------------------- revealed draws are keyed draws
def test_the_revealed_minimisation_draws_are_keyed_not_a_pcg64_stream(tmp_path):
    """The draws a minimisation registry reveals slot by slot are HMAC outputs under the
    sealed seed, not outputs of a numpy generator that any seed-derivable state gives."""
    import numpy as np

    from rjtrial.randomise.keyed import keyed_uniform, schedule_secret

    seed = 20260102
    with new_registry(tmp_path, make_protocol("minimisation", capacity=400), seed=seed) as reg:
        enrol_all(reg, referral_stream(300, seed=3))
    used = rows(tmp_path / "trial.db", "SELECT slot, value FROM rj_referrals WHERE slot IS NOT NULL ORDER BY slot")
    draws = [float.fromhex(r["value"]) for r in used]
    assert len(draws) == 300
    assert draws == [keyed_uniform(schedule_secret(seed), "minimisation", r["slot"]) for r in used]
    root = np.random.SeedSequence(seed)
    for stream in (
        np.random.default_rng(seed).random(200_000),
        np.random.Generator(np.random.PCG64(root)).random(200_000),
        np.random.Generator(np.random.PCG64(root.spawn(1)[0])).random(200_000),
    ):
        assert not set(draws) & set(stream.tolist())


# ---------------------------------------------------------- coordinators: per-site numbers
THREE_SITES = {"site": ["north", "south", "east"], "offence": ["property", "violence"]}


def _three_site_registry(folder, interleave: bool):
    """One `blocks` sequence shared by three sites; north enrols five, others in between or not."""
    from registry_fixtures import ELIGIBLE, protocol_dict, when

    from rjtrial import Protocol

    data = protocol_dict("blocks", capacity=60)
    data["strata"] = THREE_SITES
    folder.mkdir()
    reg = new_registry(folder, Protocol.from_dict(data), seed=5)
    north, i = [], 0
    for k in range(5):
        if interleave:
            for site in ("south", "east"):
                reg.enrol(
                    f"{site[0].upper()}-{k}", strata={"site": site, "offence": "property"}, answers=ELIGIBLE, at=when(i)
                )
                i += 1
        north.append(reg.enrol(f"N-{k}", strata={"site": "north", "offence": "property"}, answers=ELIGIBLE, at=when(i)))
        i += 1
    return reg, north


def test_a_coordinator_sees_per_site_numbers_not_the_shared_sequence_position(tmp_path):
    alone, north_alone = _three_site_registry(tmp_path / "alone", interleave=False)
    shared, north_shared = _three_site_registry(tmp_path / "shared", interleave=True)
    # the trial-wide position moves with the other sites' enrolments...
    assert [r.sequence_number for r in north_shared] == [3, 6, 9, 12, 15]
    # ...what a north coordinator is shown does not
    for a, b in zip(north_alone, north_shared):
        assert "sequence_number" not in b.coordinator_dict()
        assert a.coordinator_dict()["site_sequence_number"] == b.coordinator_dict()["site_sequence_number"]
    assert [r.coordinator_dict()["site_sequence_number"] for r in north_shared] == [1, 2, 3, 4, 5]
    numbers = shared.site_sequence_numbers()
    assert [numbers[f"N-{k}"] for k in range(5)] == [1, 2, 3, 4, 5]
    assert [numbers[f"E-{k}"] for k in range(5)] == [1, 2, 3, 4, 5]
    trial_wide = rows(tmp_path / "shared" / "trial.db", "SELECT referral_id, sequence_number FROM rj_referrals")
    assert shared.site_sequence_numbers(site_stratum="region") == {r[0]: r[1] for r in trial_wide}  # no such stratum
    alone.close(), shared.close()
