"""Blinded analysis: neutral arm codes, a frozen analysis plan, and an audited unblinding.

The statistician writes and tests the analysis on data whose arms are neutral codes
(``A``, ``B``...), freezes the statistical analysis plan, and only then learns which code
is which arm. Three audited steps, each an entry of the registry's audit log:

``blinding``
    Made with the first blinded export (:func:`blinded_export`, ``rjtrial export
    --blinded``, which needs the key): a random one-to-one mapping of arms to codes,
    encrypted with AES-256-GCM under the trial key, and its commitment
    ``SHA-256("rjtrial-blinding-v1", trial, mapping, nonce)`` with a secret 256-bit nonce.
    Every later blinded export uses the same mapping. The export replaces each arm by its
    code and leaves out what would show the arm: ``treatment_received`` (only the
    programme's arm can hold a conference) and ``receipt``.
``sap_frozen``
    :func:`freeze_sap` (``rjtrial sap freeze FILE``) records the SHA-256, name and size of
    the statistical analysis plan. It may be written without the key (it carries no
    allocation; it is then unsigned, and shown so).
``unblind``
    :func:`unblind` (``rjtrial unblind``, with the key and a reason) reveals the mapping
    and its nonce in a signed entry naming the plan frozen before it. It is **refused when
    no plan has been frozen**: the point of the freeze is to show that the plan was fixed
    before the mapping was seen, and a warning would leave exactly the record the freeze
    exists to prevent (an unblinding with no plan before it). Emergency unblinding of one
    participant is not this: the allocation of a participant is in the registry, which
    the trial's key holders and managers already read.

``verify`` checks, keyless: at most one ``blinding`` entry; each blinded export after it;
each ``unblind`` after a ``blinding`` and after a ``sap_frozen`` entry whose SHA-256 it
names, its mapping one-to-one from the protocol's arms to the codes, and its mapping and
nonce opening the commitment. With the key: the sealed mapping decrypts to the same.

Blinding conceals labels, not group sizes: with an unequal allocation ratio the larger
group is the arm with the larger share, and the report says so.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select

from rjtrial._canonical import canonical_json, sha256_hex
from rjtrial._result import Result
from rjtrial.errors import KeyFileError, RegistryError
from rjtrial.registry import audit, store

__all__ = [
    "BlindingStatus",
    "SapFreeze",
    "UnblindResult",
    "blinded_export",
    "codes_for",
    "freeze_sap",
    "mapping",
    "status",
    "unblind",
]

BLINDING, SAP_FROZEN, UNBLIND = "blinding", "sap_frozen", "unblind"
ACTIONS = (BLINDING, SAP_FROZEN, UNBLIND)
#: Columns a blinded export leaves out: they show the arm.
WITHHELD = ("treatment_received", "receipt")


def codes_for(arms) -> tuple[str, ...]:
    """Neutral codes for ``arms``: ``A``, ``B``, ... (``group-A``... when an arm is itself named like a code)."""
    letters = tuple(string.ascii_uppercase[i] if i < 26 else f"Z{i - 25}" for i in range(len(arms)))
    if {a.casefold() for a in arms} & {c.casefold() for c in letters}:
        return tuple(f"group-{c}" for c in letters)
    return letters


def _commitment(trial_id: str, arm_codes: Mapping[str, str], nonce: str) -> str:
    return sha256_hex("rjtrial-blinding-v1", trial_id, canonical_json(dict(arm_codes)), nonce)


def _aad(trial_id: str) -> bytes:
    return f"rjtrial-blinding-v1|{trial_id}".encode("utf-8")


def _entries(conn, actions=ACTIONS) -> list[Mapping[str, Any]]:
    rows = (
        conn.execute(
            select(
                store.audit.c.seq,
                store.audit.c.at,
                store.audit.c.actor,
                store.audit.c.action,
                store.audit.c.payload,
                store.audit.c.signature,
            )
            .where(store.audit.c.action.in_(actions))
            .order_by(store.audit.c.seq)
        )
        .mappings()
        .all()
    )
    out: list[Mapping[str, Any]] = []
    for r in rows:
        try:
            payload = json.loads(r["payload"])
        except ValueError:
            payload = {}
        out.append({**r, "payload": payload if isinstance(payload, dict) else {}})
    return out


def _open(entry: Mapping[str, Any], key: bytes, trial_id: str) -> tuple[dict[str, str], str]:
    try:
        raw = base64.b64decode(entry["payload"]["sealed"], validate=True)
        data = json.loads(AESGCM(key).decrypt(raw[:12], raw[12:], _aad(trial_id)))
    except (InvalidTag, ValueError, KeyError, TypeError):
        raise KeyFileError(
            "the key does not open the sealed blinding (wrong key file, or the record was altered)"
        ) from None
    return dict(data["mapping"]), str(data["nonce"])


def _get_or_create(registry, conn, head_row, key: bytes, by: str) -> tuple[dict[str, str], dict]:
    """The sealed mapping (arm -> code), made now if the trial has none; returns it and the head after."""
    from rjtrial.registry.core import now_utc

    found = _entries(conn, (BLINDING,))
    if found:
        return _open(found[0], key, registry.trial_id)[0], head_row
    arms = list(registry.protocol.arms)
    codes = list(codes_for(arms))
    secrets.SystemRandom().shuffle(codes)
    arm_codes = dict(zip(arms, codes))
    nonce = secrets.token_hex(32)
    iv = secrets.token_bytes(12)
    sealed = base64.b64encode(
        iv
        + AESGCM(key).encrypt(
            iv, canonical_json({"mapping": arm_codes, "nonce": nonce}).encode("utf-8"), _aad(registry.trial_id)
        )
    ).decode()
    payload = {"codes": sorted(codes), "sealed": sealed, "commitment": _commitment(registry.trial_id, arm_codes, nonce)}
    entry = audit.append(conn, head_row, key=key, at=now_utc(), actor=by, action=BLINDING, payload=payload)
    return arm_codes, {**head_row, "audit_seq": entry.seq, "audit_hash": entry.hash}


def blinded_export(registry, *, by: str = "unknown"):
    """The participants table with each arm replaced by its neutral code (logged; needs the key).

    Columns are those of :func:`rjtrial.registry.reports.participants_frame` without
    ``treatment_received`` and ``receipt`` (they show the arm); ``arm`` holds the code.
    ``attrs["blinded"]`` is True and ``attrs["codes"]`` lists the codes.
    """
    from rjtrial.registry.core import now_utc
    from rjtrial.registry.reports import participants_frame

    key = registry._require_key("a blinded export (the arm codes are sealed under the key)")
    by = str(by)[:100] or "unknown"
    frame = participants_frame(registry)
    with store.write_transaction(registry._engine) as (conn, head_row):
        arm_codes, head_row = _get_or_create(registry, conn, head_row, key, by)
        out = frame.drop(columns=[c for c in WITHHELD if c in frame.columns])
        out["arm"] = out["arm"].map(arm_codes)
        audit.append(
            conn,
            head_row,
            key=key,
            at=now_utc(),
            actor=by,
            action="export",
            payload={"rows": int(len(out)), "columns": list(out.columns), "blinded": True},
        )
    out.attrs.update(frame.attrs, blinded=True, codes=sorted(arm_codes.values()))
    return out


def mapping(registry) -> dict[str, str] | None:
    """The sealed mapping (arm -> code), read with the key without logging anything; None if no blinded export
    was made. For the report, which checks a blinded follow-up against it and shows only codes."""
    key = registry._require_key("reading the blinding")
    with store.read_transaction(registry._engine) as conn:
        found = _entries(conn, (BLINDING,))
    return _open(found[0], key, registry.trial_id)[0] if found else None


# ------------------------------------------------------------------ the analysis plan
@dataclass(frozen=True)
class SapFreeze(Result):
    """A statistical analysis plan recorded in the audit log (:func:`freeze_sap`)."""

    sha256: str
    name: str
    bytes: int
    audit_seq: int
    at: str
    by: str
    signed: bool
    version: int

    def summary_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "term": "sap",
                    "sha256": self.sha256,
                    "name": self.name,
                    "bytes": self.bytes,
                    "audit_seq": self.audit_seq,
                    "at": self.at,
                    "version": self.version,
                }
            ]
        )

    def format(self, digits: int = 4) -> str:
        return (
            f"statistical analysis plan {self.name} frozen (version {self.version}, audit entry {self.audit_seq}"
            f"{'' if self.signed else ', unsigned: recorded without the trial key'})\n"
            f"  SHA-256 {self.sha256}, {self.bytes} bytes, at {self.at} by {self.by}"
        )


def freeze_sap(registry, plan: str | Path | bytes, *, by: str = "unknown", name: str | None = None) -> SapFreeze:
    """Record the SHA-256 of the statistical analysis plan in the audit log, before unblinding.

    Parameters
    ----------
    registry : Registry
        With or without the key (without it the entry is unsigned).
    plan : path or bytes
        The plan (any file: PDF, Word, Markdown, an analysis script).
    by : str
        Who freezes it.
    name : str, optional
        Its name in the log (default: the file's name).

    Returns
    -------
    SapFreeze
        ``version`` counts the freezes of this trial (a revised plan is frozen again).
    """
    from rjtrial.registry.core import now_utc

    if isinstance(plan, (bytes, bytearray)):
        data, label = bytes(plan), name or "plan"
    else:
        path = Path(plan)
        if not path.is_file():
            raise RegistryError(f"analysis plan {path} not found")
        data, label = path.read_bytes(), name or path.name
    if not data:
        raise RegistryError(f"analysis plan {label} is empty")
    by = str(by)[:100] or "unknown"
    digest = hashlib.sha256(data).hexdigest()
    plan_name = str(label)[:200]
    payload = {"sha256": digest, "name": plan_name, "bytes": len(data)}
    with store.write_transaction(registry._engine) as (conn, head_row):
        version = len(_entries(conn, (SAP_FROZEN,))) + 1
        entry = audit.append(
            conn, head_row, key=registry._key, at=now_utc(), actor=by, action=SAP_FROZEN, payload=payload
        )
    return SapFreeze(digest, plan_name, len(data), entry.seq, entry.at, by, registry._key is not None, version)


# ------------------------------------------------------------------ unblinding
@dataclass(frozen=True)
class UnblindResult(Result):
    """The revealed mapping and the plan frozen before it (:func:`unblind`)."""

    mapping: Mapping[str, str]  # arm -> code
    sap_sha256: str
    sap_name: str
    sap_frozen_at: str
    reason: str
    audit_seq: int

    def summary_frame(self):
        import pandas as pd

        return pd.DataFrame({"code": list(self.mapping.values()), "arm": list(self.mapping)}).sort_values("code")

    def format(self, digits: int = 4) -> str:
        lines = [f"unblinded (audit entry {self.audit_seq}): {self.reason}"]
        lines += [f"  {code} = {arm}" for arm, code in sorted(self.mapping.items(), key=lambda kv: kv[1])]
        lines.append(
            f"analysis plan frozen before it: {self.sap_name}, SHA-256 {self.sap_sha256}, at {self.sap_frozen_at}"
        )
        return "\n".join(lines)


def unblind(registry, *, by: str, reason: str) -> UnblindResult:
    """Reveal which code is which arm: a signed, audited entry naming the plan frozen before it.

    Refused (nothing written) without the key, without a reason, when no blinded export was
    made, and when no analysis plan was frozen (see the module notes for why it is refused
    rather than warned about).
    """
    from rjtrial.registry.core import now_utc

    key = registry._require_key("unblinding")
    reason = str(reason or "").strip()
    if not reason:
        raise RegistryError("unblinding needs a reason (--reason): it is logged and shown in the report")
    by = str(by)[:100] or "unknown"
    with store.write_transaction(registry._engine) as (conn, head_row):
        found = _entries(conn)
        blinding = next((e for e in found if e["action"] == BLINDING), None)
        if blinding is None:
            raise RegistryError("nothing to unblind: no blinded export has been made (rjtrial export --blinded)")
        plans = [e for e in found if e["action"] == SAP_FROZEN]
        if not plans:
            raise RegistryError(
                "unblinding refused: no statistical analysis plan has been frozen; record it first with "
                "`rjtrial sap freeze PLAN` so that the log shows the plan was fixed before the arms were known"
            )
        plan = plans[-1]
        arm_codes, nonce = _open(blinding, key, registry.trial_id)
        payload = {
            "mapping": arm_codes,
            "nonce": nonce,
            "reason": reason,
            "commitment": blinding["payload"].get("commitment"),
            "sap": {
                "audit_seq": plan["seq"],
                "sha256": plan["payload"].get("sha256"),
                "name": plan["payload"].get("name"),
            },
        }
        entry = audit.append(conn, head_row, key=key, at=now_utc(), actor=by, action=UNBLIND, payload=payload)
    return UnblindResult(
        arm_codes, str(plan["payload"].get("sha256")), str(plan["payload"].get("name")), plan["at"], reason, entry.seq
    )


# ------------------------------------------------------------------ status and verify
@dataclass(frozen=True)
class BlindingStatus:
    """What the audit log says of blinding (keyless): codes, exports, plans frozen, unblindings."""

    codes: tuple[str, ...]
    blinded_at: str | None
    blinded_exports: int
    plans: tuple[Mapping[str, Any], ...]
    unblindings: tuple[Mapping[str, Any], ...]

    @property
    def active(self) -> bool:
        return bool(self.codes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "codes": list(self.codes),
            "blinded_at": self.blinded_at,
            "blinded_exports": self.blinded_exports,
            "plans": [dict(p) for p in self.plans],
            "unblindings": [dict(u) for u in self.unblindings],
        }


def status(registry) -> BlindingStatus:
    """The blinding's record in the audit log, read without the key."""
    with store.read_transaction(registry._engine) as conn:
        found = _entries(conn, ACTIONS + ("export",))
    blinding = next((e for e in found if e["action"] == BLINDING), None)
    plans = tuple(
        {
            "audit_seq": e["seq"],
            "at": e["at"],
            "by": e["actor"],
            "sha256": e["payload"].get("sha256"),
            "name": e["payload"].get("name"),
            "signed": bool(e["signature"]),
        }
        for e in found
        if e["action"] == SAP_FROZEN
    )
    unblindings = tuple(
        {
            "audit_seq": e["seq"],
            "at": e["at"],
            "by": e["actor"],
            "reason": e["payload"].get("reason"),
            "sap": e["payload"].get("sap"),
            "mapping": e["payload"].get("mapping"),
        }
        for e in found
        if e["action"] == UNBLIND
    )
    exports = sum(1 for e in found if e["action"] == "export" and e["payload"].get("blinded"))
    return BlindingStatus(
        tuple((blinding or {}).get("payload", {}).get("codes") or ()),
        None if blinding is None else blinding["at"],
        exports,
        plans,
        unblindings,
    )


def check_entries(entries, protocol, *, key: bytes | None = None) -> list[str]:
    """``verify``'s checks of the blinding entries (``entries``: the audit log, in order)."""
    problems = []
    blinding = None
    plans: dict[int, Any] = {}
    for e in entries:
        where = f"audit log entry {e.seq} ({e.action})"
        p = e.payload
        if e.action == BLINDING:
            if blinding is not None:
                problems.append(f"{where}: a second blinding (one mapping serves every blinded export)")
                continue
            blinding = e
            if sorted(p.get("codes") or []) != sorted(codes_for(protocol.arms)):
                problems.append(f"{where}: its codes are not the codes of the protocol's arms")
            if key is not None:
                try:
                    arm_codes, nonce = _open({"payload": p}, key, protocol.id)
                    if _commitment(protocol.id, arm_codes, nonce) != p.get("commitment"):
                        problems.append(f"{where}: the sealed mapping does not open its commitment")
                except KeyFileError as exc:
                    problems.append(f"{where}: {exc}")
        elif e.action == "export" and p.get("blinded") and blinding is None:
            problems.append(f"{where}: a blinded export before any blinding")
        elif e.action == SAP_FROZEN:
            if not isinstance(p.get("sha256"), str) or len(p["sha256"]) != 64:
                problems.append(f"{where}: no SHA-256 of a plan")
            plans[e.seq] = e
        elif e.action == UNBLIND:
            if blinding is None:
                problems.append(f"{where}: unblinds with no blinding before it")
                continue
            sap = p.get("sap") if isinstance(p.get("sap"), dict) else {}
            plan_seq = sap.get("audit_seq")
            plan = plans.get(plan_seq) if isinstance(plan_seq, int) else None
            if plan is None or plan.payload.get("sha256") != sap.get("sha256"):
                problems.append(f"{where}: names no analysis plan frozen before it")
            arm_codes = p.get("mapping") if isinstance(p.get("mapping"), dict) else {}
            if sorted(arm_codes) != sorted(protocol.arms) or sorted(arm_codes.values()) != sorted(
                blinding.payload.get("codes") or []
            ):
                problems.append(f"{where}: its mapping is not one-to-one from the arms to the codes")
            elif _commitment(protocol.id, arm_codes, str(p.get("nonce"))) != blinding.payload.get("commitment"):
                problems.append(f"{where}: its mapping and nonce do not open the blinding's commitment")
    return problems
