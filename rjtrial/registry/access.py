"""The access log for the data-protection officer: who saw or took which participant data, and when.

Every record of a trial is criminal-offence data (UK GDPR Art. 10; Data Protection Act
2018 Part 3), so the controller must be able to say who accessed it. The registry's
audit log already records each export (``export``: rows, columns, blinded or not), the
unsealing of the sequence (``unseal``), an unblinding (``unblind``), and an erasure under
the retention policy (``erasure``). Other reads are logged by the tool that makes them
with :func:`record` (action ``data_access``): ``rjtrial report`` (the report holds every
participant's allocation and outcomes), ``rjtrial backup`` and ``rjtrial restore`` (a
copy of everything), and the randomisation service's pages. A ``data_access`` entry may
be written without the key (it carries no allocation); like every entry it is part of
the hash chain, so deleting or editing one fails ``verify``.

:func:`access_log` gathers these entries into one table, and ``rjtrial access-log``
writes it as CSV (owner-only) for the data-protection officer. Reads made outside
rjtrial (SQL on the database file, a copy of it) leave no trace: restrict access to the
database itself.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import pandas as pd
from sqlalchemy import select

from rjtrial._canonical import canonical_json
from rjtrial.registry import audit, store

__all__ = ["ACCESS_ACTIONS", "ACTION", "access_log", "record"]

ACTION = "data_access"
#: The audit actions that are accesses to participant data.
ACCESS_ACTIONS = ("export", ACTION, "unseal", "unblind", "erasure")
MAX_REFERRALS = 10_000


def record(
    registry, what: str, *, by: str, referrals: Sequence[str] | None = None, detail: Mapping[str, Any] | None = None
) -> int:
    """Log that ``by`` accessed participant data: ``what`` (e.g. ``"report"``), which referrals
    (None: all of them), and any detail. Returns the entry's audit sequence number.

    Signed when the registry was opened with the key, unsigned otherwise.
    """
    from rjtrial.registry.core import now_utc

    what = str(what).strip()[:100]
    if not what:
        raise ValueError("what must name the access, e.g. 'report'")
    payload: dict[str, Any] = {"what": what, "referrals": None if referrals is None else [str(r) for r in referrals]}
    if referrals is not None and len(payload["referrals"]) > MAX_REFERRALS:
        raise ValueError(
            f"at most {MAX_REFERRALS} referrals per entry; log an access to all of them with referrals=None"
        )
    payload["detail"] = dict(detail or {})
    try:
        canonical_json(payload)
    except (TypeError, ValueError):
        raise ValueError("detail must be JSON-serialisable (text, numbers, lists, tables)") from None
    with store.write_transaction(registry._engine) as (conn, head_row):
        entry = audit.append(
            conn,
            head_row,
            key=registry._key,
            at=now_utc(),
            actor=str(by)[:100] or "unknown",
            action=ACTION,
            payload=payload,
        )
    return entry.seq


def _participants(action: str, payload: Mapping[str, Any]) -> str:
    if action == ACTION:
        referrals = payload.get("referrals")
        return "all" if referrals is None else " ".join(map(str, referrals))
    if action == "export":
        return f"all ({payload.get('rows')} rows)"
    if action == "erasure":
        return f"{len(payload.get('erased') or [])} referrals' personal data erased"
    return "all"


def _what(action: str, payload: Mapping[str, Any]) -> str:
    if action == ACTION:
        return str(payload.get("what"))
    if action == "export":
        return "blinded export" if payload.get("blinded") else "export"
    return {
        "unseal": "unseal: every allocation and the seed revealed",
        "unblind": "unblinding: arm codes revealed",
        "erasure": f"retention: erasure of data before {payload.get('before')}",
    }.get(action, action)


def access_log(registry, *, actions: Sequence[str] = ACCESS_ACTIONS) -> pd.DataFrame:
    """Every access to participant data in the audit log, oldest first.

    Columns
    -------
    audit_seq : int
        The audit log entry.
    at : str
        When (ISO 8601, UTC).
    who : str
        The user or process that accessed the data.
    action : str
        The audit action (``export``, ``data_access``, ``unseal``, ``unblind``, ``erasure``).
    what : str
        What was done (``export``, ``blinded export``, ``report``, ``backup``...).
    participants : str
        Whose data: ``all``, or the referral ids.
    detail : str
        The entry's detail as JSON (output file, reason...).
    signed : bool
        Whether the entry was written with the trial key.
    """
    with store.read_transaction(registry._engine) as conn:
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
                .where(store.audit.c.action.in_(list(actions)))
                .order_by(store.audit.c.seq)
            )
            .mappings()
            .all()
        )
    records = []
    for r in rows:
        try:
            payload = json.loads(r["payload"])
        except ValueError:
            payload = {}
        payload = payload if isinstance(payload, dict) else {}
        detail = (
            payload.get("detail")
            if r["action"] == ACTION
            else {k: v for k, v in payload.items() if k in ("rows", "columns", "reason", "before", "blinded")}
        )
        records.append(
            {
                "audit_seq": r["seq"],
                "at": r["at"],
                "who": r["actor"],
                "action": r["action"],
                "what": _what(r["action"], payload),
                "participants": _participants(r["action"], payload),
                "detail": canonical_json(detail or {}),
                "signed": bool(r["signature"]),
            }
        )
    columns = ["audit_seq", "at", "who", "action", "what", "participants", "detail", "signed"]
    return pd.DataFrame.from_records(records, columns=columns)
