"""The randomisation service: ``rjtrial serve``, browser pages and a JSON API.

The sealing key lives only in the server process. Coordinators at each site enrol in
a browser (server-rendered pages, no JavaScript needed); integrations use the JSON
API under ``/api`` with bearer tokens. Same store, audit log and ``verify`` as the
registry: accounts live in tables ``rj_web_*`` of the registry's own database, every
account change is a signed entry of its audit log that ``verify`` replays against
the account tables (:mod:`rjtrial.registry.accounts`), and so is every log-in and
log-out. Failed and refused log-ins are counted in a bounded security log
(:mod:`rjtrial.web.securitylog`), never in the audit log.

Build the application with :func:`create_app` (``create_app(db, key_path, *,
config=None)``) or run it with ``rjtrial serve --db DB --key KEYFILE [--host
127.0.0.1] [--port 8000] [--config FILE]``. Accounts: ``rjtrial users add NAME --db DB
--key KEYFILE --role coordinator|manager|auditor [--site S ...] [--email ADDRESS]
[--password-stdin]``, ``rjtrial users token NAME --db DB --key KEYFILE`` (prints a new
API token once), ``rjtrial users list``, ``rjtrial users disable|enable NAME``,
``rjtrial users password NAME [--keep-tokens]`` (a new password revokes the user's
tokens unless asked), ``rjtrial users email NAME ADDRESS``. Changes need the key.

Several trials on one server: ``rjtrial serve --config SERVER.toml`` with a
``[trials.NAME]`` table (``db``, ``key``) per trial, or
:func:`rjtrial.web.multi.create_server_app`. Each trial is this service mounted at
``/t/NAME/`` (API also at ``/api/t/NAME/``) with its own accounts, tokens and sessions;
``/`` lists the trials. See :mod:`rjtrial.web.multi`.

Roles
-----
coordinator
    enrols at their own sites (levels of the protocol's ``site`` stratum) and sees
    only those sites' referrals.
manager
    sees and enrols everywhere, records post-randomisation events, sees the live
    list of assignments, e-mails it, exports, verifies, reads the audit log and
    manages users (but issues API tokens for no one but themselves).
auditor
    runs verification and reads the audit log and the security log.

Every user issues and revokes their own API tokens (``/tokens``); a manager cannot
issue a token to act as someone else (403, counted in the security log as
``token_refused``); the server's operator can, with ``rjtrial users token``.

Pages (HTML; every POST form carries a CSRF token)
--------------------------------------------------
=====================  ==========================================================
GET  /login            log-in form; POST /login checks it (throttled; a success is
                       audited, a failure counted in the security log)
POST /logout           ends the session (all of the user's sessions)
GET  /                 dashboard: what the user may do
GET  /enrol            enrolment form (strata + eligibility questions, with the
                       protocol's labels); nothing is recorded when it is sent:
POST /enrol            the confirmation page reads the referral back in words;
                       with ``confirmed=yes`` (its *Randomise* button) screens
                       and randomises; shows status, arm, number at its site
                       (managers: also the trial-wide sequence number), receipt.
                       A repeated confirmation shows the first result.
GET  /enrolments       referrals the user may see (coordinator: own sites)
GET  /receipt          ?referral_id=ID: a printable receipt (coordinator: own sites;
                       the same 404 for another site's id and an unknown one)
POST /receipt/email    e-mails it to the user's own address ([smtp] configured)
GET  /assignments      manager: live list of random assignments (refreshes itself)
POST /assignments/email  manager: e-mail the list to the research team (SMTP)
GET  /events           manager: form to record a post-randomisation event
POST /events           manager: records it (conference held, withdrawal, ...)
GET  /export           manager: participants CSV (audited)
GET  /verify           auditor, manager: verification of the whole store
GET  /audit            auditor, manager: the audit log, newest first (?page=N)
GET  /security         auditor, manager: failed and refused log-ins, counted
GET  /tokens           the user's own API tokens; POST /tokens issues one (shown
                       once), POST /tokens/revoke revokes one (field ``id``)
GET  /users            manager: accounts; POST /users adds one
POST /users/disable    manager: disables an account (field ``name``)
POST /users/token      manager: issues an API token for themselves only (field
                       ``name``; another user's: 403)
GET  /static/...       style sheet and icon only
=====================  ==========================================================

JSON API (``Authorization: Bearer TOKEN``; no cookies, so no CSRF)
-------------------------------------------------------------------
=========================  ======================================================
GET  /api/health           no authentication; ``{"status": "ok"}``
GET  /api/protocol         arms, strata, eligibility questions (any role)
POST /api/enrolments       ``{"referral_id", "strata", "answers"}`` -> the
                           :class:`~rjtrial.registry.EnrolmentResult` as JSON plus
                           ``replayed``; 201 randomised or screened out, 200 the
                           same request repeated (no second randomisation),
                           422 refused or malformed, 403 a site not the caller's
GET  /api/enrolments       what the caller may see (coordinator, manager);
                           coordinators get ``site_sequence_number`` only,
                           managers also ``sequence_number``
POST /api/events           manager: ``{"referral_id", "kind", "detail"}``
GET  /api/verify           auditor, manager: ``VerifyResult.to_dict()``
GET  /api/openapi.json     the OpenAPI description (also at ``/openapi.json``)
=========================  ======================================================

401 without valid credentials, 403 for a role or site that may not, 413 for a body
over 64 KiB. Interactive docs (``/docs``) are off: they need inline scripts, which the
Content-Security-Policy forbids.
"""

__all__ = ["create_app"]


def __getattr__(name):
    # FastAPI is imported when the app is made, not when `rjtrial --help` builds its parser.
    if name == "create_app":
        from rjtrial.web.app import create_app

        return create_app
    raise AttributeError(f"module 'rjtrial.web' has no attribute {name!r}")
