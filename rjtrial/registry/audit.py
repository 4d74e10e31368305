"""The hash-chained audit log.

Each entry's hash covers the previous entry's hash and the entry's own fields, so an
edited, deleted, inserted or reordered entry breaks the chain from that point on.
A key holder also stores, for each hash, an Ed25519 signature (checked by anyone
with the public key kept in the trial row and covered by the published commitment)
and an HMAC (checked with the key). Someone with write access to the database but
without the key can recompute hashes but neither of these: :func:`check_chain`
detects a log rewritten from scratch without the key, and with the published
commitment even one re-signed under a replaced public key. An export, or an account
change of the randomisation service, made without the key is logged unsigned (only
those actions may be).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from sqlalchemy import insert, update
from sqlalchemy.engine import Connection

from rjtrial._canonical import canonical_json, sha256_hex
from rjtrial.registry import store
from rjtrial.registry.seal import mac, sign, signature_ok

GENESIS = "0" * 64
# Entries of the randomisation service (rjtrial.web): log-ins, and account changes.
ACCESS_ACTIONS = ("login", "login_failed", "login_locked", "logout")
ACCOUNT_ACTIONS = ("user_added", "user_disabled", "user_enabled", "user_password", "token_issued", "token_revoked")
# Actions that someone without the key may log (they carry no allocation): exports, freezing the
# analysis plan (rjtrial.registry.blinding), a record that someone viewed participant data
# (rjtrial.registry.access), account changes, and an interim look (rjtrial.registry.monitoring).
UNSIGNED_ACTIONS = ("export", "sap_frozen", "data_access") + ACCOUNT_ACTIONS + ("interim_look",)


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the hash-chained audit log: number, time, actor, action, payload and chain hashes."""

    seq: int
    at: str
    actor: str
    action: str
    payload: Mapping[str, Any]
    prev_hash: str
    hash: str


def entry_hash(prev_hash: str, seq: int, at: str, actor: str, action: str, payload_json: str) -> str:
    """SHA-256 of an audit entry, chained to the previous entry's hash (hex)."""
    return sha256_hex("rjtrial-audit-v1", prev_hash, str(seq), at, actor, action, payload_json)


def receipt_for(hash_hex: str) -> str:
    """The receipt handed to the enroller: the first 48 bits of the entry hash."""
    h = hash_hex[:12].upper()
    return f"RJ-{h[0:4]}-{h[4:8]}-{h[8:12]}"


def split_receipt(line: str) -> tuple[str, str]:
    """A receipt as kept by its holder -- ``RJ-XXXX-XXXX-XXXX``, optionally followed by a label such as
    the referral id and arm -- split into the receipt (upper case) and the label."""
    receipt, _, label = str(line).strip().partition(" ")
    return receipt.upper(), label.strip()


def append(
    conn: Connection,
    head_row: Mapping[Any, Any],  # a dict or SQLAlchemy's RowMapping (keyed by name or column)
    *,
    key: bytes | None,
    at: str,
    actor: str,
    action: str,
    payload: Mapping[str, Any],
    head_updates: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append an entry after the locked ``head_row`` and move the head to it."""
    seq = head_row["audit_seq"] + 1
    payload_json = canonical_json(payload)
    digest = entry_hash(head_row["audit_hash"], seq, at, actor, action, payload_json)
    conn.execute(
        insert(store.audit).values(
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            payload=payload_json,
            prev_hash=head_row["audit_hash"],
            hash=digest,
            mac="" if key is None else mac(key, digest),
            signature="" if key is None else sign(key, digest),
        )
    )
    values = {"audit_seq": seq, "audit_hash": digest, **(head_updates or {})}
    conn.execute(update(store.head).where(store.head.c.id == 1).values(**values))
    return AuditEntry(seq, at, actor, action, dict(payload), head_row["audit_hash"], digest)


def check_chain(
    rows: Iterable[Mapping[Any, Any]], *, key: bytes | None = None, public_key: str | None = None
) -> tuple[list[AuditEntry], list[str]]:
    """Recompute the chain; return the entries and the problems, first bad record first.

    With ``public_key`` every entry's Ed25519 signature is checked (an entry may be
    unsigned only if its action is one of :data:`UNSIGNED_ACTIONS`); with ``key`` its
    HMAC too. An entry whose payload is not a JSON object is a problem (its payload
    is then read as an empty object).
    """
    entries: list[AuditEntry] = []
    problems: list[str] = []
    prev = GENESIS
    expected_seq = 1
    for row in rows:
        where = f"audit log entry {row['seq']} ({row['action']})"
        if row["seq"] != expected_seq:
            problems.append(f"{where}: expected entry {expected_seq} here (an entry was deleted or inserted)")
            expected_seq = row["seq"]
        if row["prev_hash"] != prev:
            problems.append(f"{where}: does not link to the entry before it (deleted, inserted or reordered)")
        recomputed = entry_hash(row["prev_hash"], row["seq"], row["at"], row["actor"], row["action"], row["payload"])
        if recomputed != row["hash"]:
            problems.append(f"{where}: contents do not match its hash (edited)")
        unsigned_allowed = row["action"] in UNSIGNED_ACTIONS and row["mac"] == "" and row["signature"] == ""
        if public_key is not None and not unsigned_allowed:
            if not row["signature"]:
                problems.append(f"{where}: has no signature (written without the trial key)")
            elif not signature_ok(public_key, row["hash"], row["signature"]):
                problems.append(
                    f"{where}: its signature does not verify with the trial's public key (forged or edited)"
                )
        if key is not None and mac(key, row["hash"]) != row["mac"] and not unsigned_allowed:
            problems.append(f"{where}: not signed with the trial key (written without the key)")
        try:
            payload = json.loads(row["payload"])
        except ValueError:
            problems.append(f"{where}: payload is not valid JSON")
            payload = {}
        if not isinstance(payload, dict):
            problems.append(f"{where}: payload is not a JSON object (found {type(payload).__name__})")
            payload = {}
        entries.append(
            AuditEntry(row["seq"], row["at"], row["actor"], row["action"], payload, row["prev_hash"], row["hash"])
        )
        prev = row["hash"]
        expected_seq += 1
    return entries, problems
