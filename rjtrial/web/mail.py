"""E-mail reports of random assignments to the research team (SMTP).

Settings come from the ``[smtp]`` table of the service's configuration file::

    [smtp]
    host = "smtp.example.org"
    port = 587
    from = "randomiser@example.org"
    to = ["research-team@example.org"]     # or one address as text
    starttls = true                         # optional (default false)
    username = "randomiser"                 # optional, with password
    password = "..."
    timeout = 10                            # optional, seconds
    notify_each = false                     # also send one message per assignment

Only assignments already made are ever reported.

>>> settings = SmtpSettings.from_table({"host": "localhost", "port": 2525,
...     "from": "a@example.org", "to": "b@example.org"})
>>> message = assignments_message(settings, [], trial="demo")
>>> message["Subject"]
'[rjtrial] demo: 0 random assignment(s)'
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Iterable, Mapping

from rjtrial.errors import RjtrialError

_SMTP_KEYS = {"host", "port", "from", "to", "starttls", "username", "password", "timeout", "notify_each"}


@dataclass(frozen=True)
class SmtpSettings:
    """The ``[smtp]`` settings of the service: server, sender, recipients and log-in."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0
    notify_each: bool = False

    @classmethod
    def from_table(cls, table: Mapping[str, Any], *, source: str = "configuration") -> "SmtpSettings":
        """Validate the ``[smtp]`` table; every problem names its key."""
        table = dict(table)
        unknown = set(table) - _SMTP_KEYS
        if unknown:
            raise RjtrialError(
                f"{source}: [smtp] unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(_SMTP_KEYS))})"
            )
        for name in ("host", "from", "to"):
            if name not in table:
                raise RjtrialError(f"{source}: [smtp] {name} is required")
        host, sender, to = table["host"], table["from"], table["to"]
        recipients = (to,) if isinstance(to, str) else tuple(to) if isinstance(to, list) else ()
        if not isinstance(host, str) or not host:
            raise RjtrialError(f"{source}: [smtp] host must be text")
        if not isinstance(sender, str) or "@" not in sender:
            raise RjtrialError(f"{source}: [smtp] from must be an e-mail address")
        if not recipients or not all(isinstance(r, str) and "@" in r for r in recipients):
            raise RjtrialError(f"{source}: [smtp] to must be an address or a list of addresses")
        port = table.get("port", 25)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise RjtrialError(f"{source}: [smtp] port must be a whole number 1-65535; got {port!r}")
        for flag in ("starttls", "notify_each"):
            if not isinstance(table.get(flag, False), bool):
                raise RjtrialError(f"{source}: [smtp] {flag} must be true or false")
        username, password = table.get("username"), table.get("password")
        if (username is None) != (password is None):
            raise RjtrialError(f"{source}: [smtp] username and password go together")
        timeout = table.get("timeout", 10.0)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise RjtrialError(f"{source}: [smtp] timeout must be a positive number of seconds")
        return cls(
            host=host,
            port=port,
            sender=sender,
            recipients=recipients,
            starttls=table.get("starttls", False),
            username=username,
            password=password,
            timeout=float(timeout),
            notify_each=table.get("notify_each", False),
        )


def _line(row: Mapping[str, Any]) -> str:
    strata = ", ".join(f"{k}={v}" for k, v in dict(row.get("strata") or {}).items())
    return (
        f"#{row['sequence_number']:>5}  {row['referral_id']:<20} {row['arm']:<14} "
        f"{row['at']}  {strata}  receipt {row['receipt']}  by {row['by']}"
    )


def assignments_message(
    settings: SmtpSettings, rows: Iterable[Mapping[str, Any]], *, trial: str, subject: str | None = None
) -> EmailMessage:
    """A plain-text message listing random assignments already made (one line each)."""
    rows = list(rows)
    message = EmailMessage()
    message["Subject"] = subject or f"[rjtrial] {trial}: {len(rows)} random assignment(s)"
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="rjtrial")
    body = [f"Random assignments in trial {trial} ({len(rows)}):", ""]
    body += [_line(r) for r in rows] or ["(none yet)"]
    body += ["", "Sent by the rjtrial randomisation service. Check a receipt with `rjtrial verify --receipt`."]
    message.set_content("\n".join(body) + "\n")
    return message


def receipt_message(
    settings: SmtpSettings, row: Mapping[str, Any], *, to: str, trial: str, commitment: str
) -> EmailMessage:
    """A plain-text receipt of one referral (already enrolled), to one address."""
    message = EmailMessage()
    message["Subject"] = f"[rjtrial] {trial}: receipt {row['receipt']} for referral {row['referral_id']}"
    message["From"] = settings.sender
    message["To"] = to
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="rjtrial")
    strata = ", ".join(f"{k}={v}" for k, v in dict(row.get("strata") or {}).items())
    if row["status"] == "randomised":
        outcome = [f"Allocated to:    {row['arm']}", f"Number at site:  {row['site_sequence_number']}"]
        if "sequence_number" in row:  # a manager's receipt; a coordinator's has the site's number only
            outcome.append(f"Sequence number: {row['sequence_number']} (whole trial)")
        outcome.append(f"Randomised on:   {row['randomised_on']}")
    else:
        outcome = ["Status:          screened out (not randomised)", f"Reasons:         {'; '.join(row['reasons'])}"]
    body = [
        f"Receipt of an enrolment in trial {trial}",
        "",
        f"Referral:        {row['referral_id']}",
        *outcome,
        f"Strata:          {strata}",
        f"Enrolled by:     {row['by']} at {row['at']}",
        f"Receipt:         {row['receipt']}",
        f"Trial commitment: {commitment}",
        "",
        "Keep this message. Anyone can later check that this enrolment is still in the trial's",
        f"audit log, unchanged: rjtrial verify --db DB --receipt {row['receipt']}",
        "(a receipt is what detects enrolments deleted from the end of the log).",
    ]
    message.set_content("\n".join(body) + "\n")
    return message


def send(settings: SmtpSettings, message: EmailMessage) -> None:
    """Send ``message``; raise RjtrialError (one line, no password) if the server refuses."""
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as client:
            if settings.starttls:
                client.starttls()
            if settings.username is not None:
                client.login(settings.username, settings.password or "")
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RjtrialError(f"cannot send e-mail via {settings.host}:{settings.port}: {reason}") from None
