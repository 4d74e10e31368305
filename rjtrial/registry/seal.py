"""Sealing the allocation schedule: key file, encryption, slot commitments, commitment.

The schedule (seed, arm sequences or minimisation draws, and a secret from which
each slot's nonce is derived) is encrypted with AES-256-GCM under a 256-bit key that
lives only in the key file, never in the store. For every slot the store keeps a
*hiding commitment*::

    slot_commitment = SHA-256("rjtrial-slot-v1", trial id, sequence key, slot, value, nonce)

where ``value`` is the arm name (fixed sequences) or the uniform draw (minimisation)
and ``nonce`` is 256 secret bits. Without the nonce the commitment says nothing about
the value; when the slot is used, the value and nonce are revealed in the enrolment
record, so anyone can check the allocation against the commitment fixed at
initialisation. The trial's published *commitment* is SHA-256 over the protocol,
the public schedule record, the ciphertext and all slot commitments.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rjtrial._canonical import canonical_json, sha256_hex
from rjtrial.errors import KeyFileError
from rjtrial.randomise.schedule import Schedule

KEY_PREFIX = "rjtrial-key-v1:"
KEY_ENV = "RJTRIAL_KEY"


# ---------------------------------------------------------------------- key file
def create_key_file(path: str | Path) -> bytes:
    """Write a new random 256-bit key to ``path``, readable by its owner only.

    Refuses to overwrite an existing file (a lost key cannot be recreated, and an
    overwritten one would orphan its trial).
    """
    path = Path(path)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"key file {path} already exists; choose a new path (keys are never overwritten)") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(KEY_PREFIX + base64.b64encode(key).decode("ascii") + "\n")
    os.chmod(path, 0o600)
    return key


def read_key_file(path: str | Path) -> bytes:
    """Read a key file written by :func:`create_key_file`."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"key file {path} is accessible by other users; run: chmod 600 {path}")
    if not text.startswith(KEY_PREFIX):
        raise KeyFileError(f"{path} is not an rjtrial key file")
    try:
        key = base64.b64decode(text[len(KEY_PREFIX) :], validate=True)
    except ValueError:
        raise KeyFileError(f"key file {path} is corrupt") from None
    if len(key) != 32:
        raise KeyFileError(f"key file {path} is corrupt (wrong key length)")
    return key


def mac(key: bytes, message: str) -> str:
    """HMAC-SHA256 of ``message`` under a key derived from the trial key."""
    audit_key = hmac.new(key, b"rjtrial-audit-mac-v1", hashlib.sha256).digest()
    return hmac.new(audit_key, message.encode("utf-8"), hashlib.sha256).hexdigest()


# --------------------------------------------------------------- sealed schedule
@dataclass(frozen=True)
class Opened:
    """The decrypted schedule held by a process that has the key."""

    seed: int
    nonce_secret: bytes
    sequences: Mapping[str, list[int]]
    draws: list[float] | None

    def nonce(self, sequence_key: str, slot: int) -> str:
        return hmac.new(self.nonce_secret, f"{sequence_key}|{slot}".encode("utf-8"), hashlib.sha256).hexdigest()

    def value(self, sequence_key: str, slot: int, arms: tuple[str, ...]) -> str:
        """The committed value of a slot: the arm name, or the draw as ``float.hex``."""
        if self.draws is not None:
            return float(self.draws[slot]).hex()
        return arms[self.sequences[sequence_key][slot]]


def seal(schedule: Schedule, key: bytes, trial_id: str) -> tuple[str, Opened]:
    """Encrypt the schedule; return the ciphertext (base64) and its opened form."""
    opened = Opened(
        seed=schedule.seed,
        nonce_secret=secrets.token_bytes(32),
        sequences={k: [int(a) for a in v] for k, v in schedule.sequences.items()},
        draws=None if schedule.draws is None else [float(d) for d in schedule.draws],
    )
    plaintext = canonical_json(
        {
            "seed": str(opened.seed),
            "nonce_secret": opened.nonce_secret.hex(),
            "sequences": opened.sequences,
            "draws": None if opened.draws is None else [d.hex() for d in opened.draws],
        }
    ).encode("utf-8")
    nonce = secrets.token_bytes(12)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, _aad(trial_id))
    return base64.b64encode(nonce + ciphertext).decode("ascii"), opened


def unseal_schedule(sealed: str, key: bytes, trial_id: str) -> Opened:
    """Decrypt a sealed schedule; a wrong key or an altered ciphertext raises KeyFileError."""
    try:
        raw = base64.b64decode(sealed, validate=True)
        plaintext = AESGCM(key).decrypt(raw[:12], raw[12:], _aad(trial_id))
    except (InvalidTag, ValueError):
        raise KeyFileError(
            f"the key does not open trial {trial_id!r}'s sealed sequence (wrong key file, or the sealed record was altered)"
        ) from None
    import json

    data = json.loads(plaintext)
    draws = data["draws"]
    return Opened(
        seed=int(data["seed"]),
        nonce_secret=bytes.fromhex(data["nonce_secret"]),
        sequences=data["sequences"],
        draws=None if draws is None else [float.fromhex(d) for d in draws],
    )


def _aad(trial_id: str) -> bytes:
    return f"rjtrial-seal-v1|{trial_id}".encode("utf-8")


# ------------------------------------------------------------------- commitments
def slot_commitment(trial_id: str, sequence_key: str, slot: int, value: str, nonce: str) -> str:
    """SHA-256 commitment (hex) to the arm of one sealed slot, bound to trial, sequence, slot and nonce."""
    return sha256_hex("rjtrial-slot-v1", trial_id, sequence_key, str(slot), value, nonce)


def slot_commitments(opened: Opened, trial_id: str, arms: tuple[str, ...], keys: list[str], capacity: int):
    """Every slot's commitment, in the order of ``keys`` and slot number."""
    for key in keys:
        for slot in range(capacity):
            value = opened.value(key, slot, arms)
            yield key, slot, slot_commitment(trial_id, key, slot, value, opened.nonce(key, slot))


def slots_digest(rows) -> str:
    """SHA-256 over (sequence key, slot, commitment) rows, in the order given."""
    digest = hashlib.sha256()
    for key, slot, commitment in rows:
        digest.update(f"{key}\t{slot}\t{commitment}\n".encode("utf-8"))
    return digest.hexdigest()


def trial_commitment(protocol_json: str, schedule_json: str, sealed: str, slots_sha256: str) -> str:
    """The commitment published in the trial registration."""
    return sha256_hex(
        "rjtrial-commitment-v1",
        protocol_json,
        schedule_json,
        hashlib.sha256(sealed.encode("ascii")).hexdigest(),
        slots_sha256,
    )


def regenerated_matches(opened: Opened, protocol, record: Mapping) -> bool | None:
    """Does regenerating the schedule from the sealed seed give the sealed sequences?

    Returns None when the numpy version differs from the one that generated it (the
    bit streams of ``numpy.random.Generator`` methods are only guaranteed within a
    version), so a mismatch could not be told from a version change.
    """
    from rjtrial.randomise.schedule import make_schedule

    if record.get("numpy_version") != np.__version__:
        return None
    again = make_schedule(protocol, seed=opened.seed)
    if opened.draws is not None:
        return again.draws is not None and [float(d) for d in again.draws] == list(opened.draws)
    return {k: [int(a) for a in v] for k, v in again.sequences.items()} == {
        k: list(v) for k, v in opened.sequences.items()
    }

