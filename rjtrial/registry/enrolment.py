"""Enrolment: screen a referral and, if eligible, randomise it, in one transaction.

:meth:`rjtrial.registry.Registry.enrol` calls :func:`enrol`. The steps, under the store's
write lock: the referral is screened against the protocol in force (strata, answers, time,
duplicates, a closed trial); an eligible one takes the next slot of its sealed sequence (or,
under minimisation, the next draw); a refusal writes only its audit entry; otherwise one
signed audit entry and the referral's row record what happened, and the receipt is the
entry's.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from sqlalchemy import insert, select

from rjtrial.registry import amend as amendments
from rjtrial.registry import audit, core, retention, segments, store
from rjtrial.registry.core import EnrolmentResult


def enrol(
    registry,
    referral_id: str,
    *,
    strata: Mapping[str, str],
    answers: Mapping[str, str],
    by: str = "unknown",
    at: datetime | str | None = None,
    site_stratum: str | None = core.SITE_STRATUM,
    personal: Mapping[str, str] | None = None,
) -> EnrolmentResult:
    """See :meth:`rjtrial.registry.Registry.enrol`."""
    key = registry._require_key("enrolment")
    personal_logged, personal_row = retention.prepare(personal)
    when = None if at is None else core._timestamp(at)
    by = str(by)[:100] or "unknown"
    strata, answers = dict(strata), dict(answers)
    problems, referral_id, mark = _before_the_lock(registry, referral_id)
    with store.write_transaction(registry._engine) as (conn, head_row):
        when, screened, reasons = _screen(
            registry, conn, head_row, referral_id, strata, answers, when, unsealed_by_key=mark is not None
        )
        problems += screened
        target: tuple[str, int] | None = None  # (sequence key, slot) of a referral to randomise
        if not problems and not reasons:
            sequence_key, slot, exhausted = _next_slot(registry, conn, head_row, strata)
            problems += exhausted
            target = (sequence_key, slot)
        if problems:
            audit.append(
                conn,
                head_row,
                key=key,
                at=core.now_utc(),
                actor=by,
                action="refusal",
                payload={"referral_id": referral_id, "reasons": problems},
            )
            return EnrolmentResult("refused", referral_id, reasons=tuple(problems), strata=strata)
        record: dict[str, Any] = {
            "referral_id": referral_id,
            "status": "ineligible" if reasons else "randomised",
            "at": when,
            "by": by,
            "strata": strata,
            "answers": answers,
            "reasons": reasons,
            "sequence_number": None,
            "sequence_key": None,
            "slot": None,
            "arm": None,
            "value": None,
            "reveal": None,
        }
        if personal_logged is not None:
            record["personal"] = personal_logged
        head_updates: dict[str, Any] = {}
        site_number = None
        if target is not None:
            site_number = registry._site_count(conn, strata, site_stratum) + 1
            record.update(_allocation(registry, conn, head_row, strata, *target))
            head_updates = {"sequence_number": record["sequence_number"], "last_randomised_at": when}
        entry = audit.append(
            conn,
            head_row,
            key=key,
            at=core.now_utc(),
            actor=by,
            action="enrolment",
            payload=record,
            head_updates=head_updates,
        )
        receipt = audit.receipt_for(entry.hash)
        conn.execute(insert(store.referrals).values(**core.referral_row(record), receipt=receipt, audit_seq=entry.seq))
        if personal_row is not None:
            retention.store_row(conn, entry.seq, referral_id, personal_row)
    return EnrolmentResult(
        record["status"],
        referral_id,
        arm=record["arm"],
        sequence_number=record["sequence_number"],
        receipt=receipt,
        reasons=tuple(reasons),
        randomised_on=when if not reasons else None,
        strata=strata,
        site_sequence_number=site_number,
    )


def _before_the_lock(registry, referral_id):
    """Problems known before the store is locked: a malformed id, a key file that unsealed the trial
    (its mark is returned too)."""
    problems = []
    if not core.is_referral_id(referral_id):
        problems.append(
            f"referral id {referral_id!r} must be 1-100 letters, digits or '_ . : / -', starting with a letter or digit"
        )
        referral_id = str(referral_id)[:100]
    mark = registry._unseal_mark()
    if mark is not None:
        problems.append(
            "this key file unsealed the trial's sequence"
            + (f" (audit log entry {mark.seq})" if mark.seq is not None else "")
            + ": the sequence is known, the trial is closed to enrolment"
        )
    return problems, referral_id, mark


def _screen(registry, conn, head_row, referral_id, strata, answers, when, *, unsealed_by_key: bool):
    """Under the lock: the protocol in force's screen, the time (now by default; never in the
    future, never before the last randomisation or the amendment in force), a closed trial, a
    duplicate. Returns ``(when, problems, reasons)``: problems refuse, reasons screen out."""
    if amendments.count(conn) != len(registry._chain.records) or registry._chain.problem:
        registry._refresh(conn)  # amended since this registry was opened: screen by the protocol in force
    problems, reasons = registry._chain.screen(strata, answers)
    if when is None:  # now, taken under the lock so that times follow the sequence
        when = core.now_utc()
    latest = core._timestamp(datetime.now(timezone.utc) + core.FUTURE_TOLERANCE)
    if when > latest:
        problems.append(f"at={when} is in the future (now {core.now_utc()})")
    if not unsealed_by_key and (head_row["closed"] or core._unsealed_in_log(conn)):
        problems.append("the sequence has been unsealed: the trial is closed to enrolment")
    existing = conn.execute(
        select(store.referrals.c.referral_id, store.referrals.c.status, store.referrals.c.at).where(
            store.referrals.c.referral_key == core.referral_key(referral_id)
        )
    ).first()
    if existing is not None:
        same = "" if existing.referral_id == referral_id else f" as {existing.referral_id!r}"
        problems.append(f"referral {referral_id!r} was already enrolled{same} ({existing.status}, {existing.at})")
    if not problems:  # times follow the sequence: screened-out referrals too (no back-filling)
        last = core._last_randomised_at(conn, head_row, latest)
        records = registry._chain.records
        if when < last:
            problems.append(f"at={when} is earlier than the last randomisation ({last})")
        elif records and when < records[-1].effective_at:
            problems.append(
                f"at={when} is before the protocol amendment in force took effect ({records[-1].effective_at})"
            )
    return when, problems, reasons


def _next_slot(registry, conn, head_row, strata) -> tuple[str, int, list[str]]:
    """The referral's sequence key, its next unused slot, and a problem if the sequence is exhausted."""
    protocol = registry.protocol
    sequence_key = protocol.sequence_key(strata)
    if protocol.randomisation.is_adaptive:
        slot = head_row["sequence_number"]
    else:
        used = conn.execute(
            select(store.referrals.c.slot)
            .where(store.referrals.c.sequence_key == sequence_key)
            .order_by(store.referrals.c.slot.desc())
            .limit(1)
        ).scalar()
        slot = 0 if used is None else used + 1
    capacity = protocol.randomisation.capacity
    if slot >= capacity:
        return sequence_key, slot, [f"the sealed sequence {sequence_key!r} is exhausted ({capacity} slots used)"]
    return sequence_key, slot, []


def _allocation(registry, conn, head_row, strata, sequence_key: str, slot: int) -> dict[str, Any]:
    """The slot's sealed value revealed and the arm it gives (minimisation: through the draw)."""
    value, reveal = segments.slot_value(registry, sequence_key, slot)
    protocol = registry.protocol
    if protocol.randomisation.is_adaptive:
        arm = protocol.arms[registry._adaptive_arm(conn, strata, float.fromhex(value))]
    else:
        arm = value
    return {
        "sequence_number": head_row["sequence_number"] + 1,
        "sequence_key": sequence_key,
        "slot": slot,
        "arm": arm,
        "value": value,
        "reveal": reveal,
    }
