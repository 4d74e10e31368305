"""Enrolment and listing as the service does them, shared by the pages and the API.

* A coordinator may enrol only at their own sites (:class:`SiteForbidden` otherwise)
  and sees only their sites' referrals.
* A request that repeats one already carried out — same referral, same user, same
  strata and answers (a double click, the back button, a retried API call) — gets
  the first result again (``replayed``), never a second randomisation; the registry
  itself refuses a referral enrolled twice.
* A coordinator cannot tell whether a referral id exists at another site: when the
  id is taken by a referral the caller may not see, a refusal for any other reason
  reads exactly as it would for an id never used (the duplicate is not mentioned);
  only when the duplicate is the sole reason — when an unused id would have been
  enrolled — does the refusal say that the id is in use, without where or when.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Mapping

from sqlalchemy import func, select

from rjtrial.registry import store
from rjtrial.web.accounts import User

log = logging.getLogger("rjtrial.web")


class SiteForbidden(Exception):
    """The user may not enrol at (or see) this site."""


def _row_dict(row: Mapping[Any, Any], order=()) -> dict[str, Any]:
    strata = json.loads(row["strata"])
    strata = {k: strata[k] for k in order if k in strata} | strata  # the protocol's order of strata
    return {
        "status": row["status"],
        "referral_id": row["referral_id"],
        "arm": row["arm"],
        "sequence_number": row["sequence_number"],
        "receipt": row["receipt"],
        "reasons": json.loads(row["reasons"]),
        "randomised_on": row["at"] if row["status"] == "randomised" else None,
        "strata": strata,
        "at": row["at"],
        "by": row["by"],
    }


def result_dict(result) -> dict[str, Any]:
    """An EnrolmentResult as the service returns it (``replayed`` False)."""
    return {**result.to_dict(), "replayed": False}


def _existing(service, referral_id: str) -> dict[str, Any] | None:
    with store.read_transaction(service.registry._engine) as conn:
        row = conn.execute(select(store.referrals).where(store.referrals.c.referral_id == referral_id)).mappings().first()
    return None if row is None else dict(row)


def replay(service, user: User, referral_id: str, strata: Mapping[str, str], answers: Mapping[str, str]):
    """The earlier result of this same request by this same user, or None."""
    row = _existing(service, referral_id)
    if row is None or row["by"] != user.name:
        return None
    if json.loads(row["strata"]) != dict(strata) or json.loads(row["answers"]) != dict(answers):
        return None
    out = _row_dict(row, service.protocol.strata)
    return {k: out[k] for k in ("status", "referral_id", "arm", "sequence_number", "receipt", "reasons",
                                "randomised_on", "strata")} | {"replayed": True}


def enrol(service, user: User, referral_id: str, strata: Mapping[str, str], answers: Mapping[str, str]) -> dict:
    """Screen and randomise as ``user``; the result as a dict (see the module docstring).

    Raises SiteForbidden for a site the user may not enrol at. Runs in a worker
    thread (it waits for the store's write lock).
    """
    if user.role not in ("coordinator", "manager"):
        raise SiteForbidden("only coordinators and managers enrol")
    sites = service.allowed_sites(user)
    site = service.site_of(strata)
    levels = service.protocol.strata.get(service.config.site_stratum, ())
    if sites is not None and site in levels and site not in sites:  # an unknown site: refused below
        raise SiteForbidden(f"you may enrol only at {', '.join(sites) or 'no site'}")
    earlier = replay(service, user, referral_id, strata, answers)
    if earlier is not None:
        return earlier
    result = service.registry.enrol(referral_id, strata=strata, answers=answers, by=user.name)
    if result.status != "refused":
        if result.status == "randomised":
            notify(service, result_dict(result) | {"at": result.randomised_on, "by": user.name})
        return result_dict(result)
    earlier = replay(service, user, referral_id, strata, answers)  # a twin request won the race
    if earlier is not None:
        return earlier
    out = result_dict(result)
    existing = _existing(service, referral_id)
    if existing is not None and not service.may_see(user, json.loads(existing["strata"])):
        others = [r for r in out["reasons"] if "already enrolled" not in r]
        out["reasons"] = others or [f"referral id {referral_id!r} is already in use"]
    return out


def receipt_row(service, user: User, referral_id: str) -> dict[str, Any] | None:
    """The referral as its receipt shows it, or None when it does not exist *or* the user
    may not see it (the same answer, so that other sites' ids cannot be probed)."""
    if user.role not in ("coordinator", "manager") or not isinstance(referral_id, str) or len(referral_id) > 100:
        return None
    row = _existing(service, referral_id)
    if row is None or not service.may_see(user, json.loads(row["strata"])):
        return None
    return _row_dict(row, service.protocol.strata)


def visible(service, user: User, *, randomised_only: bool = False, limit: int = 200, offset: int = 0):
    """(rows the user may see, newest first; total count) — coordinators: own sites only."""
    table = store.referrals
    query = select(table)
    count = select(func.count()).select_from(table)
    if randomised_only:
        query = query.where(table.c.status == "randomised")
        count = count.where(table.c.status == "randomised")
    sites = service.allowed_sites(user)
    with store.read_transaction(service.registry._engine) as conn:
        if sites is None:
            total = conn.execute(count).scalar_one()
            rows = conn.execute(query.order_by(table.c.audit_seq.desc()).limit(limit).offset(offset)).mappings().all()
            return [_row_dict(r, service.protocol.strata) for r in rows], int(total)
        # Sites live inside the strata JSON: filter in Python (portable across back ends).
        rows = conn.execute(query.order_by(table.c.audit_seq.desc())).mappings().all()
    mine = [_row_dict(r, service.protocol.strata) for r in rows if service.site_of(json.loads(r["strata"])) in sites]
    return mine[offset:offset + limit], len(mine)


def notify(service, row: Mapping[str, Any]) -> None:
    """E-mail one assignment when ``[smtp] notify_each`` is set, from a background thread.

    Failures are logged, never raised: the assignment is made and shown regardless.
    """
    settings = service.config.smtp
    if settings is None or not settings.notify_each:
        return
    threading.Thread(target=_send_one, args=(service, settings, dict(row)), daemon=True).start()


def _send_one(service, settings, row) -> None:
    from rjtrial.errors import RjtrialError
    from rjtrial.web import mail

    message = mail.assignments_message(
        settings, [row], trial=service.protocol.id,
        subject=f"[rjtrial] {service.protocol.id}: {row['referral_id']} randomised (#{row['sequence_number']})",
    )
    try:
        mail.send(settings, message)
    except RjtrialError as exc:
        log.warning("%s", exc)
