"""Sealing the allocation schedule: key file, encryption, commitments, audit signatures.

The schedule (seed, arm sequences or minimisation draws, and a secret from which
each slot's nonce is derived) is encrypted with AES-256-GCM under a 256-bit key that
lives only in the key file, never in the store. For every slot the store keeps a
*hiding commitment*::

    slot_commitment = SHA-256("rjtrial-slot-v1", trial id, sequence key, slot, value, nonce)

where ``value`` is the arm name (fixed sequences) or the uniform draw (minimisation)
and ``nonce`` is 256 secret bits. Without the nonce the commitment says nothing about
the value; when the slot is used, the value and nonce are revealed in the enrolment
record, so anyone can check the allocation against the commitment fixed at
initialisation.

From the trial key two further keys are derived: an HMAC key that signs each audit
entry for key holders (``mac``), and an **Ed25519 signing key** whose public half is
stored in the trial row: every audit entry written with the key carries an Ed25519
signature of its hash, which anyone can check without the key, and which nobody
without the key can make. The trial's published *commitment* is SHA-256 over the
protocol, the public schedule record, the ciphertext, all slot commitments and that
public key, so a store whose signing key was replaced fails against the published
commitment.

Unsealing appends a line to the key file (``unsealed <trial> <entry> <hash>``): a
key file that has unsealed its trial never enrols again, and ``verify`` with it
requires the unseal entry to be in the log.
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

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from rjtrial._canonical import canonical_json, sha256_hex
from rjtrial.errors import KeyFileError
from rjtrial.randomise.schedule import Schedule

KEY_PREFIX = "rjtrial-key-v1:"
KEY_ENV = "RJTRIAL_KEY"
UNSEALED_PREFIX = "unsealed "


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


def _key_file_lines(path: Path) -> list[str]:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"key file {path} is accessible by other users; run: chmod 600 {path}")
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_key_file(path: str | Path) -> bytes:
    """Read a key file written by :func:`create_key_file`."""
    path = Path(path)
    lines = _key_file_lines(path)
    text = lines[0] if lines else ""
    if not text.startswith(KEY_PREFIX):
        raise KeyFileError(f"{path} is not an rjtrial key file")
    try:
        key = base64.b64decode(text[len(KEY_PREFIX) :], validate=True)
    except ValueError:
        raise KeyFileError(f"key file {path} is corrupt") from None
    if len(key) != 32:
        raise KeyFileError(f"key file {path} is corrupt (wrong key length)")
    if any(not line.startswith(UNSEALED_PREFIX.strip()) for line in lines[1:]):
        raise KeyFileError(f"key file {path} is corrupt (unexpected line after the key)")
    return key


@dataclass(frozen=True)
class UnsealMark:
    """What a key file records of its trial's unsealing (a line cut short: ``seq`` and ``hash`` None)."""

    trial_id: str | None
    seq: int | None
    hash: str | None


def read_unseal_mark(path: str | Path) -> UnsealMark | None:
    """The key file's record that it unsealed its trial, or None if it never did."""
    lines = _key_file_lines(Path(path))
    marks = [line for line in lines[1:] if line.startswith(UNSEALED_PREFIX.strip())]
    if not marks:
        return None
    parts = marks[0].split()[1:]
    try:
        trial_id, seq, digest = parts[0], int(parts[1]), parts[2]
    except (IndexError, ValueError):  # a line cut short by a crash still means "unsealed"
        return UnsealMark(parts[0] if parts else None, None, None)
    return UnsealMark(trial_id, seq, digest)


def mark_unsealed(path: str | Path, trial_id: str, seq: int, digest: str) -> None:
    """Append the unseal record to the key file (flushed to disk before returning)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except OSError as exc:
        raise KeyFileError(f"cannot record the unsealing in key file {path}: {exc.strerror}") from None
    try:
        os.write(fd, f"{UNSEALED_PREFIX}{trial_id} {seq} {digest}\n".encode("ascii"))
        os.fsync(fd)
    except OSError as exc:
        raise KeyFileError(f"cannot record the unsealing in key file {path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def mac(key: bytes, message: str) -> str:
    """HMAC-SHA256 of ``message`` under a key derived from the trial key."""
    audit_key = hmac.new(key, b"rjtrial-audit-mac-v1", hashlib.sha256).digest()
    return hmac.new(audit_key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def _signing_key(key: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hmac.new(key, b"rjtrial-audit-sign-v1", hashlib.sha256).digest())


def public_key(key: bytes) -> str:
    """The trial's audit verification key (Ed25519, 32 bytes as hex), derived from the trial key."""
    return _signing_key(key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _signed_message(entry_hash: str) -> bytes:
    return b"rjtrial-audit-entry-v1|" + entry_hash.encode("ascii")


def sign(key: bytes, entry_hash: str) -> str:
    """The Ed25519 signature (hex) of an audit entry's hash, under the key derived from the trial key."""
    return _signing_key(key).sign(_signed_message(entry_hash)).hex()


def signature_ok(public_hex: str, entry_hash: str, signature_hex: str) -> bool:
    """Is ``signature_hex`` a valid signature of ``entry_hash`` under the public key ``public_hex``?"""
    try:
        verifier = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        verifier.verify(bytes.fromhex(signature_hex), _signed_message(entry_hash))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


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


def trial_commitment(
    protocol_json: str, schedule_json: str, sealed: str, slots_sha256: str, audit_public_key: str
) -> str:
    """The commitment published in the trial registration."""
    return sha256_hex(
        "rjtrial-commitment-v2",
        protocol_json,
        schedule_json,
        hashlib.sha256(sealed.encode("ascii")).hexdigest(),
        slots_sha256,
        audit_public_key,
    )


def regenerated_matches(opened: Opened, protocol, record: Mapping) -> bool | None:
    """Does regenerating the schedule from the sealed seed give the sealed sequences?

    Returns None when the schedule record names another derivation of the draws than
    this version's (:data:`rjtrial.randomise.keyed.SCHEME`), so that a mismatch could
    not be told from a change of version. The keyed draws do not depend on numpy's
    bit streams, so a numpy upgrade does not prevent the check.
    """
    from rjtrial.randomise.keyed import SCHEME
    from rjtrial.randomise.schedule import make_schedule

    if record.get("draws") != SCHEME:
        return None
    again = make_schedule(protocol, seed=opened.seed)
    if opened.draws is not None:
        return again.draws is not None and [float(d) for d in again.draws] == list(opened.draws)
    return {k: [int(a) for a in v] for k, v in again.sequences.items()} == {
        k: list(v) for k, v in opened.sequences.items()
    }
