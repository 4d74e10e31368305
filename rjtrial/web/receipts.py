"""Receipts that coordinators and managers keep: a printable page and, with SMTP, an e-mail.

A receipt (``RJ-XXXX-XXXX-XXXX``, the first 48 bits of the enrolment's audit entry
hash) is an anchor outside the database: ``rjtrial verify --receipt RJ-...`` fails if
that enrolment was later deleted or the log rewritten — which no check of the
database alone can detect. So the service hands receipts out in forms people keep:

=========================  ==========================================================
GET  /receipt?referral_id  the receipt of a referral the user may see, as a page made
                           for printing (a print style sheet of this site; no script,
                           no external asset); the same 404 for an id that does not
                           exist and for one at another site
POST /receipt/email        e-mails it to the user's own address (``rjtrial users
                           email NAME ADDRESS``), when ``[smtp]`` is configured
=========================  ==========================================================
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from rjtrial.errors import RjtrialError
from rjtrial.web import enrolment, mail
from rjtrial.web.accounts import User
from rjtrial.web.pages import _form, _one, _require, _service, page_user, redirect, render

router = APIRouter(include_in_schema=False)
NOT_FOUND = "no referral you may see has this id"


def _row(request: Request, user: User, referral_id: str) -> dict:
    row = enrolment.receipt_row(_service(request), user, referral_id)
    if row is None:
        raise HTTPException(404, NOT_FOUND)
    return row


@router.get("/receipt")
def receipt(request: Request, user: User = Depends(page_user)):
    """The ``GET /receipt`` page."""
    _require(user, "coordinator", "manager")
    referral_id = request.query_params.get("referral_id", "")
    row = _row(request, user, referral_id)
    service = _service(request)
    return render(
        request,
        "receipt.html",
        user=user,
        row=row,
        commitment=service.registry.commitment,
        sent=request.query_params.get("sent"),
        can_email=service.config.smtp is not None and bool(user.email),
    )


@router.post("/receipt/email")
async def email_receipt(request: Request, user: User = Depends(page_user)):
    """The ``POST /receipt/email`` page."""
    _require(user, "coordinator", "manager")
    fields = await _form(request)
    service = _service(request)
    row = _row(request, user, _one(fields, "referral_id"))
    settings = service.config.smtp
    if settings is None:
        raise HTTPException(409, "e-mail is not configured: add an [smtp] table to the configuration file")
    if not user.email:
        raise HTTPException(
            409,
            "your account has no e-mail address; ask the server's operator to set one "
            "(rjtrial users email NAME ADDRESS)",
        )
    message = mail.receipt_message(
        settings, row, to=user.email, trial=service.protocol.id, commitment=service.registry.commitment
    )
    try:
        await run_in_threadpool(mail.send, settings, message)
    except RjtrialError as exc:
        return render(request, "error.html", status=502, user=user, status_code=502, message=str(exc))
    return redirect(request, f"/receipt?referral_id={quote(row['referral_id'], safe='')}&sent=1")
