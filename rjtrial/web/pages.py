"""Server-rendered pages of the randomisation service (no JavaScript needed).

Every POST form carries the session's CSRF token; pages that need a log-in redirect
to ``/login``; a role that may not gets a 403 page. The enrolment form also carries
a one-time token, so that submitting it twice (double click, back button, reload)
shows the first result instead of randomising again. Routes: see :mod:`rjtrial.web`.

Enrolment takes two steps. The form (``GET /enrol``) is checked when posted and
answered with a confirmation page: the referral's strata and answers in words (the
protocol's labels and question texts) and whether those answers make it eligible,
with *Randomise* and *Change the answers*. Only the confirmation (``confirmed=yes``,
the same fields and one-time token) enrols, so an allocation is never made from a
form nobody read back; the one-time token still makes a doubly submitted
confirmation allocate once.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from rjtrial.errors import RegistryError, RjtrialError
from rjtrial.registry import EVENT_KINDS
from rjtrial.registry.core import is_referral_id
from rjtrial.web import enrolment, security
from rjtrial.web.accounts import ROLES, AccountError, User
from rjtrial.web.security import clean_text, csrf_ok, csrf_token

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 100
PENDING_WAIT_SECONDS = 15.0


# ----------------------------------------------------------------- helpers
def _service(request: Request):
    return request.app.state.service


def base(request: Request) -> str:
    """Where this trial's service is mounted ("" alone; ``/t/NAME`` on a server of several trials)."""
    return request.scope.get("root_path", "") or ""


def redirect(request: Request, path: str) -> RedirectResponse:
    """A 303 to ``path`` of this trial's service (prefixed with where it is mounted)."""
    return RedirectResponse(base(request) + path, status_code=303)


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def session_user(request: Request) -> User | None:
    """The logged-in user of a valid session, else None.

    A session is valid while the account is active, its session epoch unchanged (no
    log-out, new password or disabling since) and its log-in younger than ``[web]
    session_lifetime`` (absolute: using the session does not extend it).
    """
    session = request.session
    name, epoch, since = session.get("user"), session.get("epoch"), session.get("since")
    if not isinstance(name, str) or not isinstance(epoch, int) or not isinstance(since, (int, float)):
        return None
    if not 0 <= security.now() - since <= _service(request).config.session_lifetime:
        return None
    user = _service(request).accounts.get(name)
    if user is None or user.disabled or user.session_epoch != epoch:
        return None
    return user


def page_user(request: Request) -> User:
    """The signed-in user of a page (a dependency), or a redirect to the log-in page."""
    from rjtrial.web.app import LoginRequired

    user = session_user(request)
    if user is None:
        request.session.pop("user", None)
        raise LoginRequired()
    return user


def _require(user: User, *roles: str) -> None:
    if user.role not in roles:
        raise HTTPException(403, f"this page is for {' and '.join(r + 's' for r in roles)}")


def render(request: Request, template: str, status: int = 200, user: User | None = None, **context) -> HTMLResponse:
    """Render a page template with the service-wide context (user, trial, CSRF token)."""
    service = _service(request)
    has_session = "session" in request.scope
    return service.templates.TemplateResponse(
        request,
        template,
        {
            "user": user,
            "csrf": csrf_token(request.session) if has_session else "",
            "base": base(request),
            "trial": service.protocol,
            "smtp": service.config.smtp is not None,
            **context,
        },
        status_code=status,
    )


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """An error page that says what, never how (no traceback, no internals)."""
    user = None
    if "session" in request.scope and status != 500:
        try:
            user = session_user(request)
        except Exception:  # the store itself may be the problem
            user = None
    return render(request, "error.html", status=status, user=user, status_code=status, message=message)


async def _form(request: Request) -> dict[str, Any]:
    """The posted form (text fields only), after the CSRF check (403 if it fails)."""
    form = await request.form(max_files=0, max_fields=200)
    fields: dict[str, Any] = {}
    for name, value in form.multi_items():
        if isinstance(value, str):
            fields.setdefault(name, []).append(value)
    if not csrf_ok(request.session, (fields.get("csrf") or [""])[0]):
        raise HTTPException(403, "the form has expired or did not come from this site; reload the page and try again")
    return fields


def _one(fields: dict, name: str) -> str:
    values = fields.get(name) or [""]
    return values[0] if isinstance(values[0], str) else ""


# ------------------------------------------------------------------ log-in
@router.get("/login")
def login_form(request: Request):
    """The ``GET /login`` page."""
    if session_user(request) is not None:
        return redirect(request, "/")
    return render(request, "login.html", name="", error=None)


@router.post("/login")
async def login(request: Request):
    """Check a log-in under the throttle. Failures and refusals are counted in the security
    log (never the signed audit log, and never the text typed as a name unless it is an
    account's); a successful log-in is an audit entry."""
    service = _service(request)
    fields = await _form(request)
    raw_name, password = _one(fields, "username"), _one(fields, "password")
    try:
        name = clean_text(raw_name, field="user name", max_length=64)
    except ValueError:
        name = ""
    address = _address(request)
    typed = name or ascii(raw_name[:64])  # what is throttled (keyed digest) and counted
    outcome = await run_in_threadpool(service.accounts.log_in, typed, password, address)
    if outcome.status == "locked":
        await run_in_threadpool(service.security_log.record, "locked", typed, address, known=outcome.known)
        return render(
            request,
            "login.html",
            status=429,
            name=name,
            error="Too many failed log-ins: this account is locked here for a while. Try again later.",
        )
    if outcome.status == "failed":
        await run_in_threadpool(service.security_log.record, "failed", typed, address, known=outcome.known)
        if outcome.just_locked:
            await run_in_threadpool(service.security_log.record, "lockout", typed, address, known=outcome.known)
        return render(request, "login.html", status=401, name=name, error="Wrong user name or password.")
    user = outcome.user
    await run_in_threadpool(
        service.registry.record_access,
        "login",
        by=user.name,
        detail={"user": user.name, "role": user.role, "address": address},
    )
    request.session.clear()
    request.session.update({"user": user.name, "epoch": user.session_epoch, "since": security.now()})
    csrf_token(request.session)
    return redirect(request, "/")


@router.post("/logout")
async def logout(request: Request):
    """The ``POST /logout`` page."""
    await _form(request)
    user = session_user(request)
    if user is not None:
        service = _service(request)
        await run_in_threadpool(service.accounts.end_sessions, user.name)
        await run_in_threadpool(
            service.registry.record_access,
            "logout",
            by=user.name,
            detail={"user": user.name, "address": _address(request)},
        )
    request.session.clear()
    return redirect(request, "/login")


# --------------------------------------------------------------- dashboard
@router.get("/")
def dashboard(request: Request, user: User = Depends(page_user)):
    """The ``GET /`` page."""
    return render(request, "dashboard.html", user=user, sites=_service(request).allowed_sites(user))


# ---------------------------------------------------------------- enrolment
def _enrol_context(request: Request, user: User, values: dict | None = None, errors=()) -> dict:
    service = _service(request)
    sites = service.allowed_sites(user)
    strata = []
    for name, levels in service.protocol.strata.items():
        if name == service.config.site_stratum and sites is not None:
            levels = tuple(level for level in levels if level in sites)
        strata.append((name, levels))
    return {
        "strata": strata,
        "questions": service.protocol.eligibility,
        "values": values or {},
        "errors": list(errors),
        "form_token": service.accounts.issue_form(user),
    }


@router.get("/enrol")
def enrol_form(request: Request, user: User = Depends(page_user)):
    """The ``GET /enrol`` page."""
    _require(user, "coordinator", "manager")
    return render(request, "enrol.html", user=user, **_enrol_context(request, user))


def _submitted(protocol, values: dict, repeated) -> tuple[str, dict, dict, list[str]]:
    """(referral id, strata, answers, problems) of a posted enrolment form."""
    problems = [f"field {name} was given more than once" for name in repeated]
    referral_id = ""
    try:
        referral_id = clean_text(values["referral_id"], field="referral id", max_length=100)
    except ValueError as exc:
        problems.append(str(exc))
    strata = {name: values[f"stratum.{name}"] for name in protocol.strata if values[f"stratum.{name}"]}
    answers = {q.id: values[f"answer.{q.id}"] for q in protocol.eligibility if values[f"answer.{q.id}"]}
    for key, text in list(strata.items()) + list(answers.items()):
        try:
            clean_text(text, field=key, max_length=200)
        except ValueError as exc:
            problems.append(str(exc))
    return referral_id, strata, answers, problems


def _in_words(protocol, referral_id: str, strata: dict, answers: dict) -> dict:
    """What the confirmation page reads back: strata and answers in words, and eligibility."""
    rows = [(protocol.stratum_label(n), protocol.level_label(n, strata[n])) for n in protocol.strata if n in strata]
    questions = [(q.question, answers.get(q.id, ""), answers.get(q.id) in q.eligible_if) for q in protocol.eligibility]
    return {
        "referral_id": referral_id,
        "strata": rows,
        "answers": questions,
        "eligible": all(ok for _, _, ok in questions),
    }


@router.post("/enrol")
async def enrol(request: Request, user: User = Depends(page_user)):
    """The ``POST /enrol`` page."""
    _require(user, "coordinator", "manager")
    service = _service(request)
    fields = await _form(request)
    protocol = service.protocol
    values = {"referral_id": _one(fields, "referral_id")}
    values.update({f"stratum.{n}": _one(fields, f"stratum.{n}") for n in protocol.strata})
    values.update({f"answer.{q.id}": _one(fields, f"answer.{q.id}") for q in protocol.eligibility})
    token = _one(fields, "form_token")
    repeated = sorted(name for name in values if len(fields.get(name) or ()) > 1)
    if _one(fields, "confirmed") != "yes":
        return await _confirm(request, user, values, token, repeated, back=_one(fields, "confirmed") == "no")
    state, earlier = await run_in_threadpool(service.accounts.claim_form, user, token)
    waited = 0.0
    while state == "pending" and waited < PENDING_WAIT_SECONDS:  # the twin submission is still at work
        await asyncio.sleep(0.1)
        waited += 0.1
        state, earlier = await run_in_threadpool(service.accounts.form_state, user, token)
        if state == "issued":  # the twin was refused and let the form go: try it ourselves
            state, earlier = await run_in_threadpool(service.accounts.claim_form, user, token)
    if state == "done":
        return render(request, "result.html", user=user, result={**earlier, "replayed": True})
    if state == "pending":
        return render(
            request,
            "error.html",
            status=409,
            user=user,
            status_code=409,
            message="This form is still being processed. Look for the referral under Enrolments.",
        )
    if state == "unknown":
        context = _enrol_context(request, user, values, ["This form has expired. Check the answers and submit again."])
        return render(request, "enrol.html", status=409, user=user, **context)
    referral_id, strata, answers, problems = _submitted(protocol, values, repeated)
    if problems:
        await run_in_threadpool(service.accounts.finish_form, token, None)
        context = _enrol_context(request, user, values, problems)
        return render(request, "enrol.html", status=422, user=user, **context)
    try:
        result = await run_in_threadpool(enrolment.enrol, service, user, referral_id, strata, answers)
    except enrolment.SiteForbidden as exc:
        await run_in_threadpool(service.accounts.finish_form, token, None)
        raise HTTPException(403, str(exc)) from None
    except BaseException:
        await run_in_threadpool(service.accounts.finish_form, token, None)
        raise
    if result["status"] == "refused":
        await run_in_threadpool(service.accounts.finish_form, token, None)
        context = _enrol_context(request, user, values, result["reasons"])
        return render(request, "enrol.html", status=422, user=user, **context)
    await run_in_threadpool(service.accounts.finish_form, token, result)
    return render(request, "result.html", user=user, result=result)


async def _confirm(request: Request, user: User, values: dict, token: str, repeated, *, back: bool):
    """The first step: check the form and read it back in words (nothing is enrolled here).

    ``back``: the coordinator chose *Change the answers* — the form again, as filled in.
    A form already enrolled (the back button after the result) shows its result.
    """
    service = _service(request)
    protocol = service.protocol
    state, earlier = await run_in_threadpool(service.accounts.form_state, user, token)
    if state == "done":
        return render(request, "result.html", user=user, result={**earlier, "replayed": True})
    if back:
        return render(request, "enrol.html", user=user, **_enrol_context(request, user, values))
    referral_id, strata, answers, problems = _submitted(protocol, values, repeated)
    if referral_id and not is_referral_id(referral_id):
        problems.append(
            f"referral id {referral_id!r} must be 1-100 letters, digits or '_ . : / -', starting with a letter or digit"
        )
    problems += protocol.check_strata(strata) + protocol.check_answers(answers)[0]
    sites, site = service.allowed_sites(user), service.site_of(strata)
    if sites is not None and site in protocol.strata.get(service.config.site_stratum, ()) and site not in sites:
        raise HTTPException(403, f"you may enrol only at {', '.join(sites) or 'no site'}")
    if state == "unknown":
        problems.append("This form has expired. Check the answers and submit again.")
    if problems:
        return render(request, "enrol.html", status=422, user=user, **_enrol_context(request, user, values, problems))
    return render(
        request,
        "confirm.html",
        user=user,
        summary=_in_words(protocol, referral_id, strata, answers),
        hidden=values,
        form_token=token,
    )


# ----------------------------------------------------------------- listings
def _page_number(request: Request) -> int:
    try:
        page = int(request.query_params.get("page", "1"))
    except ValueError:
        page = 1
    return min(max(page, 1), 1_000_000)


@router.get("/enrolments")
def enrolments(request: Request, user: User = Depends(page_user)):
    """The ``GET /enrolments`` page."""
    _require(user, "coordinator", "manager")
    page = _page_number(request)
    rows, total = enrolment.visible(_service(request), user, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return render(
        request,
        "enrolments.html",
        user=user,
        rows=rows,
        total=total,
        page=page,
        pages=max(1, math.ceil(total / PAGE_SIZE)),
    )


@router.get("/assignments")
def assignments(request: Request, user: User = Depends(page_user)):
    """The ``GET /assignments`` page."""
    _require(user, "manager")
    page = _page_number(request)
    rows, total = enrolment.visible(
        _service(request), user, randomised_only=True, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    return render(
        request,
        "assignments.html",
        user=user,
        rows=rows,
        total=total,
        page=page,
        pages=max(1, math.ceil(total / PAGE_SIZE)),
        sent=request.query_params.get("sent"),
    )


@router.post("/assignments/email")
async def email_assignments(request: Request, user: User = Depends(page_user)):
    """The ``POST /assignments/email`` page."""
    _require(user, "manager")
    await _form(request)
    service = _service(request)
    settings = service.config.smtp
    if settings is None:
        raise HTTPException(409, "e-mail is not configured: add an [smtp] table to the configuration file")
    from rjtrial.web import mail

    rows, total = await run_in_threadpool(enrolment.visible, service, user, randomised_only=True, limit=10**9)
    rows = sorted(rows, key=lambda r: r["sequence_number"])
    message = mail.assignments_message(settings, rows, trial=service.protocol.id)
    try:
        await run_in_threadpool(mail.send, settings, message)
    except RjtrialError as exc:
        return render(request, "error.html", status=502, user=user, status_code=502, message=str(exc))
    return redirect(request, f"/assignments?sent={total}")


# ------------------------------------------------------------------- events
@router.get("/events")
def events_form(request: Request, user: User = Depends(page_user)):
    """The ``GET /events`` page."""
    _require(user, "manager")
    return render(request, "events.html", user=user, kinds=EVENT_KINDS, values={}, error=None, done=None)


@router.post("/events")
async def record_event(request: Request, user: User = Depends(page_user)):
    """The ``POST /events`` page."""
    _require(user, "manager")
    fields = await _form(request)
    values = {"referral_id": _one(fields, "referral_id"), "kind": _one(fields, "kind"), "note": _one(fields, "note")}
    service = _service(request)
    try:
        referral_id = clean_text(values["referral_id"], field="referral id", max_length=100)
        note = clean_text(values["note"], field="note", max_length=500, allow_empty=True)
        detail = {"note": note} if note else {}
        seq = await run_in_threadpool(
            service.registry.record_event, referral_id, values["kind"], by=user.name, detail=detail
        )
    except (RegistryError, ValueError) as exc:
        return render(
            request, "events.html", status=422, user=user, kinds=EVENT_KINDS, values=values, error=str(exc), done=None
        )
    return render(
        request,
        "events.html",
        user=user,
        kinds=EVENT_KINDS,
        values={},
        error=None,
        done={"referral_id": referral_id, "kind": values["kind"], "seq": seq},
    )


# ------------------------------------------------------------------- export
@router.get("/export")
def export(request: Request, user: User = Depends(page_user)):
    """The ``GET /export`` page."""
    _require(user, "manager")
    from rjtrial.registry.reports import participants_csv

    frame = _service(request).registry.export(by=user.name)
    return Response(
        participants_csv(frame),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="participants.csv"'},
    )


# ----------------------------------------------------------- verify, audit
@router.get("/verify")
def verify(request: Request, user: User = Depends(page_user)):
    """The ``GET /verify`` page."""
    _require(user, "auditor", "manager")
    result = _service(request).registry.verify()
    return render(request, "verify.html", user=user, result=result)


@router.get("/audit")
def audit_log(request: Request, user: User = Depends(page_user)):
    """The ``GET /audit`` page."""
    _require(user, "auditor", "manager")
    page = _page_number(request)
    found = _service(request).registry.audit_page(limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    total = found.total
    entries = []
    for e in found.entries:
        payload = (
            json.dumps(e.payload, ensure_ascii=False, sort_keys=True) if isinstance(e.payload, dict) else str(e.payload)
        )
        entries.append(
            {
                "seq": e.seq,
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "payload": payload,
                "hash": e.hash,
                "prev_hash": e.prev_hash,
            }
        )
    return render(
        request,
        "audit.html",
        user=user,
        entries=entries,
        total=total,
        page=page,
        pages=max(1, math.ceil(total / PAGE_SIZE)),
    )


# -------------------------------------------------------------------- users
def _users_page(request: Request, user: User, status: int = 200, **context):
    service = _service(request)
    levels = service.protocol.strata.get(service.config.site_stratum, ())
    context.setdefault("error", None)
    context.setdefault("message", None)
    return render(
        request,
        "users.html",
        status=status,
        user=user,
        users=service.accounts.list(),
        roles=ROLES,
        sites=levels,
        **context,
    )


@router.get("/users")
def users(request: Request, user: User = Depends(page_user)):
    """The ``GET /users`` page."""
    _require(user, "manager")
    return _users_page(request, user)


@router.post("/users")
async def add_user(request: Request, user: User = Depends(page_user)):
    """The ``POST /users`` page."""
    _require(user, "manager")
    fields = await _form(request)
    accounts = _service(request).accounts
    name = _one(fields, "name").strip()
    try:
        await run_in_threadpool(
            accounts.add,
            name,
            role=_one(fields, "role"),
            sites=[s for s in fields.get("sites", []) if isinstance(s, str)],
            password=_one(fields, "password"),
            email=_one(fields, "email").strip(),
            by=user.name,
        )
    except (AccountError, RegistryError) as exc:
        return _users_page(request, user, status=422, error=str(exc))
    return _users_page(request, user, message=f"added user {name}")


@router.post("/users/disable")
async def disable_user(request: Request, user: User = Depends(page_user)):
    """The ``POST /users/disable`` page."""
    _require(user, "manager")
    fields = await _form(request)
    name = _one(fields, "name")
    if name == user.name:
        return _users_page(request, user, status=422, error="you cannot disable your own account")
    try:
        await run_in_threadpool(_service(request).accounts.disable, name, by=user.name)
    except AccountError as exc:
        return _users_page(request, user, status=422, error=str(exc))
    return _users_page(request, user, message=f"disabled user {name}")


@router.post("/users/token")
async def issue_token(request: Request, user: User = Depends(page_user)):
    """A token for oneself only: a manager may not issue a token to act as another user
    (refused with 403 and counted in the security log as ``token_refused``)."""
    _require(user, "manager")
    fields = await _form(request)
    name = _one(fields, "name")
    service = _service(request)
    if name != user.name:
        await run_in_threadpool(service.security_log.record, "token_refused", user.name, _address(request), known=True)
        raise HTTPException(
            403,
            "an API token is issued only by its own user (logged in, under API tokens) or by "
            "the server's operator (rjtrial users token NAME --key KEYFILE)",
        )
    return await _issue_own_token(request, user)


async def _issue_own_token(request: Request, user: User):
    try:
        token = await run_in_threadpool(_service(request).accounts.issue_token, user.name, by=user.name)
    except AccountError as exc:
        return _tokens_page(request, user, status=422, error=str(exc))
    return render(request, "token.html", user=user, name=user.name, token=token)


# ---------------------------------------------------------- own API tokens
def _tokens_page(request: Request, user: User, status: int = 200, **context):
    from rjtrial.web.app import when

    rows = _service(request).accounts.tokens(user.name)
    context.setdefault("error", None)
    context.setdefault("message", None)
    return render(
        request,
        "tokens.html",
        status=status,
        user=user,
        tokens=[{**t, "issued": when(t["created_at"])} for t in reversed(rows)],
        **context,
    )


@router.get("/tokens")
def own_tokens(request: Request, user: User = Depends(page_user)):
    """The ``GET /tokens`` page."""
    return _tokens_page(request, user)


@router.post("/tokens")
async def new_own_token(request: Request, user: User = Depends(page_user)):
    """The ``POST /tokens`` page."""
    await _form(request)
    return await _issue_own_token(request, user)


@router.post("/tokens/revoke")
async def revoke_own_token(request: Request, user: User = Depends(page_user)):
    """The ``POST /tokens/revoke`` page."""
    fields = await _form(request)
    token_id = _one(fields, "id")
    try:
        await run_in_threadpool(_service(request).accounts.revoke_token, user.name, token_id, by=user.name)
    except AccountError as exc:
        return _tokens_page(request, user, status=422, error=str(exc))
    return _tokens_page(request, user, message=f"revoked token {token_id}")


# ------------------------------------------------------------ security log
@router.get("/security")
def security_log(request: Request, user: User = Depends(page_user)):
    """The ``GET /security`` page."""
    _require(user, "auditor", "manager")
    log = _service(request).security_log
    return render(
        request,
        "security.html",
        user=user,
        rows=log.rows(limit=PAGE_SIZE),
        totals=log.totals(hours=24),
        max_rows=log.max_rows,
    )
