"""Interim looks in the audit log: what the data monitoring committee saw, and when.

An interim analysis of accumulating results is a look at comparative data by arm: who looked,
when, at how many events, and what the design said must be on the record, where it cannot be
quietly dropped or rewritten (a look that is later forgotten inflates the trial's error rate).
:func:`record` appends one ``interim_look`` entry holding the look's summary (as computed by
:func:`rjtrial.monitor.look`; the registry does not compute statistics, it keeps them), and
:func:`interim_looks` reads them back in order, for the next look (its earlier information
levels) and the report. Like every entry it is part of the hash chain: ``verify`` fails if one
is deleted or edited. It carries no allocation, so it may be written without the trial key
(a committee statistician need not hold it); it is signed when the key is given.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from sqlalchemy import select

from rjtrial._canonical import canonical_json
from rjtrial.errors import RegistryError
from rjtrial.registry import audit, store

__all__ = ["ACTION", "interim_looks", "record"]

ACTION = "interim_look"
MAX_PAYLOAD = 200_000  # characters of canonical JSON


def record(registry, summary: Mapping[str, Any], *, by: str) -> int:
    """Append an ``interim_look`` entry holding ``summary``; returns its audit sequence number.

    ``summary`` is a JSON object with at least ``look`` (the look's number), ``events`` (events
    at the look) and ``design_fingerprint`` (the design it belongs to). A look must come after
    the looks already logged for the same design: its number one more, its events more.
    """
    from rjtrial.registry.core import now_utc

    if not isinstance(summary, Mapping):
        raise ValueError(f"summary must be a JSON object (a dict), got {type(summary).__name__}")
    payload = dict(summary)
    for name, kind in (("look", int), ("events", int), ("design_fingerprint", str)):
        value = payload.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"summary[{name!r}] must be {'a whole number' if kind is int else 'text'}, got {value!r}")
    try:
        text = canonical_json(payload)
    except (TypeError, ValueError):
        raise ValueError("summary must be JSON-serialisable (text, numbers, lists, tables; no NaN)") from None
    if len(text) > MAX_PAYLOAD:
        raise ValueError(f"summary is too large for the audit log ({len(text):,} characters; at most {MAX_PAYLOAD:,})")
    by = str(by)[:100] or "unknown"
    with store.write_transaction(registry._engine) as (conn, head_row):
        earlier = [e for e in _entries(conn) if e["design_fingerprint"] == payload["design_fingerprint"]]
        if earlier and (payload["look"] != earlier[-1]["look"] + 1 or payload["events"] <= earlier[-1]["events"]):
            last = earlier[-1]
            raise RegistryError(
                f"interim look {payload['look']} at {payload['events']} events does not follow look {last['look']} "
                f"at {last['events']} events (audit log entry {last['seq']}) of the same design"
            )
        if not earlier and payload["look"] != 1:
            raise RegistryError(f"interim look {payload['look']} has no earlier look of its design in the audit log")
        entry = audit.append(conn, head_row, key=registry._key, at=now_utc(), actor=by, action=ACTION, payload=payload)
    return entry.seq


def _entries(conn) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(store.audit.c.seq, store.audit.c.at, store.audit.c.actor, store.audit.c.payload)
        .where(store.audit.c.action == ACTION)
        .order_by(store.audit.c.seq)
    ).all()
    out = []
    for row in rows:
        try:
            payload = json.loads(row.payload)
        except ValueError:
            raise RegistryError(f"audit log entry {row.seq} (interim_look): payload is not valid JSON") from None
        if not isinstance(payload, dict):
            raise RegistryError(f"audit log entry {row.seq} (interim_look): payload is not a JSON object")
        out.append({**payload, "seq": row.seq, "at": row.at, "by": row.actor})
    return out


def interim_looks(registry, *, design_fingerprint: str | None = None) -> list[dict[str, Any]]:
    """The interim looks logged, in order: each look's summary with ``seq``, ``at`` and ``by``
    (audit entry, time, who); only those of one design when ``design_fingerprint`` is given."""
    with store.read_transaction(registry._engine) as conn:
        entries = _entries(conn)
    if design_fingerprint is not None:
        entries = [e for e in entries if e.get("design_fingerprint") == design_fingerprint]
    return entries
