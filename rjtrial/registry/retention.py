"""Personal data the registry may erase, and its retention policy, without breaking the audit chain.

Criminal-offence data may be kept only as long as needed (UK GDPR Art. 5(1)(e); Data
Protection Act 2018 Part 3). The allocation record itself -- who was randomised to what,
when -- must stay for the trial's analysis and audit, and under pseudonymous referral ids
(:mod:`rjtrial.pseudonym`) it names nobody. What names people is the free text a site
records with a referral or an event: names, addresses, notes. Such **personal fields**
are given apart (``Registry.enrol(..., personal={...})``, ``record_event(...,
personal={...})``, ``rjtrial enrol --personal NAME=VALUE``) and kept out of the hash chain:

* the table ``rj_personal`` holds them with a 256-bit random salt;
* the audit entry holds only ``SHA-256("rjtrial-personal-v1", salt, fields)`` and the
  fields' names.

:func:`apply_retention` (``rjtrial retention apply --before DATE``, with the key) erases
the fields and the salt of every record dated before ``DATE`` and logs one signed
``erasure`` entry listing each record erased and its digest. Without the salt the digest
cannot be used to test a guess of what was erased. Every entry before it keeps its hash,
so the chain verifies after the erasure; ``verify`` checks, keyless:

* every record with personal fields either has them, unchanged (the salted digest
  matches), or was listed by an erasure logged after it;
* every erasure lists records logged before it, dated before its retention date, with
  the digests they logged, none twice, and its retention date is not after it was logged;
* no erased record has its fields back, and ``rj_personal`` holds nothing no record logged.

So deleting or editing personal data without an erasure, an erasure that reaches past
its date, or a rewritten erasure entry (its signature) each fail ``verify``. The erasure
needs the key so that it is attributable to a key holder: it destroys data for good.

Names of staff are not personal fields: user names are the ``by`` of every entry and stay
in the chain. Use role or staff-number user names, not e-mail addresses.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Mapping

from sqlalchemy import insert, inspect, select, update

from rjtrial._canonical import canonical_json, sha256_hex
from rjtrial._result import Result
from rjtrial.registry import audit, store

__all__ = ["ErasureResult", "apply_retention", "check", "personal_data"]

ACTION = "erasure"
MAX_CHARACTERS = 10_000
_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def digest(salt: str, fields: Mapping[str, str]) -> str:
    """The salted SHA-256 of personal fields that the audit log holds in their place."""
    return sha256_hex("rjtrial-personal-v1", salt, canonical_json(dict(fields)))


def prepare(personal: Mapping[str, Any] | None) -> tuple[dict[str, Any] | None, dict[str, str] | None]:
    """Check personal fields; return what the audit entry records and what ``rj_personal`` keeps (or None, None)."""
    if not personal:
        return None, None
    fields = dict(personal)
    bad = [k for k in fields if not isinstance(k, str) or not _FIELD.fullmatch(k)]
    if bad:
        raise ValueError(f"personal field names must be identifiers (letters, digits, _): {bad!r}")
    not_text = [k for k, v in fields.items() if not isinstance(v, str)]
    if not_text:
        raise ValueError(f"personal fields must be text: {not_text!r}")
    if sum(len(v) for v in fields.values()) > MAX_CHARACTERS:
        raise ValueError(f"personal fields hold at most {MAX_CHARACTERS:,} characters")
    salt = secrets.token_hex(32)
    return (
        {"digest": digest(salt, fields), "fields": sorted(fields)},
        {"fields": canonical_json(fields), "salt": salt},
    )


def store_row(conn, seq: int, referral_id: str, row: Mapping[str, str]) -> None:
    """Keep the fields of the entry ``seq`` (creating ``rj_personal`` in a store made before it existed)."""
    store.personal.create(conn, checkfirst=True)
    conn.execute(insert(store.personal).values(audit_seq=seq, referral_id=referral_id, **row))


def _rows(conn) -> dict[int, Mapping[str, Any]]:
    if not inspect(conn).has_table(store.personal.name):
        return {}
    return {r["audit_seq"]: dict(r) for r in conn.execute(select(store.personal)).mappings()}


# ------------------------------------------------------------------ erasure
@dataclass(frozen=True)
class ErasureResult(Result):
    """What :func:`apply_retention` erased (or, with ``dry_run``, would erase)."""

    before: str
    erased: int
    referrals: tuple[str, ...]
    audit_seq: int | None
    dry_run: bool = False

    def summary_frame(self):
        import pandas as pd

        return pd.DataFrame({"term": "erased", "referral_id": list(self.referrals)})

    def format(self, digits: int = 4) -> str:
        verb = "would erase" if self.dry_run else "erased"
        where = "" if self.audit_seq is None else f" (audit entry {self.audit_seq})"
        return (
            f"{verb} the personal fields of {self.erased} record(s) dated before {self.before}{where}, "
            f"{len(set(self.referrals))} referral(s); allocations and the audit chain are kept"
        )


def _day(value) -> str:
    if isinstance(value, datetime):
        value = value.astimezone(timezone.utc).date() if value.tzinfo else value.date()
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"before={value!r} is not a date (YYYY-MM-DD)") from None
    if not isinstance(value, date):
        raise ValueError(f"before must be a date, got {value!r}")
    return value.isoformat()


def apply_retention(
    registry, *, before, by: str, reason: str = "retention period ended", dry_run: bool = False
) -> ErasureResult:
    """Erase the personal fields of every enrolment and event dated before ``before`` (a date).

    Needs the key (the erasure entry is signed). ``before`` may not be after today. In one
    transaction: the fields and salts are erased and one ``erasure`` entry lists each
    record with its digest; a failure erases nothing. ``dry_run`` lists what would be erased.
    """
    from rjtrial.registry.core import now_utc

    key = registry._require_key("erasing personal data (the erasure is signed)")
    day = _day(before)
    if day > datetime.now(timezone.utc).date().isoformat():
        raise ValueError(f"before={day} is in the future: the retention date is the day before which data are erased")
    by = str(by)[:100] or "unknown"
    cutoff = f"{day}T00:00:00"
    with store.write_transaction(registry._engine) as (conn, head_row):
        rows = {seq: r for seq, r in _rows(conn).items() if r["fields"] is not None}
        dated: dict[int, str] = {}
        if rows:
            for seq, at in conn.execute(
                select(store.referrals.c.audit_seq, store.referrals.c.at).where(
                    store.referrals.c.audit_seq.in_(list(rows))
                )
            ):
                dated[seq] = at
            for seq, at in conn.execute(
                select(store.events.c.audit_seq, store.events.c.at).where(store.events.c.audit_seq.in_(list(rows)))
            ):
                dated[seq] = at
        chosen = sorted(seq for seq, at in dated.items() if at < cutoff)
        referrals = tuple(rows[seq]["referral_id"] for seq in chosen)
        if dry_run or not chosen:
            return ErasureResult(day, len(chosen), referrals, None, dry_run=dry_run)
        logged = {
            r.seq: json.loads(r.payload)
            for r in conn.execute(select(store.audit.c.seq, store.audit.c.payload).where(store.audit.c.seq.in_(chosen)))
        }
        erased = [[seq, (logged[seq].get("personal") or {}).get("digest")] for seq in chosen]
        entry = audit.append(
            conn,
            head_row,
            key=key,
            at=now_utc(),
            actor=by,
            action=ACTION,
            payload={"before": day, "reason": str(reason)[:500], "erased": erased},
        )
        conn.execute(
            update(store.personal)
            .where(store.personal.c.audit_seq.in_(chosen))
            .values(fields=None, salt=None, erased_by=entry.seq)
        )
    return ErasureResult(day, len(chosen), referrals, entry.seq)


def personal_data(registry, referral_ids=None, *, by: str):
    """The personal fields kept for ``referral_ids`` (None: all), logged as a data access.

    Returns a DataFrame: ``referral_id, audit_seq, erased`` and one column per field name.
    """
    import pandas as pd

    from rjtrial.registry import access

    with store.read_transaction(registry._engine) as conn:
        rows = _rows(conn)
    wanted = None if referral_ids is None else {str(r) for r in referral_ids}
    records = []
    for seq, r in sorted(rows.items()):
        if wanted is not None and r["referral_id"] not in wanted:
            continue
        fields = {} if r["fields"] is None else json.loads(r["fields"])
        records.append({"referral_id": r["referral_id"], "audit_seq": seq, "erased": r["fields"] is None, **fields})
    access.record(registry, "personal data", by=by, referrals=None if wanted is None else sorted(wanted))
    return pd.DataFrame.from_records(records, columns=None if records else ["referral_id", "audit_seq", "erased"])


# ------------------------------------------------------------------ verify
def read_rows(conn) -> dict[int, Mapping[str, Any]]:
    """Every row of ``rj_personal`` by audit entry (none in a store made before it existed)."""
    return _rows(conn)


def check(entries, rows: Mapping[int, Mapping[str, Any]]) -> list[str]:
    """``verify``'s checks of personal fields and erasures (``entries``: the audit log, in order;
    ``rows``: :func:`read_rows`)."""
    problems: list[str] = []
    recorded: dict[int, tuple[str, str | None, str]] = {}  # seq -> (digest, date, where)
    erased: dict[int, int] = {}
    for e in entries:
        p = e.payload
        if e.action in ("enrolment", "event") and isinstance(p.get("personal"), dict):
            where = (
                f"referral {p.get('referral_id')!r} (audit log entry {e.seq})"
                if e.action == "enrolment"
                else f"event (audit log entry {e.seq})"
            )
            recorded[e.seq] = (
                p["personal"].get("digest"),
                p.get("at") if isinstance(p.get("at"), str) else None,
                where,
            )
        elif e.action == ACTION:
            where = f"audit log entry {e.seq} (erasure)"
            try:
                day = _day(p.get("before"))
            except ValueError:
                problems.append(f"{where}: its retention date {p.get('before')!r} is not a date")
                continue
            if day > e.at[:10]:
                problems.append(f"{where}: its retention date {day} is after it was logged ({e.at})")
            items = p.get("erased") if isinstance(p.get("erased"), list) else []
            for item in items:
                seq, logged_digest = (item + [None, None])[:2] if isinstance(item, list) else (None, None)
                if seq not in recorded:
                    problems.append(
                        f"{where}: lists audit entry {seq}, which holds no personal fields logged before it"
                    )
                    continue
                digest_, at, what = recorded[seq]
                if seq in erased:
                    problems.append(f"{where}: erases {what} again (already erased by entry {erased[seq]})")
                if logged_digest != digest_:
                    problems.append(f"{where}: lists {what} with another digest than it logged")
                if at is None or at >= f"{day}T00:00:00":
                    problems.append(f"{where}: erased {what}, dated {at}, not before its retention date {day}")
                erased[seq] = e.seq
    for seq, (digest_, _, what) in recorded.items():
        row = rows.get(seq)
        if seq in erased:
            if row is not None and (row["fields"] is not None or row["salt"] is not None):
                problems.append(f"{what}: personal fields present again after their erasure (entry {erased[seq]})")
            continue
        if row is None or row["fields"] is None or row["salt"] is None:
            problems.append(
                f"{what}: personal fields missing from table {store.personal.name} with no audited erasure (deleted)"
            )
        else:
            try:
                fields = json.loads(row["fields"])
            except ValueError:
                fields = None
            if not isinstance(fields, dict) or digest(row["salt"], fields) != digest_:
                problems.append(
                    f"{what}: personal fields in table {store.personal.name} do not match the digest logged (edited)"
                )
    for seq, row in rows.items():
        if seq not in recorded:
            problems.append(
                f"table {store.personal.name}: row for audit entry {seq} ({row['referral_id']!r}) that no "
                "record logged (inserted)"
            )
    return problems
