"""Sessions, CSRF tokens, security headers, body limits and input hygiene.

* Sessions are Starlette's signed cookies (``itsdangerous``), under a secret taken
  from the configuration (``[web] session_secret``) or drawn at each server start —
  never the trial key. The cookie holds the user name, the user's session epoch
  (see :mod:`rjtrial.web.accounts`), the time of the log-in and the CSRF token; it
  is ``HttpOnly``, ``SameSite=Lax`` and ``Secure`` when ``[web] secure_cookies =
  true``. A session ends when unused for ``session_max_age`` seconds (8 h; the
  cookie's signed time is renewed on each request) and, however active,
  ``session_lifetime`` seconds (12 h) after its log-in.
* Every HTML form that POSTs carries the session's CSRF token in a hidden field
  ``csrf``, compared in constant time. The JSON API takes bearer tokens only, never
  cookies, so it needs none.
* Every response carries a strict Content-Security-Policy (no script at all, no
  framing), ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
  ``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store``.
* Request bodies over :data:`MAX_BODY_BYTES` are refused with 413.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import time
import unicodedata

MAX_BODY_BYTES = 64 * 1024
SESSION_COOKIE = "rjtrial_session"
SESSION_MAX_AGE = 8 * 3600

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
        b"form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def now() -> float:
    """The time sessions are measured by (Unix seconds; one place, so tests can move it)."""
    return time.time()


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address to listen on) is loopback only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def startup_warnings(host: str, *, secure_cookies: bool, trusted_proxies) -> list[str]:
    """What ``rjtrial serve`` warns about before it listens on ``host``."""
    if is_loopback(host):
        return []
    warnings = []
    if not secure_cookies:
        warnings.append("listening beyond loopback: put the service behind HTTPS and set [web] secure_cookies = true")
    if not trusted_proxies:
        warnings.append(
            "listening beyond loopback without [web] trusted_proxies: behind a reverse proxy every request "
            "comes from the proxy's address, so 50 failed log-ins by anyone lock the log-in page for every "
            "user; set trusted_proxies to the proxy's address (and the proxy must set X-Forwarded-For)"
        )
    return warnings


def new_secret() -> str:
    """A fresh session-signing secret (used when the configuration gives none)."""
    return secrets.token_urlsafe(32)


def csrf_token(session: dict) -> str:
    """The session's CSRF token, created on first use."""
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 20:
        token = secrets.token_urlsafe(24)
        session["csrf"] = token
    return token


def csrf_ok(session: dict, submitted) -> bool:
    """True when the submitted CSRF token equals the session's (compared in constant time)."""
    expected = session.get("csrf")
    if not isinstance(expected, str) or not isinstance(submitted, str) or not submitted:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), submitted.encode("utf-8", "replace"))


def clean_text(value, *, field: str, max_length: int = 200, allow_empty: bool = False) -> str:
    """``value`` stripped, or ValueError: not text, too long, empty, or with control characters."""
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected text")
    value = value.strip()
    if not value and not allow_empty:
        raise ValueError(f"{field}: empty")
    if len(value) > max_length:
        raise ValueError(f"{field}: longer than {max_length} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise ValueError(f"{field}: contains control characters")
    return value


class SecurityHeadersMiddleware:
    """Pure ASGI middleware: security headers on every response, body size limit."""

    def __init__(self, app, *, max_body: int = MAX_BODY_BYTES):
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_body
            except ValueError:
                too_big = True
            if too_big:
                await _too_large(scope, send)
                return
        # Read the (small) body first, so that an oversized one is refused before the app runs.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                await _too_large(scope, send)
                return
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay_receive():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await self.app(scope, replay_receive, send_with_headers)


async def _too_large(scope, send) -> None:
    """413: JSON under /api (as every API error), plain text for pages."""
    if scope.get("path", "").startswith("/api"):
        await _plain(send, 413, b'{"detail": "request body too large"}', content_type=b"application/json")
    else:
        await _plain(send, 413, b"request body too large")


async def _plain(send, status: int, body: bytes, *, content_type: bytes = b"text/plain; charset=utf-8") -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + SECURITY_HEADERS})
    await send({"type": "http.response.body", "body": body})
