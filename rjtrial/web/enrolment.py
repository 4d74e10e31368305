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
* A coordinator sees each allocation's number at its own site
  (``site_sequence_number``), never the trial-wide ``sequence_number``: with one
  sequence shared by several sites, the trial-wide position tells how far the
  sequence moved at the other sites, and so where the next referral falls in its
  block (issue 17). Managers see both (:func:`shown_to`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Mapping

from rjtrial.web.accounts import User

log = logging.getLogger("rjtrial.web")


class SiteForbidden(Exception):
    """The user may not enrol at (or see) this site."""


def shown_to(user: User, row: Mapping[str, Any]) -> dict[str, Any]:
    """What ``user`` is shown of a referral or result: a manager everything; anyone else
    (a coordinator) no trial-wide ``sequence_number``, only ``site_sequence_number``."""
    if user.role == "manager":
        return dict(row)
    return {k: v for k, v in row.items() if k != "sequence_number"}


def _row_dict(referral) -> dict[str, Any]:
    """A :class:`rjtrial.registry.reads.Referral` as the service lists it (for managers)."""
    return referral.to_dict()


def result_dict(result) -> dict[str, Any]:
    """An EnrolmentResult as the service returns it to a manager (``replayed`` False)."""
    return {**result.to_dict(), "site_sequence_number": result.site_sequence_number, "replayed": False}


def replay(service, user: User, referral_id: str, strata: Mapping[str, str], answers: Mapping[str, str]):
    """The earlier result of this same request by this same user, or None."""
    found = service.registry.find(referral_id, site_stratum=service.config.site_stratum)
    if found is None or found.referral_id != referral_id or found.by != user.name:
        return None
    if dict(found.strata) != dict(strata) or dict(found.answers) != dict(answers):
        return None
    out = _row_dict(found)
    return shown_to(
        user,
        {
            k: out[k]
            for k in (
                "status",
                "referral_id",
                "arm",
                "sequence_number",
                "site_sequence_number",
                "receipt",
                "reasons",
                "randomised_on",
                "strata",
            )
        }
        | {"replayed": True},
    )


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
    result = service.registry.enrol(
        referral_id, strata=strata, answers=answers, by=user.name, site_stratum=service.config.site_stratum
    )
    if result.status != "refused":
        if result.status == "randomised":
            notify(service, result_dict(result) | {"at": result.randomised_on, "by": user.name})
        return shown_to(user, result_dict(result))
    earlier = replay(service, user, referral_id, strata, answers)  # a twin request won the race
    if earlier is not None:
        return earlier
    out = shown_to(user, result_dict(result))
    existing = service.registry.find(referral_id, site_stratum=service.config.site_stratum)
    if existing is not None and not service.may_see(user, existing.strata):
        others = [r for r in out["reasons"] if "already enrolled" not in r]
        out["reasons"] = others or [f"referral id {referral_id!r} is already in use"]
    return out


def receipt_row(service, user: User, referral_id: str) -> dict[str, Any] | None:
    """The referral as its receipt shows it, or None when it does not exist *or* the user
    may not see it (the same answer, so that other sites' ids cannot be probed)."""
    if user.role not in ("coordinator", "manager") or not isinstance(referral_id, str) or len(referral_id) > 100:
        return None
    found = service.registry.find(referral_id, site_stratum=service.config.site_stratum)
    if found is None or not service.may_see(user, found.strata):
        return None
    return shown_to(user, _row_dict(found))


def visible(service, user: User, *, randomised_only: bool = False, limit: int = 200, offset: int = 0):
    """(rows the user may see, newest first; total count) — coordinators: own sites only."""
    page = service.registry.referrals(
        status="randomised" if randomised_only else None,
        sites=service.allowed_sites(user),
        site_stratum=service.config.site_stratum,
        limit=limit,
        offset=offset,
    )
    return [shown_to(user, _row_dict(r)) for r in page.referrals], page.total


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
        settings,
        [row],
        trial=service.protocol.id,
        subject=f"[rjtrial] {service.protocol.id}: {row['referral_id']} randomised (#{row['sequence_number']})",
    )
    try:
        mail.send(settings, message)
    except RjtrialError as exc:
        log.warning("%s", exc)
